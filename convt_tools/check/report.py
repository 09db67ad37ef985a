"""Findings and the check report: codes, severities, text / JSON / JUnit XML.

Owns the vocabulary every rule speaks in: :data:`CODES` maps a stable code
(``CT001`` ...) to a slug and a default severity; a :class:`Finding` is one
code plus a sentence. :class:`NodeReport` collects one ConvTranspose node's
findings (and its numeric-check details), :class:`CheckReport` a whole model's.

A report *fails* at level ``fail_on`` when any finding's severity is at or
above it in ``info < warning < error``; ``never`` never fails. Nothing here
imports onnx or onnxruntime.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ConvtError
from ..io import xml_safe
from ..junit import junit_document, junit_suite

if TYPE_CHECKING:
    from ..pictures import AxisPanel

__all__ = ["CODES", "FAIL_LEVELS", "SEVERITIES", "CheckReport", "Finding", "NodeReport"]

SEVERITIES = ("info", "warning", "error")
FAIL_LEVELS = ("error", "warning", "info", "never")

# code -> (slug, default severity)
CODES: dict[str, tuple[str, str]] = {
    "CT001": ("negative-pads", "error"),
    "CT002": ("output-padding-ge-stride", "error"),
    "CT003": ("kernel-shape-mismatch", "error"),
    "CT004": ("group-mismatch", "error"),
    "CT005": ("pads-with-auto-pad", "error"),
    "CT006": ("malformed-attribute", "error"),
    "CT007": ("attribute-bound-at-call-site", "warning"),
    "CT008": ("output-padding-ge-stride-lt-dilation", "error"),
    "CT010": ("auto-pad-same", "error"),
    "CT011": ("auto-pad-same-kernel-lt-stride", "error"),
    "CT012": ("auto-pad-with-output-padding", "error"),
    "CT013": ("output-shape-ambiguous-crop", "error"),
    "CT014": ("output-shape-size-dependent", "error"),
    "CT015": ("output-shape-fragile", "warning"),
    "CT016": ("output-shape-with-n-c", "error"),
    "CT017": ("output-shape-with-output-padding", "warning"),
    "CT020": ("asymmetric-pads", "warning"),
    "CT021": ("grouped", "warning"),
    "CT022": ("dtype-no-ort-cpu-kernel", "warning"),
    "CT023": ("asymmetric-pads-3d", "warning"),
    "CT030": ("numeric-check", "info"),
    "CT031": ("numeric-check-skipped", "info"),
    "CT032": ("onnxruntime-unexplained", "error"),
    "CT033": ("onnxruntime-rejects-node", "error"),
    "CT034": ("runtimes-measured-differ", "error"),
    "CT035": ("reading-differs-from-table", "warning"),
    "CT036": ("judged-runtime-cannot-run", "error"),
    # QDQ ConvTranspose (issue 20; convt_tools/check/qdq.py)
    "CT040": ("qdq-weight-scales-per-input-channel", "warning"),
    "CT041": ("qdq-weight-scales-shared-across-groups", "warning"),
    "CT042": ("qdq-depthwise-one-scale", "warning"),
    "CT043": ("qdq-bias-scale", "warning"),
    "CT044": ("qdq-zero-point", "error"),
    "CT045": ("qdq-scale-length", "error"),
    "CT046": ("qdq-integers-not-from-scales", "warning"),
    "CT047": ("qdq-runtime-refuses", "warning"),
    "CT048": ("qdq-runtime-wrong", "error"),
    "CT049": ("qdq-runs-in-float", "info"),
}


@dataclass
class Finding:
    """One finding: a stable ``code`` (see :data:`CODES`), severity and a sentence."""

    code: str
    message: str
    severity: str = ""

    def __post_init__(self) -> None:
        if not self.severity:
            self.severity = CODES[self.code][1]

    @property
    def slug(self) -> str:
        return CODES[self.code][0]

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "name": self.slug, "severity": self.severity,
                "message": self.message}


@dataclass
class NodeReport:
    """The findings for one ConvTranspose node."""

    graph: str
    name: str
    index: int
    input_shape: tuple[int | None, ...] | None
    attributes: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)
    numeric: dict[str, Any] | None = None
    readings: dict[str, Any] | None = None   # the reading matrix (risky nodes), JSON-ready
    reading_lines: list[str] = field(default_factory=list)
    quantization: dict[str, Any] | None = None   # QDQ nodes only (check/qdq.py)
    execution: dict[str, dict[str, str]] | None = None   # per runtime, QDQ nodes only
    panels: tuple[AxisPanel, ...] = ()   # pictures of the windows (check/panels.py; risky nodes)

    def worst(self) -> str | None:
        sev = [SEVERITIES.index(f.severity) for f in self.findings]
        return SEVERITIES[max(sev)] if sev else None

    def fails(self, fail_on: str) -> list[Finding]:
        return [f for f in self.findings if _at_or_above(f.severity, fail_on)]

    def to_dict(self) -> dict[str, Any]:
        return {"graph": self.graph, "name": self.name, "index": self.index,
                "input_shape": None if self.input_shape is None else list(self.input_shape),
                "attributes": self.attributes,
                "findings": [f.to_dict() for f in self.findings], "numeric": self.numeric,
                "readings": self.readings,
                **({"quantization": self.quantization, "execution": self.execution}
                   if self.quantization is not None else {})}


def _at_or_above(severity: str, fail_on: str) -> bool:
    if fail_on == "never":
        return False
    return SEVERITIES.index(severity) >= SEVERITIES.index(fail_on)


@dataclass
class CheckReport:
    """The result of :func:`check_model`: one :class:`NodeReport` per node."""

    model: str
    onnxruntime: str
    nodes: list[NodeReport]
    notes: list[str] = field(default_factory=list)

    def failed(self, fail_on: str = "error") -> bool:
        """True when any finding is at or above ``fail_on`` (never: always False)."""
        if fail_on not in FAIL_LEVELS:
            raise ConvtError(f"fail_on: got {fail_on!r}; expected one of "
                             f"{', '.join(FAIL_LEVELS)}.", field="fail_on")
        return any(n.fails(fail_on) for n in self.nodes)

    def counts(self) -> dict[str, int]:
        c = {s: 0 for s in SEVERITIES}
        for n in self.nodes:
            for f in n.findings:
                c[f.severity] += 1
        return c

    def to_dict(self, fail_on: str = "error") -> dict[str, Any]:
        return {"model": self.model, "onnxruntime": self.onnxruntime, "fail_on": fail_on,
                "failed": self.failed(fail_on), "counts": self.counts(), "notes": self.notes,
                "nodes": [n.to_dict() for n in self.nodes]}

    def to_text(self, fail_on: str = "error") -> str:
        lines = [f"{self.model}: {len(self.nodes)} ConvTranspose node(s) "
                 f"(onnxruntime {self.onnxruntime})"]
        lines += [f"note: {n}" for n in self.notes]
        for n in self.nodes:
            lines.append(f"[{n.graph}] node {n.name!r} (index {n.index}), input "
                         f"{'unknown' if n.input_shape is None else list(n.input_shape)}")
            if not n.findings:
                lines.append("  ok")
            for f in n.findings:
                lines.append(f"  {f.severity.upper():7s} {f.code} {f.slug}: {f.message}")
            if n.reading_lines:
                lines.append("  readings:")
                lines += [f"    {r}" for r in n.reading_lines]
            if n.execution:
                lines.append("  QDQ execution: " + ", ".join(
                    f"{r} {e['execution']}" for r, e in n.execution.items()))
        c = self.counts()
        verdict = "FAIL" if self.failed(fail_on) else "PASS"
        lines.append(f"{verdict} (fail-on {fail_on}): {c['error']} error(s), "
                     f"{c['warning']} warning(s), {c['info']} info")
        return "\n".join(lines)

    def junit_xml(self, fail_on: str = "error") -> bytes:
        """The JUnit XML file (:func:`convt_tools.junit.junit_document`): one testsuite, one
        testcase per node; a failure per failing node.

        Model, graph and node names and finding messages are untrusted: each
        goes through :func:`~convt_tools.io.xml_safe` so the document parses.
        """
        suite = junit_suite("convt check", len(self.nodes),
                          sum(1 for n in self.nodes if n.fails(fail_on)))
        for n in self.nodes:
            case = ET.SubElement(suite, "testcase", classname=xml_safe(f"{self.model}:{n.graph}"),
                                 name=xml_safe(f"{n.name} (index {n.index})"))
            bad = n.fails(fail_on)
            if bad:
                fail = ET.SubElement(case, "failure", type=bad[0].code,
                                     message="; ".join(f"{f.code} {f.slug}" for f in bad))
                fail.text = xml_safe("\n".join(f"{f.severity} {f.code}: {f.message}" for f in bad))
            out = ET.SubElement(case, "system-out")
            out.text = xml_safe("\n".join([f"{f.severity} {f.code}: {f.message}"
                                           for f in n.findings] or ["ok"])
                                + "".join(f"\nreading {r}" for r in n.reading_lines))
        return junit_document(suite)
