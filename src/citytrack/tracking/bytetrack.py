"""ByteTrack (Zhang et al., ECCV 2022): associate every detection box, low scores too.

`update` follows `ifzhang/ByteTrack yolox/tracker/byte_tracker.py` step by step, on the
struct-of-arrays `TrackSet` (no per-track objects):

1. split detections: high `score > track_thresh` (tau_high), low `low_thresh < score < track_thresh`;
2. predict confirmed and lost tracks (Kalman, `(x, y, a, h)`; lost tracks stop growing);
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

Two details of the reference code that change results are reproduced, each behind an
option so the textbook behaviour stays available:

- `iou_offset=1`: the reference computes every IoU with `cython_bbox.bbox_overlaps`,
  whose pixel-inclusive boxes are one pixel wider and taller (`x2 - x1 + 1`); small,
  distant people overlap noticeably more than under the continuous IoU (BoxMOT uses 0).
- `reference_removal=True`: the reference marks a lost track removed when it passes
  `max_time_lost` but drops it from its lost list only at the end of the *next* frame
  (`sub_stracks(lost, removed)` runs before `removed.extend(...)`), so the track still
  takes part in that frame's duplicate check and in the next frame's first association;
  a track re-found that way stays on the removed list, so the next time it is lost it
  is dropped at once. BoxMOT 25 keeps the same bookkeeping.

Only confirmed tracks are reported (BoT-SORT's reference also reports the tracks born in
this frame: `output_unconfirmed`), with their updated Kalman boxes; boxes of at most
`min_box_area` pixels or wider than `aspect_ratio_thresh` (w / h) are left out of the output
as in the reference evaluation scripts.

Per frame the work is a fixed number of array operations: boxes are converted to corners
once per frame, the Kalman update of all three association stages is one batched call,
and assignments with one candidate per row and column skip the solver.
"""

from __future__ import annotations

import numpy as np

from citytrack.tracking.base import BaseTracker, Embedder
from citytrack.tracking.kalman import BatchedKalmanFilter, XyahKalman
from citytrack.tracking.matching import iou_xyxy, linear_assignment
from citytrack.tracking.track import TrackSet, TrackState

CONFIRMED, TENTATIVE, LOST = int(TrackState.CONFIRMED), int(TrackState.TENTATIVE), int(TrackState.LOST)
_NO_ROWS = np.empty(0, dtype=np.int64)


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
        iou_offset: added to box widths and heights in every IoU (1: the reference's
            `cython_bbox` pixel-inclusive IoU; 0: continuous IoU, as BoxMOT).
        reference_removal: keep a lost track one more frame after it passes the buffer,
            as the reference's list bookkeeping does (see the module docstring).
        output_unconfirmed: also report tracks born in this frame (BoT-SORT's reference
            reports every tracked track; ByteTrack's only activated ones).
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
        iou_offset: float = 1.0,
        reference_removal: bool = True,
        output_unconfirmed: bool = False,
        frame_rate: float = 30.0,
        embedder: Embedder | None = None,
    ) -> None:
        self.iou_offset = float(iou_offset)
        self.reference_removal = reference_removal
        self.output_unconfirmed = output_unconfirmed
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
        """Kalman-predict the given rows; tracks not currently tracked stop growing."""
        t = self.tracks
        if len(rows) == 0:
            return
        whole = len(rows) == len(t)
        mean = t.mean.copy() if whole else t.mean[rows]
        cov = t.cov if whole else t.cov[rows]
        not_tracked = t.state[rows] != CONFIRMED
        if not_tracked.any():
            for dim in self._lost_velocity_dims:
                mean[not_tracked, dim] = 0.0
        mean, cov = self.kf.predict(mean, cov)
        if whole:
            t.mean, t.cov = mean, cov
        else:
            t.mean[rows], t.cov[rows] = mean, cov

    def _iou(self, a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
        return iou_xyxy(a_xyxy, b_xyxy, self.iou_offset)

    def _motion_cost(self, trk_xyxy: np.ndarray, det_xyxy: np.ndarray, det_scores: np.ndarray) -> np.ndarray:
        """`1 - IoU`, or ByteTrack's score fusion `1 - IoU * score`."""
        sim = self._iou(trk_xyxy, det_xyxy)
        if self.fuse_score and sim.size:
            sim *= det_scores
        return 1.0 - sim

    def _first_cost(
        self,
        rows: np.ndarray,
        dets: np.ndarray,
        trk_xyxy: np.ndarray,
        det_xyxy: np.ndarray,
        scores: np.ndarray,
        feats: np.ndarray | None,
    ) -> np.ndarray:
        """Cost of the first association (BoT-SORT adds appearance)."""
        return self._motion_cost(trk_xyxy[rows], det_xyxy[dets], scores[dets])

    # one-frame (unconfirmed) tracks are matched with the same motion cost (BoT-SORT overrides both)
    _unconfirmed_cost = _first_cost

    def _apply_matches(self, rows: np.ndarray, dets: np.ndarray, boxes: np.ndarray, scores: np.ndarray) -> None:
        """Kalman-update matched tracks (all stages at once); lost ones are re-found (tracklet restarts)."""
        if len(rows) == 0:
            return
        t = self.tracks
        t.mean[rows], t.cov[rows] = self.kf.update(
            t.mean[rows], t.cov[rows], self.kf.boxes_to_measurements(boxes[dets])
        )
        t.tracklet_len[rows] = np.where(t.state[rows] == LOST, 0, t.tracklet_len[rows] + 1)
        t.hit_streak[rows] = np.where(t.time_since_update[rows] == 1, t.hit_streak[rows] + 1, 1)
        t.state[rows] = CONFIRMED
        t.activated[rows] = True
        t.score[rows] = scores[dets]
        t.det_index[rows] = dets
        t.end_frame[rows] = self.frame_count
        t.hits[rows] += 1
        t.time_since_update[rows] = 0

    def _update_features(self, rows: np.ndarray, feats: np.ndarray) -> None:
        """ByteTrack keeps no appearance; BoT-SORT blends embeddings here."""

    def _compensate_camera_motion(self, image: np.ndarray | None, boxes: np.ndarray) -> None:
        """Hook for BoT-SORT's CMC of every track (no-op here)."""

    def _step(
        self, boxes: np.ndarray, scores: np.ndarray, embeddings: np.ndarray | None, image: np.ndarray | None
    ) -> np.ndarray:
        t = self.tracks
        if len(t):
            t.det_index[:] = -1
            t.age += 1
            t.time_since_update += 1
        det_xyxy = boxes.copy()
        det_xyxy[:, 2:] += boxes[:, :2]

        # 1. split detections by score
        high = np.flatnonzero(scores > self.track_thresh)
        low = np.flatnonzero((scores > self.low_thresh) & (scores < self.track_thresh))
        feats = self._features(image, boxes, high, embeddings)

        # 2. predict confirmed + lost tracks (the pool); unconfirmed tracks keep their state
        tentative = t.state == TENTATIVE
        unconfirmed = np.flatnonzero(tentative)
        pool = np.flatnonzero(~tentative)
        self._predict(pool)
        self._compensate_camera_motion(image, boxes)
        trk_xyxy = self.kf.states_to_xyxy(t.mean)  # every track, as matched this frame

        # 3. first association: pool vs high-score detections
        cost = self._first_cost(pool, high, trk_xyxy, det_xyxy, scores, feats)
        m1, u_pool, u_high = linear_assignment(cost, self.match_thresh)
        rows1, dets1 = pool[m1[:, 0]], high[m1[:, 1]]

        # 4. second association: remaining tracked (not lost) tracks vs low-score detections, plain IoU
        remaining = pool[u_pool]
        remaining = remaining[t.state[remaining] == CONFIRMED]
        rows2, dets2 = _NO_ROWS, _NO_ROWS
        if len(remaining) and len(low):
            cost = 1.0 - self._iou(trk_xyxy[remaining], det_xyxy[low])
            m2, u_remaining, _ = linear_assignment(cost, self.second_match_thresh)
            rows2, dets2 = remaining[m2[:, 0]], low[m2[:, 1]]
            remaining = remaining[u_remaining]
        t.state[remaining] = LOST

        # 5. unconfirmed tracks vs the high-score detections left over
        left = high[u_high]
        rows3, dets3 = _NO_ROWS, _NO_ROWS
        removed = np.zeros(len(t), dtype=bool)
        if len(unconfirmed):
            cost = self._unconfirmed_cost(unconfirmed, left, trk_xyxy, det_xyxy, scores, feats)
            m3, u_unconfirmed, u_left = linear_assignment(cost, self.unconfirmed_match_thresh)
            rows3, dets3 = unconfirmed[m3[:, 0]], left[m3[:, 1]]
            removed[unconfirmed[u_unconfirmed]] = True
            left = left[u_left]

        # update every matched track in one batch (stages touch disjoint tracks)
        if len(rows2) or len(rows3):
            self._apply_matches(
                np.concatenate([rows1, rows2, rows3]), np.concatenate([dets1, dets2, dets3]), boxes, scores
            )
        else:
            self._apply_matches(rows1, dets1, boxes, scores)
        if feats is not None:  # low-score boxes carry no appearance (reference)
            self._update_features(np.concatenate([rows1, rows3]), feats[np.concatenate([dets1, dets3])])

        # 6. start tracks from confident unmatched detections
        new = left[scores[left] >= self.new_track_thresh]
        if len(new):
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
        lost = t.state == LOST
        stale = lost & (self.frame_count - t.end_frame > self.max_time_lost)
        if self.reference_removal:
            removed |= lost & t.expired  # expired earlier and lost again (or still): gone now
            t.expired |= stale  # kept for this frame's duplicate check and the next first association
        else:
            removed |= stale
        xyxy = self.kf.states_to_xyxy(t.mean)
        removed |= self._duplicates(~removed, xyxy)
        if removed.any():
            keep = ~removed
            t.keep(keep)
            xyxy = xyxy[keep]
        return self._output_rows(xyxy)

    def _features(
        self, image: np.ndarray | None, boxes: np.ndarray, high: np.ndarray, embeddings: np.ndarray | None
    ) -> np.ndarray | None:
        """Appearance features indexed like `boxes` (None: motion only, as ByteTrack)."""
        return None

    def _duplicates(self, alive: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
        """Mask of rows that duplicate a track of the other kind (tracked vs lost): the
        younger one of each pair whose boxes overlap with IoU distance below the limit
        (`remove_duplicate_stracks`; age is last update minus start frame)."""
        t = self.tracks
        dup = np.zeros(len(t), dtype=bool)
        is_lost = t.state == LOST
        lost = np.flatnonzero(alive & is_lost)
        if len(lost) == 0:
            return dup
        tracked = np.flatnonzero(alive & ~is_lost)
        if len(tracked) == 0:
            return dup
        close = 1.0 - self._iou(xyxy[tracked], xyxy[lost]) < self.duplicate_iou_dist
        if not close.any():
            return dup
        p, q = np.nonzero(close)
        tp, tq = tracked[p], lost[q]
        age_p = t.end_frame[tp] - t.start_frame[tp]
        age_q = t.end_frame[tq] - t.start_frame[tq]
        dup[tq[age_p > age_q]] = True
        dup[tp[age_p <= age_q]] = True
        return dup

    def _output_rows(self, xyxy: np.ndarray) -> np.ndarray:
        """Tracked (confirmed) tracks, minus tiny or too-wide boxes (the reference's output filter)."""
        t = self.tracks
        if self.output_unconfirmed:
            out = (t.state == CONFIRMED) | (t.state == TENTATIVE)
        else:
            out = (t.state == CONFIRMED) & t.activated
        if self.min_box_area > 0 or self.aspect_ratio_thresh > 0:
            w = xyxy[:, 2] - xyxy[:, 0]
            h = xyxy[:, 3] - xyxy[:, 1]
            if self.min_box_area > 0:
                out &= w * h > self.min_box_area
            if self.aspect_ratio_thresh > 0:
                with np.errstate(divide="ignore", invalid="ignore"):
                    out &= w / h <= self.aspect_ratio_thresh
        return np.flatnonzero(out)
