"""``repair --form portable``: asymmetric explicit pads become symmetric pads + one Slice.

For every ``ConvTranspose`` in the repaired model (main graph, subgraphs,
model-local functions) whose explicit ``pads`` differ between the start and
the end of an axis (and that has neither ``auto_pad`` SAME_* nor
``output_shape``, whose pads runtimes recompute), per spatial axis with
``(begin, end)``::

    pad   = min(begin, end)                    symmetric pads on the node
    Slice starts = begin - pad, ends = -(end - pad) (INT64_MAX when 0), axes = 2 + i

The node's output is renamed ``<output>_uncropped`` and a ``Slice`` right
after it writes the original output name, with ``starts``/``ends``/``axes``
as ``Constant`` nodes (valid in graphs, subgraphs and function bodies). The
split is :func:`convt_tools.geometry.portable_split` applied to the node's
own crop (``AxisCrop(begin, end, 0)``), the same one the exporter uses; the
Slice's constants do not depend on the input size. The repair's whole-model
proof then runs on the result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..geometry import AxisCrop, portable_slice, portable_split
from ..onnxbase import import_onnx, iter_model_graphs
from ._nodes import NodeCursor, attr, is_convt

if TYPE_CHECKING:
    import onnx


def _set_ints(node: onnx.NodeProto, name: str, values: list[int]) -> None:
    for i, a in enumerate(node.attribute):
        if a.name == name:
            del node.attribute[i]
            break
    node.attribute.append(import_onnx().helper.make_attribute(name, values))


def make_portable(model: onnx.ModelProto) -> list[str]:
    """Rewrite every asymmetric-pads ConvTranspose of ``model`` in place; return what changed."""
    helper, numpy_helper = import_onnx().helper, import_onnx().numpy_helper
    changed: list[str] = []
    for path, graph in iter_model_graphs(model):
        cursor = NodeCursor(graph)
        for node in cursor:
            if not is_convt(node):
                continue
            pads = attr(node, "pads")
            auto = attr(node, "auto_pad")
            if not pads or attr(node, "output_shape") is not None or \
                    (auto not in (None, b"NOTSET", "NOTSET")):
                continue
            n = len(pads) // 2
            parts = [portable_split(AxisCrop(int(pads[i]), int(pads[n + i]), 0))
                     for i in range(n)]
            cut = portable_slice(parts, 2)
            if cut is None:
                continue
            _set_ints(node, "pads", [p.pad for p in parts] * 2)
            out = node.output[0]
            node.output[0] = f"{out}_uncropped"
            consts = []
            for key, values in zip(("starts", "ends", "axes"), cut):
                cname = f"{out}_crop_{key}"
                consts.append(helper.make_node(
                    "Constant", [], [cname], name=cname,
                    value=numpy_helper.from_array(np.asarray(values, np.int64), cname)))
            crop = helper.make_node("Slice", [node.output[0], *(c.output[0] for c in consts)],
                                    [out], name=f"{node.name or out}_crop")
            cursor.insert(*consts, crop)
            changed.append(f"{path}/{node.name or out}: pads {list(pads)} -> "
                           f"{[p.pad for p in parts] * 2} + Slice starts {cut[0]} ends "
                           f"{cut[1]} axes {cut[2]}")
    return changed
