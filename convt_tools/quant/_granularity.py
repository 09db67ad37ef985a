"""What a ConvTranspose weight's stored scales mean for its group count, and what its
stored integers say about the scales that made them.

ONNX ConvTranspose weights are ``W (C_in, C_out/group, k...)``: output channel
``co = g * (C_out/group) + j`` reads ``W[ci, j]`` for the ``C_in/group`` input
channels ``ci`` of group ``g = co // (C_out/group)``. So, expanded to W's shape
(:meth:`~._params.QParams.expand`), the scales are

* ``per_output_channel`` where they are constant over every ``(group, j)``
  (axis 1 for group 1; axis 0 for depthwise multiplier 1; opset-21 blocked axis
  0 with ``block_size = C_in/group``);
* ``axis1_shared_across_groups`` where they depend on ``j`` only while
  ``group > 1`` (output channels ``j``, ``j + C_out/group``, ... share a scale);
* ``per_input_channel`` where they depend on ``ci`` only (axis 0 otherwise);
* ``per_tensor`` where there is one value; ``other``; ``invalid`` (the
  parameters do not fit W: the reason is given).

:func:`integer_evidence` reads the granularity off the integers: symmetric
MinMax quantization makes ``max |q - zp|`` over each slice that shared a scale
reach the type's limit (127 for int8; 64 for onnxruntime's ``reduce_range``;
or the type's bounds for asymmetric zero points), the same kind of limit in
every slice. Slices under the declared
scales that do not, while a finer split's slices all do, mean the integers
were made with other scales than those stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._params import QParams, QuantError

__all__ = ["SLICINGS", "IntegerEvidence", "WeightGranularity", "integer_evidence",
           "output_channel_index", "weight_granularity"]

SLICINGS = ("per_tensor", "per_output_channel", "per_input_channel",
            "axis1_shared_across_groups")


def output_channel_index(w_shape: tuple[int, ...], group: int) -> np.ndarray:
    """``co`` of every element of a ``(C_in, C_out/group, k...)`` weight (W's shape)."""
    cin, cpo = w_shape[0], w_shape[1]
    cpi = max(cin // max(group, 1), 1)
    oc = (np.arange(cin)[:, None] // cpi) * cpo + np.arange(cpo)[None, :]
    return np.broadcast_to(oc.reshape(oc.shape + (1,) * (len(w_shape) - 2)), w_shape)


def _labels(kind: str, w_shape: tuple[int, ...], group: int) -> np.ndarray:
    if kind == "per_tensor":
        return np.zeros(w_shape, np.int64)
    if kind == "per_output_channel":
        return output_channel_index(w_shape, group)
    if kind == "per_input_channel":
        return np.broadcast_to(np.arange(w_shape[0]).reshape((-1,) + (1,) * (len(w_shape) - 1)),
                               w_shape)
    return np.broadcast_to(np.arange(w_shape[1]).reshape((1, -1) + (1,) * (len(w_shape) - 2)),
                           w_shape)


def _constant_over(values: np.ndarray, labels: np.ndarray) -> bool:
    flat_l, flat_v = labels.ravel(), values.ravel()
    order = np.argsort(flat_l, kind="stable")
    lab, val = flat_l[order], flat_v[order]
    same_label = lab[1:] == lab[:-1]
    return bool(np.all(val[1:][same_label] == val[:-1][same_label]))


@dataclass(frozen=True)
class WeightGranularity:
    """The weight scales as stored and what they mean for the node's group count.

    ``stored``: ``per_tensor`` / ``per_axis`` / ``blocked``; ``axis`` as written
    (None per tensor); ``block_size``; ``scales``: how many scale values;
    ``meaning``: one of ``per_tensor``, ``per_output_channel``,
    ``axis1_shared_across_groups``, ``per_input_channel``, ``other``,
    ``invalid``; ``detail``: one sentence.
    """

    stored: str
    axis: int | None
    block_size: int
    scales: int
    meaning: str
    detail: str

    def to_dict(self) -> dict[str, object]:
        return {"stored": self.stored, "axis": self.axis, "block_size": self.block_size,
                "scales": self.scales, "meaning": self.meaning, "detail": self.detail}


def weight_granularity(w: QParams, w_shape: tuple[int, ...], group: int) -> WeightGranularity:
    """Classify ``w``'s scales on a weight of ``w_shape`` with ``group`` groups (module doc)."""
    stored = w.granularity
    axis = None if stored == "per_tensor" else w.axis
    n = int(w.scale.size)
    try:
        scale, _ = w.expand(w_shape)
    except QuantError as exc:
        return WeightGranularity(stored, axis, w.block_size, n, "invalid", str(exc))
    full = np.broadcast_to(scale, w_shape)
    cin, cpo = w_shape[0], w_shape[1]
    c_out = cpo * group
    if np.unique(full).size == 1:
        meaning, what = "per_tensor", "one scale for every output channel"
    elif group > 1 and _constant_over(full, _labels("axis1_shared_across_groups", w_shape, group)):
        meaning = "axis1_shared_across_groups"
        what = (f"{cpo} scales on axis 1 (C_out/group), each shared by the {group} groups' "
                f"output channels j, j+{cpo}, ...")
    elif _constant_over(full, _labels("per_output_channel", w_shape, group)):
        meaning, what = "per_output_channel", f"one scale per output channel ({c_out})"
    elif _constant_over(full, _labels("per_input_channel", w_shape, group)):
        meaning = "per_input_channel"
        what = (f"one scale per input channel ({cin}): output channel co mixes "
                f"{cin // max(group, 1)} input channels' scales")
    else:
        meaning, what = "other", "scales vary within output channels"
    where = {"per_tensor": "per tensor", "per_axis": f"axis {w.axis}",
             "blocked": f"blocked axis {w.axis}, block_size {w.block_size}"}[stored]
    return WeightGranularity(stored, axis, w.block_size, n, meaning,
                             f"{where}, {n} scale(s), group {group}: {what}")


@dataclass(frozen=True)
class IntegerEvidence:
    """What the stored integers say: per slicing, how many slices reach the type's limit.

    ``full[kind] = (slices at the limit, slices with a nonzero weight)``;
    ``made``: the slicing the integers show (None when none fits), ``declared``:
    the stored scales' meaning, ``consistent``: whether they agree.
    """

    declared: str
    full: dict[str, tuple[int, int]]
    made: str | None
    reach: tuple[int, ...]

    @property
    def consistent(self) -> bool:
        return self.made == self.declared

    def describe(self) -> str:
        counts = "; ".join(f"{k}: {a} of {b} slices reach the limit"
                           for k, (a, b) in self.full.items())
        return f"max |q - zp| per declared slice {list(self.reach)[:16]} ({counts})"


def _slice_limit(d: np.ndarray, q: np.ndarray, qmin: int, qmax: int) -> str | None:
    """Which limit a slice's integers reach: ``full`` or ``reduced`` (onnxruntime's
    reduce_range), None (neither: not made with a MinMax scale of this slice).

    Symmetric (zero point 0): ``max|q|`` is 127 or 128 (int8-like; ``full``) or 64
    (``reduced``). Asymmetric: MinMax maps ``min(w, 0)`` and ``max(w, 0)`` to both ends
    of the range (within 1 for the rounded zero point; an end no weight reaches is the
    zero point itself): ``full``, or reduce_range's ends: ``reduced``.
    """
    half = (qmax - qmin + 1) // 2
    rr_lo, rr_hi = (-(half // 2), half // 2) if qmin < 0 else (0, half - 1)
    zp = q - d
    if not np.any(zp):   # zero point 0
        reach = int(np.max(np.abs(d)))
        return "full" if reach in (half - 1, half) else "reduced" if reach == half // 2 else None
    # the range MinMax quantizes always holds 0: an end no value reaches is the zero point
    lo = min(int(q.min()), int(zp.min()))
    hi = max(int(q.max()), int(zp.max()))
    if lo <= qmin + 1 and hi >= qmax - 1:
        return "full"
    return "reduced" if abs(lo - rr_lo) <= 1 and abs(hi - rr_hi) <= 1 else None


def integer_evidence(w: QParams, w_int: np.ndarray, group: int, declared: str
                     ) -> IntegerEvidence | None:
    """The slicing the integers were made with, against ``declared`` (module doc).

    ``declared`` is :attr:`WeightGranularity.meaning`; None for ``invalid`` /
    ``other`` (nothing to compare), or when the zero point does not fit.
    """
    if declared not in SLICINGS:
        return None
    shape = tuple(int(d) for d in w_int.shape)
    try:
        _, zp = w.expand(shape)
    except QuantError:
        return None
    q = w_int.astype(np.int64)
    d = q - np.broadcast_to(zp, shape).astype(np.int64)
    full: dict[str, tuple[int, int]] = {}
    reach: tuple[int, ...] = ()
    for kind in SLICINGS:
        if kind == "axis1_shared_across_groups" and group == 1:
            continue
        labels = _labels(kind, shape, group)
        total = 0
        reaches = []
        kinds: dict[str | None, int] = {}
        for lab in np.unique(labels):
            sel = labels == lab
            if not np.any(d[sel]):
                continue
            total += 1
            got = _slice_limit(d[sel], q[sel], w.qmin, w.qmax)
            kinds[got] = kinds.get(got, 0) + 1
            reaches.append(int(np.max(np.abs(d[sel]))))
        # slices made alike reach the same kind of limit (a full-range and a reduce_range
        # slice together are a coincidence, not one quantization)
        hits = max((n for k, n in kinds.items() if k is not None), default=0)
        full[kind] = (hits, total)
        if kind == declared:
            reach = tuple(reaches)
    # the finest slicing whose every slice reaches the limit made the integers (a coarser
    # quantization leaves most finer slices short of it); the declared one when none is finer
    at_limit = sorted((k for k in full if full[k][1] >= 1 and full[k][0] == full[k][1]),
                      key=lambda k: -full[k][1])
    made = at_limit[0] if at_limit else None
    if made is not None and declared in at_limit and full[made][1] <= full[declared][1]:
        made = declared
    return IntegerEvidence(declared, full, made, reach)
