"""The ONNX foundation: what every verb (check, validate, repair) and the exporter need from ONNX.

Import from this package only; its modules are private:

- :mod:`._loading`: untrusted models: :func:`load_model` (external-data locations
  contained in the model's folder, optionally lazy), :func:`resolve_model` (a path or
  a ModelProto), :func:`model_tensors`, :func:`tensor_location`,
  :func:`check_external_locations`.
- :mod:`._tensors`: :func:`check_tensor` (an untrusted tensor's header against its
  data) and :func:`tensor_to_array`.
- :mod:`._shapes`: ``--input-shape`` parsing (:func:`parse_input_shapes`,
  :func:`input_shapes_arg`), :func:`apply_input_shapes`, :func:`infer_shapes` per graph
  path, and :func:`skeleton` (a model without its big initializer bytes).
- :mod:`._graph`: graph paths and the walk over graphs, subgraphs and function bodies
  (:func:`iter_graphs`, :func:`iter_model_graphs`, :func:`subgraphs`,
  :func:`node_label`, :func:`function_path`), :func:`default_opset`.
- :mod:`._proto`: protobuf utilities (:func:`copy_fields`, :func:`import_onnx`).
- :mod:`._build`: :class:`GraphBuilder` (``op`` -> one output name, ``op_multi`` ->
  a list) and :func:`check_int64`.
- :mod:`._external`: tensors whose bytes stay in memory until saved
  (:func:`pending_tensor`) and streaming them to ``<name>.data``.
- :mod:`._save`: the one :func:`save_model`.

Importing the package does not import onnx (the loaders import it when called; the
writers ``_build``, ``_external`` and ``_save`` load on first use of one of their names).
Layering: this package imports only the core (:mod:`convt_tools.errors`,
:mod:`convt_tools.io`) and :func:`convt_tools.spec.parse_shape`; nothing above it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr

from ._graph import (
    default_opset, function_path, iter_graphs, iter_model_graphs, node_label, subgraphs,
)
from ._loading import (
    check_external_locations, load_model, model_tensors, resolve_model, tensor_location,
)
from ._proto import copy_fields, import_onnx
from ._shapes import (
    SKELETON_BYTES, apply_input_shapes, declared_bytes, infer_shapes, input_shapes_arg,
    parse_input_shapes, skeleton,
)
from ._tensors import check_tensor, tensor_to_array

if TYPE_CHECKING:
    from ._build import INT64_MAX, GraphBuilder, check_int64
    from ._graph import Graph   # GraphProto | FunctionProto, for annotations
    from ._external import (
        CHUNK_BYTES, KEEP, PENDING_PREFIX, has_pending, pending_tensor, save_with_external_data,
    )
    from ._save import (
        EXTERNAL_DATA_ENV, EXTERNAL_DATA_THRESHOLD, external_data_threshold, save_model,
        uses_external_data,
    )

# The writers import onnx at module level: they load on first use, so that importing this
# package (and check/, validate/, repair/ with it) does not import onnx.
_LAZY = {
    **dict.fromkeys(("INT64_MAX", "GraphBuilder", "check_int64"), "._build"),
    **dict.fromkeys(("CHUNK_BYTES", "KEEP", "PENDING_PREFIX", "has_pending", "pending_tensor",
                     "save_with_external_data"), "._external"),
    **dict.fromkeys(("EXTERNAL_DATA_ENV", "EXTERNAL_DATA_THRESHOLD", "external_data_threshold",
                     "save_model", "uses_external_data"), "._save"),
}


__getattr__ = lazy_getattr(__name__, globals(), _LAZY)


__all__ = [
    "CHUNK_BYTES", "EXTERNAL_DATA_ENV", "EXTERNAL_DATA_THRESHOLD", "INT64_MAX", "KEEP",
    "PENDING_PREFIX", "SKELETON_BYTES", "GraphBuilder", "apply_input_shapes",
    "check_external_locations", "check_int64", "check_tensor", "copy_fields", "declared_bytes",
    "default_opset", "external_data_threshold", "function_path", "has_pending", "import_onnx",
    "infer_shapes", "input_shapes_arg", "iter_graphs", "iter_model_graphs", "load_model",
    "model_tensors", "node_label", "parse_input_shapes", "pending_tensor", "resolve_model",
    "save_model", "save_with_external_data", "skeleton", "subgraphs", "tensor_location",
    "tensor_to_array", "uses_external_data",
]
