"""What both ``convt export`` paths share (a layer config, and a saved model's layers in
:mod:`.export_saved`): the lines printed about a written model (the input shape comes from
:func:`convt_tools.layer.input_shape`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from ..repair.targets import retarget, target_info
from ..spec import AXIS_NAMES

if TYPE_CHECKING:
    import onnx


def _fmt_dims(dims: list[Any]) -> str:
    return "(" + ", ".join(str(d) for d in dims) + ")"


def _pads_label(rank: int) -> str:
    """``h_begin, w_begin, h_end, w_end`` for rank 2 (``l`` for 1-D, ``d, h, w`` for 3-D)."""
    letters = [n[0] for n in AXIS_NAMES.get(rank, ())]
    return ", ".join([f"{a}_begin" for a in letters] + [f"{a}_end" for a in letters])


def _human(info: dict[str, Any]) -> list[str]:
    op = info["output_padding"]
    lines = [
        f"wrote {info['path']} ({info['size_bytes']:,} bytes"
        + (f", tensors in {info['external_data']}" if info["external_data"] else "") + ")",
        f"opset {info['opset']}, ir_version {info['ir_version']}, {info['dtype']}, "
        f"{info['data_format'] or 'channels_first (N, C, ...)'}",
        f"input  {_fmt_dims(info['input']['shape'])}",
        f"output {_fmt_dims(info['output']['shape'])}",
        f"ConvTranspose kernel {_fmt_dims(info['kernel_shape'])}, strides "
        f"{_fmt_dims(info['strides'])}, dilations {_fmt_dims(info['dilations'])}, "
        f"pads {info['pads']} ({_pads_label(len(info['pads']) // 2)}), output_padding "
        f"{op if op else 'none'}, "
        + (f"group {info['group']}, " if info.get("group") is not None else "")
        + f"bias {'yes' if info['bias'] else 'no'}",
        *([f"Slice (crop) starts {cs['starts']}, ends {cs['ends']}, axes {cs['axes']} "
           f"(channels first; ends < 0 count from the end)"] if (cs := info["crop_slice"]) else []),
        *([f"form {info['form']}: " + ("symmetric pads + one constant Slice"
                                       if info["crop_slice"] else "one ConvTranspose")
           + (" (asymmetric pads)" if info["form"] == "compact" and
              info["pads"][:len(info["pads"]) // 2] != info["pads"][len(info["pads"]) // 2:]
              else "")] if info.get("form") else []),
        *([f"activation {info['activation']}"] if info.get("activation") else []),
        f"weights {info['weights']}",
    ]
    target = [f"target: {t}" for t in info.get("target", {}).get("lines", [])]
    return lines + [f"note: {n}" for n in info["notes"]] + target


def for_targets(model: onnx.ModelProto, targets: Sequence[str] | None, seed: int
                ) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """``export --target``: the model in the form every target runs exactly, proven on the
    installed ones (:func:`convt_tools.repair.targets.retarget`), and ``{"target": ...}``
    for the printed info (empty without targets)."""
    if not targets:
        return model, {}
    out, notes, proof = retarget(model, targets, seed)
    return out, {"target": target_info(targets, notes, proof)}
