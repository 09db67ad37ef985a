"""A minimal ONNX graph builder over ``onnx.helper`` / ``onnx.numpy_helper``.

Implements the :class:`convt_tools.activations.GraphOps` interface: ``op``
adds a node with one output and returns its name, ``op_multi`` adds a node with
several outputs and returns their names, ``const`` adds an initializer. Nothing
here fills protobuf fields by hand.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import helper, numpy_helper

from ..errors import ConvtError
from ..io import cast_checked

__all__ = ["INT64_MAX", "GraphBuilder", "check_int64"]

INT64_MAX = 2**63 - 1


def check_int64(field: str, values: Any) -> None:
    """Refuse integers ONNX cannot store (attributes, dims and int64 tensors are int64).

    ``values``: an int or a sequence of ints (other items are ignored). Raises
    a one-sentence ConvtError naming ``field`` instead of protobuf's "Value out
    of range" traceback.
    """
    items = values if isinstance(values, (list, tuple)) else [values]
    for v in items:
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and \
                not -INT64_MAX - 1 <= int(v) <= INT64_MAX:
            raise ConvtError(f"{field}: {int(v)} does not fit ONNX's int64 (|value| at most "
                             f"{INT64_MAX}); an ONNX model cannot hold it.", field=field)


class GraphBuilder:
    """Collects nodes and initializers for one graph.

    ``dtype`` is the float dtype of the graph's tensors; ``const(v)`` without a
    dtype makes a constant of that dtype, so activation formulas stay in it.
    """

    def __init__(self, opset: int, dtype: npt.DTypeLike = np.float32, prefix: str = "") -> None:
        self.opset = opset
        self.dtype = np.dtype(dtype)
        self.float_enum: int = int(helper.np_dtype_to_tensor_dtype(self.dtype))
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._prefix = prefix
        self._count = 0

    def fresh(self, hint: str) -> str:
        """A new unique tensor name."""
        self._count += 1
        return f"{self._prefix}{hint}_{self._count}"

    def op(self, op_type: str, *inputs: str, name: str | None = None, **attrs: Any) -> str:
        """Add ``op_type(inputs, **attrs)`` with one fresh output; return that output's name."""
        return self._add(op_type, inputs, [self.fresh(op_type.lower())], name, attrs)[0]

    def op_multi(self, op_type: str, *inputs: str, n_out: int, name: str | None = None,
                 **attrs: Any) -> list[str]:
        """Add ``op_type(inputs, **attrs)`` with ``n_out`` fresh outputs; return their names."""
        return self._add(op_type, inputs, [self.fresh(op_type.lower()) for _ in range(n_out)],
                         name, attrs)

    def _add(self, op_type: str, inputs: tuple[str, ...], outs: list[str], name: str | None,
             attrs: dict[str, Any]) -> list[str]:
        for key, value in attrs.items():
            check_int64(key, value)
        self.nodes.append(helper.make_node(op_type, list(inputs), outs,
                                           name=name or self.fresh(op_type), **attrs))
        return outs

    def const(self, value: Any, dtype: npt.DTypeLike | None = None, name: str | None = None
              ) -> str:
        """Add an initializer holding ``value`` (graph float dtype unless ``dtype``)."""
        if dtype is not None and np.dtype(dtype).kind in "iu" and isinstance(value, (list, tuple)):
            check_int64(name or "constant", list(value))
        arr = cast_checked(value, self.dtype if dtype is None else np.dtype(dtype),
                           {"W": "kernel", "B": "bias"}.get(name or "", name or "constant"))
        tname = name or self.fresh("const")
        self.initializers.append(numpy_helper.from_array(arr, tname))
        return tname
