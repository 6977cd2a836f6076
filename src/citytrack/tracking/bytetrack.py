"""ByteTrack (Zhang et al., ECCV 2022): associate every detection box, low scores too.

`update` follows `ifzhang/ByteTrack yolox/tracker/byte_tracker.py` step by step, on the
struct-of-arrays `TrackSet` (no per-track objects):

1. split detections: high `score > track_thresh` (tau_high), low `low_thresh < score < track_thresh`;
2. predict confirmed and lost tracks (Kalman, `(x, y, a, h)`);
3. first association: confirmed + lost tracks vs high detections, IoU fused with the
   detection score, threshold `match_thresh`; lost tracks matched here are re-found;
4. second association: still unmatched *confirmed* tracks vs low detections, plain IoU,
   threshold `second_match_thresh` (0.5); the rest become lost;
5. unconfirmed (one-frame) tracks vs the remaining high detections, threshold
   `unconfirmed_match_thresh` (0.7); unmatched unconfirmed tracks are removed;
6. new tracks from remaining high detections with `score >= new_track_thresh` (epsilon,
   tau_high + 0.1); they are confirmed on their second match (at once on frame 1);
7. lost tracks older than `max_time_lost = frame_rate / 30 * track_buffer` are removed,
   and tracked/lost duplicates (IoU > 0.85) resolved in favour of the longer track.

Only confirmed tracks are reported, with their updated Kalman boxes.
"""

from __future__ import annotations

import numpy as np

from citytrack.tracking.base import BaseTracker, Embedder
from citytrack.tracking.kalman import BatchedKalmanFilter, XyahKalman
from citytrack.tracking.matching import fuse_score, iou_distance, linear_assignment
from citytrack.tracking.track import TrackSet, TrackState

CONFIRMED, TENTATIVE, LOST = int(TrackState.CONFIRMED), int(TrackState.TENTATIVE), int(TrackState.LOST)


class ByteTrack(BaseTracker):
    """ByteTrack with the published defaults (`tools/demo_track.py`).

    Args:
        track_thresh: tau_high, detections above it enter the first association.
        low_thresh: detections at or below it are dropped (0.1 in the paper's code).
        new_track_thresh: epsilon, minimum score to start a track (None: track_thresh + 0.1).
        match_thresh: first-association cost limit (1 - fused IoU).
        second_match_thresh: second-association (low-score boxes) cost limit.
        unconfirmed_match_thresh: cost limit for tracks seen in one frame only.
        track_buffer: frames a lost track is kept at 30 fps (scaled by the frame rate).
        fuse_score: multiply IoU by the detection score (ByteTrack's MOT17 setting; off for MOT20).
        duplicate_iou_dist: tracked/lost pairs closer than this IoU distance are duplicates.
        min_box_area: reported boxes smaller than this are left out of the output (0: keep all).
        aspect_ratio_thresh: reported boxes with w / h above this are left out (0: keep all).
    """

    def __init__(
        self,
        track_thresh: float = 0.5,
        low_thresh: float = 0.1,
        new_track_thresh: float | None = None,
        match_thresh: float = 0.8,
        second_match_thresh: float = 0.5,
        unconfirmed_match_thresh: float = 0.7,
        track_buffer: int = 30,
        fuse_score: bool = True,
        duplicate_iou_dist: float = 0.15,
        min_box_area: float = 10.0,
        aspect_ratio_thresh: float = 1.6,
        frame_rate: float = 30.0,
        embedder: Embedder | None = None,
    ) -> None:
        self.track_thresh = track_thresh
        self.low_thresh = low_thresh
        self.new_track_thresh = track_thresh + 0.1 if new_track_thresh is None else new_track_thresh
        self.match_thresh = match_thresh
        self.second_match_thresh = second_match_thresh
        self.unconfirmed_match_thresh = unconfirmed_match_thresh
        self.track_buffer = track_buffer
        self.fuse_score = fuse_score
        self.duplicate_iou_dist = duplicate_iou_dist
        self.min_box_area = min_box_area
        self.aspect_ratio_thresh = aspect_ratio_thresh
        self.kf = self._make_kalman()
        super().__init__(frame_rate=frame_rate, embedder=embedder)

    # -- construction hooks (BoT-SORT overrides) -------------------------------------
    def _make_kalman(self) -> BatchedKalmanFilter:
        return XyahKalman()

    def _make_tracks(self) -> TrackSet:
        return TrackSet(self.kf.ndim_x)

    def _on_reset(self) -> None:
        self.max_time_lost = int(self.frame_rate / 30.0 * self.track_buffer)

    #: Kalman velocity entries zeroed before predicting a lost track (ByteTrack: h velocity)
    _lost_velocity_dims: tuple[int, ...] = (7,)

    # -- steps -----------------------------------------------------------------------
    def _predict(self, rows: np.ndarray) -> None:
        """Kalman-predict the given rows; lost tracks stop growing."""
        t = self.tracks
        if len(rows) == 0:
            return
        mean = t.mean[rows]
        lost = t.state[rows] != CONFIRMED
        for dim in self._lost_velocity_dims:
            mean[lost, dim] = 0.0
        t.mean[rows], t.cov[rows] = self.kf.predict(mean, t.cov[rows])

    def _motion_cost(self, rows: np.ndarray, det_boxes: np.ndarray, det_scores: np.ndarray) -> np.ndarray:
        cost = iou_distance(self._boxes(rows), det_boxes)
        return fuse_score(cost, det_scores) if self.fuse_score else cost

    def _first_cost(
        self, rows: np.ndarray, dets: np.ndarray, boxes: np.ndarray, scores: np.ndarray, feats: np.ndarray | None
    ) -> np.ndarray:
        """Cost of the first association (BoT-SORT adds appearance)."""
        return self._motion_cost(rows, boxes[dets], scores[dets])

    def _unconfirmed_cost(
        self, rows: np.ndarray, dets: np.ndarray, boxes: np.ndarray, scores: np.ndarray, feats: np.ndarray | None
    ) -> np.ndarray:
        return self._motion_cost(rows, boxes[dets], scores[dets])

    def _apply_matches(
        self,
        rows: np.ndarray,
        dets: np.ndarray,
        boxes: np.ndarray,
        scores: np.ndarray,
        feats: np.ndarray | None,
    ) -> None:
        """Kalman-update matched tracks; lost ones are re-found (their tracklet restarts)."""
        if len(rows) == 0:
            return
        t = self.tracks
        t.mean[rows], t.cov[rows] = self.kf.update(
            t.mean[rows], t.cov[rows], self.kf.boxes_to_measurements(boxes[dets])
        )
        refound = t.state[rows] == LOST
        t.tracklet_len[rows] = np.where(refound, 0, t.tracklet_len[rows] + 1)
        t.state[rows] = CONFIRMED
        t.activated[rows] = True
        t.score[rows] = scores[dets]
        t.det_index[rows] = dets
        t.end_frame[rows] = self.frame_count
        t.hit_streak[rows] = np.where(t.time_since_update[rows] == 1, t.hit_streak[rows] + 1, 1)
        t.hits[rows] += 1
        t.time_since_update[rows] = 0
        if feats is not None:
            self._update_features(rows, feats[dets])

    def _update_features(self, rows: np.ndarray, feats: np.ndarray) -> None:
        """ByteTrack keeps no appearance; BoT-SORT blends embeddings here."""

    def _compensate_camera_motion(self, image: np.ndarray | None, boxes: np.ndarray, rows: np.ndarray) -> None:
        """Hook for BoT-SORT's CMC (no-op here)."""

    def _step(
        self, boxes: np.ndarray, scores: np.ndarray, embeddings: np.ndarray | None, image: np.ndarray | None
    ) -> np.ndarray:
        t = self.tracks
        t.det_index[:] = -1
        t.age += 1
        t.time_since_update += 1

        # 1. split detections by score
        high = np.flatnonzero(scores > self.track_thresh)
        low = np.flatnonzero((scores > self.low_thresh) & (scores < self.track_thresh))
        feats = self._features(image, boxes, high, embeddings)

        # 2. predict confirmed + lost tracks (the pool); unconfirmed tracks keep their state
        unconfirmed = np.flatnonzero(t.state == TENTATIVE)
        pool = np.flatnonzero(t.state != TENTATIVE)
        self._predict(pool)
        self._compensate_camera_motion(image, boxes, np.concatenate([pool, unconfirmed]))

        # 3. first association: pool vs high-score detections
        cost = self._first_cost(pool, high, boxes, scores, feats)
        matches, u_pool, u_high = linear_assignment(cost, self.match_thresh)
        self._apply_matches(pool[matches[:, 0]], high[matches[:, 1]], boxes, scores, feats)

        # 4. second association: remaining confirmed tracks vs low-score detections (IoU only)
        remaining = pool[u_pool]
        remaining = remaining[t.state[remaining] == CONFIRMED]
        cost = iou_distance(self._boxes(remaining), boxes[low])
        matches, u_remaining, _ = linear_assignment(cost, self.second_match_thresh)
        self._apply_matches(remaining[matches[:, 0]], low[matches[:, 1]], boxes, scores, None)
        t.state[remaining[u_remaining]] = LOST

        # 5. unconfirmed tracks vs the high-score detections left over
        left = high[u_high]
        cost = self._unconfirmed_cost(unconfirmed, left, boxes, scores, feats)
        matches, u_unconfirmed, u_left = linear_assignment(cost, self.unconfirmed_match_thresh)
        self._apply_matches(unconfirmed[matches[:, 0]], left[matches[:, 1]], boxes, scores, feats)
        removed = np.zeros(len(t), dtype=bool)
        removed[unconfirmed[u_unconfirmed]] = True

        # 6. start tracks from confident unmatched detections
        new = left[u_left]
        new = new[scores[new] >= self.new_track_thresh]
        first_frame = self.frame_count == 1
        mean, cov = self.kf.initiate(self.kf.boxes_to_measurements(boxes[new]))
        t.add(
            mean,
            cov,
            self._new_ids(len(new)),
            self.frame_count,
            scores[new],
            new,
            state=TrackState.CONFIRMED if first_frame else TrackState.TENTATIVE,
            activated=first_frame,
            features=None if feats is None else feats[new],
        )
        removed = np.concatenate([removed, np.zeros(len(new), dtype=bool)])

        # 7. drop stale lost tracks and tracked/lost duplicates
        removed |= (t.state == LOST) & (self.frame_count - t.end_frame > self.max_time_lost)
        removed |= self._duplicates(~removed)
        if removed.any():
            t.keep(~removed)
        return self._output_rows()

    def _features(
        self, image: np.ndarray | None, boxes: np.ndarray, high: np.ndarray, embeddings: np.ndarray | None
    ) -> np.ndarray | None:
        """Appearance features indexed like `boxes` (None: motion only, as ByteTrack)."""
        return None

    def _duplicates(self, alive: np.ndarray) -> np.ndarray:
        """Mask of rows that duplicate a track of the other kind (tracked vs lost): the
        younger one of each pair whose boxes overlap with IoU distance below the limit."""
        t = self.tracks
        dup = np.zeros(len(t), dtype=bool)
        tracked = np.flatnonzero(alive & (t.state != LOST))
        lost = np.flatnonzero(alive & (t.state == LOST))
        if len(tracked) == 0 or len(lost) == 0:
            return dup
        dist = iou_distance(self._boxes(tracked), self._boxes(lost))
        p, q = np.nonzero(dist < self.duplicate_iou_dist)
        if len(p) == 0:
            return dup
        tp, tq = tracked[p], lost[q]
        age_p = t.end_frame[tp] - t.start_frame[tp]
        age_q = t.end_frame[tq] - t.start_frame[tq]
        dup[tq[age_p > age_q]] = True
        dup[tp[age_p <= age_q]] = True
        return dup

    def _output_rows(self) -> np.ndarray:
        """Confirmed tracks, minus tiny or too-wide boxes (ByteTrack's MOT output filter)."""
        t = self.tracks
        rows = np.flatnonzero((t.state == CONFIRMED) & t.activated)
        if len(rows) and (self.min_box_area > 0 or self.aspect_ratio_thresh > 0):
            b = self._boxes(rows)
            keep = np.ones(len(rows), dtype=bool)
            if self.min_box_area > 0:
                keep &= b[:, 2] * b[:, 3] > self.min_box_area
            if self.aspect_ratio_thresh > 0:
                keep &= b[:, 2] / b[:, 3] <= self.aspect_ratio_thresh
            rows = rows[keep]
        return rows
