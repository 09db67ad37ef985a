"""Real torch.onnx exports of ConvTranspose{1,2,3}d for check/repair tests (oracle venv only).

Run: /work/oracle-venv/bin/python tests/data/converters/make_torch.py
Writes torch_<name>.onnx and torch_<name>.npz (x and torch's own y at each size,
allow_pickle=False readable) next to this file. Deterministic (seeded).
"""

from __future__ import annotations

import os

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))

# name -> (module factory, input sizes to record, dynamic spatial axes)
CASES = {
    "ct1d_s2_p1_op1_dyn": (lambda: torch.nn.ConvTranspose1d(2, 3, 3, stride=2, padding=1,
                                                            output_padding=1), [(7,), (8,)], True),
    "ct2d_s2_p1_op1": (lambda: torch.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1,
                                                        output_padding=1), [(4, 5)], False),
    "ct3d_s2_p1_op1_dyn": (lambda: torch.nn.ConvTranspose3d(2, 3, 3, stride=2, padding=1,
                                                            output_padding=1),
                           [(3, 4, 3), (4, 3, 5)], True),
    # output_padding 1 >= stride 1 but < dilation 2: legal in torch, refused by onnxruntime
    "ct2d_s1_d2_op1": (lambda: torch.nn.ConvTranspose2d(2, 3, 3, stride=1, dilation=2,
                                                        output_padding=1), [(4, 5)], False),
    "ct1d_s2_d2_op1_g2": (lambda: torch.nn.ConvTranspose1d(4, 6, 3, stride=2, dilation=2,
                                                           output_padding=1, groups=2),
                          [(6,)], False),
}


def main() -> None:
    for name, (make, sizes, dynamic) in CASES.items():
        torch.manual_seed(0)
        mod = make().eval()
        c_in = mod.in_channels
        x0 = torch.randn(1, c_in, *sizes[0])
        axes = {"x": {i + 2: f"s{i}" for i in range(len(sizes[0]))}} if dynamic else None
        path = os.path.join(HERE, f"torch_{name}.onnx")
        torch.onnx.export(mod, (x0,), path, input_names=["x"], output_names=["y"],
                          opset_version=17, dynamic_axes=axes, dynamo=False)
        arrays = {}
        for j, size in enumerate(sizes):
            x = torch.randn(1, c_in, *size, generator=torch.Generator().manual_seed(j))
            with torch.no_grad():
                arrays[f"x{j}"] = x.numpy()
                arrays[f"y{j}"] = mod(x).numpy()
        np.savez(os.path.join(HERE, f"torch_{name}.npz"), **arrays)
        print(name, [a.shape for a in arrays.values()])


if __name__ == "__main__":
    main()
