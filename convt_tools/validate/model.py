"""An existing ONNX model: opening it, and reading back what validation needs from it.

- :func:`open_model`: a ``ModelProto`` as is; a path through the
  untrusted-model loader of ``convt check`` (size and structure limits).
- :func:`weights_from_model`: the Keras-layout weights of the model's one
  ``ConvTranspose`` (``group == 1``, constant ``W``/``B``)::

      kernel = W.transpose(2, 3, 1, 0)   # ONNX (C_in, C_out, kh, kw) -> Keras (kh, kw, filters, C_in)
                                         # (rank r: W.transpose(2, ..., r+1, 1, 0))
      bias   = B                         # zeros when the node has no B and the layer uses a bias

  Weights read this way validate the rest of the graph (pads, strides,
  layout, activation), never ``W``/``B`` themselves.
- :func:`model_input_shape`: the model's static input dims (``None`` where
  symbolic), with the spec's known dims filling the symbolic ones.

onnx is imported on first use only (:mod:`convt_tools.onnxbase` imports it when called).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConvtError
from ..onnxbase import (
    SKELETON_BYTES, declared_bytes, model_tensors, resolve_model, skeleton, tensor_location,
    tensor_to_array,
)
from ..spec import Conv2DTransposeSpec

if TYPE_CHECKING:
    import onnx

    # a model file, or a ModelProto in memory
    ModelArg = str | os.PathLike[str] | onnx.ModelProto


def open_model(model: ModelArg, *, lazy: bool = False) -> onnx.ModelProto:
    """A path or ModelProto through the untrusted-model loader of ``convt check``
    (:func:`convt_tools.onnxbase.resolve_model`); ``lazy``: external data
    is read only when a tensor is asked for."""
    return resolve_model(model, lazy=lazy)[0]


def runnable_model(model_or_path: ModelArg, model: onnx.ModelProto
                   ) -> tuple[ModelArg, onnx.ModelProto]:
    """``(what the runtimes load, the graph kept for reading)`` once the weights are read.

    A path is handed to the runtimes as is (onnxruntime reads the file and
    resolves external data relative to it: the model is never serialised
    again), and the graph kept is :func:`~convt_tools.onnxbase.skeleton`
    of ``model`` (names, types and dims; no big initializer bytes), so a big
    model is not held twice. A ModelProto is loaded as it is. So is a model
    whose small tensors (at most 1 KiB: shape constants such as Slice starts)
    are in external files: onnxruntime's shape inference cannot read those
    from a path, so that model is loaded whole with its external data, as before.
    """
    if isinstance(model_or_path, (str, os.PathLike)):
        if any(tensor_location(t) and declared_bytes(t) <= SKELETON_BYTES
               for t in model_tensors(model)):
            whole = open_model(model_or_path)
            return whole, whole
        return model_or_path, skeleton(model)
    return model, model


def constant_values(model: onnx.ModelProto, name: str) -> np.ndarray | None:
    """The value of initializer or ``Constant`` output ``name``; None when it is neither."""
    for init in model.graph.initializer:
        if init.name == name:
            return tensor_to_array(init)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output and node.output[0] == name:
            for attr in node.attribute:
                if attr.name == "value":
                    return tensor_to_array(attr.t)
    return None


def weights_from_model(model: onnx.ModelProto, spec: Conv2DTransposeSpec
                       ) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Keras-layout ``(kernel, bias, note)`` read back from the model's one ConvTranspose.

    ``kernel = W.transpose(2, ..., r+1, 1, 0)`` (ONNX ``(C_in, C_out, *kernel)`` to
    Keras ``(*kernel_size, filters, in_channels)``; 2-D: ``W.transpose(2, 3, 1, 0)``);
    ``bias = B``, or zeros when the
    node has no ``B`` and the layer uses a bias. Needs ``group == 1`` and
    constant ``W``/``B``.
    """
    nodes = [n for n in model.graph.node if n.op_type == "ConvTranspose"]
    if len(nodes) != 1:
        raise ConvtError(f"model: has {len(nodes)} ConvTranspose nodes; reading the weights "
                         f"back needs exactly one (or give --weights).", field="model")
    node = nodes[0]
    group = next((a.i for a in node.attribute if a.name == "group"), 1)
    w = constant_values(model, node.input[1]) if len(node.input) > 1 else None
    rank = spec.layout.tensor_rank
    if w is None or w.ndim != rank or group != 1:
        raise ConvtError(f"model: ConvTranspose {node.name!r} has no constant {rank}-D W with "
                         f"group 1; give --weights.", field="model")
    perm = spec.layout.kernel_from_onnx
    b = constant_values(model, node.input[2]) if len(node.input) > 2 and node.input[2] else None
    kernel, b = spec.weights_from_onnx(w, b)
    note = f"weights read from the model: kernel = W.transpose{perm}"
    if spec.use_bias and b is None:
        b = np.zeros(spec.filters, dtype=kernel.dtype)
        note += "; the ConvTranspose has no B, bias taken as zero"
    elif spec.use_bias:
        note += ", bias = B"
    note += " (so a wrong W or B in the model is not detectable; give --weights for that)"
    return kernel, (b if spec.use_bias else None), note


def model_input_shape(model: onnx.ModelProto, spec: Conv2DTransposeSpec | None
                      ) -> tuple[int | None, ...] | None:
    """The model's static input dims (``None`` where symbolic), else the spec's, merged per dim."""
    dims = model.graph.input[0].type.tensor_type.shape.dim if len(model.graph.input) == 1 else []
    own = None if spec is None else spec.input_shape
    rank = spec.layout.tensor_rank if spec is not None else len(dims) if 3 <= len(dims) <= 5 else -1
    if len(dims) != rank:
        return own
    static = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims]
    fallback = own if own and len(own) == rank else (None,) * rank
    return tuple(s if s is not None else f for s, f in zip(static, fallback))
