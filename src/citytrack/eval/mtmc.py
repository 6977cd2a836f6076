"""Multi-target multi-camera (MTMC) metrics of the AI City Challenge Track 1 (people).

Inputs are AI City 2024 tables ``(N, 9)``: ``camera_id obj_id frame_id x y w h xworld yworld``
(``citytrack.data.formats.aicity.AIC24_COLUMNS``, frames 0-based), ground truth and submission
alike; object ids are global across the cameras of a scene.

**AI City 2024** (``evaluate_aic24``): HOTA on the ground plane, as the organisers' evaluator
(NVIDIA's ``aicityeval-track1.py`` over TrackEval's HOTA) computes it. Per scene, for the ground
truth and the prediction alike:

1. keep the rows of the scene's cameras;
2. drop duplicate ``(frame_id, obj_id)`` rows keeping the first in file order, so a person seen
   by several cameras is *one* point per frame: each scene is one sequence whose frame holds the
   frame's unique objects, not one sequence per camera;
3. shift frame ids by +1 (rows with a negative frame are dropped) and round ``xworld, yworld``
   to 3 decimals (``numpy.round``, as pandas' ``round(3)``);
4. similarity ``S(g, p) = max(0, 1 - ||g - p|| / 2 m)`` (``scipy.spatial.distance.cdist``;
   TrackEval's ``_calculate_euclidean_similarity(..., zero_distance=2.0)``), so a match at
   threshold ``alpha`` needs a distance of at most ``2 (1 - alpha)`` m;
5. HOTA, DetA, AssA, LocA, DetRe, DetPr, AssRe, AssPr over ``alpha = 0.05 .. 0.95``
   (``citytrack.eval.hota.hota_sequence``, pinned to TrackEval).

The headline is the *unweighted* mean over scenes of each field (not TrackEval's TP-weighted
combination). A prediction giving one person two ids in two cameras keeps both rows (their
``obj_id`` differ): one can match, the other is a false positive, so cross-camera association
is scored directly. Within a frame rows keep file order; the organisers sort frames with
pandas' unstable sort, which can only matter for exact ties in the per-frame assignment.

**AI City 2023** (``evaluate_aic23_idf1``): identity metrics (Ristani et al. 2016) over all
cameras' boxes. Boxes are matched at IoU >= 0.5 within each ``(camera, frame)``, and *one*
gt-id/predicted-id correspondence is found for the whole set of cameras (global bipartite
matching maximising identity true positives), so a person must keep one id across cameras:
``IDF1 = 2 IDTP / (2 IDTP + IDFP + IDFN)``, ``IDP = IDTP / (IDTP + IDFP)``,
``IDR = IDTP / (IDTP + IDFN)``. Every ``(camera, frame)`` pair is one frame of a single
``motmetrics`` accumulator, cameras in id order and frames in order within a camera (the 2021-23
evaluators concatenated the cameras the same way), which also yields CLEAR MOT counts: an ID
switch includes a person changing id from one camera to the next. Duplicate
``(camera_id, frame_id, obj_id)`` rows keep the first.

**AI City 2019** (``evaluate_aic19_mtmc``, Track 1, city-scale vehicles): the same identity
measures over all cameras, IDF1 ranking, as the dataset's evaluation kit (the MOTChallenge devkit's
multi-camera ``IDmeasures``) computes them: the columns are the same (``camera_id obj_id frame_id
xmin ymin width height xworld yworld``, frames 1-based, GPS world columns unused). The ground truth
holds only vehicles that pass through at least 2 cameras (dataset ReadMe), so a predicted vehicle
seen by one camera only can only add IDFP. The kit refuses a submission with duplicate
``(frame, id)`` rows in a camera; so does ``evaluate_aic19_mtmc`` (``ValueError`` naming the row).

**Per camera** (``evaluate_per_camera``): each camera's boxes as one MOTChallenge sequence,
evaluated by ``citytrack.eval.mot_metrics.evaluate_sequences`` (2D box HOTA, CLEAR, IDF1; every
gt row counts, ``distractor_handling="none"``).

Units: ``evaluate_aic24`` and ``evaluate_aic23_idf1`` return fractions in ``[0, 1]`` (counts as
floats); ``evaluate_per_camera`` returns ``mot_metrics``' table (percentages 0-100).

Command line: ``python -m citytrack.eval.mtmc GT PRED [--aic23 | --aic19] [--per-camera] [--json OUT]``
(``GT``: a ``ground_truth.txt``, a ``scene_XXX`` folder, or a folder of scenes; with ``--aic19``
an ``SXX`` folder, a folder of them, or a 9-column file, and no ground-plane HOTA; ``PRED``: a
``track1.txt`` submission).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist

from citytrack.data.formats import aicity
from citytrack.data.formats.aicity import BH, BX, CAMERA_ID, FRAME_ID, OBJ_ID, XWORLD, YWORLD
from citytrack.data.formats.errors import FormatError
from citytrack.eval.hota import HOTA_FIELDS, hota_sequence
from citytrack.eval.mot_metrics import (
    SequenceData,
    box_iou,
    clear_identity_counts,
    evaluate_sequences,
    format_table,
)
from citytrack.utils.io import atomic_open

PathLike = str | os.PathLike[str]

ZERO_DISTANCE = 2.0
"""Metres at which the ground-plane similarity reaches 0 (the organisers' and TrackEval's value)."""
WORLD_DECIMALS = 3
"""Decimals the organisers round ``xworld, yworld`` to before computing distances."""

AIC23_KEYS: tuple[str, ...] = (
    "IDF1", "IDP", "IDR", "MOTA", "MOTP", "Precision", "Recall",
    "IDTP", "IDFP", "IDFN", "TP", "FP", "FN", "IDs", "MT", "PT", "ML",
    "num_gt", "num_pred", "num_gt_ids", "num_pred_ids", "num_frames", "num_duplicates",
)  # fmt: skip
"""Keys of the dict ``evaluate_aic23_idf1`` returns (``num_frames`` counts ``(camera, frame)`` pairs)."""
AIC19_KEYS: tuple[str, ...] = (
    "IDF1", "IDP", "IDR", "IDTP", "IDFP", "IDFN", "num_gt", "num_pred", "num_gt_ids", "num_pred_ids", "num_frames",
)  # fmt: skip
"""Keys of the dict ``evaluate_aic19_mtmc`` returns."""


# --------------------------------------------------------------------------- helpers
def _check_table(table: np.ndarray, what: str, columns: Sequence[int]) -> np.ndarray:
    """A float ``(N, 9)`` copy; the columns a metric reads must be finite, ids/frames integers."""
    arr = np.asarray(table, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, len(aicity.AIC24_COLUMNS)))
    if arr.ndim != 2 or arr.shape[1] != len(aicity.AIC24_COLUMNS):
        raise ValueError(f"{what} must be an AI City (N, 9) table, got shape {arr.shape}")
    bad = ~np.isfinite(arr[:, list(columns)]).all(1)
    for col in (CAMERA_ID, OBJ_ID, FRAME_ID):
        bad |= arr[:, col] != np.round(arr[:, col])
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{what} row {row} has a non-finite value or a non-integer id/frame: {arr[row].tolist()}"
        )
    return arr


def _keep_first(table: np.ndarray, columns: Sequence[int]) -> np.ndarray:
    """Rows whose values in ``columns`` were not seen before in file order (pandas' drop_duplicates)."""
    if len(table) == 0:
        return table
    _, first = np.unique(table[:, list(columns)], axis=0, return_index=True)
    return table[np.sort(first)]


def _group_rows(
    gt_keys: np.ndarray, pred_keys: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Sorted unique rows of two ``(N, K)`` key arrays; per key, the gt and pred row indices (file order)."""
    keys, inverse = np.unique(np.concatenate([gt_keys, pred_keys]), axis=0, return_inverse=True)
    inverse = np.asarray(inverse).ravel()

    def split(inv: np.ndarray) -> list[np.ndarray]:
        order = np.argsort(inv, kind="stable")
        bounds = np.searchsorted(inv[order], np.arange(len(keys) + 1))
        return [order[a:b] for a, b in itertools.pairwise(bounds)]

    return keys, split(inverse[: len(gt_keys)]), split(inverse[len(gt_keys) :])


def _cameras(*tables: np.ndarray) -> list[int]:
    return sorted({int(c) for t in tables for c in np.unique(t[:, CAMERA_ID])})


# --------------------------------------------------------------------------- AI City 2024
def world_similarity(
    gt_xy: np.ndarray, pred_xy: np.ndarray, zero_distance: float = ZERO_DISTANCE
) -> np.ndarray:
    """``max(0, 1 - distance / zero_distance)`` between ground-plane points, ``(G, P)``."""
    if len(gt_xy) == 0 or len(pred_xy) == 0:
        return np.zeros((len(gt_xy), len(pred_xy)))
    return np.maximum(0.0, 1.0 - cdist(gt_xy, pred_xy) / zero_distance)


def aic24_scene_points(table: np.ndarray, cameras: Collection[int]) -> np.ndarray:
    """The organisers' per-scene preprocessing: ``(K, 4)`` rows ``frame (1-based), id, xworld, yworld``."""
    rows = table[np.isin(table[:, CAMERA_ID], np.asarray(list(cameras), dtype=float))]
    rows = _keep_first(rows, (FRAME_ID, OBJ_ID))
    rows = rows[rows[:, FRAME_ID] >= 0]
    points = np.column_stack(
        [
            rows[:, FRAME_ID] + 1,
            rows[:, OBJ_ID],
            np.round(rows[:, XWORLD], WORLD_DECIMALS),
            np.round(rows[:, YWORLD], WORLD_DECIMALS),
        ]
    )
    return points[np.argsort(points[:, 0], kind="stable")]


def aic24_scene_data(
    gt: np.ndarray, pred: np.ndarray, cameras: Collection[int], zero_distance: float = ZERO_DISTANCE
) -> SequenceData:
    """One scene as one sequence: per frame the unique gt and predicted objects and their similarity."""
    g = aic24_scene_points(gt, cameras)
    p = aic24_scene_points(pred, cameras)
    frames, g_rows, p_rows = _group_rows(g[:, :1], p[:, :1])
    data = SequenceData(
        frames=frames.ravel().astype(np.int64), gt_ids=[], pred_ids=[], similarity=[], mode="aic24"
    )
    for gi, pi in zip(g_rows, p_rows, strict=True):
        data.gt_ids.append(g[gi, 1].astype(np.int64))
        data.pred_ids.append(p[pi, 1].astype(np.int64))
        data.similarity.append(world_similarity(g[gi, 2:4], p[pi, 2:4], zero_distance))
    return data


def _scene_scores(data: SequenceData) -> dict[str, float]:
    scores = hota_sequence(data.gt_ids, data.pred_ids, data.similarity).summary()

    def num_ids(ids: list[np.ndarray]) -> float:
        return float(len(np.unique(np.concatenate(ids)))) if ids else 0.0

    scores.update(
        num_frames=float(len(data.frames)),
        num_gt=float(data.num_gt),
        num_pred=float(data.num_pred),
        num_gt_ids=num_ids(data.gt_ids),
        num_pred_ids=num_ids(data.pred_ids),
    )
    return scores


def evaluate_aic24(
    gt: np.ndarray,
    pred: np.ndarray,
    scenes: Mapping[Any, Collection[int]] | None = None,
    zero_distance: float = ZERO_DISTANCE,
) -> dict[str, Any]:
    """AI City 2024 Track 1 score: ground-plane HOTA per scene and the unweighted mean over scenes.

    ``scenes`` maps a scene name to its camera ids (``None``: every camera of ``gt`` and
    ``pred`` is one scene, named ``"all"``); rows of other cameras are ignored, as the organisers
    do. Returns the means of ``HOTA_FIELDS`` (fractions), ``num_scenes`` and ``scenes``:
    name -> that scene's fields, ``HOTA(0)``, ``LocA(0)``, ``HOTA_TP`` and counts.
    """
    columns = (CAMERA_ID, OBJ_ID, FRAME_ID, XWORLD, YWORLD)
    gt = _check_table(gt, "ground truth", columns)
    pred = _check_table(pred, "prediction", columns)
    if scenes is None:
        scenes = {"all": _cameras(gt, pred)}
    if not scenes:
        raise ValueError("evaluate_aic24: no scenes given")
    per_scene = {
        name: _scene_scores(aic24_scene_data(gt, pred, cams, zero_distance)) for name, cams in scenes.items()
    }
    out: dict[str, Any] = {k: float(np.mean([s[k] for s in per_scene.values()])) for k in HOTA_FIELDS}
    out["num_scenes"] = len(per_scene)
    out["scenes"] = per_scene
    return out


# --------------------------------------------------------------------------- AI City 2023
def evaluate_aic23_idf1(
    gt: np.ndarray,
    pred: np.ndarray,
    iou_threshold: float = 0.5,
    cameras: Collection[int] | None = None,
) -> dict[str, float]:
    """AI City 2023 Track 1 score: IDF1 with one identity correspondence across all cameras.

    World columns are ignored. ``cameras`` restricts both tables to those cameras. Returns
    ``AIC23_KEYS`` as fractions / counts (module docstring).
    """
    columns = (CAMERA_ID, OBJ_ID, FRAME_ID, BX, BX + 1, BX + 2, BH)
    gt = _check_table(gt, "ground truth", columns)
    pred = _check_table(pred, "prediction", columns)
    if cameras is not None:
        keep = np.asarray(list(cameras), dtype=float)
        gt, pred = gt[np.isin(gt[:, CAMERA_ID], keep)], pred[np.isin(pred[:, CAMERA_ID], keep)]
    key = (CAMERA_ID, FRAME_ID, OBJ_ID)
    gt_unique, pred_unique = _keep_first(gt, key), _keep_first(pred, key)
    duplicates = len(gt) - len(gt_unique) + len(pred) - len(pred_unique)
    gt, pred = gt_unique, pred_unique
    pairs, g_rows, p_rows = _group_rows(gt[:, [CAMERA_ID, FRAME_ID]], pred[:, [CAMERA_ID, FRAME_ID]])
    data = SequenceData(frames=np.arange(len(pairs)), gt_ids=[], pred_ids=[], similarity=[], mode="aic23")
    for gi, pi in zip(g_rows, p_rows, strict=True):
        data.gt_ids.append(gt[gi, OBJ_ID].astype(np.int64))
        data.pred_ids.append(pred[pi, OBJ_ID].astype(np.int64))
        data.similarity.append(box_iou(gt[gi, BX : BH + 1], pred[pi, BX : BH + 1]))
    c = clear_identity_counts(data, iou_threshold=iou_threshold)

    def ratio(num: float, den: float) -> float:
        return num / den if den > 0 else 0.0

    out = {
        "IDF1": ratio(2 * c["IDTP"], 2 * c["IDTP"] + c["IDFP"] + c["IDFN"]),
        "IDP": ratio(c["IDTP"], c["IDTP"] + c["IDFP"]),
        "IDR": ratio(c["IDTP"], c["IDTP"] + c["IDFN"]),
        "MOTA": 1.0 - (c["FN"] + c["FP"] + c["IDs"]) / c["num_gt"] if c["num_gt"] > 0 else 0.0,
        "MOTP": ratio(c["sum_iou"], c["TP"]),
        "Precision": ratio(c["TP"], c["TP"] + c["FP"]),
        "Recall": ratio(c["TP"], c["num_gt"]),
        "num_duplicates": float(duplicates),
    }
    out.update({k: float(c[k]) for k in AIC23_KEYS if k not in out})
    return {k: out[k] for k in AIC23_KEYS}


def evaluate_aic19_mtmc(
    gt_rows: np.ndarray,
    pred_rows: np.ndarray,
    iou_threshold: float = 0.5,
    cameras: Collection[int] | None = None,
) -> dict[str, float]:
    """AI City 2019 Track 1 score: multi-camera IDF1, IDP, IDR over all cameras (``AIC19_KEYS``).

    The identity measures of ``evaluate_aic23_idf1`` (one correspondence over all cameras, IoU >=
    ``iou_threshold``); a prediction with duplicate ``(camera, frame, id)`` rows in the evaluated
    ``cameras`` (default: all) raises ``ValueError``.
    """
    pred = _check_table(pred_rows, "prediction", (CAMERA_ID, OBJ_ID, FRAME_ID))
    if cameras is not None:
        pred = pred[np.isin(pred[:, CAMERA_ID], np.asarray(list(cameras), dtype=float))]
    key = pred[:, [CAMERA_ID, FRAME_ID, OBJ_ID]]
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    repeats = np.flatnonzero(first[np.ravel(inverse)] != np.arange(len(key)))
    if repeats.size:
        raise ValueError(
            f"prediction repeats (camera, frame, id) {key[repeats[0]].astype(int).tolist()}: "
            "the AI City 2019 kit refuses a submission with duplicate rows"
        )
    scores = evaluate_aic23_idf1(gt_rows, pred, iou_threshold=iou_threshold, cameras=cameras)
    return {k: scores[k] for k in AIC19_KEYS}


# --------------------------------------------------------------------------- per camera
def aic24_to_mot(table: np.ndarray) -> np.ndarray:
    """AI City rows of one camera as a MOTChallenge ``(N, 10)`` table (frames 1-based)."""
    n = len(table)
    return np.column_stack(
        [
            table[:, FRAME_ID] + 1,
            table[:, OBJ_ID],
            table[:, BX : BH + 1],
            np.tile([1.0, -1.0, 1.0, -1.0], (n, 1)),
        ]
    ).reshape(n, 10)


def evaluate_per_camera(
    gt: np.ndarray,
    pred: np.ndarray,
    iou_threshold: float = 0.5,
    cameras: Collection[int] | None = None,
) -> pd.DataFrame:
    """Single-camera metrics of every camera: ``evaluate_sequences``' table, one row per camera.

    Rows are named ``camera_XXXX`` plus ``OVERALL`` (percentages 0-100, ``mot_metrics.METRIC_KEYS``).
    ``cameras`` (default: those of both tables) picks the cameras; a camera without gt rows is
    all false positives. Duplicate ``(camera, frame, id)`` rows keep the first.
    """
    columns = (CAMERA_ID, OBJ_ID, FRAME_ID, BX, BX + 1, BX + 2, BH)
    key = (CAMERA_ID, FRAME_ID, OBJ_ID)
    gt = _keep_first(_check_table(gt, "ground truth", columns), key)
    pred = _keep_first(_check_table(pred, "prediction", columns), key)
    cams = sorted(int(c) for c in cameras) if cameras is not None else _cameras(gt, pred)
    if not cams:
        raise ValueError("evaluate_per_camera: no cameras to evaluate")
    gts = {aicity.aic24_camera_dirname(c): aic24_to_mot(gt[gt[:, CAMERA_ID] == c]) for c in cams}
    preds = {aicity.aic24_camera_dirname(c): aic24_to_mot(pred[pred[:, CAMERA_ID] == c]) for c in cams}
    return evaluate_sequences(gts, preds, iou_threshold=iou_threshold, distractor_handling="none")


# --------------------------------------------------------------------------- files
def load_ground_truth(path: PathLike) -> tuple[np.ndarray, dict[str, list[int]]]:
    """Ground truth and its scenes from a ``ground_truth.txt``, a ``scene_XXX`` folder or a folder of scenes.

    A scene's cameras are its ``camera_XXXX`` folders plus the cameras its ground truth names
    (a lone file: the cameras it names; the scene is named after its ``scene_XXX`` folder, else
    after the file). Scenes of a folder without ``ground_truth.txt`` are skipped; none at all, or a camera
    id in two scenes, raises ``FormatError``. A missing path raises ``FileNotFoundError``.
    """
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(2, "no such file or folder", str(root))
    if root.is_file():
        gt = aicity.read_aic24_ground_truth(root)
        name = root.parent.name if root.parent.name.startswith("scene_") else root.stem
        return gt, {name: _cameras(gt)}
    scene_dirs = [root] if root.name.startswith("scene_") else aicity.list_aic24_scenes(root)
    tables: list[np.ndarray] = []
    scenes: dict[str, list[int]] = {}
    owner: dict[int, str] = {}
    for scene_dir in scene_dirs:
        scene = aicity.load_aic24_scene(scene_dir)
        if scene.ground_truth is None and scene_dir != root:
            continue
        gt = scene.read_ground_truth()  # a lone scene folder without one raises, naming it
        name = scene_dir.name if scene_dir == root else scene_dir.relative_to(root).as_posix()
        cams = sorted({c.camera_id for c in scene.cameras} | set(_cameras(gt)))
        for cam in cams:
            if cam in owner:
                raise FormatError(scene_dir, f"camera {cam} also belongs to scene {owner[cam]}")
            owner[cam] = name
        tables.append(gt)
        scenes[name] = cams
    if not scenes:
        raise FormatError(root, "no scene_XXX folder with a ground_truth.txt here")
    return np.concatenate(tables), scenes


# --------------------------------------------------------------------------- command line
_COUNT_KEYS = frozenset({"IDTP", "IDFP", "IDFN", "TP", "FP", "FN", "IDs", "MT", "PT", "ML"})
_AIC23_TABLE = (
    "IDF1",
    "IDP",
    "IDR",
    "MOTA",
    "MOTP",
    "IDTP",
    "IDFP",
    "IDFN",
    "FP",
    "FN",
    "IDs",
    "num_gt",
    "num_pred",
)


def _percent_table(rows: Mapping[str, Mapping[str, float]], columns: Sequence[str], first: str) -> str:
    """Plain-text table: fractions as percentages with 2 decimals, ``num_*``/count columns as ints."""
    header = [first, *columns]
    body = []
    for name, row in rows.items():
        cells = [str(name)]
        for col in columns:
            value = float(row[col])
            is_count = col.startswith("num_") or col in _COUNT_KEYS
            cells.append(f"{round(value)}" if is_count else f"{100.0 * value:.2f}")
        body.append(cells)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        for cells in [header, *body]
    )


def format_aic24(result: Mapping[str, Any]) -> str:
    """``evaluate_aic24`` as a table: one row per scene and the ``MEAN`` row (the official score)."""
    cols = [*HOTA_FIELDS, "num_gt", "num_pred"]
    rows: dict[str, Mapping[str, float]] = {str(k): v for k, v in result["scenes"].items()}
    mean = {k: float(result[k]) for k in HOTA_FIELDS}
    mean.update({c: sum(float(r[c]) for r in result["scenes"].values()) for c in ("num_gt", "num_pred")})
    rows["MEAN"] = mean
    return _percent_table(rows, cols, "scene")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m citytrack.eval.mtmc",
        description="AI City Track 1 multi-camera scores: 2024 ground-plane HOTA, 2023 IDF1, per camera.",
    )
    p.add_argument("gt", help="ground_truth.txt, a scene_XXX folder, or a folder of scenes")
    p.add_argument("pred", help="track1.txt submission (camera_id obj_id frame_id x y w h xworld yworld)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--aic23", action="store_true", help="also the AI City 2023 multi-camera IDF1")
    mode.add_argument(
        "--aic19",
        action="store_true",
        help="AI City 2019 vehicles instead: GT is an SXX folder, a folder of them or a 9-column file; "
        "multi-camera IDF1/IDP/IDR",
    )
    p.add_argument("--per-camera", action="store_true", help="also single-camera HOTA/CLEAR/IDF1 per camera")
    p.add_argument("--json", metavar="OUT", help="write every number to this JSON file")
    return p


def _run(args: argparse.Namespace) -> dict[str, Any]:
    gt, scenes = aicity.read_aic19_ground_truth(args.gt) if args.aic19 else load_ground_truth(args.gt)
    pred = aicity.read_track1(args.pred)
    cams = sorted({c for cs in scenes.values() for c in cs})
    outside = int((~np.isin(pred[:, CAMERA_ID], cams)).sum())
    if outside:
        print(f"note: {outside} prediction rows on cameras outside the ground truth's scenes are ignored")
    report: dict[str, Any] = {"scenes": scenes}
    if args.aic19:
        try:
            report["aic19"] = evaluate_aic19_mtmc(gt, pred, cameras=cams)
        except ValueError as err:  # a refused submission: name its file
            raise FormatError(args.pred, str(err)) from None
        print("AI City 2019 Track 1: multi-camera identity metrics (%) over all cameras; IDF1 ranks")
        print(_percent_table({"all cameras": report["aic19"]}, AIC19_KEYS[:-1], "cameras"))
    else:
        report["aic24"] = evaluate_aic24(gt, pred, scenes)
        print("AI City 2024 Track 1: ground-plane HOTA per scene (%); MEAN is the official score")
        print(format_aic24(report["aic24"]))
    if args.aic23:
        report["aic23"] = evaluate_aic23_idf1(gt, pred, cameras=cams)
        print("\nAI City 2023 Track 1: identity metrics (%), one id correspondence over all cameras")
        print(_percent_table({"all cameras": report["aic23"]}, _AIC23_TABLE, "cameras"))
    if args.per_camera:
        table = evaluate_per_camera(gt, pred, cameras=cams)
        report["per_camera_percent"] = table.to_dict(orient="index")
        print("\nPer camera (2D boxes, %)")
        print(format_table(table))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: prints the tables, returns 0; one ``error:`` line and 1 on bad input."""
    args = _parser().parse_args(None if argv is None else list(argv))
    try:
        report = _run(args)
        if args.json:
            with atomic_open(args.json) as handle:
                json.dump(report, handle, indent=2, default=float)
                handle.write("\n")
    except FormatError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"error: {err.filename}: {err.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
