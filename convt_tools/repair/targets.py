"""``--target NAMES``: the form every named runtime runs exactly, and its proof.

What a runtime needs beyond the portable form (:mod:`.portable`) is declared in ONE
place, on its entry of check's reading table
(:class:`~convt_tools.check.readings.RuntimeRules`): ``needs_group_split``,
``needs_bias_add`` and the ``needs_*`` flags of :mod:`._more_forms`'s rewrites (explicit
pads, the dilation written into the kernel, kernel_shape, the rank restored, Split sizes,
Less as Greater, ops decomposed). :func:`target_rewrites` takes the union over the named targets;
:func:`apply_target_forms` rewrites every ConvTranspose of a model in place:

* ``bias-add`` (first): ``ConvTranspose(x, W, B)`` becomes ``ConvTranspose(x, W)``
  then ``Add(y, B')`` with ``B'`` of shape ``(C_out, 1, ..., 1)`` (one 1 per spatial
  axis, so it broadcasts over ``(N, C_out, *spatial)``);
* ``group-split``: a ConvTranspose with ``group = G > 1`` becomes ``Split(x, axis=1)``
  into ``G`` parts of ``C_in / G`` channels, ``G`` ConvTranspose nodes with
  ``W[g*C_in/G:(g+1)*C_in/G]`` and ``B[g*C_out/G:(g+1)*C_out/G]`` (every other
  attribute kept; an ``output_shape`` listing N and C gets ``C_out / G``), then
  ``Concat(axis=1)``. Exact by the definition of a grouped convolution.

Both need ``W`` (and ``B``) as initializers of the node's graph (function bodies
have none; such nodes are left as they are and the notes say so). Both keep the
ONNX-spec meaning of the node: the windows are unchanged.

:func:`prove_on_targets` runs the rewritten model on every installed named target
(:func:`convt_tools.check.runners.run_calls`, isolated where an engine can abort)
and compares each output with onnxruntime's output of the model before the
rewrites (itself proven against the intent by the repair, or the exporter's
portable form), with :func:`~convt_tools.check.close`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Collection, Sequence

import numpy as np

from ..check import STAND_IN, close, max_abs_diff
from ..check.readings import rules_for, runtime_names
from ._more_forms import (decompose_ops, expand_dilation, explicit_pads, less_as_greater, node_rank,
                          restore_rank, split_with_sizes, write_kernel_shape)
from ..errors import ConvtError
from ..check.runners import Refusal, installed_among, run_calls
from ..onnxbase import default_opset, import_onnx, iter_model_graphs
from ._nodes import NodeCursor, add_initializer, attr, initializer, is_convt, label, unique_name

if TYPE_CHECKING:
    import onnx

__all__ = ["BIAS_ADD", "DECOMPOSE", "DILATION_EXPAND", "EXPLICIT_PADS", "GROUP_SPLIT",
           "KERNEL_SHAPE", "LESS_AS_GREATER", "RANK_RESTORE", "SPLIT_SIZES", "TargetProof",
           "TargetsNotExact", "apply_target_forms",
           "bias_as_add", "prove_on_targets", "retarget", "split_groups", "target_info",
           "target_names", "target_rewrites"]

BIAS_ADD = "bias-add"
GROUP_SPLIT = "group-split"
KERNEL_SHAPE = "kernel-shape"
DILATION_EXPAND = "dilation-expand"
DECOMPOSE = "decompose"
EXPLICIT_PADS = "explicit-pads"
RANK_RESTORE = "rank-restore"
SPLIT_SIZES = "split-sizes"
LESS_AS_GREATER = "less-as-greater"
# Every rewrite, in the order applied, and the flag of the reading table that asks for it
# (:mod:`._more_forms` has all but the bias Add and the group split).
_FLAGS = {EXPLICIT_PADS: "needs_explicit_pads", DILATION_EXPAND: "needs_dilation_expand",
          KERNEL_SHAPE: "needs_kernel_shape",
          BIAS_ADD: "needs_bias_add", GROUP_SPLIT: "needs_group_split", RANK_RESTORE: "needs_rank_restore",
          SPLIT_SIZES: "needs_split_sizes", LESS_AS_GREATER: "needs_less_as_greater",
          DECOMPOSE: "needs_decomposed"}


def target_names(spec: str | Sequence[str]) -> tuple[str, ...]:
    """``"onnx-reference,torch"`` (or a list) -> the runtime names of check's table; a bad
    name is a ConvtError on field ``target`` listing the valid ones."""
    try:
        return runtime_names(spec)
    except ConvtError as exc:
        raise ConvtError("target: " + str(exc).split(": ", 1)[-1], field="target") from None


def target_rewrites(targets: Sequence[str]) -> tuple[str, ...]:
    """The rewrites (of :data:`_FLAGS`, in its order: explicit-pads, dilation-expand,
    kernel-shape, bias-add,
    group-split, rank-restore, split-sizes, less-as-greater) that any of ``targets`` needs,
    from the ``needs_*`` flags of the reading table."""
    return tuple(r for r in _FLAGS if any(_needs(t, r) for t in targets))


def _helper() -> Any:
    """``onnx.helper``, imported on first use (importing repair imports no onnx)."""
    return import_onnx().helper


def _numpy_helper() -> Any:
    """``onnx.numpy_helper``, imported on first use."""
    return import_onnx().numpy_helper


def _flag(target: str, rewrite: str) -> bool | tuple[int, ...]:
    value: bool | tuple[int, ...] = getattr(rules_for(target), _FLAGS[rewrite])
    return value


def _needs(target: str, rewrite: str) -> bool:
    return bool(_flag(target, rewrite))


def _ops(target: str) -> tuple[str, ...]:
    """The op types ``target`` needs decomposed (``needs_decomposed``)."""
    ops: tuple[str, ...] = rules_for(target).needs_decomposed
    return ops


def _ranks(targets: Sequence[str], rewrite: str) -> frozenset[int] | None:
    """The spatial ranks the rewrite applies to for ``targets`` (None: every rank)."""
    flags = [_flag(t, rewrite) for t in targets]
    if any(f is True for f in flags):
        return None
    return frozenset(r for f in flags if isinstance(f, tuple) for r in f)


def bias_as_add(model: onnx.ModelProto, ranks: Collection[int] | None = None) -> list[str]:
    """Move every ConvTranspose bias into a separate ``Add`` (module doc); in place.

    Returns one line per node changed, or left (its B is not an initializer).
    """
    notes: list[str] = []
    for path, graph in iter_model_graphs(model):
        cursor = NodeCursor(graph)
        for node in cursor:
            if not is_convt(node) or len(node.input) < 3 or not node.input[2] or (
                    ranks is not None and node_rank(graph, node) not in ranks):
                continue
            b = initializer(graph, node.input[2])
            w = initializer(graph, node.input[1])
            if b is None or w is None:
                notes.append(f"{label(path, node)}: bias left on the node (W or B is not an "
                             f"initializer of its graph)")
                continue
            rank = w.ndim - 2
            b_name = add_initializer(graph, f"{node.input[2]}_add",
                                      b.reshape((-1,) + (1,) * rank))
            out = node.output[0]
            raw = unique_name(graph, f"{out}_nobias")
            del node.input[2]
            node.output[0] = raw
            cursor.insert(_helper().make_node(
                "Add", [raw, b_name], [out], name=unique_name(graph, f"{node.name or out}_bias")))
            notes.append(f"{label(path, node)}: bias as a separate Add ({b_name}, shape "
                         f"{[int(b.shape[0])] + [1] * rank})")
    return notes


def _split_node(graph: Any, node: onnx.NodeProto, w: np.ndarray, b: np.ndarray | None,
                group: int, opset: int) -> list[onnx.NodeProto]:
    """The nodes that replace ``node``: Split -> G x ConvTranspose -> Concat (their weights
    are added to ``graph``)."""
    c_in_g, c_out_g = w.shape[0] // group, w.shape[1]
    out = node.output[0]
    stem = node.name or out
    parts = [unique_name(graph, f"{stem}_in_g{g}") for g in range(group)]
    new: list[onnx.NodeProto] = []
    if opset >= 13:
        sizes = unique_name(graph, f"{stem}_split_sizes")
        new.append(_helper().make_node("Constant", [], [sizes], name=sizes,
                                    value=_numpy_helper().from_array(
                                        np.full(group, c_in_g, np.int64), sizes)))
        new.append(_helper().make_node("Split", [node.input[0], sizes], parts, axis=1,
                                    name=unique_name(graph, f"{stem}_split")))
    else:
        new.append(_helper().make_node("Split", [node.input[0]], parts, axis=1,
                                    split=[c_in_g] * group, name=unique_name(graph, f"{stem}_split")))
    outs = []
    for g in range(group):
        w_name = add_initializer(graph, f"{node.input[1]}_g{g}",
                                  w[g * c_in_g:(g + 1) * c_in_g])
        inputs = [parts[g], w_name]
        if b is not None:
            inputs.append(add_initializer(graph, f"{node.input[2]}_g{g}",
                                           b[g * c_out_g:(g + 1) * c_out_g]))
        y = unique_name(graph, f"{out}_g{g}")
        outs.append(y)
        part = _helper().make_node("ConvTranspose", inputs, [y], name=unique_name(graph, f"{stem}_g{g}"))
        for a in node.attribute:
            if a.name == "group":
                continue
            if a.name == "output_shape" and len(a.ints) == w.ndim:   # N, C and the spatial
                dims = list(a.ints)
                dims[1] = c_out_g
                part.attribute.append(_helper().make_attribute("output_shape", dims))
                continue
            part.attribute.append(a)
        new.append(part)
    new.append(_helper().make_node("Concat", outs, [out], axis=1,
                                name=unique_name(graph, f"{stem}_concat")))
    return new


def split_groups(model: onnx.ModelProto, ranks: Collection[int] | None = None) -> list[str]:
    """Split every grouped ConvTranspose into G ungrouped ones (module doc); in place.

    Returns one line per node changed, or left (W/B not initializers, or C_in not a
    multiple of the group).
    """
    notes: list[str] = []
    opset = default_opset(model)
    for path, graph in iter_model_graphs(model):
        cursor = NodeCursor(graph)
        for node in cursor:
            group = int(attr(node, "group") or 1) if is_convt(node) and (
                ranks is None or node_rank(graph, node) in ranks) else 1
            if group <= 1:
                continue
            w = initializer(graph, node.input[1])
            has_b = len(node.input) > 2 and bool(node.input[2])
            b = initializer(graph, node.input[2]) if has_b else None
            if w is None or (has_b and b is None) or w.shape[0] % group:
                notes.append(f"{label(path, node)}: group {group} left as it is (W or B is not "
                             f"an initializer of its graph, or C_in is not a multiple of it)")
                continue
            where = label(path, node)
            cursor.replace(*_split_node(graph, node, w, b, group, opset))
            notes.append(f"{where}: group {group} split into {group} ConvTranspose nodes "
                         f"(Split -> ConvTranspose x {group} -> Concat)")
    return notes


_REWRITES: dict[str, Callable[[Any, Collection[int] | None], list[str]]] = {
    EXPLICIT_PADS: explicit_pads, DILATION_EXPAND: expand_dilation,
    KERNEL_SHAPE: write_kernel_shape, BIAS_ADD: bias_as_add,
    GROUP_SPLIT: split_groups, RANK_RESTORE: restore_rank, SPLIT_SIZES: split_with_sizes,
    LESS_AS_GREATER: less_as_greater}


def apply_target_forms(model: onnx.ModelProto, targets: Sequence[str]) -> list[str]:
    """Apply :func:`target_rewrites` of ``targets`` to ``model`` in place; what changed."""
    notes: list[str] = []
    for rewrite in target_rewrites(targets):
        if rewrite == DECOMPOSE:   # its flag names op types, not ranks
            done = decompose_ops(model, {op for t in targets for op in _ops(t)})
        else:
            done = _REWRITES[rewrite](model, _ranks(targets, rewrite))
        who = [t for t in targets if _needs(t, rewrite)]
        notes += [f"for {', '.join(who)}: {d}" for d in done]
    return notes


# ---------------------------------------------------------------- proof

@dataclass
class TargetProof:
    """The rewritten model run on each named target: ``proven`` (name -> max abs error),
    ``failed`` (name -> why), ``not_installed`` (names)."""

    proven: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    not_installed: list[str] = field(default_factory=list)
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    skipped: str = ""

    @property
    def ok(self) -> bool:
        """No installed target failed."""
        return not self.failed and not self.skipped

    def to_dict(self) -> dict[str, Any]:
        return {"proven": self.proven, "failed": self.failed,
                "not_installed": self.not_installed, "input_shapes": self.input_shapes,
                "skipped": self.skipped or None}

    def lines(self) -> list[str]:
        """Text lines for the CLI."""
        out = [f"proven exact on {name} (max abs error {err:.2g}) at inputs "
               f"{self.input_shapes}" for name, err in self.proven.items()]
        out += [f"NOT exact on {name}: {why}" for name, why in self.failed.items()]
        if self.not_installed:
            out.append("not proven (not installed here, or documented only): "
                       + ", ".join(self.not_installed))
        if self.skipped:
            out.append(f"not proven: {self.skipped}")
        return out


def _feeds(model: onnx.ModelProto, rng: np.random.Generator
           ) -> dict[str, np.ndarray] | str:
    """Seeded inputs for every graph input (unknown dims: 1 for the first, else the
    stand-in), or why there are none."""
    inits = {t.name for t in model.graph.initializer}
    feeds = {}
    for value in model.graph.input:
        if value.name in inits:
            continue
        t = value.type.tensor_type
        if not value.type.HasField("tensor_type") or not t.HasField("shape"):
            return f"input {value.name!r} has no tensor shape"
        dims = [int(d.dim_value) if d.HasField("dim_value") else (1 if i == 0 else STAND_IN)
                for i, d in enumerate(t.shape.dim)]
        dtype = _helper().tensor_dtype_to_np_dtype(t.elem_type)
        if dtype.kind != "f":
            return f"input {value.name!r} is not a float tensor"
        feeds[value.name] = rng.standard_normal(dims).astype(dtype)
    return feeds


def prove_on_targets(before: onnx.ModelProto, after: onnx.ModelProto, targets: Sequence[str],
                     seed: int = 0) -> TargetProof:
    """Run ``after`` on every installed one of ``targets`` and compare each output with
    onnxruntime's output of ``before`` (module doc)."""
    proof = TargetProof()
    have = installed_among(targets)
    proof.not_installed = [t for t in targets if t not in have]
    feeds = _feeds(before, np.random.default_rng(seed))
    if isinstance(feeds, str):
        proof.skipped = feeds
        return proof
    proof.input_shapes = {k: list(v.shape) for k, v in feeds.items()}
    truth = run_calls("onnxruntime", [(before.SerializeToString(), feeds)])[0]
    if isinstance(truth, Refusal):
        proof.skipped = f"onnxruntime refuses the model at inputs {proof.input_shapes}: {truth}"
        return proof
    blob = after.SerializeToString()
    for name in have:
        got = run_calls(name, [(blob, feeds)])[0]
        if isinstance(got, Refusal):
            proof.failed[name] = f"refused: {got}"
            continue
        errors = [max_abs_diff(np.asarray(g, np.float64), np.asarray(t, np.float64))
                  for g, t in zip(got, truth)]
        if len(got) != len(truth) or any(e is None for e in errors) or not all(
                close(np.asarray(g), np.asarray(t, np.float64)) for g, t in zip(got, truth)):
            shapes = [list(np.shape(g)) for g in got]
            proof.failed[name] = (f"outputs {shapes} differ from onnxruntime's "
                                  f"{[list(t.shape) for t in truth]} (max abs error "
                                  f"{[e for e in errors]})")
            continue
        proof.proven[name] = max(float(e) for e in errors if e is not None) if errors else 0.0
    return proof


class TargetsNotExact(ConvtError):
    """The target form is not exact on an installed named runtime (or cannot be proven);
    ``proof`` says where."""

    def __init__(self, message: str, proof: TargetProof) -> None:
        super().__init__(message, field="target")
        self.proof = proof


def retarget(model: onnx.ModelProto, targets: Sequence[str], seed: int = 0
             ) -> tuple[onnx.ModelProto, list[str], TargetProof]:
    """``model`` (not modified) in the form every one of ``targets`` runs exactly: a copy
    with :func:`apply_target_forms`, what changed, and its :func:`prove_on_targets` proof.

    Raises :class:`TargetsNotExact` when an installed target refuses or misreads the result,
    or when it cannot be run to prove it (then give concrete input shapes).
    """
    out = copy.deepcopy(model)
    notes = apply_target_forms(out, targets)
    proof = prove_on_targets(model, out, targets, seed)
    if proof.failed:
        raise TargetsNotExact(
            "target: the rewritten model is not exact on "
            + "; ".join(f"{k} ({v})" for k, v in proof.failed.items())
            + "; nothing written.", proof)
    if proof.skipped:
        raise TargetsNotExact(f"target: the rewritten model cannot be proven ({proof.skipped});"
                              f" give concrete input shapes; nothing written.", proof)
    return out, notes, proof


def target_info(targets: Sequence[str], notes: list[str], proof: TargetProof) -> dict[str, Any]:
    """The JSON block of ``--target`` (``export --json``, ``repair --json``)."""
    return {"names": list(targets), "rewrites": list(target_rewrites(targets)),
            "changed": notes, **proof.to_dict(), "lines": notes + proof.lines()}
