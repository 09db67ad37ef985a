"""Models above protobuf's 2 GiB limit: weights go straight to ``<name>.data``.

A protobuf message cannot be serialised above 2 GiB, so a big kernel must never
enter the ModelProto. :func:`pending_tensor` makes an initializer that only
*describes* the tensor (name, type, dims; ``data_location = EXTERNAL`` with the
placeholder location ``convt-pending:<token>``) and keeps the NumPy array (a
view: the ONNX-layout transpose of the Keras kernel, no copy) in memory.
:func:`save_with_external_data` then writes ``<name>.data`` by streaming the
arrays in chunks of at most :data:`CHUNK_BYTES` (cast to the model's dtype per
chunk), points every big initializer at its offset and length, and writes the
small ``.onnx``: both in a temporary folder next to the destination, checked by
``onnx.checker``, then renamed into place (the data first); both files get the
usual permissions (the old file's mode, else ``0666 & ~umask``), and SIGTERM or
any error leaves neither the temporary folder nor a half-written file.

The arrays of the :data:`KEEP` most recent big exports stay referenced (so a
model can be saved more than once); an older one can no longer be saved.
Tensors of a ModelProto that hold their bytes inline and are larger than 1 KiB
go to the data file too (their bytes are copied once, in chunks).
"""

from __future__ import annotations

import collections
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import BinaryIO

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.external_data_helper import set_external_data

from ..errors import ConvtError
from ..io import check_destination, file_mode, sigterm_cleanup
from ._loading import tensor_location

__all__ = ["CHUNK_BYTES", "KEEP", "PENDING_PREFIX", "has_pending", "pending_tensor",
           "save_with_external_data"]

PENDING_PREFIX = "convt-pending:"
CHUNK_BYTES = 64 << 20
KEEP = 4
_INLINE_LIMIT = 1024
_PENDING: collections.OrderedDict[str, tuple[np.ndarray, np.dtype]] = collections.OrderedDict()


def pending_tensor(name: str, array: np.ndarray, dtype: np.dtype) -> onnx.TensorProto:
    """An initializer describing ``array`` cast to ``dtype``; its bytes stay in memory."""
    dtype = np.dtype(dtype)
    token = uuid.uuid4().hex
    # An empty tensor, then the real dims: the bytes are described, never held.
    tensor = helper.make_tensor(name, helper.np_dtype_to_tensor_dtype(dtype), [0], vals=b"",
                                raw=True)
    del tensor.dims[:]
    tensor.dims.extend(int(d) for d in array.shape)
    set_external_data(tensor, location=PENDING_PREFIX + token, offset=0,
                      length=int(array.size) * dtype.itemsize)
    tensor.ClearField("raw_data")
    _PENDING[token] = (array, dtype)
    while len(_PENDING) > KEEP:
        _PENDING.popitem(last=False)
    return tensor


def has_pending(model: onnx.ModelProto) -> bool:
    """Whether ``model`` has initializers whose bytes are held by :func:`pending_tensor`."""
    return any(tensor_location(t).startswith(PENDING_PREFIX) for t in model.graph.initializer)


def _stream(array: np.ndarray, dtype: np.dtype, fh: BinaryIO) -> int:
    """Write ``array.astype(dtype)`` in C order, chunk by chunk; return the bytes written."""
    if array.ndim == 0 or array.size * dtype.itemsize <= CHUNK_BYTES:
        data = np.ascontiguousarray(array, dtype=dtype)
        fh.write(data.data.cast("B"))
        return data.nbytes
    return sum(_stream(array[i], dtype, fh) for i in range(array.shape[0]))


def _write_data(model: onnx.ModelProto, fh: BinaryIO, data_name: str) -> None:
    offset = 0
    for t in model.graph.initializer:
        loc = tensor_location(t)
        if loc.startswith(PENDING_PREFIX):
            held = _PENDING.get(loc[len(PENDING_PREFIX):])
            if held is None:
                raise ConvtError(f"model: the weights of tensor {t.name!r} are no longer held in "
                                 f"memory (only the {KEEP} most recent large exports are); "
                                 f"export the model again and save it.", field="model")
            written = _stream(held[0], held[1], fh)
        elif t.data_location != onnx.TensorProto.EXTERNAL and t.ByteSize() > _INLINE_LIMIT:
            if t.HasField("raw_data"):
                written = fh.write(t.raw_data)
            else:
                arr = numpy_helper.to_array(t)
                written = _stream(arr, arr.dtype, fh)
            for field in ("raw_data", "float_data", "int32_data", "int64_data", "double_data",
                          "uint64_data"):
                t.ClearField(field)
        else:
            continue
        t.raw_data = b""
        set_external_data(t, location=data_name, offset=offset, length=written)
        t.ClearField("raw_data")
        offset += written


def save_with_external_data(model: onnx.ModelProto, path: str | os.PathLike[str]) -> None:
    """Write ``path`` and ``<path>.data`` (see the module docstring); ``model`` is not modified."""
    dest = Path(path)
    folder = check_destination(path)
    data_name = f"{dest.name}.data"
    data_dest = folder / data_name
    check_destination(data_dest)
    modes = (file_mode(data_dest), file_mode(dest))
    with sigterm_cleanup():
        tmpdir = tempfile.mkdtemp(prefix=f".{dest.name[:200]}.", suffix=".tmp", dir=folder)
        try:
            copy = onnx.ModelProto()
            copy.CopyFrom(model)
            tmp_data, tmp_model = os.path.join(tmpdir, data_name), os.path.join(tmpdir, dest.name)
            with open(tmp_data, "wb") as fh:
                _write_data(copy, fh, data_name)
            onnx.save_model(copy, tmp_model)
            del copy
            onnx.checker.check_model(tmp_model)
            os.chmod(tmp_data, modes[0])
            os.chmod(tmp_model, modes[1])
            os.replace(tmp_data, data_dest)
            os.replace(tmp_model, dest)
        except OSError as exc:
            raise ConvtError(f"output: cannot write {str(dest)!r}: {exc.strerror or exc}.",
                             field="output") from None
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
