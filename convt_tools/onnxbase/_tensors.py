"""Checking untrusted ONNX tensors against their headers, and reading them as NumPy arrays.

:func:`check_tensor` validates a TensorProto's data type, dims and stored length
(never a traceback: a one-sentence :class:`~convt_tools.errors.ConvtError`);
:func:`tensor_to_array` reads it after that check, external data of a lazily
loaded model (:func:`~._loading.load_model` with ``lazy``) included, range-checked.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..errors import ConvtError, first_line
from ..io import check_allocation
from ._proto import copy_fields, import_onnx

if TYPE_CHECKING:
    import numpy as np
    import onnx

__all__ = ["check_tensor", "tensor_to_array"]


# Element types a ConvTranspose weight, bias or constant may have (numeric, whole bytes).
_NUMERIC = ("FLOAT", "DOUBLE", "FLOAT16", "BFLOAT16", "INT8", "INT16", "INT32", "INT64",
            "UINT8", "UINT16", "UINT32", "UINT64", "BOOL")


def check_tensor(t: onnx.TensorProto, field: str = "model"
                 ) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """Validate an untrusted TensorProto's header against its data; return ``(dims, dtype)``.

    Refused with a one-sentence :class:`ConvtError` (never a traceback): an
    unknown or non-numeric ``data_type`` (STRING, 999, complex, 4-bit), negative
    dims, a size above :func:`convt_tools.io.max_bytes`, ``raw_data`` whose
    length is not ``prod(dims) * itemsize``, and a typed field (``float_data``
    ...) with the wrong number of values. Reads only the header and lengths.
    """
    onnx = import_onnx()
    name = t.name or "<unnamed>"
    kind = onnx.TensorProto.DataType.Name(t.data_type) \
        if t.data_type in onnx.TensorProto.DataType.values() else None
    if kind not in _NUMERIC:
        raise ConvtError(f"{field}: tensor {name!r} has data_type "
                         f"{kind or t.data_type!r}; expected a numeric type "
                         f"({', '.join(_NUMERIC)}).", field=field)
    dims = tuple(int(d) for d in t.dims)
    if any(d < 0 for d in dims):
        raise ConvtError(f"{field}: tensor {name!r} has negative dims {list(dims)}; expected "
                         f"sizes >= 0.", field=field)
    dtype = onnx.helper.tensor_dtype_to_np_dtype(t.data_type)
    count = 1
    for d in dims:
        count *= d
    itemsize = 2 if kind == "BFLOAT16" else dtype.itemsize
    if t.data_location == onnx.TensorProto.EXTERNAL and not t.HasField("raw_data"):
        return dims, dtype   # its bytes are in a file checked where it is read
    if t.HasField("raw_data"):
        want = count * itemsize
        if want > _EXACT_RAW_BYTES:
            # Measuring raw_data costs a transient copy of it (protobuf has no cheaper way):
            # above this size only the declared size is checked here, the length when the
            # bytes are read (tensor_to_array).
            check_allocation(dims, dtype if kind != "BFLOAT16" else "uint16", field,
                             f"tensor {name!r} (dims {list(dims)})")
            return dims, dtype
        have, unit = _raw_length(t), f"bytes of raw_data (itemsize {itemsize})"
    else:
        storage = onnx.helper.tensor_dtype_to_field(t.data_type)
        have, unit = len(getattr(t, storage)), f"values in {storage}"
        want = count
    if have != want:
        raise ConvtError(f"{field}: tensor {name!r} declares dims {list(dims)} "
                         f"({count:,} elements) but holds {have:,} {unit}, not {want:,}; the "
                         f"model is corrupt.", field=field)
    return dims, dtype


_EXACT_RAW_BYTES = 64 << 20


def _varint_length(n: int) -> int:
    return max(1, (n.bit_length() + 6) // 7)


def _raw_length(t: onnx.TensorProto) -> int:
    """``len(t.raw_data)`` without copying the bytes (reading the field copies them).

    The message's size is the other fields' size plus the raw_data field: one
    tag byte, the varint length, the bytes. Solved for the length.
    """
    onnx = import_onnx()
    other = onnx.TensorProto()
    copy_fields(t, other, skip="raw_data")
    rest = t.ByteSize() - other.ByteSize() - 1
    for k in range(1, 11):
        if _varint_length(rest - k) == k:
            return rest - k
    return len(t.raw_data)  # pragma: no cover - unreachable for a well-formed message


def tensor_to_array(t: onnx.TensorProto, field: str = "model") -> np.ndarray:
    """An untrusted TensorProto as a NumPy array, after :func:`check_tensor`."""
    from onnx import numpy_helper

    dims, dtype = check_tensor(t, field)
    onnx = import_onnx()
    if t.data_location == onnx.TensorProto.EXTERNAL and not t.HasField("raw_data"):
        return _read_external(t, dims, dtype, field)
    try:
        return numpy_helper.to_array(t)
    except Exception as exc:  # noqa: BLE001 - untrusted bytes
        raise ConvtError(f"{field}: tensor {t.name or '<unnamed>'!r} cannot be read "
                         f"({type(exc).__name__}: {first_line(exc)}).", field=field) from None


def _read_external(t: Any, dims: tuple[int, ...], dtype: Any, field: str) -> Any:
    """The bytes of a lazily loaded external tensor (:func:`load_model` with ``lazy``)."""
    import numpy as np

    info = {e.key: e.value for e in t.external_data}
    name = t.name or "<unnamed>"
    if "basepath" not in info:
        raise ConvtError(f"{field}: tensor {name!r} keeps its data in an external file that "
                         f"was not loaded; load the model from its path.", field=field)
    path = os.path.join(info["basepath"], info.get("location", ""))
    count = 1
    for d in dims:
        count *= d
    want = count * dtype.itemsize
    try:
        offset = int(info.get("offset", 0))
        length = int(info.get("length", want))
        size = os.path.getsize(path)
    except (ValueError, OSError) as exc:
        raise ConvtError(f"{field}: tensor {name!r}: cannot read its external data "
                         f"({type(exc).__name__}: {first_line(exc)}).", field=field) from None
    if length != want or offset < 0 or offset + length > size:
        raise ConvtError(f"{field}: tensor {name!r} declares dims {list(dims)} ({want:,} bytes) "
                         f"but its external data is {length:,} bytes at offset {offset:,} of a "
                         f"{size:,}-byte file; the model is corrupt.", field=field)
    with open(path, "rb") as fh:
        fh.seek(offset)
        return np.fromfile(fh, dtype=dtype, count=count).reshape(dims)

