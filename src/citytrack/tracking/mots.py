"""Mask trackers for MOTS: PointTrack's association (`TrackHelper`) and a mask-IoU baseline.

Both are built once per sequence (`conf/mots_tracker/*.yaml`, `_partial_: true`) and called
once per frame, in order:

    tracker = hydra.utils.instantiate(cfg.mots_tracker)()
    records = tracker.update(frame, masks (N, H, W) bool, classes (N,), embeddings (N, D) or None)

Every detection is reported: as the track it continues, or as a new track. Records carry
`obj_id = class * 1000 + id` (ids counted per class from 1, as KITTI MOTS writes them) and the
mask's compressed RLE. Each class is associated on its own, with its own constants.

PointTrack (`utils/mots_util.py` `TrackHelper` of detectRecog/PointTrack, as `test_tracking.py` runs it):

1. tracks whose last detection is older than `keep_alive` frames are forgotten;
2. similarity of detection i and track j, from the track's *last* embedding and mask:
   `sim = scale * (offset - ||e_i - e_j||_2) + iou_weight * maskIoU(m_i, m_j)`;
3. pairs with `sim <= threshold` are forbidden; the assignment minimises `max(sim) - sim`
   (Munkres in the reference; `linear_assignment` here, which, with forbidden pairs priced
   out, matches as many allowed pairs as possible at the least cost, as Munkres does);
4. a matched track takes the detection's embedding, mask and frame;
5. every unmatched detection starts a new track at once (no confirmation, no motion model).

`MaskIoUTracker` is the same loop with `sim = maskIoU` and `threshold = iou_threshold`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from citytrack.data.formats.kitti_mots import MotsRecord, encode_mask, rle_iou
from citytrack.tracking.matching import INFTY_COST, linear_assignment

MAX_IDS_PER_CLASS = 999  # obj_id = class * 1000 + id must keep the class in its thousands


def mask_iou(det_rles: list[dict[str, Any]], track_rles: list[dict[str, Any]]) -> np.ndarray:
    """Pairwise mask IoU `(D, T)` of pycocotools RLEs (the reference's `maskUtils.iou`, no crowd)."""
    return rle_iou(det_rles, track_rles)


def euclidean_distance(det_embeddings: np.ndarray, track_embeddings: np.ndarray) -> np.ndarray:
    """Pairwise Euclidean distance `(D, T)` of unnormalised embeddings."""
    d = np.asarray(det_embeddings, dtype=np.float64)
    t = np.asarray(track_embeddings, dtype=np.float64)
    if len(d) == 0 or len(t) == 0:
        return np.zeros((len(d), len(t)))
    return np.linalg.norm(d[:, None, :] - t[None, :, :], axis=2)


def assign_by_similarity(sim: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian assignment maximising `sim`, pairs with `sim <= threshold` forbidden.

    Returns `(matches (K, 2) [det, track], unmatched_dets)`.
    """
    n_det, n_trk = sim.shape
    if n_det == 0 or n_trk == 0:
        return np.empty((0, 2), dtype=np.int64), np.arange(n_det)
    allowed = sim > threshold
    cost = np.where(allowed, sim.max() - sim, INFTY_COST)
    matches, unmatched_dets, _ = linear_assignment(cost, INFTY_COST / 2)
    return matches, unmatched_dets


@dataclass(frozen=True)
class PointTrackParams:
    """One class's association constants (`TrackHelper`): `sim = scale * (offset - d) + iou_weight * IoU`."""

    scale: float
    offset: float
    iou_weight: float
    threshold: float
    keep_alive: int


#: the reference's constants: cars (`config_mots/car_test_tracking_val.py`) and pedestrians
POINTTRACK_PARAMS: dict[int, PointTrackParams] = {
    1: PointTrackParams(
        scale=1.0090931467228708,
        offset=8.810218833503743,
        iou_weight=0.74,
        threshold=0.8165986526897969,
        keep_alive=30,
    ),
    2: PointTrackParams(
        scale=1.3437965549876354,
        offset=9.447084376750222,
        iou_weight=0.54,
        threshold=0.47985540892434836,
        keep_alive=30,
    ),
}


class MaskTrackerBase:
    """Track store, life cycle, ids and output shared by the MOTS trackers.

    A track is its class, id, the frame and RLE mask of its last detection, and (for trackers
    that use appearance) that detection's embedding. Subclasses give `similarity`, `threshold`
    and `keep_alive` per class.
    """

    uses_embeddings = False

    def __init__(self) -> None:
        self.track_ids = np.zeros(0, dtype=np.int64)
        self.track_classes = np.zeros(0, dtype=np.int64)
        self.last_frame = np.zeros(0, dtype=np.int64)
        self.track_rles: list[dict[str, Any]] = []
        self.track_embeddings: np.ndarray | None = None
        self.next_id: dict[int, int] = {}

    # ------------------------------------------------------------------ per-class rules
    def similarity(
        self, cls: int, det_rles: list[dict[str, Any]], det_emb: np.ndarray | None, tracks: np.ndarray
    ) -> np.ndarray:
        raise NotImplementedError

    def threshold(self, cls: int) -> float:
        raise NotImplementedError

    def keep_alive(self, cls: int) -> int:
        raise NotImplementedError

    # ------------------------------------------------------------------ the frame
    def update(
        self, frame: int, masks: np.ndarray, classes: np.ndarray, embeddings: np.ndarray | None = None
    ) -> list[MotsRecord]:
        """Associate one frame's masks `(N, H, W)` of `classes` `(N,)`; one record per mask, in input order."""
        masks = np.asarray(masks).astype(bool, copy=False)
        classes = np.asarray(classes, dtype=np.int64).reshape(-1)
        if masks.ndim != 3 or len(masks) != len(classes):
            raise ValueError(
                f"expected masks (N, H, W) and classes (N,), got {masks.shape} and {classes.shape}"
            )
        emb = self._check_embeddings(embeddings, len(masks))
        frame = int(frame)

        # 1. forget tracks not seen for more than keep_alive frames
        alive = np.array(
            [self.last_frame[j] >= frame - self.keep_alive(int(c)) for j, c in enumerate(self.track_classes)],
            dtype=bool,
        )
        self._keep(alive)

        strings = [encode_mask(m) for m in masks]
        h, w = masks.shape[1:]
        det_rles = [{"size": [h, w], "counts": s.encode("ascii")} for s in strings]
        det_track = np.full(len(masks), -1, dtype=np.int64)  # row in the track store
        for cls in np.unique(classes).tolist():
            dets = np.flatnonzero(classes == cls)
            tracks = np.flatnonzero(self.track_classes == cls)
            # 2.-3. similarity, forbidden pairs, Hungarian
            sim = self.similarity(
                cls, [det_rles[i] for i in dets], None if emb is None else emb[dets], tracks
            )
            matches, _ = assign_by_similarity(sim, self.threshold(cls))
            det_track[dets[matches[:, 0]]] = tracks[matches[:, 1]]

        # 4. matched tracks take the detection's mask, embedding and frame
        matched = np.flatnonzero(det_track >= 0)
        rows = det_track[matched]
        self.last_frame[rows] = frame
        for i, j in zip(matched.tolist(), rows.tolist(), strict=True):
            self.track_rles[j] = det_rles[i]
        if emb is not None and self.track_embeddings is not None:
            self.track_embeddings[rows] = emb[matched]

        # 5. every unmatched detection starts a new track
        new = np.flatnonzero(det_track < 0)
        det_track[new] = len(self.track_ids) + np.arange(len(new))
        self._append(frame, classes[new], [det_rles[i] for i in new], None if emb is None else emb[new])

        return [
            MotsRecord(
                frame,
                int(self.track_classes[j]) * 1000 + int(self.track_ids[j]),
                int(classes[i]),
                h,
                w,
                strings[i],
            )
            for i, j in enumerate(det_track.tolist())
        ]

    # ------------------------------------------------------------------ store
    def _check_embeddings(self, embeddings: np.ndarray | None, n: int) -> np.ndarray | None:
        if embeddings is None:
            if self.uses_embeddings and n:
                raise ValueError(
                    f"{type(self).__name__} associates by appearance: pass the detections' embeddings"
                )
            return None
        emb = np.asarray(embeddings, dtype=np.float64)
        if emb.ndim != 2 or len(emb) != n:
            raise ValueError(f"embeddings must be (N={n}, D), got shape {emb.shape}")
        if (
            self.track_embeddings is not None
            and len(self.track_ids)
            and emb.shape[1] != self.track_embeddings.shape[1]
        ):
            raise ValueError(
                f"embedding size changed from {self.track_embeddings.shape[1]} to {emb.shape[1]}"
            )
        return emb

    def _keep(self, keep: np.ndarray) -> None:
        self.track_ids, self.track_classes, self.last_frame = (
            self.track_ids[keep],
            self.track_classes[keep],
            self.last_frame[keep],
        )
        self.track_rles = [r for r, k in zip(self.track_rles, keep.tolist(), strict=True) if k]
        if self.track_embeddings is not None:
            self.track_embeddings = self.track_embeddings[keep]

    def _append(
        self, frame: int, classes: np.ndarray, rles: list[dict[str, Any]], emb: np.ndarray | None
    ) -> None:
        ids = np.empty(len(classes), dtype=np.int64)
        for k, cls in enumerate(classes.tolist()):
            ids[k] = self.next_id.get(cls, 1)
            if ids[k] > MAX_IDS_PER_CLASS:
                raise OverflowError(
                    f"class {cls}: more than {MAX_IDS_PER_CLASS} tracks in one sequence; KITTI MOTS writes "
                    f"obj_id = class * 1000 + id, so ids must stay below 1000 (split the sequence or raise the "
                    f"association's recall)"
                )
            self.next_id[cls] = int(ids[k]) + 1
        self.track_ids = np.concatenate([self.track_ids, ids])
        self.track_classes = np.concatenate([self.track_classes, classes.astype(np.int64)])
        self.last_frame = np.concatenate([self.last_frame, np.full(len(classes), frame, dtype=np.int64)])
        self.track_rles += rles
        if emb is not None:
            old = self.track_embeddings if self.track_embeddings is not None else np.zeros((0, emb.shape[1]))
            self.track_embeddings = np.concatenate([old, emb])


class PointTrackTracker(MaskTrackerBase):
    """PointTrack's association (see the module docstring); `classes` maps class id -> constants.

    Args:
        classes: `{class_id: {scale, offset, iou_weight, threshold, keep_alive}}`; None = the
            reference's car (1) and pedestrian (2) constants (`POINTTRACK_PARAMS`).
    """

    uses_embeddings = True

    def __init__(self, classes: Mapping[Any, Mapping[str, Any] | PointTrackParams] | None = None) -> None:
        super().__init__()
        if classes is None:
            self.params = dict(POINTTRACK_PARAMS)
        else:
            self.params = {
                int(c): p
                if isinstance(p, PointTrackParams)
                else PointTrackParams(**{k: v for k, v in dict(p).items()})
                for c, p in classes.items()
            }

    def _params(self, cls: int) -> PointTrackParams:
        if cls not in self.params:
            raise KeyError(
                f"PointTrackTracker has no constants for class {cls}; configured: {sorted(self.params)}"
            )
        return self.params[cls]

    def similarity(
        self, cls: int, det_rles: list[dict[str, Any]], det_emb: np.ndarray | None, tracks: np.ndarray
    ) -> np.ndarray:
        p = self._params(cls)
        assert det_emb is not None and (self.track_embeddings is not None or len(tracks) == 0)
        if len(tracks) == 0:
            return np.zeros((len(det_rles), 0))
        dist = euclidean_distance(det_emb, self.track_embeddings[tracks])  # type: ignore[index]
        iou = mask_iou(det_rles, [self.track_rles[j] for j in tracks])
        return p.scale * (p.offset - dist) + p.iou_weight * iou

    def threshold(self, cls: int) -> float:
        return self._params(cls).threshold

    def keep_alive(self, cls: int) -> int:
        return self._params(cls).keep_alive


class MaskIoUTracker(MaskTrackerBase):
    """Baseline: associate by mask IoU with each track's last mask only.

    Args:
        iou_threshold: pairs with IoU at or below it are forbidden.
        keep_alive: frames a track waits for its next detection (PointTrack's 30 by default,
            so the two differ only in the similarity).
    """

    def __init__(self, iou_threshold: float = 0.1, keep_alive: int = 30) -> None:
        super().__init__()
        if not 0.0 <= iou_threshold < 1.0:
            raise ValueError(f"iou_threshold must be in [0, 1), got {iou_threshold}")
        self.iou_threshold, self._keep_alive = float(iou_threshold), int(keep_alive)

    def similarity(
        self, cls: int, det_rles: list[dict[str, Any]], det_emb: np.ndarray | None, tracks: np.ndarray
    ) -> np.ndarray:
        return mask_iou(det_rles, [self.track_rles[j] for j in tracks])

    def threshold(self, cls: int) -> float:
        return self.iou_threshold

    def keep_alive(self, cls: int) -> int:
        return self._keep_alive
