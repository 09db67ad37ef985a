"""A minimal ONNX graph builder over ``onnx.helper`` / ``onnx.numpy_helper``.

Implements the :class:`convt_tools.activations.GraphOps` interface: ``op``
adds a node with fresh output names, ``const`` adds an initializer. Nothing
here fills protobuf fields by hand.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

__all__ = ["GraphBuilder"]


class GraphBuilder:
    """Collects nodes and initializers for one graph.

    ``dtype`` is the float dtype of the graph's tensors; ``const(v)`` without a
    dtype makes a constant of that dtype, so activation formulas stay in it.
    """

    def __init__(self, opset: int, dtype: np.dtype | str = np.float32, prefix: str = "") -> None:
        self.opset = opset
        self.dtype = np.dtype(dtype)
        self.float_enum = helper.np_dtype_to_tensor_dtype(self.dtype)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._prefix = prefix
        self._count = 0

    def fresh(self, hint: str) -> str:
        """A new unique tensor name."""
        self._count += 1
        return f"{self._prefix}{hint}_{self._count}"

    def op(self, op_type: str, *inputs: str, n_out: int = 1, name: str | None = None,
           outputs: list[str] | None = None, **attrs: Any) -> str | list[str]:
        """Add ``op_type(inputs, **attrs)``; return its output name(s)."""
        outs = outputs or [self.fresh(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs,
                                           name=name or self.fresh(op_type), **attrs))
        return outs[0] if n_out == 1 and outputs is None else outs

    def const(self, value: Any, dtype: str | np.dtype | None = None, name: str | None = None) -> str:
        """Add an initializer holding ``value`` (graph float dtype unless ``dtype``)."""
        arr = np.asarray(value, dtype=self.dtype if dtype is None else np.dtype(dtype))
        tname = name or self.fresh("const")
        self.initializers.append(numpy_helper.from_array(arr, tname))
        return tname
