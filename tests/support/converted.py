"""The real-converter fixtures (fixtures/converted/): sources, ONNX files and the measured manifest.

``cases()`` lists every conversion and hand-broken variant as
``(id, source path, onnx path, {layer path: {runtime: (status, class)}})``, the
status and class measured by ``fixtures/converted/measure_runtimes.py`` on the real
runtimes (onnxruntime, OpenVINO, tract). ``convt verify`` is judged against these.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

CONVERTED = Path(__file__).resolve().parents[2] / "fixtures" / "converted"
MEASURED_RUNTIMES = ("onnxruntime", "openvino", "tract")


@lru_cache(maxsize=1)
def manifest() -> dict[str, Any]:
    return json.loads((CONVERTED / "manifest.json").read_text())


def source_path(model: str) -> Path:
    """The source a conversion started from (.keras, or the torch description JSON)."""
    if model.startswith("k_"):
        return CONVERTED / "keras" / f"{model}.keras"
    return CONVERTED / "torch" / f"{model}.json"


def cases() -> list[tuple[str, Path, Path, dict[str, dict[str, tuple[str, str | None]]]]]:
    out = []
    m = manifest()
    for entry in [*m["conversions"], *m["broken"]]:
        want = {lay["path"]: {rt: (r["status"], r["class"]) for rt, r in lay["runtimes"].items()}
                for lay in entry["layers"]}
        out.append((entry["onnx"].replace("/", ":").removesuffix(".onnx"),
                    source_path(entry["model"]), CONVERTED / entry["onnx"], want))
    return out


def torch_models() -> list[str]:
    return sorted(p.stem for p in (CONVERTED / "torch").glob("*.json"))
