"""Layer records: one transposed-conv layer of a saved model, its spec and its shapes.

Config values are read as plain JSON here (filters, kernel_size, use_bias,
data_format) so that 1-D and 3-D layers are listed and shape-checked even where
the spec does not model their rank yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..errors import ConvtError
from .configs import CONVT_CLASSES, LayerEntry

__all__ = ["LayerRecord", "make_record", "expected_weight_shapes"]

_WRAPPER = ("class_name", "config", "module", "registered_name", "build_config", "name",
            "inbound_nodes")


@dataclass(frozen=True)
class LayerRecord:
    """A transposed-conv layer found in a saved model.

    ``index`` counts transposed-conv layers in walk order (depth first,
    ``model.layers`` order); ``input_shape`` is the recorded input shape
    (``build_config``, else the inbound tensor's shape, else None);
    ``spec`` is None (with ``unsupported`` saying why) when the layer's rank
    or options are not modelled.
    """

    index: int
    path: str
    name: str
    class_name: str
    rank: int
    group: str
    config: Mapping[str, Any]
    input_shape: tuple[int | None, ...] | None
    spec: Any = None
    unsupported: str | None = None
    names: tuple[str, ...] = ()   # the path as names (a name may itself contain "/")

    def config_entry(self) -> dict[str, Any]:
        """The ``{"class_name", "config", "build_config"}`` entry the spec parser reads."""
        entry: dict[str, Any] = {"class_name": self.class_name, "config": dict(self.config)}
        if self.input_shape is not None:
            entry["build_config"] = {"input_shape": list(self.input_shape)}
        return entry


def _shape(value: Any) -> tuple[int | None, ...] | None:
    if not isinstance(value, list) or not value:
        return None
    if not all(v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0)
               for v in value):
        return None
    return tuple(value)


def _recorded_input_shape(entry: Mapping[str, Any], hint: Any = None
                          ) -> tuple[int | None, ...] | None:
    build = entry.get("build_config")
    if isinstance(build, Mapping):
        shape = _shape(build.get("input_shape"))
        if shape is not None:
            return shape
    nodes = entry.get("inbound_nodes")
    if isinstance(nodes, list) and nodes and isinstance(nodes[0], Mapping):
        args = nodes[0].get("args")
        if isinstance(args, list) and args and isinstance(args[0], Mapping) \
                and args[0].get("class_name") == "__keras_tensor__":
            cfg = args[0].get("config")
            if isinstance(cfg, Mapping):
                return _shape(cfg.get("shape"))
    cfg = entry.get("config")
    if isinstance(cfg, Mapping):
        for key in ("batch_input_shape", "batch_shape"):
            shape = _shape(cfg.get(key))
            if shape is not None:
                return shape
    return _shape(list(hint)) if hint is not None else None


def _ints(value: Any, rank: int) -> tuple[int, ...] | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * rank
    if isinstance(value, list) and len(value) == rank and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(value)
    return None


def expected_weight_shapes(record: LayerRecord) -> tuple[tuple[int | None, ...], tuple[int, ...] | None]:
    """``(kernel shape, bias shape or None)`` the config implies (in_channels None if unknown)."""
    cfg = record.config
    ks = _ints(cfg.get("kernel_size"), record.rank)
    filters = cfg.get("filters")
    if ks is None or not isinstance(filters, int):
        raise ConvtError(f"model: layer {record.path!r}: kernel_size {cfg.get('kernel_size')!r} "
                         f"or filters {filters!r} is not valid for a {record.class_name}.",
                         field="model")
    channels = None
    if record.input_shape is not None and len(record.input_shape) == record.rank + 2:
        first = cfg.get("data_format") == "channels_first"
        channels = record.input_shape[1 if first else -1]
    bias = (filters,) if cfg.get("use_bias", True) else None
    return ks + (filters, channels), bias


def make_record(index: int, found: LayerEntry) -> LayerRecord:
    """A record for ``found``; parses the spec where the rank is modelled."""
    from ..spec import parse_config

    entry = found.entry
    cfg = entry.get("config")
    if not isinstance(cfg, Mapping):
        raise ConvtError(f"model: layer {found.path_text!r} has no config object.",
                         field="model")
    record = LayerRecord(index=index, path=found.path_text, name=found.name, names=found.path,
                         class_name=found.class_name, rank=CONVT_CLASSES[found.class_name],
                         group=found.group, config=cfg,
                         input_shape=_recorded_input_shape(entry, found.input_hint))
    try:
        spec = parse_config(record.config_entry())
    except ConvtError as exc:
        if exc.field == "class_name":
            return _replace(record, unsupported=f"{found.class_name} is not modelled by this "
                                                f"version of convt-tools")
        raise ConvtError(f"model: layer {found.path_text!r}: {exc}", field=exc.field) from None
    return _replace(record, spec=spec)


def _replace(record: LayerRecord, **changes: Any) -> LayerRecord:
    import dataclasses

    return dataclasses.replace(record, **changes)


def format_dims(shape: Sequence[int | None] | None) -> str:
    if shape is None:
        return "?"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")"
