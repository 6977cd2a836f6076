"""Offline cross-camera association of AI City 2023 Track 1 (UWIPL/ETRI): anchor-guided clustering + STCRA.

`OfflineAssociator.finish` runs the published pipeline once per scene on the per-camera tracks
(step 1, single-camera tracking, is the scene runner's). Numbers are the note's sections
(`shared/notes/aic23_anchor_clustering.md`); each step is one function below.

2. Anchors: the boxes of every camera in anchor frames (every `anchor_stride` frames) with score
   > `anchor_score_thr`; agglomerative Ward clustering of their embeddings cut at
   `people_distance_thr` gives the number of people K and the anchors (anchor = its member set).
3. Per-frame Hungarian: in each camera and frame the present tracks' rows get distinct anchors,
   cost = mean cosine distance to the anchor's members (mean linkage).
4. Temporal voting: each chunk of `n_vote` labels of a track becomes its majority; a trailing partial
   chunk inherits the previous chunk's label. Global id = anchor + 1.
5. STCRA (`id_reassignment`, once per `(dis_thr, conf_thr)` of `stcra_passes`) on world points:
   same-camera duplicates and far-off views of an id are re-assigned to the nearest id's
   camera-weighted mean location when confident.
6. Interpolation (DTI) of gaps `1 < dframe < n_dti` in tracks of more than `n_min` rows, unless the
   box centres across the gap are farther apart than `dti_distance_thr`.
7. Boundary-box removal: boxes touching the top, and boxes touching a side or the bottom with an
   aspect ratio (clipped to the image) outside `[min_ar, max_ar]`.

Deviations (each a config value; the published behaviour in brackets):
- Units. STCRA distances are metres on our ground plane (published: pixels of a top-view map);
  `dti_distance_thr` and `boundary_margin` are fractions of each camera's image width / height
  (published: 200 px and 2 px of 1920x1080); `anchor_min_area` is a fraction of the image area.
- World-guided anchors (`anchor_world_weight` [0: Ward on appearance]). Appearance alone mixes
  people when the ReID net is weak. Instead, average linkage cut at `anchor_distance_thr` clusters
  the boxes on `d_app + anchor_world_weight * (d_world - colocation_thr)` (clipped at 0).
  `d_app` = cosine distance / 2. `d_world` = the mean ground distance (metres, clipped to
  `world_scale`) of the two boxes' tracks over the frames where both are seen. Two tracks that
  are never seen together have no world evidence and keep `d_app` alone. Tracks staying closer
  than `colocation_thr` pull their boxes together; tracks seen apart push them apart.
- Anchors of fewer than `anchor_min_boxes` boxes are dropped [1]: such an anchor is one occluded
  or odd box, and it would otherwise become a spurious person.
- World term in the assignment (`assignment_world_weight` [0]): cost
  `(1 - g) * c_app + g * c_world`. `c_app` = mean cosine distance / 2. `c_world` = the row's
  distance to the anchor's ground position in that frame (the mean point of its member tracks),
  / `world_scale`, clipped to 1; it is 0.5 where none of the anchor's tracks is seen in that frame.
- ReID off (`tracks.features is None`): the world-guided path with `d_app = anchor_distance_thr`
  (neutral at the cut) and `g = 1`. The anchors are then the groups of co-located tracks, and rows
  are assigned by ground distance alone.
- `assignment_gate` [None]: pairs costing more are left unlabelled (the S001 `hungarian_thres`).
  A track left without any label gets an id of its own (published: it took whatever anchor the
  Hungarian forced, or was dropped).
- STCRA cannot place rows without a world point (NaN): they keep their id. Of a same-camera
  duplicate that cannot be placed (no world point, or an id no other camera sees), one box is
  kept (published: the last one read).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import squareform

from citytrack.multicam.tracks import (
    CAM,
    FRAME,
    GLOBAL_ID,
    LOCAL_ID,
    SCORE,
    XWORLD,
    YWORLD,
    CameraInfo,
    H,
    SceneTracks,
    W,
    X,
    Y,
    empty_table,
)
from citytrack.tracking.matching import iou_matrix, normalize_rows

_UNSEEN_WORLD_COST = 0.5  # c_world of an anchor not seen in the frame: nearer anchors beat it, farther lose
_MAX_ANCHOR_BOXES = 20000  # the clustering holds an n x n matrix: 3.2 GB at this size


# ----------------------------------------------------------------------------- helpers
def _groups(keys: np.ndarray) -> list[np.ndarray]:
    """Row indices of each distinct key row of `keys` (N, k) (keys sorted, rows in input order)."""
    if not len(keys):
        return []
    order = np.lexsort(keys.T[::-1])
    change = np.flatnonzero(np.any(np.diff(keys[order], axis=0) != 0, axis=1)) + 1
    return np.split(order, change)


def _camera_sizes(table: np.ndarray, cameras: Mapping[int, CameraInfo]) -> np.ndarray:
    """(N, 2) image width, height of each row's camera."""
    sizes = np.zeros((len(table), 2))
    for cam in np.unique(table[:, CAM]).astype(int):
        if cam not in cameras:
            raise ValueError(f"camera {cam} has rows but no CameraInfo (its image size is needed)")
        sizes[table[:, CAM] == cam] = cameras[cam].image_size
    return sizes


def _track_index(table: np.ndarray) -> np.ndarray:
    """Index 0..T-1 of each row's per-camera track (camera_id, local_id)."""
    return np.unique(table[:, [CAM, LOCAL_ID]], axis=0, return_inverse=True)[1].reshape(-1)


def _majority(labels: np.ndarray) -> int:
    """Most frequent label >= 0 (ties: the first seen, as `Counter.most_common`); -1 if none."""
    labels = labels[labels >= 0]
    if not len(labels):
        return -1
    values, first, counts = np.unique(labels, return_index=True, return_counts=True)
    best = counts == counts.max()
    return int(values[best][np.argmin(first[best])])


def track_world_distance(table: np.ndarray, track: np.ndarray, num_tracks: int) -> np.ndarray:
    """(T, T) mean ground distance of two tracks over the frames where both have a world point (else NaN)."""
    total = np.zeros((num_tracks, num_tracks))
    count = np.zeros((num_tracks, num_tracks))
    seen = np.flatnonzero(np.isfinite(table[:, XWORLD]) & np.isfinite(table[:, YWORLD]))
    for rows in _groups(table[seen][:, [FRAME]]):
        rows = seen[rows]
        p = table[rows][:, [XWORLD, YWORLD]]
        t = track[rows]
        np.add.at(total, (t[:, None], t[None, :]), np.linalg.norm(p[:, None] - p[None], axis=-1))
        np.add.at(count, (t[:, None], t[None, :]), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


# ----------------------------------------------------------------------------- 2. anchors
def sample_anchor_rows(
    table: np.ndarray, image_area: np.ndarray, anchor_stride: int, anchor_score_thr: float,
    anchor_min_area: float,
) -> np.ndarray:
    """2.1-2.2 Rows in the anchor frames with score > `anchor_score_thr` and a box covering at least
    `anchor_min_area` of its image. The anchor frames are the first frame present in each window of
    `anchor_stride` frames from the first (every `anchor_stride`-th frame when none is skipped)."""
    frames = np.unique(table[:, FRAME])
    window = (frames - frames[0]) // anchor_stride
    on_anchor_frame = np.isin(table[:, FRAME], frames[np.r_[True, np.diff(window) > 0]])
    confident = table[:, SCORE] > anchor_score_thr
    large = table[:, W] * table[:, H] >= anchor_min_area * image_area
    return np.flatnonzero(on_anchor_frame & confident & large)


def ward_anchors(features: np.ndarray, people_distance_thr: float) -> np.ndarray:
    """2.3-2.4 Anchor label of each box: Ward clustering of the embeddings (Euclidean).

    K = the number of clusters whose merge distance stays below `t` (sklearn's
    `AgglomerativeClustering(distance_threshold=t)`, which calls `scipy.cluster.hierarchy.ward`);
    the anchors are those K clusters (re-running with `n_clusters=K` cuts the same tree).
    """
    if len(features) < 2:
        return np.zeros(len(features), dtype=np.int64)
    tree = linkage(np.asarray(features, dtype=np.float64), method="ward")
    k = int(np.count_nonzero(tree[:, 2] >= people_distance_thr)) + 1
    return fcluster(tree, k, criterion="maxclust") - 1


def world_guided_anchors(
    features: np.ndarray | None, track_distance: np.ndarray, anchor_world_weight: float,
    colocation_thr: float, anchor_distance_thr: float,
) -> np.ndarray:
    """2.3-2.4 (deviation) Anchor label of each box: average linkage on appearance and world co-location.

    The distance is `d_app + anchor_world_weight * (d_world - colocation_thr)` (clipped at 0) where the
    boxes' tracks are seen together and `d_app` where they are not; the tree is cut at
    `anchor_distance_thr`. `d_app` = cosine distance / 2. `track_distance` (n, n) is `d_world`: the
    tracks' mean ground distance in metres (clipped to `world_scale`), NaN where they are never seen
    together. Without features `d_app` is `anchor_distance_thr`, so the world alone decides.
    """
    if len(track_distance) < 2:
        return np.zeros(len(track_distance), dtype=np.int64)
    if features is None:
        d_app = np.full(track_distance.shape, anchor_distance_thr)
    else:
        d_app = np.clip(1.0 - features @ features.T, 0.0, 2.0) / 2.0
    shifted = np.maximum(d_app + anchor_world_weight * (track_distance - colocation_thr), 0.0)
    dist = np.where(np.isnan(track_distance), d_app, shifted)
    dist = (dist + dist.T) / 2.0
    np.fill_diagonal(dist, 0.0)
    tree = linkage(squareform(dist, checks=False), method="average")
    return fcluster(tree, anchor_distance_thr, criterion="distance") - 1


def drop_small_anchors(
    anchor_rows: np.ndarray, anchor_of: np.ndarray, anchor_min_boxes: int
) -> tuple[np.ndarray, np.ndarray]:
    """2.4 (deviation) Anchors of fewer than `anchor_min_boxes` boxes (an occluded or odd box) are dropped."""
    if not len(anchor_of):
        return anchor_rows, anchor_of
    large = np.bincount(anchor_of)[anchor_of] >= anchor_min_boxes
    return anchor_rows[large], np.unique(anchor_of[large], return_inverse=True)[1].reshape(-1)


# ----------------------------------------------------------------------------- 3. per-frame Hungarian
def anchor_positions(
    table: np.ndarray, track: np.ndarray, frame_index: np.ndarray, membership: np.ndarray, num_frames: int
) -> np.ndarray:
    """(F, K, 2) mean ground point of each anchor's member tracks per frame (NaN where none is seen).

    `membership` (T, K): the share of each track's anchor boxes in each anchor.
    """
    num_anchors = membership.shape[1]
    total = np.zeros((num_frames, num_anchors, 2))
    weight = np.zeros((num_frames, num_anchors))
    seen = np.flatnonzero(np.isfinite(table[:, XWORLD]) & np.isfinite(table[:, YWORLD]))
    for g in range(num_anchors):
        rows = seen[membership[track[seen], g] > 0]
        w = membership[track[rows], g]
        np.add.at(total[:, g], frame_index[rows], w[:, None] * table[rows][:, [XWORLD, YWORLD]])
        np.add.at(weight[:, g], frame_index[rows], w)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight[..., None] > 0, total / weight[..., None], np.nan)


def assignment_cost(
    features: np.ndarray | None, anchor_means: np.ndarray | None, points: np.ndarray, positions: np.ndarray,
    world_weight: float, world_scale: float,
) -> np.ndarray:
    """3. (n, K) cost of n rows of one camera and frame to the K anchors, in [0, 1].

    Appearance: mean cosine distance / 2 to the anchor's members (= 1 - f . mean of the unit member
    features). World: distance to the anchor's ground position in this frame / `world_scale`.
    """
    cost = 0.0
    if features is not None and world_weight < 1:
        cost = (1.0 - world_weight) * np.clip(1.0 - features @ anchor_means.T, 0.0, 2.0) / 2.0
    if world_weight > 0:
        d = np.linalg.norm(points[:, None, :] - positions[None, :, :], axis=-1) / world_scale
        cost = cost + world_weight * np.where(np.isnan(d), _UNSEEN_WORLD_COST, np.minimum(d, 1.0))
    return np.broadcast_to(cost, (len(points), len(positions))).copy()


def hungarian_labels(cost: np.ndarray, gate: float | None) -> np.ndarray:
    """3. Anchor of each row, distinct in the camera and frame; -1 beyond `gate` or with no anchor left."""
    labels = np.full(len(cost), -1, dtype=np.int64)
    rows, cols = linear_sum_assignment(cost)
    ok = np.ones(len(rows), bool) if gate is None else cost[rows, cols] <= gate
    labels[rows[ok]] = cols[ok]
    return labels


# ----------------------------------------------------------------------------- 4. temporal voting
def temporal_vote(labels: np.ndarray, n_vote: int) -> np.ndarray:
    """4. One track's per-row anchor labels (frame order) smoothed in chunks of `n_vote`.

    A full chunk takes its majority; a trailing partial chunk inherits the previous chunk's label
    (its own majority when it is the only chunk). Unlabelled rows (-1) do not vote; a chunk without
    votes takes the previous chunk's label, or the next one's at the start of the track.
    """
    out = np.full(len(labels), -1, dtype=np.int64)
    previous = -1
    for start in range(0, len(labels), n_vote):
        chunk = labels[start : start + n_vote]
        vote = previous if len(chunk) < n_vote and previous >= 0 else _majority(chunk)
        previous = vote if vote >= 0 else previous
        out[start : start + n_vote] = previous
    voted = np.flatnonzero(out >= 0)
    if len(voted):
        out[: voted[0]] = out[voted[0]]
    return out


# ----------------------------------------------------------------------------- 5. STCRA
def view_outliers_and_means(
    keys: np.ndarray, points: np.ndarray, weights: np.ndarray, dis_thr: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """5.2 Views grouped by `keys` (N, 2) = (frame, id): the outliers and each group's weighted mean.

    A view is an outlier when its group has more than 2 views and it is farther than `dis_thr` from
    every other one, unless all of them are. Returns `(outlier (N,), groups (G, 2) sorted, means (G, 2))`
    where the means leave the outliers out.
    """
    if not len(keys):
        return np.zeros(0, bool), np.zeros((0, 2)), np.zeros((0, 2))
    groups, group = np.unique(keys, axis=0, return_inverse=True)
    group = group.reshape(-1)
    count = np.bincount(group)
    slot = np.empty(len(group), dtype=np.int64)  # position of each view within its group
    order = np.argsort(group, kind="stable")
    slot[order] = np.arange(len(group)) - np.repeat(np.cumsum(count) - count, count)
    padded = np.full((len(groups), count.max(), 2), np.nan)
    padded[group, slot] = points
    near = np.linalg.norm(padded[:, :, None] - padded[:, None], axis=-1) <= dis_thr  # padding: never near
    near[:, np.arange(count.max()), np.arange(count.max())] = False
    far = ~near.any(axis=2)[group, slot]
    all_far = np.bincount(group, weights=far, minlength=len(groups)) == count
    outlier = far & (count[group] > 2) & ~all_far[group]
    w = np.where(outlier, 0.0, weights)
    total = np.zeros((len(groups), 2))
    np.add.at(total, group, w[:, None] * points)
    return outlier, groups, total / np.bincount(group, weights=w, minlength=len(groups))[:, None]


def id_reassignment(
    table: np.ndarray, dis_thr: float, conf_thr: float, camera_weights: Mapping[int, float] | None = None,
    duplicate_iou: float = 0.75,
) -> np.ndarray:
    """5. One STCRA pass; returns the table with ids re-assigned and rejected duplicates removed."""
    table = table.copy()
    keep = np.ones(len(table), bool)
    cams, cam_index = np.unique(table[:, CAM], return_inverse=True)
    weights = np.array([(camera_weights or {}).get(int(c), 1.0) for c in cams], dtype=np.float64)[cam_index]
    points = table[:, [XWORLD, YWORLD]]
    located = np.isfinite(points).all(axis=1)

    # 5.1 same-camera duplicates: near-identical boxes keep the higher score, others are queued
    duplicates: list[int] = []
    keys = table[:, [CAM, GLOBAL_ID, FRAME]]
    _, key_index, key_count = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    repeated = np.flatnonzero(key_count[key_index.reshape(-1)] > 1)
    for rows in _groups(keys[repeated]):
        rows = repeated[rows]
        boxes = table[rows][:, [X, Y, W, H]]
        if len(rows) == 2 and iou_matrix(boxes[:1], boxes[1:])[0, 0] >= duplicate_iou:
            keep[rows[np.argmin(table[rows, SCORE])]] = False
        else:
            keep[rows] = False
            duplicates += [int(r) for r in rows]

    # 5.2 per (frame, id): views far from every other view are outliers; the rest give the weighted mean
    usable = np.flatnonzero(keep & located)
    outlier, groups, means = view_outliers_and_means(
        table[usable][:, [FRAME, GLOBAL_ID]], points[usable], weights[usable], dis_thr
    )
    queued = usable[outlier]  # handled by (id, frame), as the published loops do
    outliers = queued[np.lexsort((table[queued, FRAME], table[queued, GLOBAL_ID]))].tolist()
    starts = np.flatnonzero(np.r_[True, np.diff(groups[:, 0]) != 0])
    seen_at = {  # frame -> (ids seen, their mean points)
        int(groups[i, 0]): (groups[i:j, 1].astype(np.int64), means[i:j])
        for i, j in zip(starts, np.r_[starts[1:], len(groups)], strict=True)
    }

    # 5.3-5.4 re-assign the queued boxes to the nearest ids' means, duplicates first
    occupied = {tuple(k) for k in table[keep][:, [CAM, GLOBAL_ID, FRAME]].astype(np.int64).tolist()}
    for r, duplicate in [(r, True) for r in duplicates] + [(r, False) for r in outliers]:
        cam, own, f = int(table[r, CAM]), int(table[r, GLOBAL_ID]), int(table[r, FRAME])
        if not located[r] or f not in seen_at or own not in seen_at[f][0]:  # cannot be placed: keep one box
            if (cam, own, f) not in occupied:
                keep[r] = True
                occupied.add((cam, own, f))
            continue
        ids, centres = seen_at[f]
        dist = np.linalg.norm(centres - points[r], axis=1)
        order = np.argsort(dist, kind="stable")
        d_own = dist[ids == own][0]
        for rank, i in enumerate(order[:2]):
            j = int(ids[i])
            conf = 1.0 - dist[i] / d_own if d_own > 0 else (0.0 if j == own else -np.inf)
            if (cam, j, f) in occupied:
                if rank == 0 and j != own:
                    continue  # try the second-nearest id
                break
            if conf >= conf_thr or (duplicate and j == own and rank == 0):
                if keep[r]:  # an outlier leaves its old place
                    occupied.discard((cam, own, f))
                occupied.add((cam, j, f))
                table[r, GLOBAL_ID] = j
                keep[r] = True
            break
    return table[keep]


# ----------------------------------------------------------------------------- 6-7. post-processing
def interpolate_gaps(
    table: np.ndarray, image_width: np.ndarray, n_min: int, n_dti: int, dti_distance_thr: float
) -> np.ndarray:
    """6. Linear interpolation of box and world point across gaps `1 < dframe < n_dti` of each camera's
    global-id track with more than `n_min` rows, unless the box centres across the gap are farther
    apart than `dti_distance_thr` x image width. Rows whose (camera, id, frame) repeats are dropped
    first. New rows get score 1."""
    keys = table[:, [CAM, GLOBAL_ID, FRAME]]
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    unique = counts[inverse.reshape(-1)] == 1
    table, image_width = table[unique], image_width[unique]
    order = np.lexsort((table[:, FRAME], table[:, GLOBAL_ID], table[:, CAM]))
    table, image_width = table[order], image_width[order]
    track = np.unique(table[:, [CAM, GLOBAL_ID]], axis=0, return_inverse=True)[1].reshape(-1)
    length = np.bincount(track)[track]
    centre = table[:, [X, Y]] + table[:, [W, H]] / 2.0
    step = np.diff(table[:, FRAME])
    jump = np.linalg.norm(np.diff(centre, axis=0), axis=1)
    gaps = np.flatnonzero(
        (track[1:] == track[:-1]) & (length[1:] > n_min) & (step > 1) & (step < n_dti)
        & (jump <= dti_distance_thr * image_width[1:])
    )
    new = []
    cols = [X, Y, W, H, XWORLD, YWORLD]
    for i in gaps:
        offset = np.arange(1, int(step[i]))
        frac = offset[:, None] / step[i]
        rows = np.repeat(table[i : i + 1], len(offset), axis=0)
        rows[:, FRAME] = table[i, FRAME] + offset
        rows[:, cols] = table[i, cols] + frac * (table[i + 1, cols] - table[i, cols])
        rows[:, SCORE] = 1.0
        new.append(rows)
    return np.concatenate([table, *new]) if new else table


def remove_boundary_boxes(
    table: np.ndarray, image_size: np.ndarray, boundary_margin: float, min_ar: float, max_ar: float
) -> np.ndarray:
    """7. Drop boxes touching the top, and boxes touching a side or the bottom whose aspect ratio
    w/h, clipped to the image, is outside [min_ar, max_ar]. The margin is `boundary_margin` x image height."""
    width, height = image_size[:, 0], image_size[:, 1]
    margin = boundary_margin * height
    left, top = table[:, X], table[:, Y]
    right, bottom = left + table[:, W], top + table[:, H]
    clipped_w = np.minimum(right, width) - np.maximum(left, 0.0)
    clipped_h = np.minimum(bottom, height) - np.maximum(top, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ar = clipped_w / clipped_h
    edge = (left <= margin) | (right >= width - margin) | (bottom >= height - margin)
    drop = (top <= margin) | (edge & ~((ar >= min_ar) & (ar <= max_ar)))
    return table[~drop]


# ----------------------------------------------------------------------------- the associator
class OfflineAssociator:
    """AI City 2023 (UWIPL/ETRI) offline association (module docstring; `conf/multicam/offline.yaml`)."""

    def __init__(
        self,
        anchor_stride: int = 10,
        anchor_score_thr: float = 0.6,
        anchor_min_area: float = 0.0,
        anchor_min_boxes: int = 5,
        people_distance_thr: float = 3.5,
        anchor_world_weight: float = 1.0,
        colocation_thr: float = 0.6,
        anchor_distance_thr: float = 0.35,
        assignment_world_weight: float = 0.5,
        assignment_gate: float | None = None,
        world_scale: float = 2.0,
        n_vote: int = 15,
        stcra_passes: Sequence[Sequence[float]] = ((2.5, 0.65), (2.0, 0.70), (1.5, 0.75)),
        camera_weights: Mapping[int, float] | None = None,
        duplicate_iou: float = 0.75,
        n_min: int = 5,
        n_dti: int = 20,
        dti_distance_thr: float = 0.104,
        boundary_margin: float | None = 0.00185,
        min_ar: float = 0.3,
        max_ar: float = 1.6,
    ) -> None:
        if anchor_stride < 1 or n_vote < 1:
            raise ValueError("anchor_stride and n_vote must be >= 1")
        if anchor_world_weight < 0 or not 0 <= assignment_world_weight <= 1 or world_scale <= 0:
            raise ValueError(
                "need anchor_world_weight >= 0, assignment_world_weight in [0, 1] and world_scale > 0"
            )
        # 2-4. anchors, assignment, voting
        self.anchor_stride, self.anchor_score_thr = int(anchor_stride), anchor_score_thr
        self.anchor_min_area, self.anchor_min_boxes = anchor_min_area, int(anchor_min_boxes)
        self.people_distance_thr, self.anchor_world_weight = people_distance_thr, anchor_world_weight
        self.colocation_thr, self.anchor_distance_thr = colocation_thr, anchor_distance_thr
        self.assignment_world_weight, self.assignment_gate = assignment_world_weight, assignment_gate
        self.world_scale, self.n_vote = world_scale, int(n_vote)
        # 5. STCRA
        self.stcra_passes = [(float(d), float(c)) for d, c in stcra_passes]
        self.camera_weights = {int(k): float(v) for k, v in (camera_weights or {}).items()} or None
        self.duplicate_iou = duplicate_iou
        # 6-7. interpolation, boundary boxes
        self.n_min, self.n_dti, self.dti_distance_thr = int(n_min), int(n_dti), dti_distance_thr
        self.boundary_margin, self.min_ar, self.max_ar = boundary_margin, min_ar, max_ar
        self.cameras: dict[int, CameraInfo] = {}

    def reset(self, cameras: dict[int, CameraInfo], fps: float) -> None:
        self.cameras = dict(cameras)

    def update(self, frame: int, rows: np.ndarray, features: np.ndarray | None) -> np.ndarray:
        return np.full(len(rows), -1, dtype=np.int64)  # offline: everything is decided in `finish`

    def finish(self, tracks: SceneTracks) -> np.ndarray:
        cameras = {**self.cameras, **tracks.cameras}
        table = tracks.table.copy()
        if not len(table):
            return empty_table()
        table[:, GLOBAL_ID] = self.cluster(table, tracks.features, _camera_sizes(table, cameras))  # 2-4
        for dis_thr, conf_thr in self.stcra_passes:  # 5
            table = id_reassignment(table, dis_thr, conf_thr, self.camera_weights, self.duplicate_iou)
        if self.n_dti > 0:  # 6
            width = _camera_sizes(table, cameras)[:, 0]
            table = interpolate_gaps(table, width, self.n_min, self.n_dti, self.dti_distance_thr)
        if self.boundary_margin is not None:  # 7
            sizes = _camera_sizes(table, cameras)
            table = remove_boundary_boxes(table, sizes, self.boundary_margin, self.min_ar, self.max_ar)
        return table[np.lexsort((table[:, LOCAL_ID], table[:, CAM], table[:, FRAME]))]

    def cluster(self, table: np.ndarray, features: np.ndarray | None, image_size: np.ndarray) -> np.ndarray:
        """Steps 2-4: the global id (>= 1) of every row."""
        track = _track_index(table)

        # 2. anchors: K clusters of the anchor boxes
        anchor_rows = sample_anchor_rows(
            table, image_size.prod(axis=1), self.anchor_stride, self.anchor_score_thr, self.anchor_min_area
        )
        if len(anchor_rows) > _MAX_ANCHOR_BOXES:
            raise ValueError(
                f"{len(anchor_rows)} anchor boxes (at most {_MAX_ANCHOR_BOXES}): raise anchor_stride or "
                "anchor_score_thr for this scene"
            )
        anchor_feats = None if features is None else normalize_rows(features[anchor_rows])
        if anchor_feats is not None and self.anchor_world_weight == 0:
            anchor_of = ward_anchors(anchor_feats, self.people_distance_thr)
        elif self.anchor_world_weight == 0:
            raise ValueError("without features (ReID off) the anchors need anchor_world_weight > 0")
        else:
            d_world = np.minimum(track_world_distance(table, track, track.max() + 1), self.world_scale)
            t = track[anchor_rows]
            anchor_of = world_guided_anchors(
                anchor_feats, d_world[t[:, None], t[None, :]], self.anchor_world_weight, self.colocation_thr,
                self.anchor_distance_thr,
            )
        anchor_rows, anchor_of = drop_small_anchors(anchor_rows, anchor_of, self.anchor_min_boxes)
        num_anchors = int(anchor_of.max()) + 1 if len(anchor_of) else 0

        # 3. per camera and frame: Hungarian assignment of the rows to the anchors
        labels = np.full(len(table), -1, dtype=np.int64)
        if num_anchors:
            labels = self.assign(table, features, track, anchor_rows, anchor_of)

        # 4. temporal voting per track; a track with no label at all gets an id of its own
        voted = np.full(len(table), -1, dtype=np.int64)
        for rows in _groups(track[:, None]):
            rows = rows[np.argsort(table[rows, FRAME], kind="stable")]
            voted[rows] = temporal_vote(labels[rows], self.n_vote)
        lone = voted < 0
        voted[lone] = num_anchors + np.unique(track[lone], return_inverse=True)[1].reshape(-1)
        return np.unique(voted, return_inverse=True)[1].reshape(-1) + 1.0

    def assign(
        self, table: np.ndarray, features: np.ndarray | None, track: np.ndarray, anchor_rows: np.ndarray,
        anchor_of: np.ndarray,
    ) -> np.ndarray:
        """Step 3: the anchor label of every row (-1: none), solved per camera and frame."""
        num_anchors = int(anchor_of.max()) + 1
        frames, frame_index = np.unique(table[:, FRAME], return_inverse=True)
        anchor_means = None
        if features is not None:
            member_feats = normalize_rows(features[anchor_rows])
            anchor_means = np.stack([member_feats[anchor_of == g].mean(axis=0) for g in range(num_anchors)])
        world_weight = 1.0 if features is None else self.assignment_world_weight
        positions = np.full((len(frames), num_anchors, 2), np.nan)
        if world_weight > 0:
            membership = np.zeros((track.max() + 1, num_anchors))
            np.add.at(membership, (track[anchor_rows], anchor_of), 1.0)
            membership /= np.maximum(membership.sum(axis=1, keepdims=True), 1.0)
            positions = anchor_positions(table, track, frame_index, membership, len(frames))
        labels = np.full(len(table), -1, dtype=np.int64)
        for rows in _groups(table[:, [CAM, FRAME]]):
            cost = assignment_cost(
                None if features is None else normalize_rows(features[rows]), anchor_means,
                table[rows][:, [XWORLD, YWORLD]], positions[frame_index[rows[0]]], world_weight,
                self.world_scale,
            )
            labels[rows] = hungarian_labels(cost, self.assignment_gate)
        return labels
