"""MOTChallenge evaluation: CLEAR MOT, identity (IDF1) and HOTA metrics of a 2D box tracker.

Input tables are MOTChallenge float64 arrays ``(N, 10)``: ``frame, id, x, y, w, h, conf,
cls, vis, z`` (``citytrack.data.formats.mot.read_mot``); at least the first 6 columns are
needed, 8 for MOT17 ground truth.

Preprocessing (``distractor_handling``), as TrackEval's ``MotChallenge2DBox`` and the
official MOTChallenge devkit do it, frame by frame:

- ``"mot17"`` (MOT16/17): gt ``cls`` must be a MOTChallenge class id (1..13).
  Every prediction is first matched to *all* gt boxes of the frame (Hungarian on IoU,
  pairs with IoU >= 0.5 only, regardless of class or mark); predictions matched to a
  distractor box (class 2 person_on_vehicle, 7 static_person, 8 distractor,
  12 reflection) are deleted and count neither as TP nor FP. Then only gt rows of class 1
  (pedestrian) with a non-zero ``conf`` mark are kept as ground truth. Predictions matched
  to other non-pedestrian gt (e.g. 4 bicycle, 9 occluder) or to zero-marked pedestrians
  stay and may be FPs. Predictions must have ``cls <= 1`` (MOTChallenge evaluates
  pedestrians only). The visibility column is not used, as in the official devkit.
- ``"mot15"`` (2D MOT 2015): there are no classes (``cls`` holds -1 / world coordinates);
  gt rows with ``conf == 0`` are dropped, every other row is a pedestrian.
- ``"none"``: every gt row is ground truth, nothing is removed (py-motmetrics'
  ``compare_to_groundtruth``).
- ``"auto"`` (default): ``"mot17"`` when every gt ``cls`` is an integer in 1..13,
  otherwise ``"mot15"``.

Metrics (all at IoU ``>= iou_threshold``, default 0.5):

- CLEAR MOT (Bernardin & Stiefelhagen 2008) from ``motmetrics.MOTAccumulator``:
  ``MOTA = 1 - (FN + FP + IDs) / num_gt``; ``MOTP`` = mean IoU of the matches, reported
  as a percentage like MOTChallenge/TrackEval (py-motmetrics reports the mean distance
  ``1 - IoU``); MT/PT/ML = gt trajectories tracked for >= 80 %, 20-80 %, < 20 % of their
  frames; ``Frag`` = interruptions of a tracked gt trajectory.
- Identity (Ristani et al. 2016): ``IDF1 = 2 IDTP / (2 IDTP + IDFP + IDFN)`` after the
  global one-to-one gt-id/pred-id assignment, ``IDP``, ``IDR``.
- HOTA, DetA, AssA, LocA (``citytrack.eval.hota``), averaged over alpha 0.05..0.95.

Percentages are reported 0-100; counts as floats. ``num_gt`` is the number of gt boxes
after preprocessing (the MOTA denominator), ``TP`` the matched gt boxes (ID switches
included), ``Recall = TP / num_gt``, ``Precision = TP / (TP + FP)``.

CLEAR matching is motmetrics' (``MOTAccumulator.update``): a gt id keeps the prediction id
it was *last* matched to whenever that pair is still valid, even after a gap, and the rest
is solved by min-cost assignment on ``1 - IoU``. TrackEval and the MATLAB devkit only carry
forward the previous frame's pairs, so IDs, MOTP and Frag can differ from TrackEval by a
few in thousands (FP, FN, IDF1 and HOTA agree; see tests/test_eval_mot_metrics.py).

motmetrics 1.4.0 under NumPy 2: ``motmetrics.distances.iou_matrix`` (hence
``utils.compare_to_groundtruth``) calls the removed ``np.asfarray``, so the IoU matrices
are computed here and handed to ``MOTAccumulator.update`` as distances ``1 - IoU`` with
NaN for pairs below the threshold. The accumulator, ``metrics.create().compute`` and
``io.loadtxt`` work under NumPy 2 / pandas 3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import motmetrics as mm
import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from citytrack.data.formats.mot import (  # re-exported: the MOTChallenge classes the metrics use
    CLS,
    CONF,
    DISTRACTOR_CLASSES,
    FRAME,
    ID,
    PEDESTRIAN,
    VALID_CLASSES,
    H,
    W,
    X,
)
from citytrack.eval.hota import HotaResult, combine_hota, hota_sequence
from citytrack.utils.boxes import xywh_to_xyxy

DistractorHandling = Literal["auto", "mot17", "mot15", "none"]
_MODES = ("auto", "mot17", "mot15", "none")

DISTRACTOR_IOU = 0.5
"""IoU at which a prediction is matched to a distractor box (fixed, as in TrackEval)."""

_EPS = np.finfo("float").eps

METRIC_KEYS: tuple[str, ...] = (
    "HOTA", "DetA", "AssA", "LocA", "DetRe", "DetPr", "AssRe", "AssPr",
    "MOTA", "MOTP", "IDF1", "IDP", "IDR", "Precision", "Recall",
    "IDs", "FP", "FN", "MT", "PT", "ML", "Frag",
    "num_gt", "num_pred", "num_gt_ids", "num_pred_ids", "TP", "num_frames",
    "IDTP", "IDFP", "IDFN",
)  # fmt: skip
"""Every key of the dict ``evaluate_mot`` returns, in display order."""

_MM_METRICS = [
    "num_frames", "num_detections", "num_switches", "num_false_positives", "num_misses",
    "num_objects", "num_predictions", "num_unique_objects", "mostly_tracked",
    "partially_tracked", "mostly_lost", "num_fragmentations", "motp", "idtp", "idfp", "idfn",
]  # fmt: skip


# --------------------------------------------------------------------------- preprocessing
def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``(len(a), len(b))`` of ``x, y, w, h`` boxes, exactly as TrackEval.

    Degenerate boxes (zero area) have IoU 0 with everything.
    """
    a = np.asarray(a, dtype=float).reshape(-1, 4)
    b = np.asarray(b, dtype=float).reshape(-1, 4)
    a1, b1 = xywh_to_xyxy(a), xywh_to_xyxy(b)
    lo = np.minimum(a1[:, None, :], b1[None, :, :])
    hi = np.maximum(a1[:, None, :], b1[None, :, :])
    inter = np.maximum(lo[..., 2] - hi[..., 0], 0) * np.maximum(lo[..., 3] - hi[..., 1], 0)
    area_a = (a1[:, 2] - a1[:, 0]) * (a1[:, 3] - a1[:, 1])
    area_b = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    inter[area_a <= 0 + _EPS, :] = 0
    inter[:, area_b <= 0 + _EPS] = 0
    inter[union <= 0 + _EPS] = 0
    union[union <= 0 + _EPS] = 1
    return inter / union


@dataclass
class SequenceData:
    """One sequence after preprocessing: per-frame ids and gt x prediction IoU."""

    frames: np.ndarray
    gt_ids: list[np.ndarray]
    pred_ids: list[np.ndarray]
    similarity: list[np.ndarray]
    mode: str
    num_removed_pred: int = 0

    @property
    def num_gt(self) -> int:
        return int(sum(len(g) for g in self.gt_ids))

    @property
    def num_pred(self) -> int:
        return int(sum(len(p) for p in self.pred_ids))


def _check_table(table: np.ndarray, what: str, name: str, min_columns: int) -> np.ndarray:
    arr = np.asarray(table, dtype=np.float64)
    if arr.ndim != 2 or (arr.shape[0] and arr.shape[1] < min_columns):
        raise ValueError(
            f"{name}: {what} must be a (N, 10) MOTChallenge table with at least {min_columns} columns, "
            f"got shape {arr.shape}"
        )
    if arr.shape[0] == 0:
        return np.zeros((0, max(min_columns, 10)))
    cols = arr[:, :min_columns]
    if not np.all(np.isfinite(cols)):
        row = int(np.flatnonzero(~np.isfinite(cols).all(1))[0])
        raise ValueError(f"{name}: {what} row {row} has a non-finite value: {arr[row].tolist()}")
    for col, label in ((FRAME, "frame"), (ID, "id")):
        bad = cols[:, col] != np.round(cols[:, col])
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{name}: {what} row {row} has a non-integer {label} {cols[row, col]!r}")
    bad = (cols[:, W] < 0) | (cols[:, H] < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}: {what} row {row} has a negative box size: {arr[row].tolist()}")
    return arr


def _group(table: np.ndarray, frames: np.ndarray) -> list[np.ndarray]:
    """Rows of ``table`` for each frame of ``frames`` (sorted), file order kept within a frame."""
    order = np.argsort(table[:, FRAME], kind="stable")
    ordered = table[order]
    pos = np.searchsorted(ordered[:, FRAME], frames, side="left")
    end = np.searchsorted(ordered[:, FRAME], frames, side="right")
    return [ordered[s:e] for s, e in zip(pos, end, strict=True)]


def _resolve_mode(gt: np.ndarray, mode: str, name: str) -> str:
    if mode not in _MODES:
        raise ValueError(f"{name}: distractor_handling must be one of {_MODES}, got {mode!r}")
    if mode != "auto":
        return mode
    if gt.shape[1] > CLS and len(gt):
        cls = gt[:, CLS]
        if np.all(np.isin(cls, VALID_CLASSES)):
            return "mot17"
    return "mot15"


def preprocess_sequence(
    gt: np.ndarray,
    pred: np.ndarray,
    distractor_handling: DistractorHandling = "auto",
    name: str = "<sequence>",
) -> SequenceData:
    """Group by frame, compute IoU and apply the MOTChallenge preprocessing (module docstring).

    Raises ``ValueError`` naming ``name`` on malformed tables, duplicate ids within a frame,
    unknown gt classes (mot17) or non-pedestrian predictions (mot17).
    """
    gt = _check_table(gt, "ground truth", name, 6)
    pred = _check_table(pred, "prediction", name, 6)
    mode = _resolve_mode(gt, distractor_handling, name)
    if mode == "mot17":
        if gt.shape[1] <= CLS:
            raise ValueError(f"{name}: MOT17 evaluation needs the gt class column (8th), gt has {gt.shape[1]}")
        bad = ~np.isin(gt[:, CLS], VALID_CLASSES)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{name}: ground truth row {row} has class {gt[row, CLS]!r}, not a MOTChallenge class 1..13 "
                f"(use distractor_handling='mot15' or 'none' for files without classes)"
            )
        if pred.shape[1] > CLS and len(pred) and np.any(pred[:, CLS] > 1):
            row = int(np.flatnonzero(pred[:, CLS] > 1)[0])
            raise ValueError(
                f"{name}: prediction row {row} has class {pred[row, CLS]!r}; MOT17 evaluation is only valid "
                "for pedestrians (class 1 or -1)"
            )
    frames = np.union1d(gt[:, FRAME], pred[:, FRAME]).astype(np.int64)
    gt_groups = _group(gt, frames)
    pred_groups = _group(pred, frames)
    data = SequenceData(frames=frames, gt_ids=[], pred_ids=[], similarity=[], mode=mode)
    for frame, g, p in zip(frames, gt_groups, pred_groups, strict=True):
        for rows, what in ((g, "ground truth"), (p, "prediction")):
            ids = rows[:, ID]
            if len(np.unique(ids)) != len(ids):
                uniq, counts = np.unique(ids, return_counts=True)
                raise ValueError(f"{name}: {what} id {int(uniq[counts > 1][0])} appears twice in frame {frame}")
        sim = box_iou(g[:, X : H + 1], p[:, X : H + 1])
        if mode == "mot17" and len(g) and len(p):
            scores = sim.copy()
            scores[scores < DISTRACTOR_IOU - _EPS] = 0
            rows, cols = linear_sum_assignment(-scores)
            matched = scores[rows, cols] > 0 + _EPS
            rows, cols = rows[matched], cols[matched]
            remove = cols[np.isin(g[rows, CLS], DISTRACTOR_CLASSES)]
            if len(remove):
                p = np.delete(p, remove, axis=0)
                sim = np.delete(sim, remove, axis=1)
                data.num_removed_pred += len(remove)
        if mode == "mot17":
            keep = (g[:, CONF] != 0) & (g[:, CLS] == PEDESTRIAN)
        elif mode == "mot15":
            keep = g[:, CONF] != 0
        else:
            keep = np.ones(len(g), dtype=bool)
        data.gt_ids.append(g[keep, ID].astype(np.int64))
        data.pred_ids.append(p[:, ID].astype(np.int64))
        data.similarity.append(sim[keep])
    return data


# --------------------------------------------------------------------------- metrics
@dataclass
class SequenceCounts:
    """Additive counts of one sequence (or sums over sequences) and its HOTA arrays."""

    counts: dict[str, float] = field(default_factory=dict)
    hota: HotaResult | None = None


def clear_identity_counts(data: SequenceData, iou_threshold: float = 0.5) -> dict[str, float]:
    """CLEAR MOT and identity counts of a preprocessed sequence through ``motmetrics``."""
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    acc = mm.MOTAccumulator(auto_id=False)
    for frame, g, p, sim in zip(data.frames, data.gt_ids, data.pred_ids, data.similarity, strict=True):
        dist = 1.0 - sim
        dist[sim < iou_threshold - _EPS] = np.nan
        acc.update(g, p, dist, frameid=int(frame))
    summary = mm.metrics.create().compute(acc, metrics=_MM_METRICS, name="seq")
    row = summary.loc["seq"]
    matches = float(row["num_detections"])  # MATCH + SWITCH events: every matched gt box
    motp_dist = float(row["motp"]) if matches > 0 else 0.0  # mean 1 - IoU over them
    return {
        "num_frames": float(len(data.frames)),
        "TP": matches,
        "IDs": float(row["num_switches"]),
        "FP": float(row["num_false_positives"]),
        "FN": float(row["num_misses"]),
        "num_gt": float(row["num_objects"]),
        "num_pred": float(row["num_predictions"]),
        "num_gt_ids": float(row["num_unique_objects"]),
        "num_pred_ids": float(len(np.unique(np.concatenate(data.pred_ids)))) if data.num_pred else 0.0,
        "MT": float(row["mostly_tracked"]),
        "PT": float(row["partially_tracked"]),
        "ML": float(row["mostly_lost"]),
        "Frag": float(row["num_fragmentations"]),
        "sum_iou": matches * (1.0 - motp_dist),
        "IDTP": float(row["idtp"]),
        "IDFP": float(row["idfp"]),
        "IDFN": float(row["idfn"]),
    }


def _ratio(num: float, den: float) -> float:
    return 100.0 * num / den if den > 0 else 0.0


def _finalise(counts: Mapping[str, float], hota: HotaResult) -> dict[str, float]:
    """Derived metrics (percentages) from additive counts and HOTA arrays."""
    c = dict(counts)
    out: dict[str, float] = {}
    h = hota.summary()
    for key in ("HOTA", "DetA", "AssA", "LocA", "DetRe", "DetPr", "AssRe", "AssPr"):
        out[key] = 100.0 * h[key]
    num_gt = c["num_gt"]
    out["MOTA"] = 100.0 * (1.0 - (c["FN"] + c["FP"] + c["IDs"]) / num_gt) if num_gt > 0 else 0.0
    out["MOTP"] = _ratio(c["sum_iou"], c["TP"])
    out["IDF1"] = _ratio(2 * c["IDTP"], 2 * c["IDTP"] + c["IDFP"] + c["IDFN"])
    out["IDP"] = _ratio(c["IDTP"], c["IDTP"] + c["IDFP"])
    out["IDR"] = _ratio(c["IDTP"], c["IDTP"] + c["IDFN"])
    out["Precision"] = _ratio(c["TP"], c["TP"] + c["FP"])
    out["Recall"] = _ratio(c["TP"], num_gt)
    for key in ("IDs", "FP", "FN", "MT", "PT", "ML", "Frag", "num_gt", "num_pred", "num_gt_ids",
                "num_pred_ids", "TP", "num_frames", "IDTP", "IDFP", "IDFN"):  # fmt: skip
        out[key] = float(c[key])
    return {k: out[k] for k in METRIC_KEYS}


def _evaluate_raw(
    gt: np.ndarray,
    pred: np.ndarray,
    iou_threshold: float,
    distractor_handling: DistractorHandling,
    name: str,
) -> SequenceCounts:
    data = preprocess_sequence(gt, pred, distractor_handling=distractor_handling, name=name)
    counts = clear_identity_counts(data, iou_threshold=iou_threshold)
    hota = hota_sequence(data.gt_ids, data.pred_ids, data.similarity)
    return SequenceCounts(counts=counts, hota=hota)


def evaluate_mot(
    gt: np.ndarray,
    pred: np.ndarray,
    iou_threshold: float = 0.5,
    distractor_handling: DistractorHandling = "auto",
    name: str = "<sequence>",
) -> dict[str, float]:
    """All metrics of one sequence (keys ``METRIC_KEYS``; percentages 0-100, counts as floats).

    ``gt`` and ``pred`` are MOTChallenge tables ``(N, 10)``; ``name`` is used in error
    messages. See the module docstring for the preprocessing and the definitions.
    """
    raw = _evaluate_raw(gt, pred, iou_threshold, distractor_handling, name)
    assert raw.hota is not None
    return _finalise(raw.counts, raw.hota)


_ADDITIVE = ("num_frames", "TP", "IDs", "FP", "FN", "num_gt", "num_pred", "num_gt_ids",
             "num_pred_ids", "MT", "PT", "ML", "Frag", "sum_iou", "IDTP", "IDFP", "IDFN")  # fmt: skip


def evaluate_sequences(
    gts: Mapping[str, np.ndarray],
    preds: Mapping[str, np.ndarray],
    iou_threshold: float = 0.5,
    distractor_handling: DistractorHandling = "auto",
    overall_name: str = "OVERALL",
) -> pd.DataFrame:
    """One row per sequence (sorted by name as given) plus an ``OVERALL`` row.

    OVERALL sums the CLEAR/identity counts (MOTA, IDF1, ... recomputed from the sums, as
    MOTChallenge and TrackEval combine sequences; IDF1 is not re-matched across sequences)
    and combines HOTA as TrackEval's ``combine_sequences``. A sequence missing from
    ``preds`` is evaluated as an empty prediction (every gt box a miss); a prediction
    without gt raises.
    """
    if not gts:
        raise ValueError("evaluate_sequences: no ground-truth sequences given")
    extra = sorted(set(preds) - set(gts))
    if extra:
        raise ValueError(f"evaluate_sequences: predictions for sequences without ground truth: {extra}")
    if overall_name in gts:
        raise ValueError(f"evaluate_sequences: a sequence is named {overall_name!r}, the overall row's name")
    rows: dict[str, dict[str, float]] = {}
    raws: list[SequenceCounts] = []
    for name, gt in gts.items():
        pred = preds.get(name, np.zeros((0, 10)))
        raw = _evaluate_raw(gt, pred, iou_threshold, distractor_handling, name)
        assert raw.hota is not None
        raws.append(raw)
        rows[name] = _finalise(raw.counts, raw.hota)
    total = {k: float(sum(r.counts[k] for r in raws)) for k in _ADDITIVE}
    rows[overall_name] = _finalise(total, combine_hota([r.hota for r in raws if r.hota is not None]))
    df = pd.DataFrame.from_dict(rows, orient="index")[list(METRIC_KEYS)]
    df.index.name = "sequence"
    return df


DEFAULT_TABLE_COLUMNS: tuple[str, ...] = (
    "HOTA", "DetA", "AssA", "LocA", "MOTA", "MOTP", "IDF1", "IDP", "IDR",
    "Recall", "Precision", "IDs", "FP", "FN", "MT", "PT", "ML", "Frag", "num_gt",
)  # fmt: skip
_INT_COLUMNS = {"IDs", "FP", "FN", "MT", "PT", "ML", "Frag", "num_gt", "num_pred", "num_gt_ids",
                "num_pred_ids", "TP", "num_frames", "IDTP", "IDFP", "IDFN"}  # fmt: skip


def format_table(df: pd.DataFrame, columns: Sequence[str] = DEFAULT_TABLE_COLUMNS) -> str:
    """Plain-text table of ``evaluate_sequences`` output: percentages with 1 decimal, counts as ints."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"format_table: columns not in the table: {missing}")
    header = ["sequence", *columns]
    body = []
    for name, row in df.iterrows():
        cells = [str(name)]
        for col in columns:
            value = float(row[col])
            cells.append(f"{round(value)}" if col in _INT_COLUMNS else f"{value:.1f}")
        body.append(cells)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(header), *(line(r) for r in body)])


__all__ = [
    "DISTRACTOR_CLASSES",
    "METRIC_KEYS",
    "SequenceData",
    "box_iou",
    "clear_identity_counts",
    "evaluate_mot",
    "evaluate_sequences",
    "format_table",
    "preprocess_sequence",
]
