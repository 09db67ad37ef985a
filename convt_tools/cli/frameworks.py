"""The CLI's framework options: ``--framework keras|torch`` and torch's ``--output-size``.

Which framework a CONFIG describes is decided by :mod:`convt_tools.sources`
(by content: ``"framework": "torch"``, a ``"module": "ConvTranspose{1,2,3}d"``
key, or torch's argument names), or forced by ``--framework``; the commands
then talk to the layer through :class:`convt_tools.layer.LayerSpec`.
"""

from __future__ import annotations

from typing import Any, Callable

import click

from ..errors import ConvtError

__all__ = ["framework_option", "parse_output_size"]


def framework_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--framework keras|torch`` (default: from the config, else keras)."""
    return click.option("--framework", type=click.Choice(["keras", "torch"]), default=None,
                        help="What CONFIG describes: Keras layer config or PyTorch "
                             "ConvTranspose kwargs (default: its \"framework\"/\"module\" key, "
                             "else keras).")(func)


def parse_output_size(text: str | None) -> list[int] | None:
    """``--output-size 20,16`` -> ``[20, 16]`` (torch's ``forward(x, output_size)``)."""
    if text is None:
        return None
    from ..spec import parse_shape

    shape = parse_shape(text, "output_size")
    if any(d is None for d in shape):
        raise ConvtError(f"output_size: got {text!r}; expected integers only.", field="output_size")
    return [d for d in shape if d is not None]
