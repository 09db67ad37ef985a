"""How each runtime executes a QDQ ConvTranspose node: the documented table, as functions.

One :class:`QdqExecution` per runtime: ``int8`` (an integer kernel runs the
node), ``float`` (Q/DQ are kept as float ops around a float ConvTranspose:
the result is the int8 reference's up to rounding ties), ``refused`` (load
or run fails) or ``unknown`` (nothing measured or documented), with a known
``fault`` where the runtime computes a valid node wrongly, and the source of
the claim. A registry (:data:`QDQ_TABLE`) like :mod:`.readings`: one
:class:`QdqRules` entry per runtime name of :data:`.readings.RUNTIMES`.

Sources ("measured" = ``fixtures/quant/`` on these versions, CPU; 236 QDQ
models from ``onnxruntime.quantization.quantize_static`` and by hand, ranks
1-3, groups 1 / 2 / depthwise; see fixtures/README.md):

* ``onnxruntime`` (measured 1.32): the CPU provider has no int8 ConvTranspose
  kernel (QDQ Conv is fused into QLinearConv, ConvTranspose is not;
  ``com.microsoft:QLinearConvTranspose`` is not registered in the CPU wheel):
  DQ -> float ConvTranspose -> Q, equal to the reference (<1e-5 LSB). Refuses
  a zero point whose type is not the integers' (also int32 200 on int8) and a
  per-axis scale whose length is not the axis's.
* ``openvino`` (measured 2026.4.1, ``runtimePrecision`` of the compiled
  Deconvolution): ``i8`` only for group 1 with int8 activations at zero point
  0, weight zero points 0 (a uint8 zero point 0 of the wrong type too) and
  per-tensor or axis-1 weight scales; ``f32`` otherwise (blocked DQ, uint8 or
  asymmetric activations, nonzero weight zero point, group > 1). Faults:
  int8 activations at zero point 0 with a nonzero per-tensor weight zero point,
  group 1: 131-136 LSB off (195-220 with zero point -128); a weight zero point
  outside the integers' type (int32 200 on int8) is run, 255 LSB off; a
  zero point of the wrong type is run (= reference); in i8, stride > 1 together
  with dilation > 1 (primitive ``jit_gemm_i8``, ranks 1-3) is wrong on some inputs
  (31-49 LSB on 3 of the 4 such layers of ``fixtures/quant_dilated``, 8-92 LSB on
  probe layers; not in the issue text). Refuses a per-axis scale length that does
  not fit (``read_model``).
* ``tract`` (measured 0.23.9): runs every valid non-blocked form equal to the
  reference (its precision is not reported: ``unknown``); refuses opset-21
  blocked DequantizeLinear ("blocked quantization is not supported"), zero
  points of the wrong type and wrong scale lengths.
* ``onnx-reference`` (measured onnx 1.23): float; no DequantizeLinear below
  opset 19 ("No implementation ... version 13, found 19, 21, 23, 25");
  grouped ConvTranspose fails or is wrong (the float table's reason).
* ``tensorrt`` (documented, not measured): int8 deconvolution kernels take
  per-tensor or per-INPUT-channel (axis 0) weight scales: "We don't support
  per-output-channel quant for ConvTranspose" (NVIDIA/TensorRT#2380); axis-1
  weights gave "obviously wrong" int8 results (NVIDIA/TensorRT#1694).
* every other runtime: ``unknown``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from ..quant import INT_RANGES, QdqConvTranspose, QParams, QuantError, WeightGranularity

__all__ = ["QDQ_TABLE", "QdqExecution", "QdqRules", "qdq_execution", "register_qdq"]


@dataclass(frozen=True)
class QdqExecution:
    """What one runtime does with a QDQ node (module doc); ``fault``: a known wrong result."""

    mode: str
    source: str
    note: str = ""
    fault: str = ""

    def to_dict(self) -> dict[str, str]:
        out = {"execution": self.mode, "source": self.source}
        if self.note:
            out["note"] = self.note
        if self.fault:
            out["fault"] = self.fault
        return out


def _zps(p: QParams | None) -> np.ndarray:
    return np.zeros(1) if p is None or p.zero_point is None else p.zero_point.ravel()


def zero_point_problem(p: QParams | None, integers: str | None) -> str:
    """``wrong type`` / ``out of range`` / ``""`` for ``p``'s zero point on ``integers``."""
    if p is None or p.zero_point is None or p.zero_point.size == 0:
        return ""
    want = integers or p.dtype
    zp = p.zero_point
    lo, hi = INT_RANGES.get(want, (None, None))
    if lo is not None and (zp.min() < lo or zp.max() > hi):
        return "out of range"
    return "wrong type" if str(zp.dtype) != want else ""


def _bad_length(q: QdqConvTranspose) -> str:
    """The first Q/DQ parameter set that does not fit its tensor ("" when all fit)."""
    for p, arr in ((q.w, q.w_int), (q.b, q.b_int)):
        if p is not None and arr is not None:
            try:
                p.expand(tuple(arr.shape))
            except QuantError as exc:
                return str(exc)
    return ""


def _any_zp_problem(q: QdqConvTranspose) -> str:
    for p, ints in ((q.w, q.w.dtype if q.w else None), (q.b, q.b.dtype if q.b else None),
                    (q.x, q.x_quantize.dtype if q.x_quantize else None),
                    (q.y_dequantize, q.y.dtype if q.y else None)):
        problem = zero_point_problem(p, ints)
        if problem:
            return f"{p.node if p else ''}: zero point {problem}"
    return ""


class QdqRules:
    """One runtime's documented execution of QDQ ConvTranspose; subclasses say more."""

    name: str = ""
    source: str = "nothing measured or documented here"

    def execution(self, q: QdqConvTranspose, w: WeightGranularity | None, opset: int
                  ) -> QdqExecution:
        return QdqExecution("unknown", self.source)


QDQ_TABLE: dict[str, QdqRules] = {}
_R = TypeVar("_R", bound=type[QdqRules])


def register_qdq(cls: _R) -> _R:
    """Class decorator: one instance of ``cls`` in :data:`QDQ_TABLE` under ``cls.name``."""
    QDQ_TABLE[cls.name] = cls()
    return cls


@register_qdq
class _Onnxruntime(QdqRules):
    name = "onnxruntime"
    source = ("measured onnxruntime 1.32 (fixtures/quant): CPU provider has no int8 "
              "ConvTranspose kernel; com.microsoft:QLinearConvTranspose not registered")

    def execution(self, q: QdqConvTranspose, w: WeightGranularity | None, opset: int
                  ) -> QdqExecution:
        bad = _bad_length(q)
        if bad:
            return QdqExecution("refused", self.source, bad)
        zp = _any_zp_problem(q)
        if zp:
            return QdqExecution("refused", self.source, f"{zp} (type check at load)")
        return QdqExecution("float", self.source, "DequantizeLinear -> float ConvTranspose -> "
                            "QuantizeLinear")


@register_qdq
class _OpenVINO(QdqRules):
    name = "openvino"
    source = ("measured OpenVINO 2026.4.1 (fixtures/quant: runtimePrecision of the compiled "
              "Deconvolution, outputs with f32 pinned)")

    def execution(self, q: QdqConvTranspose, w: WeightGranularity | None, opset: int
                  ) -> QdqExecution:
        bad = _bad_length(q)
        if bad:
            return QdqExecution("refused", self.source, f"read_model: {bad}")
        x_int8_zp0 = (q.x is not None and q.x.dtype == "int8" and not np.any(_zps(q.x)))
        w_zp = _zps(q.w)
        w_form = w is not None and (w.stored == "per_tensor"
                                    or (w.stored == "per_axis" and q.w is not None
                                        and q.w.axis in (1, -(len(q.w_shape or ()) - 1))))
        fault = ""
        if zero_point_problem(q.w, q.w.dtype if q.w else None) == "out of range":
            fault = ("weight zero point outside the integers' type is run: measured 255 LSB "
                     "off")
        elif (q.attrs.group == 1 and x_int8_zp0 and w is not None and w.stored == "per_tensor"
              and np.any(w_zp)):
            fault = ("int8 activations at zero point 0 with a nonzero per-tensor weight zero "
                     "point: measured 131-136 LSB off (195-220 with zero point -128)")
        if q.attrs.group == 1 and x_int8_zp0 and q.w is not None and not np.any(w_zp) \
                and w_form:
            a = q.attrs
            if not fault and max(a.strides) > 1 and max(a.dilations) > 1:
                fault = ("int8 Deconvolution with stride > 1 and dilation > 1 (jit_gemm_i8): "
                         "measured 31-49 LSB off on 3 of 4 such layers (fixtures/quant_dilated), "
                         "depending on the input")
            return QdqExecution("int8", self.source, "Deconvolution i8", fault)
        return QdqExecution("float", self.source,
                            "Deconvolution f32 (i8 needs group 1, int8 activations at zero "
                            "point 0, weight zero point 0, per-tensor or axis-1 scales)", fault)


@register_qdq
class _Tract(QdqRules):
    name = "tract"
    source = "measured tract 0.23.9 (fixtures/quant)"

    def execution(self, q: QdqConvTranspose, w: WeightGranularity | None, opset: int
                  ) -> QdqExecution:
        if any(p is not None and p.block_size > 0 for p in (q.w, q.b, q.x, q.y)):
            return QdqExecution("refused", self.source, "DequantizeLinear: blocked quantization "
                                "is not supported")
        bad = _bad_length(q) or _any_zp_problem(q)
        if bad:
            return QdqExecution("refused", self.source, bad)
        return QdqExecution("unknown", self.source, "runs, equal to the int8 reference on every "
                            "measured form; precision not reported")


@register_qdq
class _OnnxReference(QdqRules):
    name = "onnx-reference"
    source = "measured onnx 1.23 ReferenceEvaluator (fixtures/quant)"

    def execution(self, q: QdqConvTranspose, w: WeightGranularity | None, opset: int
                  ) -> QdqExecution:
        if opset < 19:
            return QdqExecution("refused", self.source, f"no DequantizeLinear implementation "
                                f"for opset {opset} (found 19, 21, 23, 25)")
        if q.attrs.group > 1:
            return QdqExecution("refused", self.source, "grouped ConvTranspose fails or is wrong "
                                "(kernel sliced on the wrong axis)")
        bad = _bad_length(q) or _any_zp_problem(q)
        if bad:
            return QdqExecution("refused", self.source, bad)
        return QdqExecution("float", self.source, "NumPy float Q/DQ and ConvTranspose")


@register_qdq
class _TensorRT(QdqRules):
    name = "tensorrt"
    source = ("documented: per-tensor or per-input-channel (axis 0) ConvTranspose weights "
              "(NVIDIA/TensorRT#2380); axis-1 weights wrong in int8 (NVIDIA/TensorRT#1694); "
              "not measured")

    def execution(self, q: QdqConvTranspose, w: WeightGranularity | None, opset: int
                  ) -> QdqExecution:
        if w is None:
            return QdqExecution("unknown", self.source)
        if w.stored == "per_tensor" or (w.stored == "per_axis" and w.axis == 0):
            return QdqExecution("int8", self.source, "per-tensor / axis-0 weight scales: the "
                                "form TensorRT's int8 deconvolution takes")
        if w.stored == "per_axis":
            return QdqExecution("refused", self.source, "axis-1 (per-output-channel) weight "
                                "scales: not supported for ConvTranspose (documented; wrong int8 "
                                "results reported in NVIDIA/TensorRT#1694)")
        return QdqExecution("unknown", self.source, "blocked DequantizeLinear: not documented")


def qdq_execution(runtime: str, q: QdqConvTranspose, w: WeightGranularity | None,
                  opset: int) -> QdqExecution:
    """The table's execution of ``q`` by ``runtime`` (``unknown`` for a runtime not in it)."""
    rules = QDQ_TABLE.get(runtime)
    return rules.execution(q, w, opset) if rules is not None else QdqRules().execution(q, w, opset)
