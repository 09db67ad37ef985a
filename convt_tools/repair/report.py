"""What ``convt repair`` reports: the refusal, the per-node plan and the whole report.

A refused repair writes nothing: :class:`RepairRefused` carries the
:class:`RepairReport` as far as it got (the nodes planned before the refusal,
with any proof records, the untouched nodes, and the refusal message).
``RepairReport.to_dict`` is the ``--json`` form (a refused repair lists its
nodes under ``planned``, not ``repaired``); ``to_text`` the human one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..check import NodeContext, ort_version
from ..errors import ConvtError


class RepairRefused(ConvtError):
    """The repair cannot be made (or proven) under the chosen intent; nothing is written.

    ``report`` (set by :func:`~convt_tools.repair.repair_model`) is the :class:`RepairReport` as far
    as it got: the nodes planned before the refusal (with any proof records),
    the untouched nodes, and ``refusal`` = this message.
    """

    report: RepairReport | None = None


@dataclass
class NodePlan:
    """How one node is rewritten, and the evidence that it is right."""

    graph: str
    name: str
    index: int
    codes: list[str]
    old: dict[str, Any]
    new: dict[str, Any] = field(default_factory=dict)
    kernel_padding: list[list[int]] | None = None
    windows: str = ""
    notes: list[str] = field(default_factory=list)
    proof: list[dict[str, Any]] = field(default_factory=list)
    size_dependent: bool = False
    form: str = "explicit pads"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class RepairReport:
    """What :func:`repair_model` changed and how it was verified."""

    model: str
    intent: str
    onnxruntime: str
    nodes: list[NodePlan] = field(default_factory=list)
    untouched: list[str] = field(default_factory=list)
    whole_model: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    refusal: str | None = None
    # --target: the named runtimes, the rewrites done for them and the proof on each
    targets: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; a refused repair lists its nodes under ``planned``, not ``repaired``."""
        nodes = [n.to_dict() for n in self.nodes]
        head = {"model": self.model, "intent": self.intent, "onnxruntime": self.onnxruntime,
                "refused": self.refusal is not None}
        if self.refusal is not None:
            return {**head, "reason": self.refusal, "planned": nodes,
                    "untouched": self.untouched, "notes": self.notes}
        return {**head, "repaired": nodes, "untouched": self.untouched,
                "whole_model": self.whole_model, "notes": self.notes,
                **({"targets": self.targets} if self.targets else {})}

    def to_text(self) -> str:
        lines = [f"{self.model}: {len(self.nodes)} node(s) repaired for intent {self.intent} "
                 f"(onnxruntime {self.onnxruntime})"]
        for n in self.nodes:
            lines.append(f"[{n.graph}] {n.name!r} (index {n.index}) {','.join(n.codes)}: "
                         f"{n.old} -> {n.new}")
            lines.append(f"  window: {n.windows}")
            if n.kernel_padding:
                lines.append(f"  W padded with zero taps (before, after) per axis: "
                             f"{n.kernel_padding}")
            lines += [f"  note: {t}" for t in n.notes]
            for p in n.proof:
                lines.append(f"  proof at input {p.get('input_shape')}: max |repaired - intent "
                             f"reference| = {_g(p.get('max_abs_diff_vs_intent'))}"
                             + (f", max |repaired - original in onnxruntime| = "
                                f"{_g(p['max_abs_diff_vs_original_ort'])}"
                                if p.get("max_abs_diff_vs_original_ort") is not None else ""))
        lines += [f"untouched: {u}" for u in self.untouched]
        if self.refusal is not None:
            lines.append(f"refused: {self.refusal}")
        wm = self.whole_model
        if wm:
            lines.append(f"whole model: {wm.get('summary', '')}")
        lines += [f"note: {t}" for t in self.notes]
        lines += [f"target: {t}" for t in self.targets.get("lines", [])]
        return "\n".join(lines)


def _g(value: Any) -> str:
    """A number as ``%.3g``; a missing one (not measured, e.g. a refused proof) as ``n/a``."""
    return "n/a" if value is None else f"{value:.3g}"


def ort_refuses(ctx: NodeContext, why: str) -> RepairRefused:
    """The ``ort`` intent on a node onnxruntime will not run: nothing to reproduce."""
    return RepairRefused(
        f"node {ctx.ref.label!r}: onnxruntime {ort_version()} refuses this node ({why}), so "
        f"there is no onnxruntime behaviour to reproduce; use --intent tf or --intent "
        f"onnx-spec.", field="intent")
