"""Writing ONNX models: the one :func:`save_model` (atomic; external data above a threshold)."""

from __future__ import annotations

import math
import os

import onnx
from onnx import helper

from ..errors import ConvtError, fail
from ..io import atomic_write, check_destination
from ._external import has_pending, save_with_external_data

__all__ = ["EXTERNAL_DATA_ENV", "EXTERNAL_DATA_THRESHOLD", "external_data_threshold", "save_model",
           "uses_external_data"]

# Tensor bytes above which save_model writes external data (protobuf's 2 GiB
# limit, less room for the rest of the model). Tests may set $CONVT_EXTERNAL_DATA_BYTES.
EXTERNAL_DATA_THRESHOLD = 2**31 - 2**26
EXTERNAL_DATA_ENV = "CONVT_EXTERNAL_DATA_BYTES"


def _tensor_bytes(model: onnx.ModelProto) -> int:
    """Bytes of initializer data, from dims and dtype (reading raw_data would copy it)."""
    return sum(math.prod(t.dims) * helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
               for t in model.graph.initializer)


def external_data_threshold() -> int:
    """Tensor bytes above which weights go to ``<name>.data``: ``$CONVT_EXTERNAL_DATA_BYTES``
    (a positive integer; for tests and small disks), else :data:`EXTERNAL_DATA_THRESHOLD`."""
    env = os.environ.get(EXTERNAL_DATA_ENV)
    if env:
        try:
            value = int(env)
        except ValueError:
            value = 0
        if value < 1:
            raise ConvtError(f"{EXTERNAL_DATA_ENV}: got {env!r}; expected a positive integer "
                             f"number of bytes.", field=EXTERNAL_DATA_ENV)
        return value
    return EXTERNAL_DATA_THRESHOLD


def uses_external_data(model: onnx.ModelProto) -> bool:
    """Whether :func:`save_model` writes this model's tensors to ``<name>.data``."""
    return has_pending(model) or _tensor_bytes(model) > external_data_threshold()


def save_model(model: onnx.ModelProto, path: str | os.PathLike[str], *,
               inline: bool = False) -> None:
    """Write ``model`` to ``path`` atomically (a failure or SIGTERM leaves no file behind).

    Above :func:`external_data_threshold` bytes of tensors, the tensors go to
    ``<name>.data`` beside it (one file, location relative to the model),
    streamed without building a big proto (:mod:`._external`). With
    ``inline`` every tensor stays in the one file, whatever its size (``repair``
    writes back the model it read). Both files get the usual permissions.
    ``model`` itself is not modified; anything but a ModelProto is a
    :class:`ConvtError` naming ``model``.
    """
    if not isinstance(model, onnx.ModelProto):
        raise fail("model", type(model).__name__, "expected an onnx.ModelProto "
                   "(from export_spec)")
    check_destination(path)
    if inline or not uses_external_data(model):
        atomic_write(path, lambda tmp: onnx.save_model(model, tmp))
        return
    save_with_external_data(model, path)
