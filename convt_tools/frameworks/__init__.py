"""The framework layer: Keras and torch layers behind one protocol (:class:`convt_tools.layer.LayerSpec`).

A spec (:class:`~convt_tools.spec.ConvTransposeSpec`,
:class:`~convt_tools.torchconv.TorchConvTransposeSpec`) is the validated
description, standard library only. :func:`as_layer` wraps it in its
framework's layer (:class:`.keras.KerasConvT`, :class:`.torch.TorchConvT`),
which adds what needs the layers below (weights, the NumPy reference, the
ONNX exporter) and forwards everything else to the spec. Commands talk to
these layers and never ask which framework they hold.
"""

from __future__ import annotations

from typing import Any

__all__ = ["as_layer"]


def as_layer(spec: Any) -> Any:
    """The framework layer of ``spec`` (a layer already wrapped is returned as is)."""
    if hasattr(spec, "spec"):
        return spec
    if spec.framework == "torch":
        from .torch import TorchConvT

        return TorchConvT(spec)
    from .keras import KerasConvT

    return KerasConvT(spec)
