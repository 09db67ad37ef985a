"""Weight forms of a QDQ ConvTranspose and which one each target runtime reads.

ONNX ConvTranspose weights are ``W (C_in, C_out/group, *k)``, so "per output
channel" is a different DequantizeLinear for each group count
(:data:`FORMS`):

==============  ==========================================================  =========
form            DequantizeLinear of W                                       opset
==============  ==========================================================  =========
``per_tensor``  one scale, zero point 0                                     13
``axis1``       group 1: ``axis=1``, ``C_out`` scales (per output channel)   13
``axis0_out``   depthwise, multiplier 1: ``axis=0``, ``C`` scales (axis 0    13
                is the output channel there)
``blocked``     ``axis=0, block_size=C_in/group``, scale shape               21
                ``(group, C_out/group, *k)``: per output channel, any group
``split``       the group split: one group-1 ``axis1`` ConvTranspose per     13
                group between Split and Concat (same integers and scales)
``axis0_in``    ``axis=0``, ``C_in`` scales (per input channel): TensorRT's  13
                ConvTranspose convention (NVIDIA/TensorRT#2380)
==============  ==========================================================  =========

:data:`TARGETS` is the reading table of what each runtime accepts (with the
source of each claim); :func:`choose_form` picks the per-output-channel form
every named target reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConvtError

__all__ = ["BLOCKED_MIN_OPSET", "DEFAULT_TARGETS", "FORMS", "TARGETS", "TargetReading",
           "choose_form", "int8_faults", "parse_targets"]

FORMS = ("per_tensor", "axis1", "axis0_out", "blocked", "split", "axis0_in")
#: DequantizeLinear's block_size exists from opset 21 on.
BLOCKED_MIN_OPSET = 21

_FIXTURES = "measured: fixtures/quant (onnx 1.23, onnxruntime 1.32, OpenVINO 2026.4, tract 0.23)"


@dataclass(frozen=True)
class TargetReading:
    """What one runtime reads of a QDQ ConvTranspose's weight forms."""

    name: str
    blocked: bool              # runs opset-21 blocked DequantizeLinear
    weight_axis: str           # "output" (axis 1 / blocked) or "input" (axis 0, C_in scales)
    source: str
    int8_strided_dilated: str = ""   # why its int8 kernel is wrong with stride and dilation > 1


TARGETS: dict[str, TargetReading] = {r.name: r for r in (
    TargetReading("onnxruntime", True, "output", _FIXTURES),
    TargetReading("openvino", True, "output", _FIXTURES,
                  "OpenVINO runs a group-1 Deconvolution with int8 activations at zero point 0 "
                  "in i8 (jit_gemm_i8), which is wrong with stride > 1 and dilation > 1 "
                  "(measured 13-49 LSB: fixtures/quant_dilated, check's QDQ reading)"),
    TargetReading("tract", False, "output",
                  _FIXTURES + ": tract refuses every blocked DequantizeLinear "
                  "('DequantizeLinear: blocked')"),
    TargetReading("tensorrt", False, "input",
                  "documented: NVIDIA/TensorRT#2380 (ConvTranspose weights quantized per input "
                  "channel, axis 0); blocked DequantizeLinear is not documented for "
                  "ConvTranspose weights, so it is avoided"),
)}
#: The targets when ``--target`` is not given: the runtimes this project validates on.
DEFAULT_TARGETS = ("onnxruntime", "openvino", "tract")


def parse_targets(text: str | None) -> tuple[str, ...]:
    """``--target`` (comma-separated names of :data:`TARGETS`) as a tuple; None: the defaults."""
    if text is None:
        return DEFAULT_TARGETS
    names = tuple(n.strip().lower() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in TARGETS]
    if not names or bad:
        raise ConvtError(f"target: got {text!r}; expected comma-separated names from "
                         f"{', '.join(TARGETS)}.", field="target")
    return tuple(dict.fromkeys(names))


def choose_form(c_in: int, c_out: int, group: int, *, per_channel: bool,
                targets: tuple[str, ...], opset: int) -> tuple[str, list[str]]:
    """The weight form (:data:`FORMS`) for this layer and targets, and why (notes).

    Per channel: ``axis0_in`` where a target reads per input channel
    (TensorRT), except depthwise with multiplier 1 (``axis0_out``, which is
    both); ``axis1`` for group 1; ``axis0_out`` for depthwise multiplier 1;
    other grouped layers ``blocked`` where every target runs it and the opset
    is at least 21, else ``split``.
    """
    if not per_channel:
        return "per_tensor", []
    readings = [TARGETS[t] for t in targets]
    per_in, per_out = c_in // group, c_out // group
    if per_in == 1 and per_out == 1 and group > 1:
        return "axis0_out", []
    inputs = [r.name for r in readings if r.weight_axis == "input"]
    if inputs:
        return "axis0_in", [f"weights per input channel (axis 0, C_in scales) for "
                            f"{', '.join(inputs)}: {TARGETS[inputs[0]].source}"]
    if group == 1:
        return "axis1", []
    refusing = [r.name for r in readings if not r.blocked]
    if refusing:
        return "split", [f"group split ({group} group-1 ConvTranspose nodes): "
                         f"{', '.join(refusing)} refuse(s) blocked DequantizeLinear"]
    if opset < BLOCKED_MIN_OPSET:
        return "split", [f"group split ({group} group-1 ConvTranspose nodes): blocked "
                         f"DequantizeLinear needs opset {BLOCKED_MIN_OPSET}, the model has "
                         f"{opset}"]
    return "blocked", []


def int8_faults(targets: tuple[str, ...], form: str, group: int, strides: list[int],
                dilations: list[int]) -> list[str]:
    """Why int8 activations at zero point 0 would be computed wrongly by a target: its int8
    kernel runs group-1 nodes (group 1, or the group split) and is wrong with stride > 1
    and dilation > 1 (:attr:`TargetReading.int8_strided_dilated`)."""
    group_one = group == 1 or form == "split"
    if not group_one or max(strides) <= 1 or max(dilations) <= 1:
        return []
    return [f"{t}: {TARGETS[t].int8_strided_dilated}" for t in targets
            if TARGETS[t].int8_strided_dilated]
