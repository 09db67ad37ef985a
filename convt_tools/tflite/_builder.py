"""A small TFLite graph builder over the schema's object API (one subgraph).

Tensors are added as activations (:meth:`Graph.tensor`) or constants
(:meth:`Graph.const`, their bytes in a buffer), operators by builtin name with
their options object; :meth:`Graph.finish` packs a ``ModelT`` with the
``flatbuffers`` builder (file identifier ``TFL3``, schema version 3).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ._schema import flatbuffers_module, schema

__all__ = ["Graph"]

_TYPES = {np.dtype(np.float32): "FLOAT32", np.dtype(np.float16): "FLOAT16",
          np.dtype(np.int32): "INT32"}


class Graph:
    """Tensors, buffers and operators of one subgraph, packed by :meth:`finish`."""

    def __init__(self) -> None:
        self.s = schema()
        empty = self.s.BufferT()
        self.buffers: list[Any] = [empty]          # buffer 0: the empty sentinel
        self.tensors: list[Any] = []
        self.operators: list[Any] = []
        self.op_codes: list[Any] = []
        self._code_index: dict[int, int] = {}
        self.op_names: list[str] = []

    def tensor(self, name: str, shape: Sequence[int | None], dtype: Any = np.float32) -> int:
        """A non-constant tensor (index); ``None`` dims are unknown (shape 1, signature -1)."""
        t = self.s.TensorT()
        t.name = name
        t.shape = [1 if d is None else int(d) for d in shape]
        if any(d is None for d in shape):
            t.shapeSignature = [-1 if d is None else int(d) for d in shape]
        t.type = getattr(self.s.TensorType, _TYPES[np.dtype(dtype)])
        t.buffer = 0
        self.tensors.append(t)
        return len(self.tensors) - 1

    def const(self, name: str, value: Any, dtype: Any = np.float32) -> int:
        """A constant tensor holding ``value`` (little-endian bytes in its own buffer)."""
        arr = np.ascontiguousarray(np.asarray(value, dtype=np.dtype(dtype).newbyteorder("<")))
        buf = self.s.BufferT()
        buf.data = np.frombuffer(arr.tobytes(), dtype=np.uint8)
        self.buffers.append(buf)
        index = self.tensor(name, arr.shape, dtype)
        self.tensors[index].buffer = len(self.buffers) - 1
        return index

    def shape_of(self, index: int) -> list[int | None]:
        """The tensor's dims, ``None`` where unknown."""
        t = self.tensors[index]
        sig = t.shapeSignature if t.shapeSignature is not None else t.shape
        return [None if d < 0 else int(d) for d in sig]

    def op(self, name: str, inputs: Sequence[int], outputs: Sequence[int],
           options: Any = None, options_type: str | None = None) -> None:
        """Append builtin operator ``name`` (e.g. ``"TRANSPOSE_CONV"``); -1 = an absent input."""
        code = getattr(self.s.BuiltinOperator, name)
        if code not in self._code_index:
            oc = self.s.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, 127)
            oc.version = 1
            self._code_index[code] = len(self.op_codes)
            self.op_codes.append(oc)
        op = self.s.OperatorT()
        op.opcodeIndex = self._code_index[code]
        op.inputs = [int(i) for i in inputs]
        op.outputs = [int(o) for o in outputs]
        if options is not None:
            op.builtinOptionsType = getattr(self.s.BuiltinOptions, options_type or "NONE")
            op.builtinOptions = options
        self.operators.append(op)
        self.op_names.append(name)

    def finish(self, inputs: Sequence[int], outputs: Sequence[int], description: str) -> bytes:
        """The serialised model (``TFL3``)."""
        sub = self.s.SubGraphT()
        sub.tensors = self.tensors
        sub.inputs = list(inputs)
        sub.outputs = list(outputs)
        sub.operators = self.operators
        sub.name = "main"
        model = self.s.ModelT()
        model.version = 3
        model.operatorCodes = self.op_codes
        model.subgraphs = [sub]
        model.buffers = self.buffers
        model.description = description
        builder = flatbuffers_module().Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())
