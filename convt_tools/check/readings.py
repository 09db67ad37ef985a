"""How each runtime reads a ConvTranspose node: the documented table, as functions.

One :class:`Reading` per runtime: the per-axis windows it computes
(:class:`~convt_tools.geometry.Window` on the natural full output, see
:mod:`convt_tools.check.windows`), or that it refuses the node, or that
nothing documented says (``unknown``). :func:`documented_reading` evaluates
the table at concrete input sizes; whether the model's spatial input dims
are static matters (OpenVINO and tract read some forms differently when they
are symbolic). Installed runtimes are also measured
(:mod:`convt_tools.check.matrix`); the table is what ``check`` says for the
others, and what the size-independent reasoning (:mod:`.sizes`) uses.

The table is a registry (:data:`TABLE`): one small :class:`RuntimeRules` entry per
runtime, registered with :func:`register` in report order, each with its source
(:data:`DOCUMENTED`), its refusals and its reading of each form (explicit pads or
VALID, auto_pad SAME_*, output_shape); a runtime the table does not name reads
pads as written and nothing else is documented.

Notation per axis: ``L = (in-1)*s + K``, ``op`` output_padding, ``pb, pe``
pads, ``O`` the output_shape entry (``in*s`` for SAME), ``T = L + op - O``.

Sources (facts only; "measured" = run here on that version, float32, CPU):

* ``onnxruntime`` (measured 1.32, same since 1.14: microsoft/onnxruntime
  PR #13311 moved the odd extra of ``output_shape`` to the start):
  pads -> ``(pb, L+op-pb-pe)``; SAME with ``T' = max(T, 0)``: UPPER
  ``begin = T'//2``, LOWER ``T' - T'//2``, length ``L + op - T'`` (so with
  ``K < s`` it keeps ``L``, not ``in*s``); output_shape: ``T >= 0`` ->
  ``begin = T - T//2`` (odd extra cropped at the START; ``T//2`` when
  auto_pad is SAME_UPPER too), ``-(s-1) <= T < 0``
  -> ``begin = 0`` (zero rows at the end), lower ``T`` refused. Refuses
  negative pads, ``op >= s`` (1.21+; <= 1.20 computed wrong values), pads
  with auto_pad, and output_shape with N and C.
* ``onnxruntime<1.14``: output_shape ``begin = T//2`` (odd extra at the END;
  PR #13311 changed it in 1.14). SAME as the spec from 1.13 (PR #12537);
  1.12 and older swapped SAME_UPPER and SAME_LOWER (listed as
  ``onnxruntime<=1.12``).
* ``tensorrt`` (onnx-tensorrt parser): output_shape odd extra at the END
  like onnxruntime < 1.14 (onnx/onnx-tensorrt#1042); negative pads refused
  (``setPostPadding`` requires pads >= 0, NVIDIA/TensorRT#2910); 3-D
  asymmetric pads unsupported on GPUs before sm70. SAME and ``op >= s``: not
  documented here.
* ``openvino`` (measured 2026.4): with static spatial dims as onnxruntime
  1.32, except output_shape with ``T < 0`` gives ``begin = 0`` (never
  refused), ``op >= s`` is computed as ``(pb, L+op-pb-pe)``, output_shape with
  N and C is read as its spatial tail (openvinotoolkit/openvino PR #32854),
  and a negative END pad means zero rows appended (TensorFlow's meaning; a
  negative begin pad is refused). With symbolic spatial dims: output_shape
  gives ``begin = pb`` (0 without pads: the whole crop at the end) and SAME
  is not cropped at all (``(0, L+op)``); output_shape together with
  auto_pad SAME_* is read as with static dims, ``begin = T - T//2``.
* ``tract`` (measured 0.23.9): static dims: output_shape ``begin = 0``
  (whole crop at the end, any ``T``); SAME as the spec for ``op = 0``,
  ``(T//2, in*s - op)`` with ``op > 0``, refused for ``K < s``; ``op >= s``
  computed as ``(pb, L+op-pb-pe)``; negative pads refused; output_shape with
  N and C, or together with auto_pad SAME_*, aborts the process (a Rust
  panic). Symbolic spatial dims: output_shape refused.
* ``torch`` (onnx2torch 1.5, lead's measurements in the project's REFERENCE):
  ignores output_shape (reads the pads, default 0); refuses asymmetric and
  negative pads; ``op < max(s, d)`` is legal in torch. Refuses auto_pad SAME_*
  ("auto_pad is not implemented"; measured 1.5.15 by ``convt conformance``).
* ``onnx2tf`` (TFLite): not documented here (no measured source); listed as
  unknown.
* ``mnn`` (measured 3.6.1 through its converter core, fixtures/runtimes/mnn.json): explicit
  pads (symmetric or not), VALID, groups, dilation, ``op`` with stride 3 as the spec; SAME
  ``(T0//2, in*s)`` with ``T0 = max(L - in*s, 0)`` (SAME_LOWER's odd extra at the END,
  output_padding left out); output_shape ``((L-O)//2, O)`` (odd extra at the END,
  output_padding left out); output_shape with N and C: its first entries read as the
  spatial sizes (a wrong shape). 1-D: a trailing unit
  dim on a graph output. 3-D: a bias input is dropped on alternate depth slices (a separate
  Add is exact), group > 1 with more than one channel per group wrong and not repeatable
  (uninitialised reads; a group split is exact), SAME and output_shape uncropped
  ``(0, L+op)``, no ``kernel_shape`` refused.
* ``ncnn`` (measured 1.0.20261020 through pnnx 20261020 with ``fp16=0``,
  fixtures/runtimes/ncnn.json): symmetric pads, groups, depthwise, dilation and ``op`` as
  the spec, ranks 1-3; asymmetric pads and every auto_pad (SAME_*, VALID) refused (pnnx
  leaves them as ``todo ConvTranspose``); output_shape ignored (pads as written);
  output_shape with N and C refused.
* ``onnx-reference`` (``onnx.reference``, measured 1.23): the spec formulas, floor division
  (SAME with ``K < s`` gives ``in*s`` with a negative begin); negative pads
  as written; refuses output_shape with ``T > 0`` unless auto_pad is SAME_*
  (then, and for ``T <= 0``: begin 0),
  ``op >= s``, and group > 1 (wrong kernel slicing) except depthwise with one output
  channel per group (``W`` of shape ``(group, 1, ...)``: measured exact on 1.23 without
  a bias; with a bias the values are wrong). ``convt conformance`` measured it.
* ``opencv`` (measured opencv-python-headless 5.1.0, ``cv2.dnn``, 105 forms of
  ``fixtures/runtimes/``): the spec's windows (pads as written, negative
  pads and ``op >= s`` included; SAME as the spec, ``K < s`` too; output_shape
  with N and C read as its spatial tail), except output_shape: its total
  ignores output_padding, ``T = L - O`` (opencv/opencv#26307, PR #28264),
  begin as the spec's for that ``T``. Symbolic dims read as static.
* ``tvm`` (measured apache-tvm 0.27.0.post1, Relax ONNX frontend, llvm target,
  ``fixtures/runtimes/``): explicit pads as written (``op`` kept: the
  output_padding drop of apache/tvm#18601 is fixed by PR #18635 in 0.27);
  SAME as onnxruntime (``T' = max(T, 0)``: with ``K < s`` it keeps ``L``);
  output_shape ignored: the pads (default 0) and output_padding are read,
  i.e. the full uncropped window ``(0, L + op)``; output_shape together with
  auto_pad SAME_* is read as the SAME alone (``O = in * s``, whatever
  output_shape says). ``op >= s`` is refused (the frontend's
  ``Conv2dTranspose expects the output padding less than the strides``).
  Symbolic dims read as static.
* ``iree`` (measured IREE 3.13.0: ``iree-import-onnx``, ``iree-compile``
  llvm-cpu, ``fixtures/runtimes/``): what compiles is exact. Refused
  (compile errors): asymmetric explicit pads (negative ones included), auto_pad
  SAME_* whose total ``T`` is odd or negative (the split would be asymmetric),
  output_shape with ``T > 0`` (any crop; ``T <= 0`` computes the spec's
  window; with auto_pad SAME_* too, output_shape follows the SAME rule with
  ``O`` from output_shape), and grouped nodes with one output channel per group (depthwise,
  multiplier 1; multiplier 2 and other groups are exact). SAME_* with
  output_padding compiles but fails at run (out-of-range buffer access).
  Symmetric pads, ``op`` (``op >= s`` too), dilation, symbolic dims: exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

from ..errors import ConvtError
from ..geometry import Window, explicit_window, onnx_spec_begin, tf_split
from .attrs import SAME, ConvTAttrs

__all__ = ["DOCUMENTED", "RUNTIMES", "TABLE", "Reading", "RuntimeRules", "documented_reading",
           "needed_for", "register", "rules_for", "runtime_names"]


@dataclass(frozen=True)
class Reading:
    """What one runtime computes for a node.

    ``status``: ``window`` (``windows`` holds one per spatial axis),
    ``refused`` (load or run fails), or ``unknown`` (nothing documented);
    ``note`` says why or which rule.
    """

    status: str
    windows: tuple[Window, ...] | None = None
    note: str = ""

    def key(self) -> object:
        """What two readings must share to be the same computation."""
        return self.windows if self.status == "window" else self.status


# ---- per-axis helpers (notation: module doc) ---------------------------------------------

def _form(a: ConvTAttrs) -> str:
    if a.output_shape is not None:
        return "output_shape"
    if a.auto_pad in SAME:
        return "same"
    return "valid" if a.auto_pad == "VALID" else "pads"


def _nat(a: ConvTAttrs, i: int, n: int) -> int:
    return a.natural_length(i, n)


def _pads(a: ConvTAttrs, i: int, n: int) -> Window:
    pb, pe = (0, 0) if a.auto_pad == "VALID" else a.pads_pair(i)
    return explicit_window(_nat(a, i, n), pb, pe, a.output_padding[i])


def _target(a: ConvTAttrs, i: int, n: int) -> int:
    return a.output_shape[i] if a.output_shape is not None else n * a.strides[i]


def _total(a: ConvTAttrs, i: int, n: int) -> int:
    return _nat(a, i, n) + a.output_padding[i] - _target(a, i, n)


def _upper(a: ConvTAttrs) -> bool:
    return a.auto_pad == "SAME_UPPER"


def _ort_same(a: ConvTAttrs, i: int, n: int, upper: bool) -> Window:
    t = max(_total(a, i, n), 0)
    begin = onnx_spec_begin(t, upper=upper)
    return Window(begin, _nat(a, i, n) + a.output_padding[i] - t)


def _spec_same(a: ConvTAttrs, i: int, n: int) -> Window:
    return Window(onnx_spec_begin(_total(a, i, n), upper=_upper(a)), _target(a, i, n))


def _refuse(note: str) -> Reading:
    return Reading("refused", None, note)


def _unknown(note: str) -> Reading:
    return Reading("unknown", None, note)


AxisRule = Callable[[int, int], "Window | Reading"]


def _axes(sizes: Sequence[int], fn: AxisRule) -> Reading:
    """Apply ``fn(i, n) -> Window | Reading`` per axis; the first non-window reading wins."""
    out = []
    for i, n in enumerate(sizes):
        w = fn(i, int(n))
        if isinstance(w, Reading):
            return w
        out.append(w)
    return Reading("window", tuple(out))


def _negative_pads(a: ConvTAttrs) -> bool:
    return a.pads is not None and min(a.pads) < 0


def _op_ge_s(a: ConvTAttrs) -> bool:
    return any(a.output_padding[i] >= a.strides[i] for i in range(a.rank))


def _asymmetric(a: ConvTAttrs) -> bool:
    return any(a.pads_pair(i)[0] != a.pads_pair(i)[1] for i in range(a.rank))


def needed_for(flag: bool | tuple[int, ...], rank: int) -> bool:
    """A ``needs_*`` flag of :class:`RuntimeRules` for a node of spatial ``rank``: True
    (every rank) or a tuple listing ``rank``."""
    return flag is True or (isinstance(flag, tuple) and rank in flag)


# ---- the registry --------------------------------------------------------------------------

class RuntimeRules:
    """One runtime's documented reading; subclasses override what differs.

    :meth:`read` asks :meth:`refusal` first, then the method of the node's form.
    The defaults are what holds for a runtime nothing more is documented for:
    explicit pads (and VALID) read as written, the other forms unknown.
    """

    name: str = ""
    source: str = ""   # where the entry's facts come from (DOCUMENTED)
    # What the runtime needs beyond the portable form to compute the ONNX-spec result
    # (``repair --target`` / ``export --target`` build it, :mod:`convt_tools.repair.targets`):
    # a grouped ConvTranspose split into G ungrouped ones (Split -> G x ConvTranspose ->
    # Concat), and the bias as a separate Add after a bias-free ConvTranspose. Each flag
    # is True (every rank) or a tuple of the spatial ranks (1, 2, 3) that need it
    # (:func:`needed_for`); False: none.
    needs_group_split: bool | tuple[int, ...] = False
    needs_bias_add: bool | tuple[int, ...] = False
    # auto_pad VALID written as explicit zero pads (no auto_pad attribute at all).
    needs_explicit_pads: bool | tuple[int, ...] = False
    # a dilated ConvTranspose as an undilated one with the zeros of the dilation written
    # into its kernel (the same effective kernel: every window unchanged).
    needs_dilation_expand: bool | tuple[int, ...] = False
    # kernel_shape written on every ConvTranspose (from W's shape) where it is missing.
    needs_kernel_shape: bool | tuple[int, ...] = False
    # an Identity after a ConvTranspose whose output is a graph output (MNN 1-D: the
    # trailing unit dim of its internal 2-D form is then removed).
    needs_rank_restore: bool | tuple[int, ...] = False
    # every Split given explicit sizes (a Split without them, e.g. a GLU's, where the
    # split axis is static).
    needs_split_sizes: bool = False
    # every Less(a, b) written as Greater(b, a) (a comparison the runtime misreads).
    needs_less_as_greater: bool = False
    # op types the runtime lacks, written as the elementary ops of their ONNX definition
    # (:data:`convt_tools.repair._more_forms.DECOMPOSITIONS`; an activation's Selu).
    needs_decomposed: tuple[str, ...] = ()
    # False where a second load of the same model can compute other values (memory read
    # before it is written): ``convt conformance`` then loads each model twice in one
    # process and judges a pair that differs as wrong values.
    loads_repeatable: bool = True

    def refusal(self, a: ConvTAttrs, *, full_output_shape: bool) -> Reading | None:
        """A node this runtime refuses whatever the form (or None)."""
        return None

    def pads(self, a: ConvTAttrs, sizes: Sequence[int], form: str) -> Reading:
        """Explicit pads (``form`` ``pads``) or auto_pad VALID (``valid``)."""
        return _axes(sizes, lambda i, n: _pads(a, i, n))

    def same(self, a: ConvTAttrs, sizes: Sequence[int], *, static: bool) -> Reading:
        """auto_pad SAME_UPPER / SAME_LOWER without output_shape."""
        return _unknown(f"auto_pad {a.auto_pad}: not documented for {self.name}")

    def output_shape(self, a: ConvTAttrs, sizes: Sequence[int], *, static: bool) -> Reading:
        """output_shape (auto_pad, if any, is ignored unless a rule says otherwise)."""
        return _unknown(f"not documented for {self.name}")

    def wrong_values(self, a: ConvTAttrs) -> str | None:
        """Why a node this runtime runs (as a window) still gets wrong numbers, or None.

        Default: a bias on a runtime that ``needs_bias_add``.
        """
        return "its ConvTranspose bias is wrong (needs_bias_add)" if (
            needed_for(self.needs_bias_add, a.rank) and a.has_bias) else None

    def read(self, a: ConvTAttrs, sizes: Sequence[int], *, static: bool,
             full_output_shape: bool) -> Reading:
        common = self.refusal(a, full_output_shape=full_output_shape)
        if common is not None:
            return common
        form = _form(a)
        if form in ("pads", "valid"):
            return self.pads(a, sizes, form)
        if form == "same":
            return self.same(a, sizes, static=static)
        return self.output_shape(a, sizes, static=static)


TABLE: dict[str, RuntimeRules] = {}
_R = TypeVar("_R", bound=type[RuntimeRules])


def register(cls: _R) -> _R:
    """Class decorator: add one instance of ``cls`` to :data:`TABLE` under ``cls.name``."""
    TABLE[cls.name] = cls()
    return cls


class _OnnxruntimeFamily(RuntimeRules):
    """Refusals every onnxruntime version shares (and any runtime named onnxruntime*)."""

    def refusal(self, a: ConvTAttrs, *, full_output_shape: bool) -> Reading | None:
        if _negative_pads(a):
            return _refuse("negative pads rejected at load time")
        if a.pads is not None and a.auto_pad != "NOTSET":
            return _refuse("pads together with auto_pad")
        if full_output_shape:
            return _refuse("output_shape with N and C dims rejected by shape inference")
        if _op_ge_s(a):
            return (_refuse("output_padding >= stride rejected") if self.name == "onnxruntime"
                    else _unknown("output_padding >= stride: wrong values before 1.21"))
        return None


def _end_crop(a: ConvTAttrs, sizes: Sequence[int], name: str) -> Reading:
    """output_shape with the odd extra at the END (onnxruntime < 1.14, TensorRT)."""
    def end(i: int, n: int) -> Window | Reading:
        t = _total(a, i, n)
        return Window(tf_split(t).begin, _target(a, i, n)) if t >= 0 else _unknown(
            f"output_shape longer than L + op: not documented for {name}")
    return _axes(sizes, end)


@register
class _Onnxruntime(_OnnxruntimeFamily):
    name = "onnxruntime"
    source = ("measured 1.32; output_shape odd extra at the start since 1.14 "
              "(microsoft/onnxruntime PR #13311)")

    def same(self, a: ConvTAttrs, sizes: Sequence[int], *, static: bool) -> Reading:
        return _axes(sizes, lambda i, n: _ort_same(a, i, n, _upper(a)))

    def output_shape(self, a: ConvTAttrs, sizes: Sequence[int], *, static: bool) -> Reading:
        def ort(i: int, n: int) -> Window | Reading:
            t = _total(a, i, n)
            if t >= 0:
                return Window(onnx_spec_begin(t, upper=_upper(a)), _target(a, i, n))
            if t >= -(a.strides[i] - 1):
                return Window(0, _target(a, i, n))
            return _refuse(f"output_shape longer than L + op + stride - 1 on axis {i}")
        return _axes(sizes, ort)


@register
class _OnnxruntimeBefore114(_Onnxruntime):
    """SAME as 1.14+ (fixed in 1.13); only output_shape's odd extra differs."""

    name = "onnxruntime<1.14"
    source = ("output_shape odd extra at the end before PR #13311; SAME as the spec "
              "from 1.13 (PR #12537)")

    def output_shape(self, a: ConvTAttrs, sizes: Sequence[int], *, static: bool) -> Reading:
        return _end_crop(a, sizes, self.name)


@register
class _OnnxruntimeUpTo112(_OnnxruntimeFamily):
    name = "onnxruntime<=1.12"
    source = ("SAME_UPPER/SAME_LOWER swapped (fixed by microsoft/onnxruntime "
              "PR #12537 in 1.13); output_shape odd extra at the end")

    def same(self, a: ConvTAttrs, sizes: Sequence[int], *, static: bool) -> Reading:
        return _axes(sizes, lambda i, n: _ort_same(a, i, n, not _upper(a)))

    def output_shape(self, a: ConvTAttrs, sizes: Sequence[int], *, static: bool) -> Reading:
        return _end_crop(a, sizes, self.name)


@register
class _TensorRT(RuntimeRules):
    name = "tensorrt"
    source = ("onnx-tensorrt parser: output_shape odd extra at the end "
              "(onnx/onnx-tensorrt#1042); pads must be >= 0 (NVIDIA/TensorRT#2910)")

    def refusal(self, a: ConvTAttrs, *, full_output_shape: bool) -> Reading | None:
        return _refuse("negative pads") if _negative_pads(a) else None

    def pads(self, a: ConvTAttrs, sizes: Sequence[int], form: str) -> Reading:
        if a.rank == 3 and form == "pads" and _asymmetric(a):
            return Reading("window", tuple(_pads(a, i, int(n)) for i, n in enumerate(sizes)),
                           "3-D asymmetric pads: unsupported on GPUs before sm70")
        return super().pads(a, sizes, form)

    def output_shape(self, a: ConvTAttrs, sizes: Sequence[int], *, static: bool) -> Reading:
        return _end_crop(a, sizes, self.name)


@register
class _OpenVINO(RuntimeRules):
    name = "openvino"
    source = "measured 2026.4 (static vs symbolic spatial dims differ)"

    def refusal(self, a: ConvTAttrs, *, full_output_shape: bool) -> Reading | None:
        if a.pads is not None and any(a.pads_pair(i)[0] < 0 for i in range(a.rank)):
            return _refuse("negative begin pad")
        return None

    def same(self, a: ConvTAttrs, sizes: Sequence[int], *, static: bool) -> Reading:
        if not static:
            return _axes(sizes, lambda i, n: Window(0, _nat(a, i, n) + a.output_padding[i]))
        return _axes(sizes, lambda i, n: _ort_same(a, i, n, _upper(a)))

    def output_shape(self, a: ConvTAttrs, sizes: Sequence[int], *, static: bool) -> Reading:
        if not static and a.auto_pad not in SAME:
            return _axes(sizes, lambda i, n: Window(a.pads_pair(i)[0], _target(a, i, n)))
        return _axes(sizes, lambda i, n: Window(
            onnx_spec_begin(max(_total(a, i, n), 0), upper=False), _target(a, i, n)))


@register
class _Tract(RuntimeRules):
    name = "tract"
    source = "measured 0.23.9"

    def refusal(self, a: ConvTAttrs, *, full_output_shape: bool) -> Reading | None:
        if _negative_pads(a):
            return _refuse("negative pads")
        if full_output_shape:
            return _refuse("output_shape with N and C: tract 0.23.9 aborts the process (panic)")
        return None

    def same(self, a: ConvTAttrs, sizes: Sequence[int], *, static: bool) -> Reading:
        if any(a.effective_kernel(i) < a.strides[i] for i in range(a.rank)):
            return _refuse("SAME with effective kernel < stride")
        return _axes(sizes, lambda i, n: Window(
            onnx_spec_begin(_total(a, i, n), upper=_upper(a)),
            n * a.strides[i] - a.output_padding[i]))

    def output_shape(self, a: ConvTAttrs, sizes: Sequence[int], *, static: bool) -> Reading:
        if a.auto_pad in SAME:
            return _refuse("output_shape with auto_pad SAME_*: tract 0.23.9 aborts the process "
                           "(panic)")
        if not static:
            return _refuse("output_shape with symbolic input dims")
        return _axes(sizes, lambda i, n: Window(0, _target(a, i, n)))


@register
class _Torch(RuntimeRules):
    name = "torch"
    source = ("onnx2torch 1.5: ignores output_shape, refuses asymmetric/negative pads "
              "(project REFERENCE, measured)")

    def refusal(self, a: ConvTAttrs, *, full_output_shape: bool) -> Reading | None:
        return _refuse("negative pads") if _negative_pads(a) else None

    def pads(self, a: ConvTAttrs, sizes: Sequence[int], form: str) -> Reading:
        if form == "pads" and _asymmetric(a):
            return _refuse("asymmetric pads")
        return super().pads(a, sizes, form)

    def same(self, a: ConvTAttrs, sizes: Sequence[int], *, static: bool) -> Reading:
        return _refuse(f"auto_pad {a.auto_pad} is not implemented (onnx2torch 1.5.15, measured)")

    def output_shape(self, a: ConvTAttrs, sizes: Sequence[int], *, static: bool) -> Reading:
        if a.auto_pad in SAME:
            return self.same(a, sizes, static=static)
        return Reading("window", tuple(_pads(a, i, int(n)) for i, n in enumerate(sizes)),
                       "output_shape ignored")


@register
class _Onnx2TF(RuntimeRules):
    name = "onnx2tf"
    source = "no documented source here"

    def read(self, a: ConvTAttrs, sizes: Sequence[int], *, static: bool,
             full_output_shape: bool) -> Reading:
        return _unknown("no documented source for onnx2tf/TFLite")


@register
class _OnnxReference(RuntimeRules):
    name = "onnx-reference"
    source = "measured onnx 1.23"

    needs_group_split = True

    def refusal(self, a: ConvTAttrs, *, full_output_shape: bool) -> Reading | None:
        if a.group > 1 and not a.depthwise_multiplier_1:
            return _refuse("group > 1: its grouped ConvTranspose slices the kernel on the wrong "
                           "axis (fails; measured exact only for depthwise with one output "
                           "channel per group and no bias)")
        if _op_ge_s(a):
            return _refuse("output_padding >= stride")
        if full_output_shape:
            return _refuse("output_shape with N and C")
        return None

    def wrong_values(self, a: ConvTAttrs) -> str | None:
        if a.group > 1 and a.has_bias:
            return "grouped ConvTranspose with a bias: the bias is added wrongly (measured 1.23)"
        return super().wrong_values(a)

    def same(self, a: ConvTAttrs, sizes: Sequence[int], *, static: bool) -> Reading:
        return _axes(sizes, lambda i, n: _spec_same(a, i, n))

    def output_shape(self, a: ConvTAttrs, sizes: Sequence[int], *, static: bool) -> Reading:
        def ref(i: int, n: int) -> Window | Reading:
            t = _total(a, i, n)
            return Window(0, _target(a, i, n)) if t <= 0 or a.auto_pad in SAME else _refuse(
                "output_shape without auto_pad")
        return _axes(sizes, ref)


def _unexplained(note: str) -> Reading:
    return Reading("unexplained", None, note)


def _end_odd(total: int, length: int) -> Window:
    """A crop of ``total >= 0`` with its odd extra at the END (TensorFlow's split)."""
    return Window(tf_split(total).begin, length)


@register
class _Mnn(RuntimeRules):
    """MNN 3.6.1 through its converter core (fixtures/runtimes/mnn.json, measured)."""

    name = "mnn"
    source = ("measured 3.6.1 (fixtures/runtimes/mnn.json): SAME_LOWER and output_shape crop "
              "the odd extra at the end, output_padding left out of their crop; 1-D outputs "
              "get a trailing unit dim; 3-D: a bias input is dropped on alternate depth "
              "slices, group > 1 with several channels per group wrong (not repeatable), "
              "dilation > 1 wrong, SAME/output_shape uncropped, no kernel_shape refused")
    # measured exact (issue 19): the bias as an Add and a group split for 3-D, kernel_shape
    # written, an Identity after a 1-D ConvTranspose that is a graph output
    needs_bias_add = (3,)
    needs_group_split = (3,)
    needs_kernel_shape = True
    # measured (stop 27's CI, the runtime matrix's cases_3d/dil_*): a 3-D ConvTranspose
    # with dilation 2 or 3 gives wrong values in every pads form; 1-D and 2-D are exact
    needs_dilation_expand = (3,)
    needs_rank_restore = (1,)
    # Less(x, c) with a negative constant c is wrong (measured; an activation's Less)
    needs_less_as_greater = True
    # measured (stop 27's CI): a 3-D ConvTranspose with group > 1 and no bias input gives
    # the ONNX result on the first load of a fresh process and values up to 1e38 on the
    # next load of the same model; repeated runs of one load agree.
    loads_repeatable = False

    def refusal(self, a: ConvTAttrs, *, full_output_shape: bool) -> Reading | None:
        if _negative_pads(a) or _op_ge_s(a):
            return _unknown("negative pads / output_padding >= stride: not measured for mnn")
        if a.rank == 3 and a.kernel_shape is None:
            return _refuse("3-D without kernel_shape: the output's last dim is 0 (MNN: call "
                           "to readMap meet a error)")
        if full_output_shape:
            return _unexplained("output_shape with N and C: its first entries are read as "
                                "the spatial sizes (measured: [1, 3, 8, 10] gives an output "
                                "of [1, 3, 1, 3])")
        if a.rank == 3 and a.group > 1:
            return _unknown("3-D group > 1: exact with one channel per group (depthwise), "
                            "wrong values with more (measured, not repeatable); the attributes "
                            "do not say which; a group split is exact")
        return None

    def wrong_values(self, a: ConvTAttrs) -> str | None:
        if needed_for(self.needs_dilation_expand, a.rank) and any(d > 1 for d in a.dilations):
            return ("3-D dilation > 1: wrong values (measured 3.6.1; a kernel with the "
                    "dilation's zeros written in is exact, needs_dilation_expand)")
        return super().wrong_values(a)

    @staticmethod
    def _noted(reading: Reading, a: ConvTAttrs) -> Reading:
        """The reading with what the window alone does not say (1-D shape, 3-D bias)."""
        note = {1: "a trailing unit dim ([N, C, L, 1]) when the node's output is a graph "
                   "output",
                3: "a bias input is dropped on alternate depth slices (wrong values; a "
                   "separate Add is exact)"}.get(a.rank, "")
        return Reading(reading.status, reading.windows, note) if note else reading

    def pads(self, a: ConvTAttrs, sizes: Sequence[int], form: str) -> Reading:
        return self._noted(super().pads(a, sizes, form), a)

    def same(self, a: ConvTAttrs, sizes: Sequence[int], *, static: bool) -> Reading:
        if a.rank == 3:
            return self._noted(_axes(sizes, lambda i, n: Window(
                0, _nat(a, i, n) + a.output_padding[i])), a)
        return self._noted(_axes(sizes, lambda i, n: _end_odd(
            max(_nat(a, i, n) - n * a.strides[i], 0), n * a.strides[i])), a)

    def output_shape(self, a: ConvTAttrs, sizes: Sequence[int], *, static: bool) -> Reading:
        if a.rank == 3:
            return self._noted(_axes(sizes, lambda i, n: Window(
                0, _nat(a, i, n) + a.output_padding[i])), a)

        def crop(i: int, n: int) -> Window | Reading:
            t = _nat(a, i, n) - _target(a, i, n)
            return _end_odd(t, _target(a, i, n)) if t >= 0 else _unknown(
                "output_shape longer than L: not measured for mnn")
        return self._noted(_axes(sizes, crop), a)


@register
class _Ncnn(RuntimeRules):
    """ncnn 1.0.20261020 through pnnx 20261020, fp16=0 (fixtures/runtimes/ncnn.json)."""

    name = "ncnn"
    source = ("measured 1.0.20261020 via pnnx 20261020 (fixtures/runtimes/ncnn.json): "
              "asymmetric pads and auto_pad (SAME_*, VALID) left unconverted by pnnx "
              "('todo ConvTranspose', the model does not load); output_shape ignored")
    # pnnx turns a Split without sizes (a GLU's) into an ncnn Slice that segfaults
    needs_split_sizes = True
    # auto_pad (even VALID) is left unconverted by pnnx
    needs_explicit_pads = True
    # pnnx: "todo Selu" (measured); Elu and Mul convert. Not Softsign: pnnx fuses
    # x / (1 + |x|) back into F.softsign, which ncnn lacks (measured)
    needs_decomposed = ("Selu",)

    def refusal(self, a: ConvTAttrs, *, full_output_shape: bool) -> Reading | None:
        if _negative_pads(a) or _op_ge_s(a):
            return _unknown("negative pads / output_padding >= stride: not measured for ncnn")
        if full_output_shape:
            return _refuse("output_shape with N and C: pnnx's onnxruntime pass fails "
                           "(ort CreateSession failed)")
        if a.auto_pad != "NOTSET":
            return _refuse(f"auto_pad {a.auto_pad}: pnnx leaves the node unconverted "
                           f"(todo ConvTranspose)")
        if a.pads is not None and _asymmetric(a):
            return _refuse("asymmetric pads: pnnx leaves the node unconverted "
                           "(todo ConvTranspose)")
        return None

    def output_shape(self, a: ConvTAttrs, sizes: Sequence[int], *, static: bool) -> Reading:
        return Reading("window", tuple(_pads(a, i, int(n)) for i, n in enumerate(sizes)),
                       "output_shape ignored")


@register
class _OpenCV(RuntimeRules):
    name = "opencv"
    source = ("measured opencv-python-headless 5.1.0 (cv2.dnn) on fixtures/runtimes/: the spec, "
              "except output_shape's total ignores output_padding (opencv/opencv#26307, "
              "PR #28264); SAME with K < s (a negative total) pads at the end only "
              "(measured, issue 19 conformance run)")

    def same(self, a: ConvTAttrs, sizes: Sequence[int], *, static: bool) -> Reading:
        return _axes(sizes, lambda i, n: Window(0, _target(a, i, n)) if _total(a, i, n) < 0
                     else _spec_same(a, i, n))

    def output_shape(self, a: ConvTAttrs, sizes: Sequence[int], *, static: bool) -> Reading:
        return _axes(sizes, lambda i, n: Window(
            onnx_spec_begin(_nat(a, i, n) - _target(a, i, n), upper=_upper(a)),
            _target(a, i, n)))


@register
class _TVM(RuntimeRules):
    name = "tvm"
    source = ("measured apache-tvm 0.27.0.post1 (Relax ONNX frontend, llvm) on "
              "fixtures/runtimes/: output_shape ignored (pads as written: the full window); "
              "SAME keeps L when K < s; output_padding kept (apache/tvm#18601, PR #18635), "
              "output_padding >= stride refused")

    def refusal(self, a: ConvTAttrs, *, full_output_shape: bool) -> Reading | None:
        if _op_ge_s(a):
            return _refuse("output_padding >= stride: the Relax frontend raises")
        return None

    def same(self, a: ConvTAttrs, sizes: Sequence[int], *, static: bool) -> Reading:
        def tvm(i: int, n: int) -> Window:   # O = in * s, output_shape or not
            t = max(_nat(a, i, n) + a.output_padding[i] - n * a.strides[i], 0)
            return Window(onnx_spec_begin(t, upper=_upper(a)),
                          _nat(a, i, n) + a.output_padding[i] - t)
        return _axes(sizes, tvm)

    def output_shape(self, a: ConvTAttrs, sizes: Sequence[int], *, static: bool) -> Reading:
        if a.auto_pad in SAME:   # read as auto_pad alone: O = in * s
            return self.same(a, sizes, static=static)
        return Reading("window", tuple(_pads(a, i, int(n)) for i, n in enumerate(sizes)),
                       "output_shape ignored")


@register
class _IREE(RuntimeRules):
    name = "iree"
    source = ("measured IREE 3.13.0 (iree-import-onnx, iree-compile llvm-cpu) on "
              "fixtures/runtimes/: only symmetric pads compile (torch-mlir's ConvTranspose "
              "lowering; torch-mlir PR #4650), depthwise with one output channel per group "
              "fails to compile; what compiles is exact")
    # the group split compiles and is exact (issue 19, measured)
    needs_group_split = True
    # "failed to legalize operation 'torch.operator' ... onnx.Softsign" (measured 3.13)
    needs_decomposed = ("Softsign",)

    def refusal(self, a: ConvTAttrs, *, full_output_shape: bool) -> Reading | None:
        if a.group > 1 and a.out_per_group == 1:
            return _refuse("group > 1 with one output channel per group (depthwise, "
                           "multiplier 1) fails to compile")
        if a.pads is not None and a.output_shape is None and a.auto_pad not in SAME:
            if _asymmetric(a):
                return _refuse("asymmetric pads fail to compile (torch.operator not legalized)")
            if _negative_pads(a):
                return _unknown("symmetric negative pads: not measured for iree")
        return None

    def same(self, a: ConvTAttrs, sizes: Sequence[int], *, static: bool) -> Reading:
        def iree(i: int, n: int) -> Window | Reading:
            t = _total(a, i, n)
            if t < 0 or t % 2:
                return _refuse("auto_pad SAME_* with an odd or negative total (asymmetric "
                               "pads) fails to compile")
            if a.output_padding[i]:
                return _refuse("auto_pad SAME_* with output_padding: out-of-range access at run")
            return _spec_same(a, i, n)
        return _axes(sizes, iree)

    def output_shape(self, a: ConvTAttrs, sizes: Sequence[int], *, static: bool) -> Reading:
        if a.auto_pad in SAME:   # the SAME rule with O from output_shape
            return self.same(a, sizes, static=static)

        def iree(i: int, n: int) -> Window | Reading:
            if _total(a, i, n) > 0:
                return _refuse("output_shape shorter than L + op fails to compile")
            return Window(0, _target(a, i, n))
        return _axes(sizes, iree)


# Every runtime the table knows, in report order (the engine names of convt_tools.runtimes),
# and where each entry's facts come from.
RUNTIMES = tuple(TABLE)
DOCUMENTED = {name: rules.source for name, rules in TABLE.items()}


def _rules(runtime: str) -> RuntimeRules:
    """The registered entry, else the defaults (onnxruntime's shared refusals for any
    runtime named onnxruntime*)."""
    rules = TABLE.get(runtime)
    if rules is not None:
        return rules
    base = _OnnxruntimeFamily if runtime.startswith("onnxruntime") else RuntimeRules
    unnamed = base()
    unnamed.name = runtime
    return unnamed


def rules_for(runtime: str) -> RuntimeRules:
    """The table's entry for ``runtime`` (the defaults for a runtime the table does not name:
    pads as written, nothing needed beyond the portable form)."""
    return _rules(runtime)


def runtime_names(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"onnxruntime,openvino"`` (or a list) -> validated names; None -> all of :data:`RUNTIMES`."""
    from ..runtimes import canonical_name

    if spec is None:
        return RUNTIMES
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    # the engine names of convt_tools.runtimes; old spellings (onnx.reference, onnx2torch) too
    names = tuple(dict.fromkeys(canonical_name(s) for s in items if s.strip()))
    bad = [n for n in names if n not in RUNTIMES]
    if bad or not names:
        raise ConvtError(f"runtime: got {','.join(bad) or spec!r}; expected a comma-separated "
                         f"list of {', '.join(RUNTIMES)}.", field="runtime")
    return names


def documented_reading(runtime: str, a: ConvTAttrs, sizes: Sequence[int], static: bool = True,
                       full_output_shape: bool = False) -> Reading:
    """The table's reading of node ``a`` by ``runtime`` at input ``sizes`` (module doc).

    ``static``: the model fixes the spatial input dims (OpenVINO and tract
    differ otherwise); ``full_output_shape``: the node's output_shape listed
    N and C too.
    """
    return _rules(runtime).read(a, sizes, static=static,
                                full_output_shape=full_output_shape)
