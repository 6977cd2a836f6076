"""MOTS evaluation: sMOTSA, MOTSA, MOTSP, MODSA as mots_tools computes them, and HOTA on masks.

CLEAR-style MOTS metrics (Voigtlaender et al., CVPR 2019; ``mots_tools/mots_eval/MOTS_metrics.py``),
per class (1 car, 2 pedestrian) and per frame:

- A ground-truth mask and a predicted mask of the class match when their mask IoU > 0.5. Masks
  of one frame never overlap (checked: ``kitti_mots.check_frame``), so each match is unique.
- ``TP`` = matches, ``TP~`` = sum of their IoU, ``FN`` = |GT| - TP.
- An unmatched prediction is *ignored* when more than half of it (intersection / prediction
  area, pycocotools' crowd IoU) lies in the union of the frame's ignore regions (class 10);
  ``FP`` = |pred| - TP - ignored.
- ``IDS``: per ground-truth track, its frames in order; a switch is counted when the matched
  prediction id differs from the last *non-missing* matched id.
- ``Frag``, ``MT`` (matched in > 80 % of the track's frames), ``ML`` (< 20 %), ``PT`` (the rest)
  follow mots_tools' loop literally, including its quirk that a track first matched in its
  last frame counts one fragmentation.

With ``M`` ground-truth masks: ``MOTSA = 1 - (FN + FP + IDS) / M``, ``sMOTSA = (TP~ - FP - IDS) / M``,
``MODSA = 1 - (FN + FP) / M``, ``MOTSP = TP~ / TP``. Counts are summed over sequences before the
ratios, as mots_tools does; a ratio without a denominator is NaN (mots_tools prints -inf/inf).

HOTA, DetA, AssA, LocA use ``citytrack.eval.hota`` on the mask IoU after TrackEval's KittiMOTS /
MOTSChallenge preprocessing, which removes exactly the ignored predictions above. (TrackEval spares
predictions matched at IoU >= 0.5; at IoU exactly 0.5 at least half of the prediction lies on the
ground-truth mask, which no ignore region overlaps, so it is never more than half inside one.)
Sequences are combined per class as TrackEval's ``combine_sequences``.

Ratios are fractions, as mots_tools and TrackEval hold them (the table prints percentages); counts
are floats (MT/PT/ML as counts of tracks; mots_tools prints them as fractions of the tracks).
Against TrackEval's CLEAR on the same files, sMOTSA/MOTSA/MOTSP/MODSA equal its sMOTA/MOTA/MOTP/MODA
except when an IoU is exactly 0.5 (TrackEval matches it, mots_tools does not; shifted masks do hit
it); Frag differs by definition (TrackEval counts re-starts of a tracked stretch).

Predictions in frames without ground truth count as false positives (mots_tools stops at the last
ground-truth frame of the seqmap, TrackEval refuses frames past the sequence length).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from citytrack.data.formats import kitti_mots
from citytrack.data.formats.errors import FormatError
from citytrack.data.formats.kitti_mots import CAR_CLASS, IGNORE_CLASS, PEDESTRIAN_CLASS, MotsRecord, rle_iou
from citytrack.data.mots_sequences import find_mots_sequences
from citytrack.eval.hota import HotaResult, combine_hota, hota_sequence

PathLike = str | os.PathLike[str]

CLASS_NAMES: dict[int, str] = {CAR_CLASS: "car", PEDESTRIAN_CLASS: "pedestrian"}
"""The evaluated classes of KITTI MOTS / MOTS20 and the names TrackEval uses for them."""

MATCH_IOU = 0.5
"""A ground-truth and a predicted mask match when their IoU is above this (mots_tools)."""
IGNORE_IOA = 0.5
"""An unmatched prediction more than this fraction inside the ignore regions is not an FP."""

METRIC_KEYS: tuple[str, ...] = (
    "sMOTSA", "MOTSA", "MOTSP", "MODSA", "HOTA", "DetA", "AssA", "LocA", "Recall", "Precision",
    "TP", "FP", "FN", "IDS", "MT", "PT", "ML", "Frag",
    "num_gt", "num_pred", "num_ignored", "num_gt_tracks", "num_pred_tracks",
)  # fmt: skip
"""Every key of one row of ``evaluate_mots``, in display order."""

TABLE_COLUMNS: tuple[str, ...] = (
    "sMOTSA", "MOTSA", "MOTSP", "MODSA", "HOTA", "DetA", "AssA", "LocA",
    "TP", "FP", "FN", "IDS", "MT", "PT", "ML", "Frag", "num_gt",
)  # fmt: skip
_PERCENT = {"sMOTSA", "MOTSA", "MOTSP", "MODSA", "HOTA", "DetA", "AssA", "LocA", "Recall", "Precision"}


# --------------------------------------------------------------------------- counting
@dataclass
class MotsCounts:
    """Additive counts of one class in one sequence (or summed over sequences)."""

    tp: int = 0
    tp_iou: float = 0.0  # TP~, the sum of the matches' IoU
    fp: int = 0
    fn: int = 0
    ids: int = 0
    frag: int = 0
    mt: int = 0
    pt: int = 0
    ml: int = 0
    num_gt: int = 0
    num_pred: int = 0  # every prediction of the class, ignored ones included (mots_tools' n_tr)
    num_ignored: int = 0
    num_gt_tracks: int = 0
    num_pred_tracks: int = 0

    def __add__(self, other: MotsCounts) -> MotsCounts:
        return MotsCounts(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})


@dataclass
class _ClassState:
    """What one class collects while the frames of a sequence go by."""

    counts: MotsCounts = field(default_factory=MotsCounts)
    tracks: dict[int, list[int | None]] = field(default_factory=dict)  # gt id -> matched pred id per frame
    pred_ids: set[int] = field(default_factory=set)
    hota_gt: list[np.ndarray] = field(default_factory=list)
    hota_pred: list[np.ndarray] = field(default_factory=list)
    hota_sim: list[np.ndarray] = field(default_factory=list)


def mask_iou(a: Sequence[MotsRecord], b: Sequence[MotsRecord], crowd: bool = False) -> np.ndarray:
    """IoU matrix ``(len(a), len(b))`` by pycocotools; ``crowd`` gives intersection / area of ``a``."""
    return rle_iou([r.coco_rle() for r in a], [r.coco_rle() for r in b], crowd)


def _ignore_region(records: Sequence[MotsRecord]) -> MotsRecord | None:
    """The union of a frame's ignore regions as one record (mots_tools and TrackEval merge them)."""
    if not records:
        return None
    if len(records) == 1:
        return records[0]
    merged = mask_utils.merge([r.coco_rle() for r in records], intersect=False)
    first = records[0]
    return MotsRecord(
        first.frame, first.obj_id, IGNORE_CLASS, first.height, first.width, merged["counts"].decode()
    )


def _frame(
    state: _ClassState, gt: list[MotsRecord], pred: list[MotsRecord], ignore: MotsRecord | None
) -> None:
    """Match one frame of one class and add its counts, track entries and HOTA inputs."""
    iou = mask_iou(gt, pred)
    rows, cols = np.nonzero(iou > MATCH_IOU)
    matched = np.zeros(len(pred), dtype=bool)
    matched[cols] = True
    ignored = np.zeros(len(pred), dtype=bool)
    unmatched = np.flatnonzero(~matched)
    if ignore is not None and unmatched.size:
        inside = mask_iou([pred[i] for i in unmatched], [ignore], crowd=True)[:, 0]
        ignored[unmatched[inside > IGNORE_IOA]] = True
    c = state.counts
    c.tp += len(rows)
    c.tp_iou += float(iou[rows, cols].sum())
    c.fn += len(gt) - len(rows)
    c.fp += len(pred) - len(rows) - int(ignored.sum())
    c.num_gt += len(gt)
    c.num_pred += len(pred)
    c.num_ignored += int(ignored.sum())
    for record in gt:
        state.tracks.setdefault(record.obj_id, []).append(None)
    for r, col in zip(rows, cols, strict=True):
        state.tracks[gt[r].obj_id][-1] = pred[col].obj_id
    state.pred_ids.update(r.obj_id for r in pred)
    keep = ~ignored
    state.hota_gt.append(np.array([r.obj_id for r in gt], dtype=np.int64))
    state.hota_pred.append(np.array([r.obj_id for r, k in zip(pred, keep, strict=True) if k], dtype=np.int64))
    state.hota_sim.append(iou[:, keep])


def track_stats(track: Sequence[int | None]) -> tuple[int, int, float]:
    """ID switches, fragmentations and tracked fraction of one ground-truth track.

    ``track`` holds, for each frame the track is present in, the matched prediction id or None.
    This is mots_tools' loop, kept literally (its fragmentation rule is not TrackEval's).
    """
    g = list(track)
    ids = frag = 0
    last = g[0]
    for f in range(1, len(g)):
        if last is not None and g[f] is not None and g[f] != last:
            ids += 1
        if (
            f < len(g) - 1
            and g[f - 1] != g[f]
            and last is not None
            and g[f] is not None
            and g[f + 1] is not None
        ):
            frag += 1
        if g[f] is not None:
            last = g[f]
    if len(g) > 1 and g[-2] != g[-1] and g[-1] is not None:  # the last frame, as mots_tools
        frag += 1
    tracked = sum(m is not None for m in g)
    return ids, frag, tracked / len(g)


def _finish(state: _ClassState) -> tuple[MotsCounts, HotaResult]:
    c = state.counts
    for track in state.tracks.values():
        ids, frag, ratio = track_stats(track)
        c.ids += ids
        c.frag += frag
        if ratio > 0.8:
            c.mt += 1
        elif ratio < 0.2:
            c.ml += 1
        else:
            c.pt += 1
    c.num_gt_tracks = len(state.tracks)
    c.num_pred_tracks = len(state.pred_ids)
    return c, hota_sequence(state.hota_gt, state.hota_pred, state.hota_sim)


def sequence_counts(
    gt: Iterable[MotsRecord],
    pred: Iterable[MotsRecord],
    classes: Sequence[int] = (CAR_CLASS, PEDESTRIAN_CLASS),
    name: str = "<sequence>",
) -> dict[int, tuple[MotsCounts, HotaResult]]:
    """Counts and HOTA arrays of every class of one sequence.

    Raises ``FormatError`` naming ``name`` and the frame where masks of a frame overlap, repeat
    an obj_id or differ in size, or where predictions and ground truth differ in image size.
    """
    gt_frames = kitti_mots.group_by_frame(gt)
    pred_frames = kitti_mots.group_by_frame(pred)
    states = {c: _ClassState() for c in classes}
    for frame in sorted(set(gt_frames) | set(pred_frames)):
        gts, preds = gt_frames.get(frame, []), pred_frames.get(frame, [])
        kitti_mots.check_frame(gts, f"{name} ground truth")
        kitti_mots.check_frame(preds, f"{name} prediction")
        if gts and preds and (gts[0].height, gts[0].width) != (preds[0].height, preds[0].width):
            raise FormatError(
                f"{name} prediction",
                f"frame {frame}: masks are {preds[0].height}x{preds[0].width}, "
                f"the ground truth's {gts[0].height}x{gts[0].width}",
            )
        ignore = _ignore_region([r for r in gts if r.class_id == IGNORE_CLASS])
        for class_id, state in states.items():
            g = [r for r in gts if r.class_id == class_id]
            p = [r for r in preds if r.class_id == class_id]
            _frame(state, g, p, ignore)
    return {c: _finish(s) for c, s in states.items()}


# --------------------------------------------------------------------------- metrics
def _nan_ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan


def metrics_from_counts(c: MotsCounts, hota: HotaResult) -> dict[str, float]:
    """One row of ``METRIC_KEYS`` from additive counts and HOTA arrays."""
    h = hota.summary()
    m = c.num_gt
    out = {
        "sMOTSA": _nan_ratio(c.tp_iou - c.fp - c.ids, m),
        "MOTSA": 1.0 - _nan_ratio(c.fn + c.fp + c.ids, m),
        "MOTSP": _nan_ratio(c.tp_iou, c.tp),
        "MODSA": 1.0 - _nan_ratio(c.fn + c.fp, m),
        "HOTA": h["HOTA"],
        "DetA": h["DetA"],
        "AssA": h["AssA"],
        "LocA": h["LocA"],
        "Recall": _nan_ratio(c.tp, c.tp + c.fn),
        "Precision": _nan_ratio(c.tp, c.tp + c.fp),
        "TP": c.tp,
        "FP": c.fp,
        "FN": c.fn,
        "IDS": c.ids,
        "MT": c.mt,
        "PT": c.pt,
        "ML": c.ml,
        "Frag": c.frag,
        "num_gt": c.num_gt,
        "num_pred": c.num_pred,
        "num_ignored": c.num_ignored,
        "num_gt_tracks": c.num_gt_tracks,
        "num_pred_tracks": c.num_pred_tracks,
    }
    return {k: float(out[k]) for k in METRIC_KEYS}


def _class_ids(classes: Iterable[int | str]) -> list[int]:
    by_name = {v: k for k, v in CLASS_NAMES.items()}
    out = []
    for c in classes:
        cid = by_name.get(c) if isinstance(c, str) else int(c)
        if cid not in CLASS_NAMES:
            raise ValueError(f"unknown MOTS class {c!r}: expected one of {CLASS_NAMES}")
        out.append(cid)
    return out


def evaluate_mots(
    gt: Mapping[str, Sequence[MotsRecord]],
    pred: Mapping[str, Sequence[MotsRecord]],
    classes: Sequence[int | str] = (CAR_CLASS, PEDESTRIAN_CLASS),
    per_sequence: bool = False,
) -> dict[str, dict[str, float]]:
    """MOTS metrics per class name (``'car'``, ``'pedestrian'``) over all sequences of ``gt``.

    ``gt`` and ``pred`` map a sequence name to its records (ignore regions, class 10, in ``gt``).
    A sequence of ``gt`` missing from ``pred`` is an error (an empty list is an empty result);
    predictions for sequences without ground truth are not evaluated. With ``per_sequence``,
    rows ``'<class>/<sequence>'`` are added. Values as ``METRIC_KEYS`` (module docstring).
    """
    if not gt:
        raise ValueError("evaluate_mots: no ground-truth sequences given")
    missing = sorted(set(gt) - set(pred))
    if missing:
        raise ValueError(f"evaluate_mots: no predictions for sequences {missing}")
    class_ids = _class_ids(classes)
    per_seq = {name: sequence_counts(gt[name], pred[name], class_ids, name) for name in sorted(gt)}
    out: dict[str, dict[str, float]] = {}
    for cid in class_ids:
        results = [per_seq[name][cid] for name in per_seq]
        total = sum((c for c, _ in results), MotsCounts())
        out[CLASS_NAMES[cid]] = metrics_from_counts(total, combine_hota([h for _, h in results]))
    if per_sequence:
        for cid in class_ids:
            for name, result in per_seq.items():
                out[f"{CLASS_NAMES[cid]}/{name}"] = metrics_from_counts(*result[cid])
    return out


# --------------------------------------------------------------------------- folders
def _label_files(root: Path) -> dict[str, Path]:
    """Ground-truth files of sequences whose images are not on disk (evaluation needs none)."""
    if (root / "gt" / "gt.txt").is_file():
        return {root.name: root / "gt" / "gt.txt"}
    if (root / "instances_txt").is_dir():
        return {p.stem: p for p in sorted((root / "instances_txt").glob("*.txt"))}
    if root.is_dir():
        return {
            d.name: d / "gt" / "gt.txt" for d in sorted(root.iterdir()) if (d / "gt" / "gt.txt").is_file()
        }
    return {}


def load_mots_ground_truth(root: PathLike, split: str | None = None) -> dict[str, list[MotsRecord]]:
    """Ground truth of every labelled sequence under ``root`` (any layout ``find_mots_sequences`` knows).

    Also accepts those layouts without their images (``SEQ/gt/gt.txt``, ``instances_txt/SEQ.txt``),
    as evaluation servers and the shared MOTS20 copy have them.
    """
    root = Path(root)
    try:
        sequences = [s for s in find_mots_sequences(root, split=split) if s.labelled]
    except FileNotFoundError:
        sequences = []
    if sequences:
        return {s.name: [r for frame in s.records.values() for r in frame] for s in sequences}
    base = root / split if split is not None and (root / split).is_dir() else root
    files = _label_files(base)
    if not files:
        raise FileNotFoundError(
            f"no MOTS ground truth under {base}: looked for image_02/ with instances_txt/ or instances/ "
            "(KITTI MOTS), SEQ/gt/gt.txt (MOTS20), with or without the images"
        )
    return {name: kitti_mots.read_instances_txt(path) for name, path in files.items()}


def _image_sizes(gt: Mapping[str, Sequence[MotsRecord]]) -> dict[str, tuple[int, int]]:
    """Each sequence's image size, where its ground truth has a single one."""
    out = {}
    for name, records in gt.items():
        sizes = {(r.height, r.width) for r in records}
        if len(sizes) == 1:
            out[name] = sizes.pop()
    return out


def read_mots_predictions(
    path: PathLike,
    names: Iterable[str] | None = None,
    image_sizes: Mapping[str, tuple[int, int]] | None = None,
) -> dict[str, list[MotsRecord]]:
    """Predictions as ``{sequence: records}`` from a folder of ``SEQ.txt`` files or a zip of them.

    ``names`` are the sequences needed: each must have a file (an empty file is an empty result,
    a missing one an error naming it). ``image_sizes`` are checked line by line where given.
    """
    path = Path(path)
    image_sizes = image_sizes or {}
    if path.is_file():
        found = kitti_mots.read_instances_zip(path, image_sizes=image_sizes)
    elif path.is_dir():
        wanted = sorted(names) if names is not None else sorted(p.stem for p in path.glob("*.txt"))
        found = {
            n: kitti_mots.read_instances_txt(path / f"{n}.txt", image_size=image_sizes.get(n))
            for n in wanted
            if (path / f"{n}.txt").is_file()
        }
    else:
        raise FileNotFoundError(f"predictions {path} do not exist")
    missing = sorted(set(names or ()) - set(found))
    if missing:
        raise FileNotFoundError(f"{path}: no prediction file for sequences {missing} (expected SEQ.txt each)")
    return found


def evaluate_mots_folder(
    gt_root: PathLike,
    predictions: PathLike,
    classes: Sequence[int | str] = (CAR_CLASS, PEDESTRIAN_CLASS),
    split: str | None = None,
    per_sequence: bool = True,
) -> dict[str, dict[str, float]]:
    """``evaluate_mots`` of a ground-truth root against a folder or zip of ``SEQ.txt`` results."""
    gt = load_mots_ground_truth(gt_root, split=split)
    pred = read_mots_predictions(predictions, names=list(gt), image_sizes=_image_sizes(gt))
    return evaluate_mots(gt, pred, classes=classes, per_sequence=per_sequence)


# --------------------------------------------------------------------------- command line
def format_mots_table(
    result: Mapping[str, Mapping[str, float]], columns: Sequence[str] = TABLE_COLUMNS
) -> str:
    """Plain-text table of ``evaluate_mots`` rows: ratios as percentages with 2 decimals, counts as integers."""
    header = ["", *columns]
    body = [
        [row, *(f"{100 * v[c]:.2f}" if c in _PERCENT else f"{v[c]:.0f}" for c in columns)]
        for row, v in result.items()
    ]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [header, *body]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m citytrack.eval.mots",
        description="MOTS metrics (sMOTSA, MOTSA, MOTSP, MODSA, IDS, ... as mots_tools; HOTA on masks as TrackEval).",
    )
    parser.add_argument("gt_root", help="KITTI MOTS split folder, MOTS20 folder or one sequence")
    parser.add_argument("predictions", help="folder of SEQ.txt (instances_txt format) or a zip of them")
    parser.add_argument("--split", default=None, help="subfolder of GT_ROOT to use (e.g. training)")
    parser.add_argument(
        "--classes", nargs="+", default=["car", "pedestrian"], choices=sorted(CLASS_NAMES.values())
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    try:
        result = evaluate_mots_folder(args.gt_root, args.predictions, classes=args.classes, split=args.split)
    except (FileNotFoundError, ValueError) as err:  # FormatError included: the message names file and line
        parser.error(str(err))
    print(json.dumps(result, indent=2) if args.json else format_mots_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "CLASS_NAMES",
    "METRIC_KEYS",
    "MotsCounts",
    "evaluate_mots",
    "evaluate_mots_folder",
    "format_mots_table",
    "load_mots_ground_truth",
    "mask_iou",
    "metrics_from_counts",
    "read_mots_predictions",
    "sequence_counts",
    "track_stats",
]
