"""Model configs as data: strict JSON, a refusal scan for code payloads, the layer walk.

A model config (``config.json`` of a ``.keras`` archive, ``model.to_json()``,
or the ``model_config`` attribute of a legacy ``.h5``) is read as plain JSON.
No class or module named in it is ever imported or resolved, and no function
is deserialized. Configs that carry code anyway are refused, mirroring what
Keras's own ``safe_mode`` is meant to refuse (the known bypasses are the
threat model):

- serialized Python bytecode: ``{"class_name": "__lambda__"}`` objects
  (CVE-2024-3660) and Keras 2 ``Lambda`` layers whose ``function`` /
  ``output_shape`` are marshalled code (``function_type: "lambda"``;
  CVE-2025-9905, legacy ``.h5``);
- references to Python's standard library or builtins other than Keras's own
  named functions (``{"module": "os", "class_name": "system"}``;
  CVE-2025-1550);
- references to Keras's non-modeling APIs such as
  ``keras.config.enable_unsafe_deserialization`` or ``keras.utils.get_file``
  (CVE-2025-9906).

References to user packages (custom layers) stay data: they are listed but
never interpreted.
"""

from __future__ import annotations

import builtins
import json
import re
import sys
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from ..errors import ConvtError
from ..spec.parse import no_duplicate_keys
from ..spec.values import json_int

__all__ = ["CONVT_CLASSES", "LayerEntry", "parse_model_json", "scan_for_code", "to_snake_case",
           "walk_layers", "is_model_config", "normalize"]

CONVT_CLASSES = {"Conv1DTranspose": 1, "Convolution1DTranspose": 1,
                 "Conv2DTranspose": 2, "Convolution2DTranspose": 2,
                 "Conv3DTranspose": 3, "Convolution3DTranspose": 3}
MAX_CONFIG_BYTES = 256 << 20
MAX_LAYERS = 100_000
_KERAS_PACKAGES = {"keras", "keras_hub", "keras_cv", "keras_nlp", "tf_keras", "tensorflow"}
# Names of Keras's non-modeling APIs (keras/src/saving/serialization_lib.py NON_MODELING_APIS).
_NON_MODELING = {
    "clear_session", "enable_unsafe_deserialization", "load_model", "model_from_json",
    "save_model", "image_dataset_from_directory", "load_img", "save_img",
    "text_dataset_from_directory", "deserialize_keras_object", "load_weights",
    "register_keras_serializable", "save_weights", "serialize_keras_object",
    "audio_dataset_from_directory", "get_file", "disable_interactive_logging",
}
_STDLIB = set(getattr(sys, "stdlib_module_names", ())) | {"builtins", "os", "subprocess", "sys"}


def to_snake_case(name: str) -> str:
    """Keras's ``naming.to_snake_case`` (the h5 group name of a class), exactly."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()



def parse_model_json(data: bytes | str, where: str, field: str = "model") -> Any:
    """Strict JSON (UTF-8, no duplicate keys, bounded size and depth); never evaluated."""
    if len(data) > MAX_CONFIG_BYTES:
        raise ConvtError(f"{field}: {where}: the config is {len(data):,} bytes, more than "
                         f"{MAX_CONFIG_BYTES:,}.", field=field)
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
        return json.loads(text, object_pairs_hook=no_duplicate_keys(field),
                          parse_int=json_int(field))
    except UnicodeDecodeError as exc:
        raise ConvtError(f"{field}: {where}: the config is not UTF-8 ({exc.reason}).",
                         field=field) from None
    except RecursionError:
        raise ConvtError(f"{field}: {where}: the config is nested too deeply.",
                         field=field) from None
    except ValueError as exc:
        if isinstance(exc, ConvtError):
            detail = str(exc).removeprefix(f"{exc.field}: ")
            raise ConvtError(f"{field}: {where}: {detail}", field=field) from None
        raise ConvtError(f"{field}: {where}: the config is not valid JSON ({exc}).",
                         field=field) from None


def _refuse(where: str, at: str, why: str) -> ConvtError:
    return ConvtError(f"model: {where} refused: {at} {why}; convt-tools reads configs as data "
                      f"and never runs code from a model.", field="model")


def _check_reference(obj: Mapping[str, Any], where: str, at: str) -> None:
    module = obj.get("module")
    class_name = obj.get("class_name")
    if not isinstance(module, str) or not isinstance(class_name, str):
        return
    top = module.split(".", 1)[0]
    target = obj.get("config") if class_name == "function" else class_name
    target = target if isinstance(target, str) else class_name
    if top in _KERAS_PACKAGES:
        if target.rsplit(".", 1)[-1] in _NON_MODELING:
            raise _refuse(where, at, f"references the non-modeling API {module}.{target} "
                                     f"(CVE-2025-9906)")
        return
    if module == "builtins" and class_name == "function" and isinstance(target, str) \
            and target not in vars(builtins):
        return  # Keras's named built-in functions (activations, losses) are saved this way
    if module == "__main__":
        return
    if top in _STDLIB:
        raise _refuse(where, at, f"references the Python object {module}.{target} "
                                 f"(CVE-2025-1550)")


def scan_for_code(root: Any, where: str) -> None:
    """Refuse a config holding serialized code or references outside modelling (see module doc)."""
    stack: list[tuple[Any, str]] = [(root, "config")]
    count = 0
    while stack:
        obj, at = stack.pop()
        count += 1
        if count > 10_000_000:
            raise ConvtError(f"model: {where}: the config is too large to scan.", field="model")
        if isinstance(obj, Mapping):
            if obj.get("class_name") == "__lambda__":
                raise _refuse(where, at, "holds serialized Python bytecode (a __lambda__ "
                                         "object, CVE-2024-3660)")
            for key in ("function_type", "output_shape_type"):
                if obj.get(key) == "lambda":
                    raise _refuse(where, at, "holds a Lambda layer with marshalled Python "
                                             "bytecode (CVE-2025-9905)")
            if obj.get("class_name") == "Lambda" and isinstance(obj.get("config"), Mapping):
                fn = obj["config"].get("function")
                if isinstance(fn, (list, str)) and not (isinstance(fn, str) and fn.isidentifier()):
                    raise _refuse(where, at, "holds a Lambda layer whose function is "
                                             "marshalled Python bytecode (CVE-2025-9905)")
            _check_reference(obj, where, at)
            for key, value in obj.items():
                if isinstance(value, (Mapping, list)):
                    stack.append((value, f"{at}.{key}"))
        elif isinstance(obj, list):
            for i, value in enumerate(obj):
                if isinstance(value, (Mapping, list)):
                    stack.append((value, f"{at}[{i}]"))


def is_model_config(obj: Any) -> bool:
    """True for a model config (``{"class_name": ..., "config": {"layers": [...]}}``).

    Keras <= 2.2 wrote a Sequential's config as the bare list of layers;
    :func:`normalize` turns that into the dict form first.
    """
    return (isinstance(obj, Mapping) and isinstance(obj.get("config"), Mapping)
            and isinstance(obj["config"].get("layers"), list))


def normalize(obj: Any) -> Any:
    """Keras <= 2.2 ``{"class_name": "Sequential", "config": [layers]}`` -> the dict form."""
    if isinstance(obj, Mapping) and isinstance(obj.get("config"), list):
        return {**obj, "config": {"name": obj.get("name"),
                                  "layers": [normalize(e) for e in obj["config"]]}}
    if is_model_config(obj):
        return {**obj, "config": {**obj["config"],
                                  "layers": [normalize(e) for e in obj["config"]["layers"]]}}
    return obj


@dataclass(frozen=True)
class LayerEntry:
    """One transposed-conv layer found in a model config.

    ``path`` is the user's layer names from the top model down (nested models
    included); ``group`` the Keras 3 weights group (class names in snake case
    with ``_1``, ``_2`` ... suffixes in ``model.layers`` order, as
    ``keras/src/saving/saving_lib.py`` writes it); ``entry`` the layer's config
    entry as plain JSON.
    """

    path: tuple[str, ...]
    class_name: str
    entry: Mapping[str, Any]
    group: str
    input_hint: tuple[Any, ...] | None = None   # a Sequential's InputLayer batch shape

    @property
    def name(self) -> str:
        return self.path[-1]

    @property
    def path_text(self) -> str:
        return "/".join(self.path)


def _layer_name(entry: Mapping[str, Any], i: int) -> str:
    cfg = entry.get("config")
    name = cfg.get("name") if isinstance(cfg, Mapping) else None
    name = entry.get("name", name)
    return name if isinstance(name, str) and name else f"<layer {i}>"


def _batch_shape(entry: Mapping[str, Any]) -> tuple[Any, ...] | None:
    cfg = entry.get("config")
    if isinstance(cfg, Mapping):
        for key in ("batch_shape", "batch_input_shape"):
            if isinstance(cfg.get(key), list):
                return tuple(cfg[key])
    return None


def _wrapped_convt(entry: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The transposed-conv layer a ``TimeDistributed`` wrapper holds (Keras saves it under
    the wrapper's ``layer`` attribute: ``<group>/layer/vars``), else None."""
    cfg = entry.get("config")
    if entry.get("class_name") != "TimeDistributed" or not isinstance(cfg, Mapping):
        return None
    inner = cfg.get("layer")
    if isinstance(inner, Mapping) and inner.get("class_name") in CONVT_CLASSES:
        return inner
    return None


def _time_distributed_shape(entry: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The wrapped layer's input shape: the wrapper's ``(N, T, ...)`` without ``T``."""
    build = entry.get("build_config")
    shape = build.get("input_shape") if isinstance(build, Mapping) else None
    if isinstance(shape, list) and len(shape) >= 3:
        return (None,) + tuple(shape[2:])
    return None


def _keras2_inbound(entry: Mapping[str, Any]) -> str | None:
    """The inbound layer's name in Keras 2's ``[[["name", 0, 0, {}]]]`` node format."""
    nodes: Any = entry.get("inbound_nodes")   # anything: a malformed one gives None below
    try:
        name = nodes[0][0][0]
    except (TypeError, IndexError, KeyError):
        return None
    return name if isinstance(name, str) else None


def walk_layers(model: Mapping[str, Any], where: str) -> Iterator[LayerEntry]:
    """Every transposed-conv layer of ``model``, depth first, in ``model.layers`` order."""
    budget = [MAX_LAYERS]

    def walk(node: Mapping[str, Any], prefix: tuple[str, ...], group: str,
             depth: int, loc: str = "") -> Iterator[LayerEntry]:
        if depth > 64:
            raise ConvtError(f"model: {where}: models are nested more than 64 deep.",
                             field="model")
        used: dict[str, int] = {}
        hint: tuple[Any, ...] | None = None
        sequential = node.get("class_name") == "Sequential"
        input_shapes = {e.get("name"): _batch_shape(e) for e in node["config"]["layers"]
                        if isinstance(e, Mapping) and e.get("class_name") == "InputLayer"}
        for i, entry in enumerate(node["config"]["layers"]):
            budget[0] -= 1
            if budget[0] < 0:
                raise ConvtError(f"model: {where}: more than {MAX_LAYERS:,} layers.",
                                 field="model")
            if not isinstance(entry, Mapping) or not isinstance(entry.get("class_name"), str):
                raise ConvtError(f"model: {where}: the layer entry at {loc}layers[{i}] (config "
                                 f"lists, counting from 0) is not a {{\"class_name\": ..., "
                                 f"\"config\": ...}} object.", field="model")
            base = to_snake_case(entry["class_name"])
            if base in used:
                used[base] += 1
                key = f"{base}_{used[base]}"
            else:
                used[base] = 0
                key = base
            path = prefix + (_layer_name(entry, i),)
            sub_group = f"{group}layers/{key}"
            inner = _wrapped_convt(entry)
            if is_model_config(entry):
                yield from walk(entry, path, sub_group + "/", depth + 1, f"{loc}layers[{i}] > ")
            elif inner is not None:
                yield LayerEntry(path + (_layer_name(inner, 0),), inner["class_name"], inner,
                                 f"{sub_group}/layer", _time_distributed_shape(entry))
            elif entry["class_name"] in CONVT_CLASSES:
                yield LayerEntry(path, entry["class_name"], entry, sub_group,
                                 hint if sequential else input_shapes.get(_keras2_inbound(entry)))
            hint = _batch_shape(entry) if sequential and entry["class_name"] == "InputLayer" \
                else None

    yield from walk(model, (), "", 0)
