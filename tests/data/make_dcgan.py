"""Export a tiny DCGAN-style generator with ``torch.onnx.export`` (run once, output committed).

Run with the oracle venv (torch is not a dependency of convt-tools)::

    /work/oracle-venv/bin/python tests/data/make_dcgan.py

Writes ``tests/data/dcgan_generator.onnx``: latent ``z (batch, 8, 1, 1)`` ->
ConvTranspose2d stack with BatchNorm/ReLU and a final Tanh -> ``(batch, 3, 32, 32)``.
Tiny channel counts keep the file small; weights are seeded.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

NZ, NGF = 8, 4


def generator() -> nn.Module:
    """The DCGAN generator of Radford et al., with tiny channel counts."""
    return nn.Sequential(
        nn.ConvTranspose2d(NZ, NGF * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(NGF * 4), nn.ReLU(True),
        nn.ConvTranspose2d(NGF * 4, NGF * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF * 2),
        nn.ReLU(True),
        nn.ConvTranspose2d(NGF * 2, NGF, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF), nn.ReLU(True),
        nn.ConvTranspose2d(NGF, 3, 4, 2, 1, bias=False), nn.Tanh(),
    )


def main() -> None:
    torch.manual_seed(0)
    model = generator().eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
    out = Path(__file__).with_name("dcgan_generator.onnx")
    torch.onnx.export(model, (torch.randn(1, NZ, 1, 1),), str(out), dynamo=False,
                      opset_version=17, input_names=["z"], output_names=["image"],
                      dynamic_axes={"z": {0: "batch"}, "image": {0: "batch"}})
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
