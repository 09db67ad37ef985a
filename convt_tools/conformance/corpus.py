"""The built-in conformance corpus: one-node and small ConvTranspose forms.

Every case is one ConvTranspose node (:data:`NODE`) with its attributes, the
spatial input sizes, the channel counts and whether it has a bias, run at
batch 1 on seeded random ``x``, ``W`` and ``B`` (never all-ones: a symmetric
kernel cannot show a flipped kernel, a group layout error or a misplaced crop).
The seed of a case is derived from its id, so a case's numbers never depend on
which other cases run. ``static = False`` gives the model symbolic spatial
input dims (OpenVINO and tract read some forms differently then).

Covered: ranks 1-3; explicit symmetric and asymmetric pads, VALID; output_padding
with stride 3; dilation; groups and depthwise (multiplier 1 and 2);
SAME_UPPER / SAME_LOWER with odd and even totals ``T = K - s + op``, with
``op > 0``, with ``K < s`` and with symbolic dims; output_shape with odd, even and
negative totals, listing N and C, with output_padding, with auto_pad, with
symbolic dims; bias.

Derived forms (:data:`FORMS`), built from the one-node cases by the same code
``repair`` and ``export`` use:

* ``portable``: asymmetric explicit pads as symmetric pads (+ output_padding) and
  one constant Slice (:func:`convt_tools.repair.portable.make_portable`);
* ``group-split``: a grouped node as Split -> G ConvTranspose -> Concat
  (:func:`convt_tools.repair.targets.split_groups`);
* ``bias-add``: the bias as a separate Add (:func:`convt_tools.repair.targets.bias_as_add`).

Each keeps the one-node case's ONNX-spec meaning, so every case is judged against
the ONNX-spec window of its node.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np
import onnx
from onnx import helper

from ..check.attrs import ConvTAttrs, read_attrs
from ..check.probe import single_node_model
from ..repair.portable import make_portable
from ..repair.targets import bias_as_add, split_groups

__all__ = ["CASES", "FORMS", "NODE", "Built", "Case", "build_case", "case_ids"]

NODE = "node"
FORMS = (NODE, "portable", "group-split", "bias-add")
OPSET = 17


@dataclass(frozen=True)
class Case:
    """One corpus entry (module doc); ``attrs`` are the ConvTranspose attributes."""

    id: str
    what: str
    sizes: tuple[int, ...]
    kernel: tuple[int, ...]
    attrs: tuple[tuple[str, Any], ...] = ()
    c_in: int = 2
    c_out: int = 3
    bias: bool = False
    static: bool = True
    form: str = NODE

    @property
    def rank(self) -> int:
        return len(self.sizes)

    @property
    def group(self) -> int:
        return int(dict(self.attrs).get("group", 1))

    def node(self) -> onnx.NodeProto:
        """The one ConvTranspose node (inputs ``x``, ``w`` [, ``b``], output ``y``)."""
        inputs = ["x", "w"] + (["b"] if self.bias else [])
        return helper.make_node("ConvTranspose", inputs, ["y"], name="convt",
                                kernel_shape=list(self.kernel), **dict(self.attrs))

    def w_shape(self) -> tuple[int, ...]:
        return (self.c_in, self.c_out // self.group, *self.kernel)

    def conv_attrs(self) -> ConvTAttrs:
        """The node's parsed attributes (check's :func:`~convt_tools.check.attrs.read_attrs`)."""
        attrs, _ = read_attrs(self.node(), self.w_shape(), self.rank + 2)
        assert attrs is not None, f"corpus case {self.id} has malformed attributes"
        return attrs


@dataclass
class Built:
    """A case's model and seeded numbers: ``x``, ``w``, ``b`` (float32)."""

    case: Case
    model: onnx.ModelProto
    x: np.ndarray
    w: np.ndarray
    b: np.ndarray | None


def _c(id: str, what: str, sizes: tuple[int, ...], kernel: tuple[int, ...],
       **kw: Any) -> Case:
    fields = {k: kw.pop(k) for k in ("c_in", "c_out", "bias", "static") if k in kw}
    return Case(id, what, sizes, kernel, tuple(sorted(kw.items())), **fields)


def _one_node_cases() -> list[Case]:
    s1, k3, k4 = (5,), (3,), (4,)
    s2, s3 = (4, 5), (3, 3, 4)
    return [
        # ---- rank 1 (input length 5)
        _c("1d-pads-sym", "pads [1, 1]", s1, k3, strides=[2], pads=[1, 1]),
        _c("1d-pads-asym", "asymmetric pads [0, 1]", s1, k3, strides=[2], pads=[0, 1]),
        _c("1d-pads-asym-bias", "asymmetric pads [2, 1], bias", s1, k4, strides=[2],
           pads=[2, 1], bias=True),
        _c("1d-valid", "auto_pad VALID", s1, k3, strides=[2], auto_pad="VALID"),
        _c("1d-op-s3", "stride 3, output_padding 2, pads [1, 1]", s1, k4, strides=[3],
           output_padding=[2], pads=[1, 1]),
        _c("1d-op-s3-asym", "stride 3, output_padding 1, pads [0, 2]", s1, k4, strides=[3],
           output_padding=[1], pads=[0, 2]),
        _c("1d-dilation", "dilation 2, pads [1, 2]", s1, k3, strides=[2], dilations=[2],
           pads=[1, 2]),
        _c("1d-group", "group 2 (4 -> 6 channels), bias", s1, k3, strides=[2], pads=[1, 1],
           group=2, c_in=4, c_out=6, bias=True),
        _c("1d-depthwise", "depthwise, multiplier 1 (group 3)", s1, k3, strides=[2],
           pads=[1, 1], group=3, c_in=3, c_out=3),
        _c("1d-depthwise-m2", "depthwise, multiplier 2 (group 2)", s1, k3, strides=[2],
           pads=[1, 0], group=2, c_in=2, c_out=4),
        _c("1d-same-upper-odd", "SAME_UPPER, odd total (K 3, s 2)", s1, k3, strides=[2],
           auto_pad="SAME_UPPER"),
        _c("1d-same-upper-even", "SAME_UPPER, even total (K 4, s 2)", s1, k4, strides=[2],
           auto_pad="SAME_UPPER"),
        _c("1d-same-lower-odd", "SAME_LOWER, odd total (K 3, s 2)", s1, k3, strides=[2],
           auto_pad="SAME_LOWER"),
        _c("1d-same-lower-even", "SAME_LOWER, even total (K 4, s 2)", s1, k4, strides=[2],
           auto_pad="SAME_LOWER"),
        _c("1d-same-upper-op", "SAME_UPPER with output_padding 1", s1, k3, strides=[2],
           output_padding=[1], auto_pad="SAME_UPPER"),
        _c("1d-same-k-lt-s", "SAME_UPPER with K 2 < s 3 (negative total)", s1, (2,),
           strides=[3], auto_pad="SAME_UPPER"),
        _c("1d-same-lower-symbolic", "SAME_LOWER, odd total, symbolic input dims", s1, k3,
           strides=[2], auto_pad="SAME_LOWER", static=False),
        _c("1d-oshape-odd", "output_shape [10] (T 1)", s1, k3, strides=[2], output_shape=[10]),
        _c("1d-oshape-even", "output_shape [9] (T 2)", s1, k3, strides=[2], output_shape=[9]),
        _c("1d-oshape-long", "output_shape [12] (T -1)", s1, k3, strides=[2],
           output_shape=[12]),
        _c("1d-oshape-nc", "output_shape [1, 3, 10] (with N, C)", s1, k3, strides=[2],
           output_shape=[1, 3, 10]),
        _c("1d-oshape-op", "output_shape [10] with output_padding 1 (T 2)", s1, k3,
           strides=[2], output_padding=[1], output_shape=[10]),
        _c("1d-oshape-same", "output_shape [10] with auto_pad SAME_UPPER", s1, k3, strides=[2],
           output_shape=[10], auto_pad="SAME_UPPER"),
        _c("1d-oshape-symbolic", "output_shape [10], symbolic input dims", s1, k3, strides=[2],
           output_shape=[10], static=False),
        # ---- rank 2 (input 4 x 5)
        _c("2d-pads-sym-bias", "pads [1, 1, 1, 1], bias", s2, (3, 3), strides=[2, 2],
           pads=[1, 1, 1, 1], bias=True),
        _c("2d-pads-asym", "asymmetric pads [0, 1, 1, 2], bias", s2, (3, 4), strides=[2, 3],
           pads=[0, 1, 1, 2], bias=True),
        _c("2d-op-s3", "stride 3, output_padding [2, 1]", s2, (4, 3), strides=[3, 3],
           output_padding=[2, 1], pads=[1, 1, 1, 1]),
        _c("2d-dilation", "dilation [2, 2], pads [2, 0, 1, 1]", s2, (3, 3), strides=[2, 1],
           dilations=[2, 2], pads=[2, 0, 1, 1]),
        _c("2d-group", "group 2 (4 -> 4 channels), bias", s2, (3, 3), strides=[2, 2],
           pads=[1, 1, 1, 1], group=2, c_in=4, c_out=4, bias=True),
        _c("2d-depthwise", "depthwise, multiplier 1 (group 3), bias", s2, (3, 3),
           strides=[2, 2], pads=[1, 1, 1, 1], group=3, c_in=3, c_out=3, bias=True),
        _c("2d-same-upper-odd", "SAME_UPPER, odd totals", s2, (3, 3), strides=[2, 2],
           auto_pad="SAME_UPPER"),
        _c("2d-same-upper-even", "SAME_UPPER, even totals", s2, (4, 4), strides=[2, 2],
           auto_pad="SAME_UPPER"),
        _c("2d-same-lower-odd", "SAME_LOWER, odd totals", s2, (3, 3), strides=[2, 2],
           auto_pad="SAME_LOWER"),
        _c("2d-same-lower-even", "SAME_LOWER, even totals", s2, (4, 4), strides=[2, 2],
           auto_pad="SAME_LOWER"),
        _c("2d-oshape-odd", "output_shape [8, 10] (T 1, 1)", s2, (3, 3), strides=[2, 2],
           output_shape=[8, 10]),
        _c("2d-oshape-nc", "output_shape [1, 3, 8, 10] (with N, C)", s2, (3, 3),
           strides=[2, 2], output_shape=[1, 3, 8, 10]),
        _c("2d-oshape-symbolic", "output_shape [8, 10], symbolic input dims", s2, (3, 3),
           strides=[2, 2], output_shape=[8, 10], static=False),
        # ---- rank 3 (input 3 x 3 x 4)
        _c("3d-pads-sym-bias", "pads 1, bias", s3, (2, 3, 3), strides=[2, 2, 2],
           pads=[0, 1, 1, 0, 1, 1], c_out=2, bias=True),
        _c("3d-pads-asym", "asymmetric pads [0, 1, 1, 1, 0, 2], bias", s3, (2, 3, 3),
           strides=[2, 2, 2], pads=[0, 1, 1, 1, 0, 2], c_out=2, bias=True),
        _c("3d-op-s3", "stride 3, output_padding [2, 1, 1]", s3, (4, 3, 3), strides=[3, 2, 3],
           output_padding=[2, 1, 1], pads=[1, 1, 1, 1, 1, 1], c_out=2),
        _c("3d-group", "group 2 (4 -> 4 channels), bias", s3, (2, 3, 3), strides=[2, 2, 2],
           pads=[0, 1, 1, 0, 1, 1], group=2, c_in=4, c_out=4, bias=True),
        _c("3d-depthwise", "depthwise, multiplier 1 (group 2)", s3, (2, 3, 3),
           strides=[2, 2, 2], pads=[0, 1, 1, 0, 1, 1], group=2, c_in=2, c_out=2),
        _c("3d-same-lower-odd", "SAME_LOWER, odd totals", s3, (3, 3, 3), strides=[2, 2, 2],
           auto_pad="SAME_LOWER", c_out=2),
        _c("3d-same-upper-even", "SAME_UPPER, even totals", s3, (4, 4, 4), strides=[2, 2, 2],
           auto_pad="SAME_UPPER", c_out=2),
        _c("3d-oshape-odd", "output_shape [5, 6, 8] (T 1, 1, 1)", s3, (2, 3, 3),
           strides=[2, 2, 2], output_shape=[5, 6, 8], c_out=2),
    ]


def _asymmetric_explicit(case: Case) -> bool:
    a = case.conv_attrs()
    return (a.output_shape is None and a.auto_pad == "NOTSET" and a.pads is not None
            and any(a.pads_pair(i)[0] != a.pads_pair(i)[1] for i in range(a.rank)))


# form -> (which one-node cases it is derived from, the rewrite of the built model)
_DERIVED: dict[str, tuple[Callable[[Case], bool], Callable[[onnx.ModelProto], list[str]]]] = {
    "portable": (_asymmetric_explicit, make_portable),
    "group-split": (lambda c: c.group > 1, split_groups),
    "bias-add": (lambda c: c.bias, bias_as_add),
}


def _all_cases() -> tuple[Case, ...]:
    base = _one_node_cases()
    derived = [replace(c, id=f"{form}/{c.id}", form=form)
               for form, (which, _) in _DERIVED.items() for c in base if which(c)]
    return tuple(base + derived)


CASES: tuple[Case, ...] = _all_cases()


def case_ids() -> tuple[str, ...]:
    """Every case id, in corpus order."""
    return tuple(c.id for c in CASES)


def _seed(case_id: str) -> int:
    """A stable seed from the base case's id (a derived form uses its one-node case's numbers)."""
    return zlib.crc32(case_id.split("/")[-1].encode())


def build_case(case: Case) -> Built:
    """The case's model (its form applied) and its seeded ``x``, ``W``, ``B``."""
    rng = np.random.default_rng(_seed(case.id))
    w = rng.standard_normal(case.w_shape()).astype(np.float32)
    b = rng.standard_normal(case.c_out).astype(np.float32) if case.bias else None
    x = rng.standard_normal((1, case.c_in, *case.sizes)).astype(np.float32)
    dims: list[Any] = [1, case.c_in] + (list(case.sizes) if case.static else
                                        [f"d{i}" for i in range(case.rank)])
    model = single_node_model(case.node(), dims, w, b, OPSET)
    if case.form != NODE:
        changed = _DERIVED[case.form][1](model)
        assert changed, f"corpus case {case.id}: the {case.form} rewrite changed nothing"
    return Built(case, model, x, w, b)
