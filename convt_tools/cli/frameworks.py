"""Which framework a CLI config argument describes: the one place that decides.

``--framework torch`` (or a JSON config with ``"framework": "torch"`` or a
``"module": "ConvTranspose{1,2,3}d"`` key) selects PyTorch
``nn.ConvTranspose{n}d`` kwargs; anything else is left to the Keras loader.
The rank of a torch config without ``module`` or a tuple argument comes from
the input's rank (batched: rank - 2).
"""

from __future__ import annotations

import os
from typing import Any, Callable

import click

from ..errors import ConvtError

__all__ = ["framework_option", "is_torch_config", "no_layer_for_torch", "parse_output_size",
           "torch_spec_or_none"]


def framework_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--framework keras|torch`` (default: from the config, else keras)."""
    return click.option("--framework", type=click.Choice(["keras", "torch"]), default=None,
                        help="What CONFIG describes: Keras layer config or PyTorch "
                             "ConvTranspose kwargs (default: its \"framework\"/\"module\" key, "
                             "else keras).")(func)


def _read(config: str) -> Any:
    from ..torchconv.spec import read_json_config

    return read_json_config(config)


def _looks_like_json_object(config: str) -> bool:
    """Whether the file starts (after a BOM / whitespace) with ``{``: a saved model
    (.keras zip, HDF5) is never read whole just to be told apart."""
    try:
        with open(config, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"{")


def is_torch_config(config: str | None, framework: str | None) -> bool:
    """True for ``--framework torch`` or a JSON object naming torch / a ConvTranspose module.

    Detection is by the file's keys, whatever its name (``up.txt`` too); a file
    that is not a JSON object is left to the Keras loader.
    """
    if framework is not None:
        return framework == "torch"
    if config is None or not os.path.isfile(config) or not _looks_like_json_object(config):
        return False
    try:
        obj = _read(config)
    except ConvtError:
        return False              # the Keras loader reports unreadable files its own way
    if not isinstance(obj, dict):
        return False
    module = obj.get("module")
    if isinstance(module, str) and module.split(".")[-1].lower().startswith("convtranspose"):
        return True
    # bare kwargs: torch's argument names, none of Keras's
    return obj.get("framework") == "torch" or (
        "in_channels" in obj and "out_channels" in obj and "filters" not in obj
        and "config" not in obj)


def no_layer_for_torch(layer: str | None) -> None:
    """``--layer`` picks a layer of a saved Keras model; a torch config is one module."""
    if layer is not None:
        raise ConvtError(f"layer: --layer {layer!r} applies to saved Keras models; a torch "
                         f"config describes one module.", field="layer")


def torch_spec_or_none(config: str | None, framework: str | None,
                       rank: int | None = None) -> Any:
    """The :class:`TorchConvTransposeSpec` of CONFIG when it is a torch config, else None."""
    if not is_torch_config(config, framework):
        return None
    if config is None:
        raise ConvtError("config: --framework torch needs a JSON file of ConvTranspose kwargs.",
                         field="config")
    from ..torchconv.spec import parse_torch_config

    return parse_torch_config(_read(config), rank=rank)


def parse_output_size(text: str | None) -> list[int] | None:
    """``--output-size 20,16`` -> ``[20, 16]`` (torch's ``forward(x, output_size)``)."""
    if text is None:
        return None
    from ..spec import parse_shape

    shape = parse_shape(text, "output_size")
    if any(d is None for d in shape):
        raise ConvtError(f"output_size: got {text!r}; expected integers only.", field="output_size")
    return [int(d) for d in shape]  # type: ignore[arg-type]
