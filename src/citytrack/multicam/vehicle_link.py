"""City-scale vehicle linking (AI City 2019 Track 1): per-camera tracks -> tracklets -> global ids.

Order, as the 2019 winner applies it to its distance matrix (`../shared/notes/aic19_vehicle_mtmc.md`):
appearance distance between tracklet features; soft space-time costs of plausible pairs
(`st_weight`: travel time against the speeds seen; `overlap_weight`: how well two views seen at
once agree on the ground, a bonus when better than a typical true pair); a penalty (`st_penalty`)
on impossible pairs so that k-reciprocal neighbourhoods are built from plausible pairs; k-reciprocal re-ranking
(optional); then the hard filter: pairs `topology.feasible_pairs` refuses never link. Linking is
average-linkage agglomerative clustering under a complete-link feasibility constraint: two
clusters merge only if every cross pair is feasible (so one camera never holds two vehicles' tracks
at once in one cluster, and a chain A-B-C cannot smuggle in an impossible A-C). Clusters seen by fewer than
`min_cameras` cameras are dropped from the submission, as the AI City 2019 ground truth only
holds vehicles that two or more cameras saw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from citytrack.data.formats import mot
from citytrack.data.formats.aicity.aic19_scene import Aic19CameraSetup, read_aic19_scene
from citytrack.eval.reid_metrics import re_ranking
from citytrack.multicam.topology import (
    CameraTopology,
    Tracklet,
    TravelModel,
    feasible_pairs,
    ground_scale,
    overlap_evidence,
    pair_costs,
    to_metres,
)
from citytrack.multicam.zones import ZoneConfig, ZoneMap


def box_ground_points(setup: Aic19CameraSetup, boxes_xywh: np.ndarray,
                      gps: tuple[np.ndarray, float] | None = None) -> np.ndarray:
    """Ground points (metres) of the boxes' bottom centres: where a vehicle meets the road nearest the camera."""
    if len(boxes_xywh) == 0:
        return np.zeros((0, 2))
    uv = np.column_stack([boxes_xywh[:, 0] + boxes_xywh[:, 2] / 2, boxes_xywh[:, 1] + boxes_xywh[:, 3]])
    with np.errstate(invalid="ignore", divide="ignore"):
        return to_metres(setup.calibration.image_to_ground(uv), gps)


def scene_gps(setups: Sequence[Aic19CameraSetup]) -> tuple[np.ndarray, float] | None:
    """The GPS-to-metres conversion of a scene whose calibrations map latitude/longitude (None if metric)."""
    pts = []
    for s in setups:
        w, h = s.image_size
        uv = np.array([[w / 2, h * 0.9], [w * 0.25, h * 0.95], [w * 0.75, h * 0.95]])
        with np.errstate(invalid="ignore", divide="ignore"):
            pts.append(s.calibration.image_to_ground(uv))
    return ground_scale(np.vstack(pts))


def build_tracklets(
    rows: np.ndarray,
    setups: Sequence[Aic19CameraSetup],
    features: np.ndarray | None = None,
    min_length: int = 1,
    gps: tuple[np.ndarray, float] | None = None,
    zones: Mapping[int, ZoneMap] | None = None,
) -> list[Tracklet]:
    """Tracklets of per-camera tracks.

    `rows`: `(N, 7+)` `camera_id, track_id, frame_id, x, y, w, h` (1-based frames, camera ids as
    the `cXXX` numbers); `features`: `(N, D)` per row (NaN rows = no appearance that frame, e.g.
    a predicted box), averaged and normalised per tracklet. Tracks shorter than `min_length`
    frames are left out (they stay single-camera in the output). `zones`: entry/exit zone maps
    per camera id; a camera without one gives zones -1.
    """
    by_cam = {s.camera.camera_id: s for s in setups}
    out: list[Tracklet] = []
    if len(rows) == 0:
        return out
    keys = rows[:, :2].astype(np.int64)
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    for g in range(int(inverse.max()) + 1):
        idx = np.flatnonzero(inverse.ravel() == g)
        idx = idx[np.argsort(rows[idx, 2], kind="stable")]
        if len(idx) < min_length:
            continue
        cam = int(rows[idx[0], 0])
        if cam not in by_cam:
            raise ValueError(f"tracks name camera c{cam:03d}, which the scene does not have")
        setup = by_cam[cam]
        frames = rows[idx, 2]
        feature = None
        if features is not None:
            f = features[idx]
            f = f[np.isfinite(f).all(1)]
            if len(f):
                m = f.mean(0)
                feature = m / max(float(np.linalg.norm(m)), 1e-12)
        tracklet = Tracklet(cam, int(rows[idx[0], 1]), frames, np.asarray(setup.frame_time(frames), dtype=np.float64),
                            box_ground_points(setup, rows[idx, 3:7], gps), feature, idx)
        if zones and cam in zones:
            tracklet.entry_zone, tracklet.exit_zone = (int(z) for z in zones[cam].box_zone(rows[idx[[0, -1]], 3:7]))
        out.append(tracklet)
    return out


def ground_truth_tracklets(scene_dir: str | Path, zones: ZoneConfig | None = None) -> list[Tracklet]:
    """Tracklets of an `SXX` folder's `gt/gt.txt` files (label = vehicle id): what `TravelModel.fit`
    and `fit_zone_links` (with `zones`) learn from."""
    setups = read_aic19_scene(scene_dir)
    gps = scene_gps(setups)
    tables = []
    for s in setups:
        if s.camera.gt is None:
            continue
        gt = mot.read_mot(s.camera.gt, kind="gt")
        tables.append(np.column_stack([np.full(len(gt), s.camera.camera_id), gt[:, 1], gt[:, 0], gt[:, 2:6]]))
    if not tables:
        return []
    rows = np.vstack(tables)
    tracklets = build_tracklets(rows, setups, gps=gps, zones=zones.maps(setups) if zones is not None else None)
    for t in tracklets:
        t.label = t.track_id
    return tracklets


@dataclass
class LinkConfig:
    """Cross-camera linking settings (`conf/multicam/vehicle.yaml`).

    threshold: average-linkage distance below which clusters merge (on the final distance: cosine
        distance of mean features, or the re-ranked distance).
    st_weight: weight of the soft space-time cost of feasible pairs (`topology.pair_cost`, capped
        at `st_cap`), added to the appearance distance: how well the travel time fits the speeds
        seen, how close overlapping views put the vehicle.
    st_penalty: added to infeasible pairs before re-ranking (the winner's +2.5); the hard filter
        applies after it anyway.
    rerank: k-reciprocal re-ranking with `k1, k2, lambda_value` (the winner's 70 / 10 / 0.1 on
        thousands of images; scaled down to the number of tracklets here: `k1` is capped at a
        third of them).
    use_constraints: False = appearance only (the ablation's first row).
    min_cameras: clusters seen by fewer cameras are not reported.
    """

    threshold: float = 0.5
    st_weight: float = 0.0
    st_cap: float = 3.0
    st_penalty: float = 2.5
    rerank: bool = False
    k1: int = 20
    k2: int = 6
    lambda_value: float = 0.3
    overlap_weight: float = 0.0
    overlap_cap: float = 3.0
    same_camera_floor: bool = False
    use_constraints: bool = True
    min_cameras: int = 2


def appearance_distance(tracklets: Sequence[Tracklet]) -> np.ndarray:
    """Cosine distance `(N, N)` of tracklet features; pairs without a feature get 1 (uninformative)."""
    n = len(tracklets)
    dim = next((t.feature.shape[0] for t in tracklets if t.feature is not None), 0)
    if dim == 0:
        return np.ones((n, n)) - np.eye(n)
    f = np.zeros((n, dim))
    has = np.zeros(n, dtype=bool)
    for i, t in enumerate(tracklets):
        if t.feature is not None:
            f[i], has[i] = t.feature, True
    d = 1.0 - f @ f.T
    d[~has, :] = 1.0
    d[:, ~has] = 1.0
    np.fill_diagonal(d, 0.0)
    return np.clip(d, 0.0, 2.0)


def link_distance(tracklets: Sequence[Tracklet], feasible: np.ndarray, cfg: LinkConfig,
                  model: TravelModel | None = None) -> np.ndarray:
    """The distance the clustering uses: appearance, soft space-time cost and penalty, optional
    k-reciprocal re-ranking."""
    appearance = appearance_distance(tracklets)
    d = appearance
    soft = cfg.use_constraints and model is not None
    costs = pair_costs(tracklets, model, feasible) if soft and (cfg.st_weight or cfg.overlap_weight) else None
    if costs is not None and cfg.st_weight:
        d = d + cfg.st_weight * np.minimum(costs, cfg.st_cap)
    if costs is not None and cfg.overlap_weight:
        d = np.maximum(d + cfg.overlap_weight * overlap_evidence(tracklets, model, feasible, costs, cfg.overlap_cap), 0.0)
    if cfg.use_constraints and cfg.st_penalty:
        d = d + cfg.st_penalty * (~feasible)
    if cfg.rerank and len(tracklets) > 2:
        k1 = int(max(2, min(cfg.k1, len(tracklets) // 3)))
        k2 = int(max(1, min(cfg.k2, k1)))
        r = re_ranking(d, d, d, k1=k1, k2=k2, lambda_value=cfg.lambda_value).astype(np.float64)
        d = (r + r.T) / 2
        np.fill_diagonal(d, 0.0)
    if cfg.rerank and cfg.same_camera_floor and len(tracklets) > 2:
        # one camera's tracks near in time share their feasible partners, hence their k-reciprocal
        # neighbourhoods, so re-ranking pulls two vehicles of one view together; in one view the
        # look is reliable, so such a pair keeps at least its appearance distance
        cams = np.array([t.camera for t in tracklets])
        d = np.where(cams[:, None] == cams[None, :], np.maximum(d, appearance), d)
    return d


def constrained_average_linkage(distance: np.ndarray, feasible: np.ndarray, threshold: float) -> np.ndarray:
    """Cluster labels `(N,)`: merge the closest pair of clusters (mean cross distance, Lance-Williams
    update) while it is below `threshold` and every cross pair is feasible."""
    n = len(distance)
    labels = np.arange(n)
    if n < 2:
        return labels
    d = distance.astype(np.float64).copy()
    ok = feasible.copy()
    size = np.ones(n)
    alive = np.ones(n, dtype=bool)
    np.fill_diagonal(d, np.inf)
    while True:
        masked = np.where(ok & alive[:, None] & alive[None, :], d, np.inf)
        np.fill_diagonal(masked, np.inf)
        flat = int(np.argmin(masked))
        p, q = divmod(flat, n)
        if not masked[p, q] < threshold:
            break
        # merge q into p
        d[p, :] = (size[p] * d[p, :] + size[q] * d[q, :]) / (size[p] + size[q])
        d[:, p] = d[p, :]
        d[p, p] = np.inf
        ok[p, :] &= ok[q, :]
        ok[:, p] = ok[p, :]
        size[p] += size[q]
        alive[q] = False
        labels[labels == q] = p
    _, labels = np.unique(labels, return_inverse=True)
    return labels.ravel()


def link_tracklets(
    tracklets: Sequence[Tracklet],
    cfg: LinkConfig,
    model: TravelModel | None = None,
    topology: CameraTopology | None = None,
) -> np.ndarray:
    """Global cluster label per tracklet (see the module docstring)."""
    if not tracklets:
        return np.zeros(0, dtype=np.int64)
    feasible = feasible_pairs(tracklets, model if cfg.use_constraints else None, topology if cfg.use_constraints else None)
    distance = link_distance(tracklets, feasible, cfg, model)
    return constrained_average_linkage(distance, feasible, cfg.threshold)


def global_rows(rows: np.ndarray, tracklets: Sequence[Tracklet], labels: np.ndarray, min_cameras: int) -> np.ndarray:
    """`rows` with column 1 replaced by 1-based global ids; rows of clusters seen by fewer than
    `min_cameras` cameras (and of tracks left out of linking) are dropped."""
    gid = np.full(len(rows), -1, dtype=np.int64)
    length = np.zeros(len(rows))
    cams_of: dict[int, set[int]] = {}
    for t, lab in zip(tracklets, labels, strict=True):
        cams_of.setdefault(int(lab), set()).add(t.camera)
    keep_labels = sorted(lab for lab, cams in cams_of.items() if len(cams) >= min_cameras)
    new_id = {lab: k + 1 for k, lab in enumerate(keep_labels)}
    for t, lab in zip(tracklets, labels, strict=True):
        if int(lab) in new_id and t.rows is not None:
            gid[t.rows] = new_id[int(lab)]
            length[t.rows] = len(t.rows)
    keep = np.flatnonzero(gid > 0)
    # one box per vehicle, camera and frame: where a part box's track joined its vehicle, the longer track's box
    order = keep[np.argsort(-length[keep], kind="stable")]
    _, first = np.unique(np.column_stack([rows[order, 0], rows[order, 2], gid[order]]), axis=0, return_index=True)
    keep = np.sort(order[first])
    out = rows[keep].copy()
    out[:, 1] = gid[keep]
    return out
