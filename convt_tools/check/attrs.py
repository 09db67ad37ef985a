"""A ConvTranspose node's attributes, parsed and normalised per spatial axis.

Owns :class:`ConvTAttrs` and the per-axis lengths every other module builds
on, with ``k`` the kernel size, ``d`` the dilation, ``s`` the stride and
``in`` the input length::

    K = (k - 1) * d + 1                  effective kernel
    L = (in - 1) * s + K                 natural full output length

The spatial rank comes from ``kernel_shape``, else from W's shape, else from
X's. Malformed attributes (wrong lengths, values < 1, unknown ``auto_pad``)
become CT006 findings; :func:`read_attrs` returns ``None`` for the attributes
only when they are unusable (a stride, dilation or kernel below 1).

Inside a model-local function an attribute may carry ``ref_attr_name``: its
value is bound at each call site (:func:`bound_attributes`). Such attributes
are left out of the parsed values and reported as CT007, so the node is
checked only as far as its literal attributes go.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..geometry import effective_kernel, natural_length
from .report import Finding

if TYPE_CHECKING:
    import onnx

__all__ = ["AUTO_PADS", "SAME", "ConvTAttrs", "bound_attributes", "read_attrs"]

SAME = ("SAME_UPPER", "SAME_LOWER")
AUTO_PADS = ("NOTSET", "VALID", *SAME)


@dataclass(frozen=True)
class ConvTAttrs:
    """A ConvTranspose node's attributes, normalised per spatial axis.

    ``pads`` is None when the attribute is absent; ``output_shape`` holds
    only the spatial entries.
    """

    rank: int
    auto_pad: str
    pads: tuple[int, ...] | None
    output_padding: tuple[int, ...]
    output_shape: tuple[int, ...] | None
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    kernel_shape: tuple[int, ...] | None
    kernel: tuple[int, ...]
    group: int
    output_shape_full: bool = False  # output_shape listed N and C too (only the tail is kept)
    # W's first two dims (C_in, C_out / group) when W's shape is known: tells a depthwise node
    # with multiplier 1 (``w_channels == (group, 1)``) from other grouped ones.
    w_channels: tuple[int, int] | None = None
    has_bias: bool = False   # the node has a B input

    @property
    def depthwise_multiplier_1(self) -> bool:
        """group > 1 with one input and one output channel per group (known W shape)."""
        return self.group > 1 and self.w_channels == (self.group, 1)

    @property
    def out_per_group(self) -> int | None:
        """W's dim 1 (output channels per group) when W's shape is known."""
        return None if self.w_channels is None else self.w_channels[1]

    def effective_kernel(self, i: int) -> int:
        """``K = (k - 1) * d + 1`` on axis ``i`` (:func:`convt_tools.geometry.effective_kernel`)."""
        return effective_kernel(self.kernel[i], self.dilations[i])

    def natural_length(self, i: int, n: int) -> int:
        """``L = (in - 1) * s + K`` on axis ``i`` (:func:`convt_tools.geometry.natural_length`)."""
        return natural_length(n, self.kernel[i], self.strides[i], self.dilations[i])

    def pads_pair(self, i: int) -> tuple[int, int]:
        p = self.pads or (0,) * (2 * self.rank)
        return p[i], p[i + self.rank]


# ConvTranspose's attributes and their types (ONNX operator schema).
_ATTRIBUTE_TYPES = {"auto_pad": "STRING", "dilations": "INTS", "group": "INT",
                    "kernel_shape": "INTS", "output_padding": "INTS", "output_shape": "INTS",
                    "pads": "INTS", "strides": "INTS"}


def _type_name(code: int) -> str:
    from onnx import AttributeProto

    try:
        return AttributeProto.AttributeType.Name(code)
    except ValueError:
        return str(code)


def bound_attributes(node: onnx.NodeProto) -> dict[str, str]:
    """``{attribute: ref_attr_name}`` for attributes a function's caller binds."""
    return {a.name: a.ref_attr_name for a in node.attribute if a.ref_attr_name}


def _attr_map(node: onnx.NodeProto) -> dict[str, Any]:
    """Literal attribute values (attributes bound at a call site are left out)."""
    from onnx import helper

    # An attribute without a type has no value (structure_findings reports it).
    return {a.name: helper.get_attribute_value(a) for a in node.attribute
            if not a.ref_attr_name and a.type != 0
            and _type_name(a.type) == _ATTRIBUTE_TYPES.get(a.name, _type_name(a.type))}


def read_attrs(node: onnx.NodeProto, w_shape: Sequence[int] | None, x_rank: int | None,
               function: str = "") -> tuple[ConvTAttrs | None, list[Finding]]:
    """Parse and normalise; malformed attributes give CT006 (and ``None`` when unusable).

    Attributes bound at a call site (``ref_attr_name``) give one CT007 and are
    treated as absent. ``function`` names the enclosing model-local function:
    there W and X are often function inputs of unknown shape, so a rank that
    cannot be determined is a warning (not checked), not an error.
    """
    a = _attr_map(node)
    problems: list[Finding] = []
    bound = bound_attributes(node)
    if bound:
        problems.append(Finding("CT007", "attribute(s) " + ", ".join(
            f"{k} (= the caller's {v!r})" for k, v in sorted(bound.items())) + " are bound at "
            "each call site of the enclosing function, so their values are not checked here "
            "(the node is checked as if they were absent)"))
    ks = tuple(int(v) for v in a["kernel_shape"]) if "kernel_shape" in a else None
    if ks is not None:
        rank = len(ks)
    elif w_shape is not None and len(w_shape) >= 3:
        rank = len(w_shape) - 2
    else:
        if function:
            return None, problems + [Finding(
                "CT006", f"no kernel_shape attribute and W's shape is bound at the call sites "
                f"of function {function!r}, so the spatial rank cannot be determined and the "
                f"node is not checked", "warning")]
        return None, problems + [Finding("CT006", "no kernel_shape attribute and the shape of "
                                         "W is unknown, so the kernel size (and spatial rank) "
                                         "cannot be determined")]
    kernel = ks if ks is not None else tuple(int(v) for v in (w_shape or ())[2:])

    def ints(name: str, length: int, default: int) -> tuple[int, ...]:
        if name not in a:
            return (default,) * length
        vals = tuple(int(v) for v in a[name])
        if len(vals) != length:
            problems.append(Finding("CT006", f"{name} {list(vals)} has {len(vals)} values; "
                                    f"expected {length} for a {rank}-D ConvTranspose"))
            vals = (vals + (default,) * length)[:length]
        return vals

    strides = ints("strides", rank, 1)
    dilations = ints("dilations", rank, 1)
    op = ints("output_padding", rank, 0)
    pads = ints("pads", 2 * rank, 0) if "pads" in a else None
    out_shape = None
    if "output_shape" in a:
        raw = tuple(int(v) for v in a["output_shape"])
        if len(raw) in (rank, rank + 2):
            out_shape = raw[-rank:]
        else:
            problems.append(Finding("CT006", f"output_shape {list(raw)} has {len(raw)} values; "
                                    f"expected {rank} (spatial dims only)"))
    auto_pad = a.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    if auto_pad not in AUTO_PADS:
        problems.append(Finding("CT006", f"auto_pad {auto_pad!r} is not one of "
                                f"{', '.join(AUTO_PADS)}"))
        auto_pad = "NOTSET"
    group = int(a.get("group", 1))
    for name, vals in (("strides", strides), ("dilations", dilations), ("kernel_shape", kernel)):
        if min(vals, default=1) < 1:
            problems.append(Finding("CT006", f"{name} {list(vals)} must be >= 1 on every axis"))
    if min(op, default=0) < 0:
        problems.append(Finding("CT006", f"output_padding {list(op)} must be >= 0"))
    usable = not any(f.code == "CT006" for f in problems) or (
        min(strides) >= 1 and min(dilations) >= 1 and min(kernel) >= 1)
    attrs = ConvTAttrs(rank, auto_pad, pads, op, out_shape, strides, dilations, ks, kernel, group,
                      out_shape is not None and len(a["output_shape"]) == rank + 2,
                      _w_channels(w_shape), len(node.input) > 2 and bool(node.input[2]))
    return (attrs if usable else None), problems


def _w_channels(w_shape: Sequence[int] | None) -> tuple[int, int] | None:
    """``(W.shape[0], W.shape[1])`` when both are known integers, else None."""
    if w_shape is None or len(w_shape) < 2 or not all(
            isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in w_shape[:2]):
        return None
    return int(w_shape[0]), int(w_shape[1])


def _attributes_json(node: onnx.NodeProto) -> dict[str, Any]:
    out: dict[str, Any] = {k: f"<bound at call site: {v}>"
                           for k, v in bound_attributes(node).items()}
    for k, v in _attr_map(node).items():
        if isinstance(v, bytes):
            v = v.decode(errors="replace")
        elif isinstance(v, (list, tuple)):
            v = [int(x) if isinstance(x, (int, np.integer)) else str(x) for x in v]
        elif not isinstance(v, (int, float, str)):
            v = str(v)
        out[k] = v
    return out
