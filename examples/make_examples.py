"""Writes the example arrays of examples/ (seeded; the outputs are committed).

    python examples/make_examples.py

- ``weights.npz``: ``kernel`` (3, 5, 8, 16) and ``bias`` (8,) for ``layer.json``
  (Keras layout ``(*kernel_size, filters, in_channels)``);
- ``input.npy``: one channels_last input (1, 9, 6, 16) for ``layer.json``;
- ``torch_state.npz``: ``weight`` (4, 3, 3, 3) and ``bias`` (6,) for ``torch.json``
  (torch layout ``(in_channels, out_channels / groups, *kernel_size)``);
- ``torch_input.npy``: one channels_first input (1, 4, 5, 5) for ``torch.json``;
- ``model_input.npy``: one input (1, 6, 8, 3) for layer ``up_2`` of ``model.keras``.

The other files are copies of real fixtures: ``model.keras`` is
``fixtures/models/seq_decoder.keras`` (saved by real Keras; layers ``up_1``, ``up_2``),
``converted.onnx`` is ``fixtures/converted/broken/output_shape_odd_crop.onnx`` (a
converter's ``ConvTranspose`` with an ``output_shape`` attribute).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> None:
    rng = np.random.default_rng(2024)
    np.savez(HERE / "weights.npz",
             kernel=(rng.standard_normal((3, 5, 8, 16)) * 0.1).astype(np.float32),
             bias=(rng.standard_normal(8) * 0.1).astype(np.float32))
    np.save(HERE / "input.npy", rng.standard_normal((1, 9, 6, 16)).astype(np.float32))
    np.savez(HERE / "torch_state.npz",
             weight=(rng.standard_normal((4, 3, 3, 3)) * 0.1).astype(np.float32),
             bias=(rng.standard_normal(6) * 0.1).astype(np.float32))
    np.save(HERE / "torch_input.npy", rng.standard_normal((1, 4, 5, 5)).astype(np.float32))
    np.save(HERE / "model_input.npy", rng.standard_normal((1, 6, 8, 3)).astype(np.float32))


if __name__ == "__main__":
    main()
