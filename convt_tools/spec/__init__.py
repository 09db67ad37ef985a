"""The semantics of Keras 3 ``Conv1DTranspose``/``Conv2DTranspose``/``Conv3DTranspose``.

The single source of truth: everything else in convt-tools (the ONNX
exporter, the NumPy reference, the validator, ``convt check``) takes its
lengths and crops from here, so they cannot disagree with each other. The
per-axis arithmetic lives in :mod:`convt_tools.geometry` (re-exported here);
this package applies it per axis of a rank-1/2/3 layer:

* :mod:`.layout`: where batch, channels and spatial axes sit
  (:class:`Layout`, ``spec.layout`` / ``spec.spatial_axes``);
* :mod:`.layer`: :class:`ConvTransposeSpec`, the rank-generic semantics
  (shapes, crop plan, derivation);
* :mod:`.parse`: Keras arguments / configs -> spec (rank resolution,
  validation per rank), :func:`make_spec`, :func:`parse_config`,
  :func:`load_config`;
* :mod:`.values`: normalisation of single values (tuples, names, dtypes,
  shapes, data_format);
* :mod:`.derivation`: the per-axis derivation for ``--explain``.

Per spatial axis, with ``in`` the input length, ``k`` kernel size, ``s``
stride, ``d`` dilation and ``op`` output_padding::

    K = (k - 1) * d + 1                 effective kernel
    L = (in - 1) * s + K                natural (uncropped) length
    Keras length O:
      valid, op None : in * s + max(K - s, 0)
      valid, op      : (in - 1) * s + K + op
      same,  op None : in * s
      same,  op      : (in - 1) * s + K % 2 + op
    total = L - O   (independent of ``in``)
      total >= 0 : crop total // 2 at the start, the rest at the end
      total <  0 : crop nothing, append -total zero rows/cols at the end
                   (bias and activation then apply to them too)

``Conv2DTransposeSpec`` is :class:`ConvTransposeSpec` (every rank), kept so
existing code runs unchanged. This package imports nothing heavier than the
standard library, so that ``convt shape`` stays fast.
"""

from __future__ import annotations

from ..geometry import (
    PADDINGS, AxisCrop, crop_for_axis, effective_kernel, keras_output_length, natural_length,
)
from .derivation import AxisDerivation, format_shape
from .layer import ConvTransposeSpec
from .layout import AXIS_NAMES, DATA_FORMATS, RANKS, Layout
from .parse import CLASS_RANKS, LAYER_CLASS_NAMES, load_config, make_spec, parse_config, resolve_rank
from .values import INITIALIZER_NAMES, parse_shape, resolve_data_format

Conv2DTransposeSpec = ConvTransposeSpec

__all__ = [
    "AXIS_NAMES",
    "AxisCrop",
    "AxisDerivation",
    "CLASS_RANKS",
    "Conv2DTransposeSpec",
    "ConvTransposeSpec",
    "DATA_FORMATS",
    "INITIALIZER_NAMES",
    "LAYER_CLASS_NAMES",
    "Layout",
    "PADDINGS",
    "RANKS",
    "crop_for_axis",
    "effective_kernel",
    "format_shape",
    "keras_output_length",
    "load_config",
    "make_spec",
    "natural_length",
    "parse_config",
    "parse_shape",
    "resolve_data_format",
    "resolve_rank",
]
