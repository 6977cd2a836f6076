"""`multicam=online`: AI City 2024 online association with cluster self-refinement (Nota, 2024).

Per frame, using no future frame (`../shared/notes/aic24_cluster_self_refinement.md`):

1. **Per-frame grouping** (`Clustering.update`): reliable per-camera tracks (upright boxes, not cut
   by the frame edge, on the ground) of every camera pair are matched by the Hungarian algorithm on
   `(1 - w) euc_n + w emb_n` (world distance and half cosine distance, min-max normalised within the
   pair's matrix as published, gated by `euc_thresh` metres and `emb_thresh`); matches join groups,
   never two tracks of one camera in a group.
2. **Cluster tracker** (`MCTracker.update`): groups are tracked over time by clusters with a bank
   of appearance features: activated clusters first (0.5 world + 0.5 appearance), then lost
   clusters (appearance only), then unconfirmed clusters; the rest start new clusters, which are
   activated after `min_hits` updates (at once on the first frame).
3. **Ids back to the tracks** (`update_using_mctracker`): tracks of a matched group take its
   cluster's id; the other tracks of each camera are matched to the unused clusters of the pool
   (activated, and lost for at most `lost_pool_frames`) on world distance and appearance, then on
   world distance alone within `writeback_euc_thresh`. Tracks left over get no id this frame (-1),
   as in the reference (they are not written).
4. **Cluster self-refinement** every `refine_every` frames: split a cluster whose bank holds two
   people, merge duplicate clusters, re-identify young clusters with lost ones.

Deviations (each a config value, published behaviour reachable; chosen on synthetic dev seeds):
without pose the reliability filter uses box shape and the frame edge; pair costs divide distances
by their gates (`normalize: scale`) instead of min-max normalising each small matrix; groups merge
by complete linkage (no chain of matches joins two people); tracks that shared a cluster last frame
get a cost bonus (`sct_weight`); a lost cluster must be within walking range of where it was lost
(`lost_speed`); a track keeps last frame's id while that cluster is free and near (`sticky`); the
published frame counts (at 30 fps) scale with the scene's frame rate (`reference_fps`).

With keypoints (`pose=...`, each switch off by default): only tracks with more than 6 seen limb
joints seed groups (`seed_min_joints`, published), the appearance weight of a pair is scaled by the
body parts both views see (`part_weighting`: `appearance_weight * |P_a & P_b| / 5`, published with
weight 0.5), and of a track alone by its own seen parts when ids are written back; cluster banks take
features of well-seen views only (`bank_min_joints`, published 10).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from citytrack.multicam.tracks import (
    BODY_PARTS,
    CAM,
    GLOBAL_ID,
    LIMB_JOINTS,
    LOCAL_ID,
    XWORLD,
    YWORLD,
    CameraInfo,
    H,
    SceneTracks,
    W,
    X,
    Y,
    confident_joints,
    part_visibility,
)
from citytrack.tracking.matching import embedding_distance, linear_assignment


class State(Enum):
    UNCONFIRMED = 0
    TRACKED = 1
    LOST = 2


@dataclass
class Cluster:
    """A person across cameras: last world position, bank of (feature, box area, insertion index)."""

    track_id: int
    centroid: np.ndarray
    start_frame: int
    last_frame: int
    state: State = State.UNCONFIRMED
    hits: int = 1
    bank: deque = field(default_factory=lambda: deque(maxlen=10))
    established: bool = False

    def features(self) -> np.ndarray:
        return np.stack([f for f, _, _ in self.bank]) if self.bank else np.zeros((0, 0))


def half_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The reference's `cos / 2` distance: `matching.embedding_distance` halved, in [0, 1]."""
    return embedding_distance(a, b) / 2.0


def mean_bank_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean of all pairwise half cosine distances between two banks (`grouping_rerank`)."""
    if len(a) == 0 or len(b) == 0 or a.shape[1] == 0 or b.shape[1] == 0:
        return float("nan")
    return float(half_cosine(a, b).mean())


def minmax(m: np.ndarray) -> np.ndarray:
    """Min-max normalise a cost matrix as the reference does (a constant matrix becomes zeros)."""
    if m.size == 0:
        return m
    lo, hi = float(m.min()), float(m.max())
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


def hungarian(cost: np.ndarray, thresh: float) -> list[tuple[int, int]]:
    """`(row, col)` pairs of `matching.linear_assignment` (no pair above `thresh`); inf = forbidden."""
    cost = np.where(np.isfinite(cost), cost, thresh + 1.0)
    matches, _, _ = linear_assignment(cost, thresh)
    return [(int(r), int(c)) for r, c in matches]


class OnlineAssociator:
    """AIC24 online cross-camera association; every threshold is named after the reference's.

    Distances: `euc` in world units (metres), `emb` half cosine distances of unit features.
    Pose (`joint_conf` ... `bank_min_joints`) needs `keypoints=` in `update`; 0 / False is off.
    """

    uses_keypoints = True  # the pipeline passes the rows' keypoints to `update`

    def __init__(
        self,
        hw_thresh: float = 1.25,
        edge_margin: int = 2,
        appearance_weight: float = 0.5,
        normalize: str = "minmax",
        euc_thresh: float = 1.0,
        emb_thresh: float = 0.3,
        group_thresh: float = 0.999,
        track_euc_thresh: float = 1.0,
        track_emb_thresh: float = 0.3,
        unconfirmed_euc_thresh: float = 1.5,
        appearance_only_every: int = 10,
        lost_speed: float = 3.0,
        min_hits: int = 10,
        max_time_lost: int = 18000,
        established_frames: int = 30,
        lost_pool_frames: int = 15,
        writeback_euc_thresh: float = 2.0,
        sticky: bool = True,
        unreliable_groups: bool = False,
        sct_weight: float = 0.0,
        feature_ema: float = 0.9,
        bank_size: int = 10,
        refine_every: int = 5,
        refine_split: float = 0.325,
        refine_merge_emb: float = 0.325,
        refine_merge_euc: float = 1.0,
        refine_reid: float = 0.3,
        reference_fps: float = 30.0,
        joint_conf: float = 0.5,
        part_conf: float = 0.3,
        seed_min_joints: int = 0,
        part_weighting: bool = False,
        bank_min_joints: int = 0,
    ) -> None:
        if normalize not in ("minmax", "scale"):
            raise ValueError(f"normalize must be 'minmax' or 'scale', got {normalize!r}")
        self.hw_thresh, self.edge_margin = hw_thresh, edge_margin
        self.appearance_weight, self.normalize = appearance_weight, normalize
        self.euc_thresh, self.emb_thresh, self.group_thresh = euc_thresh, emb_thresh, group_thresh
        self.track_euc_thresh, self.track_emb_thresh = track_euc_thresh, track_emb_thresh
        self.unconfirmed_euc_thresh = unconfirmed_euc_thresh
        self.lost_speed, self.writeback_euc_thresh, self.sticky = lost_speed, writeback_euc_thresh, sticky
        self.reference_fps = float(reference_fps)
        # frame counts of the reference (at reference_fps); `reset` converts them to this scene's rate
        self._frame_counts = {"min_hits": min_hits, "max_time_lost": max_time_lost,
                              "established_frames": established_frames, "lost_pool_frames": lost_pool_frames,
                              "refine_every": refine_every, "appearance_only_every": appearance_only_every}
        self.unreliable_groups, self.sct_weight = unreliable_groups, sct_weight
        self.feature_ema, self.bank_size = feature_ema, bank_size
        self.refine_split, self.refine_merge_emb = refine_split, refine_merge_emb
        self.refine_merge_euc, self.refine_reid = refine_merge_euc, refine_reid
        self.joint_conf, self.part_conf = float(joint_conf), float(part_conf)
        self.seed_min_joints, self.bank_min_joints = int(seed_min_joints), int(bank_min_joints)
        self.part_weighting = bool(part_weighting)
        self.reset({}, 30.0)

    @property
    def uses_pose(self) -> bool:
        return self.seed_min_joints > 0 or self.part_weighting or self.bank_min_joints > 0

    # ------------------------------------------------------------------ protocol
    def reset(self, cameras: dict[int, CameraInfo], fps: float) -> None:
        self.cameras, self.fps = cameras, float(fps)
        for name, n in self._frame_counts.items():  # same durations at any frame rate; 0 stays "off"
            setattr(self, name, 0 if n == 0 else max(1, round(n * self.fps / self.reference_fps)))
        self.clusters: list[Cluster] = []
        self._next_id = 1
        self._frames_seen = 0
        self._sct_feat: dict[tuple[int, int], np.ndarray] = {}
        self._sct_last_id: dict[tuple[int, int], int] = {}
        self._reliable_now = np.zeros(0, dtype=bool)
        self._pose_now: dict[str, np.ndarray] = {}

    def update(
        self, frame: int, rows: np.ndarray, features: np.ndarray | None, keypoints: np.ndarray | None = None
    ) -> np.ndarray:
        self._frames_seen += 1
        frame = self._frames_seen  # time in steps of this run (any stride), in which the counts are set
        self._pose_now = self._pose_summary(rows, keypoints)
        feats = self._track_features(rows, features)
        reliable = self._reliable(rows)
        self._reliable_now = reliable
        groups = self._group(rows, feats, reliable)
        if self.unreliable_groups:
            groups = self._attach_unreliable(rows, groups, reliable)
        matched = self._track_clusters(frame, rows, feats, groups)
        ids = self._write_back(frame, rows, feats, groups, matched)
        if self.refine_every > 0 and self._frames_seen % self.refine_every == 0:
            self._refine()
        for (cam, lid), gid in zip(rows[:, [CAM, LOCAL_ID]].astype(int).tolist(), ids.astype(int).tolist(), strict=True):
            if gid > 0:
                self._sct_last_id[(cam, lid)] = gid
        return ids

    def finish(self, tracks: SceneTracks) -> np.ndarray:
        """Online: the ids were decided frame by frame; rows without an id are not written."""
        return tracks.table[tracks.table[:, GLOBAL_ID] >= 1]

    # ------------------------------------------------------------------ per-track state
    def _track_features(self, rows: np.ndarray, features: np.ndarray | None) -> np.ndarray | None:
        """The moving average of each per-camera track's embeddings (unit norm), one per row."""
        if features is None:
            return None
        out = np.zeros((len(rows), features.shape[1]), np.float64)
        for i, key in enumerate(map(tuple, rows[:, [CAM, LOCAL_ID]].astype(int).tolist())):
            f = features[i].astype(np.float64)
            if not np.any(f):
                out[i] = self._sct_feat.get(key, 0.0)
                continue
            old = self._sct_feat.get(key)
            f = f if old is None else self.feature_ema * old + (1 - self.feature_ema) * f
            f /= max(np.linalg.norm(f), 1e-12)
            self._sct_feat[key] = out[i] = f
        return out

    def _pose_summary(self, rows: np.ndarray, keypoints: np.ndarray | None) -> dict[str, np.ndarray]:
        """Per row: seen limb joints, seen joints, seen body parts (empty when pose is off)."""
        if not self.uses_pose:
            return {}
        if keypoints is None:
            raise ValueError("seed_min_joints / part_weighting / bank_min_joints need the rows' keypoints "
                             "(pose=... with a keypoint extractor); set them to 0 / false without pose")
        if len(keypoints) != len(rows):
            raise ValueError(f"{len(keypoints)} keypoint sets for {len(rows)} rows")
        return {"limbs": confident_joints(keypoints, self.joint_conf, LIMB_JOINTS),
                "joints": confident_joints(keypoints, self.joint_conf),
                "parts": part_visibility(keypoints, self.part_conf)}

    def _appearance_weights(self, a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray | float:
        """`appearance_weight`, scaled with `part_weighting` by the parts rows `a` and `b` both show
        (pairs, a matrix) or, without `b`, by the parts each row of `a` shows (a column)."""
        if not self.part_weighting:
            return self.appearance_weight
        parts = self._pose_now["parts"]
        shared = parts[a][:, None] & parts[b][None] if b is not None else parts[a][:, None]
        return self.appearance_weight * shared.sum(axis=-1) / len(BODY_PARTS)

    def _previous_ids(self, rows: np.ndarray) -> np.ndarray:
        """Each row's track's global id of its last frame with one (0: none)."""
        return np.array([self._sct_last_id.get((int(c), int(t)), 0) for c, t in rows[:, [CAM, LOCAL_ID]]], dtype=np.int64)

    def _reliable(self, rows: np.ndarray) -> np.ndarray:
        """Tracks fit to seed clusters: upright, inside the frame, with a ground point."""
        ok = (rows[:, H] >= self.hw_thresh * rows[:, W]) & np.isfinite(rows[:, [XWORLD, YWORLD]]).all(axis=1)
        m = self.edge_margin
        for cam, info in self.cameras.items():
            sel = rows[:, CAM] == cam
            w, h = info.image_size
            inside = (rows[:, X] > m) & (rows[:, Y] > m) & (rows[:, X] + rows[:, W] < w - m) & (rows[:, Y] + rows[:, H] < h - m)
            ok &= ~sel | inside
        if self.seed_min_joints > 0:  # AIC24: enough of the body seen to trust its features and position
            ok &= self._pose_now["limbs"] >= self.seed_min_joints
        return ok

    def _cost(
        self, euc: np.ndarray, emb: np.ndarray | None, euc_gate: float, emb_gate: float = np.inf,
        w: float | np.ndarray = 0.5,
    ) -> np.ndarray:
        """`(1 - w) euc_n + w emb_n`, set to 1 (no match) where a raw distance exceeds its gate; `w` a
        number or a matrix of per-pair weights (`part_weighting`).

        `normalize="minmax"` scales each term within the matrix (published); `"scale"` divides world
        distances by their gate and appearance distances by `emb_thresh`, so a small matrix (one
        group, one cluster) keeps the size of its distances. Missing appearance (NaN) is neutral.
        """
        if emb is not None:
            emb = np.where(np.isnan(emb), self.emb_thresh, emb)
        if self.normalize == "minmax":
            cost = (1 - w) * minmax(euc) + w * minmax(emb) if emb is not None else minmax(euc)
        else:
            cost = (1 - w) * euc / euc_gate + w * emb / self.emb_thresh if emb is not None else euc / euc_gate
        gate = ~np.isfinite(euc) | (euc > euc_gate)
        if emb is not None:
            gate |= emb > emb_gate
        return np.where(gate, 1.0, np.minimum(cost, 0.998))

    # ------------------------------------------------------------------ 1. grouping
    def _group(self, rows: np.ndarray, feats: np.ndarray | None, reliable: np.ndarray) -> list[np.ndarray]:
        """Reliable rows of all cameras joined across camera pairs; each group is an array of row indices.

        Pair matches are merged cheapest first, and only when the merged group keeps one track per
        camera and every two of its points within `euc_thresh` (complete linkage): a chain of
        matches through several cameras cannot join two people standing a little apart.
        """
        idx = np.flatnonzero(reliable)
        world = rows[:, [XWORLD, YWORLD]]
        prev = self._previous_ids(rows)
        matches: list[tuple[float, int, int]] = []
        cams = sorted({int(c) for c in rows[idx, CAM]})
        for a_i, ca in enumerate(cams):
            for cb in cams[a_i + 1 :]:
                ia = idx[rows[idx, CAM] == ca]
                ib = idx[rows[idx, CAM] == cb]
                euc = np.linalg.norm(world[ia, None] - world[None, ib], axis=-1)
                emb = half_cosine(feats[ia], feats[ib]) if feats is not None else None
                cost = self._cost(euc, emb, self.euc_thresh, self.emb_thresh, self._appearance_weights(ia, ib))
                if self.sct_weight > 0:  # two tracks that shared a cluster last frame stay together
                    same = (prev[ia, None] == prev[None, ib]) & (prev[ia, None] > 0)
                    cost = np.where((cost < 1.0) & same, np.maximum(cost - self.sct_weight, 0.0), cost)
                matches += [(float(cost[r, c]), int(ia[r]), int(ib[c])) for r, c in hungarian(cost, self.group_thresh)]
        group_of = {int(i): int(i) for i in idx}
        members = {int(i): [int(i)] for i in idx}
        for _, i, j in sorted(matches):
            gi, gj = group_of[i], group_of[j]
            if gi == gj:
                continue
            a, b = members[gi], members[gj]
            if {int(rows[k, CAM]) for k in a} & {int(rows[k, CAM]) for k in b}:
                continue
            if np.linalg.norm(world[a][:, None] - world[b][None], axis=-1).max() > self.euc_thresh:
                continue
            members[gi] = a + b
            for k in members.pop(gj):
                group_of[k] = gi
        return [np.array(m) for m in members.values()]

    # ------------------------------------------------------------------ 2. cluster tracker
    def _attach_unreliable(self, rows: np.ndarray, groups: list[np.ndarray], reliable: np.ndarray) -> list[np.ndarray]:
        """Unreliable rows join the nearest reliable group within `euc_thresh` (no camera twice), else
        group among themselves on world distance: people seen only partly still get a cluster,
        but their features never enter a bank and their points never move a group's centroid."""
        world = rows[:, [XWORLD, YWORLD]]
        todo = np.flatnonzero(~reliable & np.isfinite(world).all(axis=1))
        if not len(todo):
            return groups
        groups = [list(g) for g in groups]
        if groups:
            cent = np.array([world[g].mean(axis=0) for g in groups])
            euc = np.linalg.norm(world[todo, None] - cent[None], axis=-1)
            cams = [{int(rows[k, CAM]) for k in g} for g in groups]
            euc[np.array([[int(rows[i, CAM]) in c for c in cams] for i in todo])] = np.inf
            pairs = hungarian(np.where(euc <= self.euc_thresh, euc, np.inf), self.euc_thresh)
            for r, c in pairs:
                groups[c].append(int(todo[r]))
            todo = np.delete(todo, [r for r, _ in pairs])
        rest = self._group(rows, None, np.isin(np.arange(len(rows)), todo))
        return [np.array(g) for g in groups] + rest

    def _group_summary(self, rows: np.ndarray, feats: np.ndarray | None, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Centroid and features of a group, from its reliable members when it has any."""
        rel = g[self._reliable_now[g]]
        centroid = np.nanmean(rows[rel if len(rel) else g][:, [XWORLD, YWORLD]], axis=0)
        f = feats[rel] if feats is not None else np.zeros((len(rel), 0))
        return centroid, f

    def _cluster_costs(
        self, clusters: list[Cluster], summaries: list[tuple[np.ndarray, np.ndarray]], euc_gate: float,
        frame: int, mode: str = "motion",
    ) -> np.ndarray:
        """Cluster x group costs. `motion`: 0.5 world + 0.5 appearance, gated on world distance only
        (published); `appearance`: appearance within the world gate (every n-th frame); `lost`:
        appearance only, gated by `track_emb_thresh` and by how far the person can have walked."""
        if not clusters or not summaries:
            return np.zeros((len(clusters), len(summaries)))
        cent = np.array([s[0] for s in summaries])
        euc = np.linalg.norm(np.array([c.centroid for c in clusters])[:, None] - cent[None], axis=-1)
        has_app = any(s[1].shape[1] > 0 for s in summaries)
        emb = np.array([[mean_bank_distance(c.features(), s[1]) for s in summaries] for c in clusters]) if has_app else None
        if mode == "lost":
            if emb is None:
                return np.ones_like(euc)
            reach = np.array([self.lost_speed * (frame - c.last_frame) / max(self.fps, 1e-6) + euc_gate for c in clusters])
            return np.where(~(emb <= self.track_emb_thresh) | (euc > reach[:, None]), 1.0, emb)
        return self._cost(euc, emb, euc_gate, np.inf, 1.0 if mode == "appearance" and emb is not None else 0.5)

    def _add_features(self, c: Cluster, rows: np.ndarray, feats: np.ndarray | None, g: np.ndarray) -> None:
        if feats is None:
            return
        for i in g:
            if len(c.bank) >= self.bank_size:
                break
            seen = self.bank_min_joints <= 0 or self._pose_now["joints"][i] >= self.bank_min_joints
            if self._reliable_now[i] and seen and np.any(feats[i]):
                c.bank.append((feats[i].copy(), float(rows[i, W] * rows[i, H]), self._frames_seen))

    def _apply(self, c: Cluster, frame: int, rows: np.ndarray, feats: np.ndarray | None, g: np.ndarray, centroid: np.ndarray) -> None:
        c.centroid, c.last_frame, c.hits = centroid, frame, c.hits + 1
        if c.state == State.LOST or (c.state == State.UNCONFIRMED and c.hits > self.min_hits):
            c.state = State.TRACKED
        if frame - c.start_frame >= self.established_frames:
            c.established = True
        self._add_features(c, rows, feats, g)

    def _track_clusters(self, frame: int, rows: np.ndarray, feats: np.ndarray | None, groups: list[np.ndarray]) -> dict[int, Cluster]:
        """Match groups to clusters (activated, lost, unconfirmed), start new ones; group index -> cluster."""
        summaries = [self._group_summary(rows, feats, g) for g in groups]
        left = list(range(len(groups)))
        matched: dict[int, Cluster] = {}
        prev = self._previous_ids(rows)
        members_prev = [prev[g] for g in groups]

        def associate(pool: list[Cluster], thresh: float, **kw: object) -> list[Cluster]:
            nonlocal left
            cost = self._cluster_costs(pool, [summaries[i] for i in left], frame=frame, **kw)  # type: ignore[arg-type]
            if self.sct_weight > 0 and cost.size:  # a group whose tracks were the cluster's last frame
                share = np.array([[np.mean(members_prev[i] == c.track_id) for i in left] for c in pool])
                cost = np.where(cost < 1.0, np.maximum(cost - self.sct_weight * share, 0.0), cost)
            pairs = hungarian(cost, thresh)
            for r, c in pairs:
                gi = left[c]
                self._apply(pool[r], frame, rows, feats, groups[gi], summaries[gi][0])
                matched[gi] = pool[r]
            used_r = {r for r, _ in pairs}
            used_c = {c for _, c in pairs}
            left = [g for j, g in enumerate(left) if j not in used_c]
            return [p for k, p in enumerate(pool) if k not in used_r]

        tracked = [c for c in self.clusters if c.state == State.TRACKED]
        app_only = self.appearance_only_every > 0 and self._frames_seen % self.appearance_only_every == 0
        unmatched = associate(tracked, self.group_thresh, euc_gate=self.track_euc_thresh,
                              mode="appearance" if app_only else "motion")
        for c in unmatched:
            c.state = State.LOST
        lost = [c for c in self.clusters if c.state == State.LOST and c.last_frame < frame]
        if feats is not None:
            associate(lost, self.track_emb_thresh, euc_gate=self.track_euc_thresh, mode="lost")
        unconfirmed = [c for c in self.clusters if c.state == State.UNCONFIRMED]
        stale = associate(unconfirmed, self.group_thresh, euc_gate=self.unconfirmed_euc_thresh)
        for c in stale:
            self.clusters.remove(c)
        first = self._frames_seen == 1
        for gi in left:
            c = Cluster(self._next_id, summaries[gi][0], frame, frame,
                        State.TRACKED if first else State.UNCONFIRMED, bank=deque(maxlen=self.bank_size))
            self._next_id += 1
            self._add_features(c, rows, feats, groups[gi])
            self.clusters.append(c)
            matched[gi] = c
        self.clusters = [c for c in self.clusters
                         if not (c.state == State.LOST and frame - c.last_frame > self.max_time_lost)]
        return matched

    # ------------------------------------------------------------------ 3. ids back to the tracks
    def _write_back(
        self, frame: int, rows: np.ndarray, feats: np.ndarray | None, groups: list[np.ndarray], matched: dict[int, Cluster]
    ) -> np.ndarray:
        ids = np.full(len(rows), -1.0)
        for gi, c in matched.items():
            if c.state != State.UNCONFIRMED:
                ids[groups[gi]] = c.track_id
        pool = [c for c in self.clusters if c.state == State.TRACKED
                or (c.state == State.LOST and frame - c.last_frame <= self.lost_pool_frames)]
        by_id = {c.track_id: c for c in pool}
        world = rows[:, [XWORLD, YWORLD]]
        for cam in np.unique(rows[:, CAM]):
            in_cam = rows[:, CAM] == cam
            taken = {int(g) for g in ids[in_cam] if g > 0}
            todo = np.flatnonzero(in_cam & (ids < 0) & np.isfinite(world).all(axis=1))
            if self.sticky:  # keep last frame's id when its cluster is free and near
                for i in todo:
                    prev = self._sct_last_id.get((int(cam), int(rows[i, LOCAL_ID])))
                    c = by_id.get(prev) if prev is not None else None
                    if c is not None and prev not in taken and np.linalg.norm(world[i] - c.centroid) <= self.writeback_euc_thresh:
                        ids[i] = prev
                        taken.add(prev)
                todo = todo[ids[todo] < 0]
            free = [c for c in pool if c.track_id not in taken]
            if not len(todo) or not free:
                continue
            euc = np.linalg.norm(world[todo, None] - np.array([c.centroid for c in free])[None], axis=-1)
            if feats is not None:
                emb = np.array([[mean_bank_distance(feats[i : i + 1], c.features()) for c in free] for i in todo])
                emb = np.where(np.isnan(emb), np.nanmax(emb, initial=0.0), emb)
                w = 0.5  # published; with part_weighting 0.5 x the parts this track shows
                if self.part_weighting:
                    w = 0.5 * self._pose_now["parts"][todo].sum(axis=1, keepdims=True) / len(BODY_PARTS)
                cost = np.where(euc > self.writeback_euc_thresh, 1.0,
                                np.minimum((1 - w) * minmax(euc) + w * minmax(emb), 0.998))
                pairs = hungarian(cost, self.group_thresh)
            else:
                pairs = hungarian(np.where(euc > self.writeback_euc_thresh, np.inf, euc), self.writeback_euc_thresh)
            for r, k in pairs:
                ids[todo[r]] = free[k].track_id
        return ids

    # ------------------------------------------------------------------ 4. self-refinement
    def _refine(self) -> None:
        # 4a. split a cluster whose bank holds two people: keep the older half
        for c in self.clusters:
            if len(c.bank) < 2:
                continue
            feats = c.features()
            labels = fcluster(linkage(feats, method="average", metric="cosine"), 2, criterion="maxclust")
            if len(np.unique(labels)) < 2:
                continue
            halves = [[k for k in range(len(c.bank)) if labels[k] == lab] for lab in (1, 2)]
            reps = [max(h, key=lambda k: c.bank[k][1]) for h in halves]
            if float(half_cosine(feats[reps[0] : reps[0] + 1], feats[reps[1] : reps[1] + 1])[0, 0]) > self.refine_split:
                older = min(halves, key=lambda h: np.mean([c.bank[k][2] for k in h]))
                kept = [c.bank[k] for k in older]
                c.bank.clear()
                c.bank.extend(kept)
        # 4b. merge duplicates: the newer of two near, similar activated clusters goes
        active = sorted((c for c in self.clusters if c.state == State.TRACKED), key=lambda c: c.track_id)
        removed: set[int] = set()
        for i, a in enumerate(active):
            for b in active[i + 1 :]:
                if a.track_id in removed or b.track_id in removed or (a.established and b.established):
                    continue
                if (np.linalg.norm(a.centroid - b.centroid) < self.refine_merge_euc
                        and mean_bank_distance(a.features(), b.features()) < self.refine_merge_emb):
                    removed.add(b.track_id)
        # 4c. re-identify young clusters with older lost ones
        lost = [c for c in self.clusters if c.state == State.LOST]
        for young in active:
            if young.established or young.track_id in removed or not young.bank:
                continue
            cands = [(d, c) for c in lost if c.track_id < young.track_id
                     and not np.isnan(d := mean_bank_distance(young.features(), c.features()))]
            if not cands:
                continue
            d, old = min(cands, key=lambda t: t[0])
            if d < self.refine_reid:
                old.state, old.centroid, old.last_frame = State.TRACKED, young.centroid, young.last_frame
                for item in young.bank:
                    if len(old.bank) < self.bank_size:
                        old.bank.append(item)
                removed.add(young.track_id)
                lost.remove(old)
        self.clusters = [c for c in self.clusters if c.track_id not in removed]
