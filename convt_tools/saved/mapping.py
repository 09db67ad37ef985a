"""Where each transposed-conv layer's kernel and bias live in a Keras weights file.

Two layouts, told apart by the file's own structure:

- Keras 3 (``model.weights.h5`` inside ``.keras``, and ``.weights.h5`` files):
  ``<group>/vars/0`` is the kernel, ``<group>/vars/1`` the bias, where the group
  comes from :func:`convt_tools.saved.configs.walk_layers` (class names in snake
  case with ``_1``, ``_2`` suffixes in ``model.layers`` order, nested models as
  ``layers/sequential/layers/...``). Keras 3.15 also writes the layer's own name
  as the ``name`` attribute of ``vars``; when present it must match the config's
  name, which proves the order-based mapping.
- Legacy HDF5 (``model.save("x.h5")``, Keras 2 ``save_weights``): the top-level
  layer's group ``model_weights/<name>`` (or ``/<name>`` for a weights-only
  file) lists its variables in the ``weight_names`` attribute, e.g.
  ``decoder/inner/up/kernel`` (Keras 3) or ``up/kernel:0`` (Keras 2); the
  prefix is the name scope the variable was created in, so it may start with
  enclosing models' names (``sequential/td/up/kernel``) or omit them
  (``up/kernel``). A variable matches a layer when its prefix ends with the
  layer's name; the one sharing the longest tail with the layer's path wins
  (a tie is an error); a top-level layer whose names match nothing falls
  back to its first one or two variables, in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConvtError
from .hdf5 import get_group, guard, has_group, read_names_attr, read_text_attr

__all__ = ["WeightLocation", "detect_layout", "locate"]

KERAS3 = "keras3"
LEGACY = "legacy"


@dataclass(frozen=True)
class WeightLocation:
    """HDF5 paths of a layer's kernel and bias (None: the file stores no bias)."""

    kernel: str
    bias: str | None
    extra: tuple[str, ...] = ()


def detect_layout(root: Any, where: str) -> tuple[str, str]:
    """``(layout, prefix)``: Keras 3 (prefix "") or legacy (prefix "model_weights/" or "")."""
    if has_group(root, "model_weights", where):
        return LEGACY, "model_weights/"
    if read_names_attr(root, "layer_names", where) is not None:
        return LEGACY, ""
    if has_group(root, "layers", where) or has_group(root, "vars", where):
        return KERAS3, ""
    raise ConvtError(f"weights: {where} is not a Keras weights file (no 'layers' group, no "
                     f"'model_weights' group, no 'layer_names' attribute).", field="weights")


def _keras3(root: Any, path: tuple[str, ...], group: str, where: str) -> WeightLocation:
    label = "/".join(path)
    vars_path = f"{group}/vars"
    if not has_group(root, vars_path, where):
        raise ConvtError(f"weights: {where} has no group {vars_path!r} for layer {label!r}; the "
                         f"weights file does not belong to this model config.", field="weights")
    vars_group = get_group(root, vars_path, where)
    stored = read_text_attr(vars_group, "name", where, field="weights")
    if isinstance(stored, str) and stored != path[-1]:
        raise ConvtError(f"weights: {where}: group {vars_path!r} belongs to layer {stored!r} "
                         f"(the name stored with it), but the config puts the layer named "
                         f"{path[-1]!r} (path {label!r}) there; the weights file does not "
                         f"belong to this model config.", field="weights")
    with guard(where, f"the members of {vars_path!r}"):
        names = sorted(str(n) for n in vars_group)
    kernel = f"{vars_path}/0" if "0" in names else None
    if kernel is None:
        raise ConvtError(f"weights: {where}: layer {label!r} has no kernel ({vars_path}/0); the "
                         f"layer was saved unbuilt.", field="weights")
    bias = f"{vars_path}/1" if "1" in names else None
    extra = tuple(f"{vars_path}/{n}" for n in names if n not in ("0", "1"))
    return WeightLocation(kernel, bias, extra)


def _split(name: str) -> tuple[tuple[str, ...], str]:
    parts = name.split("/")
    var = parts[-1]
    if var.endswith(":0"):
        var = var[:-2]
    return tuple(parts[:-1]), var


def _common_suffix(owner: tuple[str, ...], path: tuple[str, ...]) -> int:
    """How many trailing components ``owner`` and ``path`` share (0: the leaf names differ)."""
    n = 0
    while n < min(len(owner), len(path)) and owner[-1 - n] == path[-1 - n]:
        n += 1
    return n


def _legacy(root: Any, path: tuple[str, ...], prefix: str, where: str) -> WeightLocation:
    label = "/".join(path)
    gpath = f"{prefix}{path[0]}"
    if not has_group(root, gpath, where):
        raise ConvtError(f"weights: {where} has no group {gpath!r} for layer {label!r}; the "
                         f"weights file does not belong to this model config.", field="weights")
    group = get_group(root, gpath, where)
    names = read_names_attr(group, "weight_names", where) or []
    for name in names:
        if not name or name.endswith("/"):
            raise ConvtError(f"weights: {where}: attribute 'weight_names' of {gpath!r} holds "
                             f"the name {name!r}; expected variable names such as "
                             f"'{path[-1]}/kernel:0'.", field="weights")
    found: dict[str, tuple[int, str]] = {}
    ties: set[str] = set()
    for name in names:
        owner, var = _split(name)
        score = _common_suffix(owner, path)
        if var not in ("kernel", "bias") or score == 0:
            continue
        best = found.get(var)
        if best is None or score > best[0]:
            found[var] = (score, name)
            ties.discard(var)
        elif score == best[0]:
            ties.add(var)
    if ties:
        raise ConvtError(f"weights: {where}: layer {label!r} matches several "
                         f"{'/'.join(sorted(ties))} variables in {gpath!r}; cannot tell them "
                         f"apart.", field="weights")
    if "kernel" not in found and len(path) == 1 and names:
        found["kernel"] = (0, names[0])
        if len(names) > 1:
            found["bias"] = (0, names[1])
    if "kernel" not in found:
        raise ConvtError(f"weights: {where}: no kernel for layer {label!r} in {gpath!r} "
                         f"(weight_names: {names[:6]}).", field="weights")
    kernel = f"{gpath}/{found['kernel'][1]}"
    bias = f"{gpath}/{found['bias'][1]}" if "bias" in found else None
    return WeightLocation(kernel, bias)


def locate(root: Any, layout: tuple[str, str], path: tuple[str, ...], group: str,
           where: str) -> WeightLocation:
    """The location of one layer's weights (see the module doc for both layouts)."""
    kind, prefix = layout
    if kind == KERAS3:
        return _keras3(root, path, group, where)
    return _legacy(root, path, prefix, where)
