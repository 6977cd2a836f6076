"""Association costs and assignment: pure functions on arrays.

Every cost here is a *distance* (lower is better) of shape `(num_tracks, num_dets)`, so
costs can be fused, gated and handed to `linear_assignment` without sign flips. Boxes
are `(N, 4)` `x, y, w, h` unless a name says `xyxy`.
"""

from __future__ import annotations

import lap
import numpy as np

from citytrack.utils.boxes import xywh_to_xyxy

# chi-square 0.95 quantiles for 1..9 degrees of freedom (DeepSORT `chi2inv95`):
# the Mahalanobis gate for a 4-D (x, y, a, h) or 2-D (x, y) measurement.
CHI2INV95: dict[int, float] = {
    1: 3.8415,
    2: 5.9915,
    3: 7.8147,
    4: 9.4877,
    5: 11.070,
    6: 12.592,
    7: 14.067,
    8: 15.507,
    9: 16.919,
}
# cost given to gated pairs: large but finite so lap and Hungarian stay well defined
INFTY_COST = 1e5

_EMPTY_MATCHES = np.empty((0, 2), dtype=np.int64)


def iou_xyxy(a: np.ndarray, b: np.ndarray, offset: float = 0.0) -> np.ndarray:
    """Pairwise IoU of corner boxes `(A, 4)`, `(B, 4)` -> `(A, B)`, float64 arrays assumed.

    `offset` is added to every width and height, as in the pixel-inclusive convention
    (`x2 - x1 + 1`) of `cython_bbox.bbox_overlaps`, which ByteTrack's and BoT-SORT's
    reference code use for all their IoU costs; 0 gives the plain continuous IoU.
    Written for the ~10 x 10 matrices of one frame: a handful of array operations, no
    temporaries beyond the result-sized ones.
    """
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    ax1, ay1, ax2, ay2 = a[:, 0:1], a[:, 1:2], a[:, 2:3], a[:, 3:4]
    bx1, by1, bx2, by2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    iw = np.minimum(ax2, bx2)
    iw -= np.maximum(ax1, bx1)
    ih = np.minimum(ay2, by2)
    ih -= np.maximum(ay1, by1)
    if offset:
        iw += offset
        ih += offset
    np.maximum(iw, 0.0, out=iw)
    np.maximum(ih, 0.0, out=ih)
    inter = iw
    inter *= ih
    union = (ax2 - ax1 + offset) * (ay2 - ay1 + offset) + (bx2 - bx1 + offset) * (by2 - by1 + offset)
    union -= inter
    if (union > 0).all():
        inter /= union
        return inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def iou_matrix(a_xywh: np.ndarray, b_xywh: np.ndarray, offset: float = 0.0) -> np.ndarray:
    """Pairwise IoU of two box sets `(A, 4)`, `(B, 4)` -> `(A, B)`; empty sets give empty matrices.

    `offset`: see `iou_xyxy` (1 = the pixel-inclusive convention of ByteTrack's code).
    """
    a = np.asarray(a_xywh, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b_xywh, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    return iou_xyxy(xywh_to_xyxy(a), xywh_to_xyxy(b), offset)


def iou_distance(tracks_xywh: np.ndarray, dets_xywh: np.ndarray, offset: float = 0.0) -> np.ndarray:
    """`1 - IoU`: the SORT/DeepSORT/ByteTrack/BoT-SORT motion cost.

    `offset=1` is the pixel-inclusive IoU of `cython_bbox.bbox_overlaps` that ByteTrack's and
    BoT-SORT's reference `matching.iou_distance` use; 0 (the default) is the continuous IoU of
    DeepSORT's reference and of BoxMOT.
    """
    return 1.0 - iou_matrix(tracks_xywh, dets_xywh, offset)


def iou_distance_xyxy(tracks_xyxy: np.ndarray, dets_xyxy: np.ndarray, offset: float = 0.0) -> np.ndarray:
    """`iou_distance` of corner boxes already converted (float64): trackers convert once per frame."""
    return 1.0 - iou_xyxy(tracks_xyxy, dets_xyxy, offset)


def giou(a_xywh: np.ndarray, b_xywh: np.ndarray) -> np.ndarray:
    """Generalised IoU (Rezatofighi 2019) in [-1, 1]: IoU minus the empty share of the enclosing box.

    Unlike IoU it still ranks non-overlapping pairs by how far apart they are, which helps
    association after a long gap or at low frame rates.
    """
    a = np.asarray(a_xywh, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b_xywh, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    iou = iou_matrix(a, b)
    ax1, ay1 = a[:, 0:1], a[:, 1:2]
    ax2, ay2 = ax1 + a[:, 2:3], ay1 + a[:, 3:4]
    bx1, by1 = b[:, 0], b[:, 1]
    bx2, by2 = bx1 + b[:, 2], by1 + b[:, 3]
    enclose = (np.maximum(ax2, bx2) - np.minimum(ax1, bx1)) * (np.maximum(ay2, by2) - np.minimum(ay1, by1))
    iw = np.clip(np.minimum(ax2, bx2) - np.maximum(ax1, bx1), 0.0, None)
    ih = np.clip(np.minimum(ay2, by2) - np.maximum(ay1, by1), 0.0, None)
    union = (a[:, 2:3] * a[:, 3:4]) + (b[:, 2] * b[:, 3]) - iw * ih
    return iou - np.where(enclose > 0, (enclose - union) / np.where(enclose > 0, enclose, 1.0), 0.0)


def height_iou(a_xywh: np.ndarray, b_xywh: np.ndarray) -> np.ndarray:
    """Height-aware IoU: IoU times the 1-D overlap of the vertical extents (HIoU, as in
    the AI City pedestrian trackers). Pairs at different depths overlap in 2-D but rarely
    in both top and bottom, so this separates people crossing in front of each other."""
    a = np.asarray(a_xywh, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b_xywh, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    ay1, ay2 = a[:, 1:2], a[:, 1:2] + a[:, 3:4]
    by1, by2 = b[:, 1], b[:, 1] + b[:, 3]
    overlap = np.clip(np.minimum(ay2, by2) - np.maximum(ay1, by1), 0.0, None)
    span = np.maximum(ay2, by2) - np.minimum(ay1, by1)
    hiou = np.where(span > 0, overlap / np.where(span > 0, span, 1.0), 0.0)
    return iou_matrix(a, b) * hiou


def covered_fraction(boxes_xyxy: np.ndarray) -> np.ndarray:
    """Per box of one frame, the largest share of its area that lies inside another box `(N,)`.

    A person's crop with a large share inside someone else's box shows that other person too,
    so its embedding describes neither: the trackers' `appearance_max_cover` drops it.
    Intersection over the box's own area, not IoU: a small person in front of a tall one is
    covered completely at a low IoU.
    """
    b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    if len(b) < 2:
        return np.zeros(len(b))
    iw = np.clip(np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0]), 0.0, None)
    ih = np.clip(np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1]), 0.0, None)
    inter = iw * ih
    np.fill_diagonal(inter, 0.0)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return np.divide(inter.max(axis=1), area, out=np.zeros(len(b)), where=area > 0)


def normalize_rows(features: np.ndarray) -> np.ndarray:
    """L2-normalise feature rows (zero rows stay zero)."""
    features = np.asarray(features, dtype=np.float64)
    norm = np.linalg.norm(features, axis=-1, keepdims=True)
    return features / np.where(norm > 0, norm, 1.0)


def embedding_distance(track_features: np.ndarray, det_features: np.ndarray) -> np.ndarray:
    """Cosine distance `1 - cos` in [0, 2] between track and detection embeddings."""
    t = np.asarray(track_features, dtype=np.float64)
    d = np.asarray(det_features, dtype=np.float64)
    if len(t) == 0 or len(d) == 0:
        return np.zeros((len(t), len(d)))
    return np.clip(1.0 - normalize_rows(t) @ normalize_rows(d).T, 0.0, 2.0)


def gallery_distance(gallery: np.ndarray, gallery_count: np.ndarray, det_features: np.ndarray) -> np.ndarray:
    """DeepSORT's nearest-neighbour cosine distance `min_k (1 - r_j . r_k)`.

    `gallery` is `(T, budget, D)` of L2-normalised features, of which the first
    `gallery_count[t]` slots of track `t` are filled; `det_features` `(N, D)`.
    Tracks with an empty gallery get distance 1 (no evidence either way).
    """
    gallery = np.asarray(gallery)
    if len(gallery) == 0 or len(det_features) == 0:
        return np.zeros((len(gallery), len(det_features)))
    dets = normalize_rows(det_features)
    sims = np.einsum("tbd,nd->tbn", gallery, dets, optimize=True)
    valid = np.arange(gallery.shape[1])[None, :] < np.asarray(gallery_count)[:, None]
    sims = np.where(valid[:, :, None], sims, -np.inf)
    best = sims.max(axis=1)
    return np.where(np.isfinite(best), np.clip(1.0 - best, 0.0, 2.0), 1.0)


def fuse_score(cost: np.ndarray, det_scores: np.ndarray) -> np.ndarray:
    """ByteTrack's score fusion `1 - (1 - cost) * score`: confident detections look closer."""
    if cost.size == 0:
        return cost
    return 1.0 - (1.0 - cost) * np.asarray(det_scores, dtype=np.float64)[None, :]


def fuse_motion(
    cost: np.ndarray, gating_distance: np.ndarray, gate: float = CHI2INV95[4], lambda_: float = 0.98
) -> np.ndarray:
    """FairMOT/JDE fusion of an appearance cost with the Kalman Mahalanobis distance.

    `cost = lambda * cost + (1 - lambda) * d_mahalanobis`, and pairs beyond the chi-square
    gate become `INFTY_COST`.
    """
    if cost.size == 0:
        return cost
    fused = lambda_ * cost + (1.0 - lambda_) * gating_distance
    return np.where(gating_distance > gate, INFTY_COST, fused)


def gate_cost_matrix(
    cost: np.ndarray, gating_distance: np.ndarray, gate: float = CHI2INV95[4], gated_cost: float = INFTY_COST
) -> np.ndarray:
    """DeepSORT's motion gate: pairs whose squared Mahalanobis distance exceeds the
    chi-square quantile `gate` become `gated_cost`."""
    if cost.size == 0:
        return cost
    return np.where(gating_distance > gate, gated_cost, cost)


def solve_assignment(cost: np.ndarray) -> np.ndarray:
    """`(K, 2)` [row, col] pairs of the full minimum-cost assignment of a rectangular matrix
    (every row or every column assigned), with `lap.lapjv(extend_cost=True)`."""
    if cost.size == 0:
        return _EMPTY_MATCHES
    _, x, _ = lap.lapjv(np.ascontiguousarray(cost, dtype=np.float64), extend_cost=True)
    matched_rows = np.flatnonzero(x >= 0)
    return np.stack([matched_rows, x[matched_rows]], axis=1).astype(np.int64)


def linear_assignment(cost: np.ndarray, thresh: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost assignment where no pair costs more than `thresh`.

    Returns `(matches (K, 2) [row, col], unmatched_rows, unmatched_cols)`, rows in
    increasing order. Uses `lap.lapjv(extend_cost=True, cost_limit=thresh)` as ByteTrack
    does, so pairs above the threshold are never forced. When every row and column has at
    most one pair strictly below the threshold (the usual frame: well separated targets)
    that set of pairs is the unique optimum and is returned without calling the solver.
    """
    rows, cols = cost.shape
    if rows == 0 or cols == 0:
        return _EMPTY_MATCHES, np.arange(rows), np.arange(cols)
    below = cost < thresh
    r, c = np.nonzero(below)
    if len(np.unique(r)) == len(r) and len(np.unique(c)) == len(c) and not (cost == thresh).any():
        # each candidate pair is alone in its row and column: matching all of them is optimal
        row_match = np.full(rows, -1, dtype=np.int64)
        row_match[r] = c
        col_match = np.full(cols, -1, dtype=np.int64)
        col_match[c] = r
        matches = np.stack([r, c], axis=1).astype(np.int64)
        return matches, np.flatnonzero(row_match < 0), np.flatnonzero(col_match < 0)
    _, x, y = lap.lapjv(np.ascontiguousarray(cost, dtype=np.float64), extend_cost=True, cost_limit=thresh)
    matched_rows = np.flatnonzero(x >= 0)
    matches = np.stack([matched_rows, x[matched_rows]], axis=1).astype(np.int64)
    return matches, np.flatnonzero(x < 0), np.flatnonzero(y < 0)


def min_cost_matching(cost: np.ndarray, max_distance: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DeepSORT's `min_cost_matching`: costs above `max_distance` are clamped to
    `max_distance + 1e-5`, the full assignment is solved, and over-threshold pairs rejected.

    This differs from `linear_assignment` (cost_limit) in which pairs win when some
    entries are gated, and is kept to follow the paper's cascade exactly.
    """
    rows, cols = cost.shape
    if rows == 0 or cols == 0:
        return _EMPTY_MATCHES, np.arange(rows), np.arange(cols)
    r, c = np.nonzero(cost <= max_distance)
    if len(np.unique(r)) == len(r) and len(np.unique(c)) == len(c):
        # every admissible pair is alone in its row and column: the full assignment of the
        # clamped matrix contains all of them, and only they survive the rejection step
        matches = np.stack([r, c], axis=1).astype(np.int64)
    else:
        pairs = solve_assignment(np.minimum(cost, max_distance + 1e-5))
        matches = pairs[cost[pairs[:, 0], pairs[:, 1]] <= max_distance]
    row_used = np.zeros(rows, dtype=bool)
    row_used[matches[:, 0]] = True
    col_used = np.zeros(cols, dtype=bool)
    col_used[matches[:, 1]] = True
    return matches, np.flatnonzero(~row_used), np.flatnonzero(~col_used)
