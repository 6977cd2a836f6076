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
from citytrack.tracking.matching import fuse_score, iou_distance_xyxy, linear_assignment
from citytrack.tracking.track import TrackState
from citytrack.utils.boxes import xywh_to_xyxy

CONFIRMED, TENTATIVE, LOST = int(TrackState.CONFIRMED), int(TrackState.TENTATIVE), int(TrackState.LOST)
Matches = tuple[np.ndarray, np.ndarray]
"""`(track rows, detection indices)` of one association stage."""


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
        kalman: the motion model (None: `XyahKalman`, the paper's `(x, y, a, h)` filter).
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
        kalman: BatchedKalmanFilter | None = None,
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
        super().__init__(XyahKalman() if kalman is None else kalman, frame_rate=frame_rate, embedder=embedder)

    def _on_reset(self) -> None:
        self.max_time_lost = int(self.frame_rate / 30.0 * self.track_buffer)

    def _step(
        self, boxes: np.ndarray, scores: np.ndarray, embeddings: np.ndarray | None, image: np.ndarray | None
    ) -> np.ndarray:
        det_xyxy = self._begin_frame(boxes)

        # 1. split detections by score
        high, low = self._split_by_score(scores)

        # 2. predict confirmed + lost tracks (the pool); unconfirmed tracks keep their state
        pool, unconfirmed = self._predict_pool()
        trk_xyxy = self.kf.states_to_xyxy(self.tracks.mean)  # every track, as matched this frame

        # 3. first association: pool vs high-score detections, IoU fused with the score
        cost = self._motion_cost(trk_xyxy[pool], det_xyxy[high], scores[high])
        first, u_pool, left = self._associate(pool, high, cost, self.match_thresh)

        # 4. second association: pool tracks still tracked vs low-score detections, plain IoU
        second = self._second_association(u_pool, low, trk_xyxy, det_xyxy)

        # 5. unconfirmed tracks vs the high-score detections left over
        cost = self._motion_cost(trk_xyxy[unconfirmed], det_xyxy[left], scores[left])
        third, u_unconfirmed, left = self._associate(unconfirmed, left, cost, self.unconfirmed_match_thresh)
        self._apply_matches((first, second, third), boxes, scores)

        # 6. start tracks from confident unmatched detections
        self._start_tracks(left, boxes, scores)

        # 7. remove unmatched unconfirmed tracks, stale lost tracks and tracked/lost duplicates
        return self._remove_tracks(u_unconfirmed)

    # -- the steps, shared with BoT-SORT ----------------------------------------------
    def _begin_frame(self, boxes: np.ndarray) -> np.ndarray:
        """A new frame: no track is matched yet and every track is one frame older; returns
        the detections as corner boxes (converted once for every IoU of the frame)."""
        t = self.tracks
        if len(t):
            t.det_index[:] = -1
            t.age += 1
            t.time_since_update += 1
        return xywh_to_xyxy(boxes)

    def _split_by_score(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Step 1: high `score > tau_high` and low `low_thresh < score < tau_high` detection indices."""
        high = np.flatnonzero(scores > self.track_thresh)
        low = np.flatnonzero((scores > self.low_thresh) & (scores < self.track_thresh))
        return high, low

    def _predict_pool(self) -> tuple[np.ndarray, np.ndarray]:
        """Step 2: Kalman-predict the pool (confirmed + lost tracks); lost tracks stop growing.

        Returns `(pool rows, unconfirmed rows)`; unconfirmed (one-frame) tracks are not predicted.
        """
        t = self.tracks
        tentative = t.state == TENTATIVE
        unconfirmed = np.flatnonzero(tentative)
        pool = np.flatnonzero(~tentative)
        if len(pool) == 0:
            return pool, unconfirmed
        whole = len(pool) == len(t)
        mean = t.mean.copy() if whole else t.mean[pool]
        cov = t.cov if whole else t.cov[pool]
        not_tracked = t.state[pool] != CONFIRMED
        if not_tracked.any():
            for dim in self.kf.size_velocity_dims:
                mean[not_tracked, dim] = 0.0
        mean, cov = self.kf.predict(mean, cov)
        if whole:
            t.mean, t.cov = mean, cov
        else:
            t.mean[pool], t.cov[pool] = mean, cov
        return pool, unconfirmed

    def _motion_cost(self, trk_xyxy: np.ndarray, det_xyxy: np.ndarray, det_scores: np.ndarray) -> np.ndarray:
        """`1 - IoU`, fused with the detection score when `fuse_score` (`1 - IoU * score`)."""
        cost = iou_distance_xyxy(trk_xyxy, det_xyxy, self.iou_offset)
        return fuse_score(cost, det_scores) if self.fuse_score else cost

    @staticmethod
    def _associate(
        rows: np.ndarray, dets: np.ndarray, cost: np.ndarray, thresh: float
    ) -> tuple[Matches, np.ndarray, np.ndarray]:
        """Assign `rows` to `dets` under `thresh`: `((rows, dets) matched, rows left, dets left)`."""
        m, u_rows, u_dets = linear_assignment(cost, thresh)
        return (rows[m[:, 0]], dets[m[:, 1]]), rows[u_rows], dets[u_dets]

    def _second_association(
        self, remaining: np.ndarray, low: np.ndarray, trk_xyxy: np.ndarray, det_xyxy: np.ndarray
    ) -> Matches:
        """Step 4: unmatched *tracked* tracks vs low-score boxes, plain IoU; the unmatched become lost."""
        t = self.tracks
        remaining = remaining[t.state[remaining] == CONFIRMED]
        cost = iou_distance_xyxy(trk_xyxy[remaining], det_xyxy[low], self.iou_offset)
        second, lost, _ = self._associate(remaining, low, cost, self.second_match_thresh)
        t.state[lost] = LOST
        return second

    def _apply_matches(self, stages: tuple[Matches, ...], boxes: np.ndarray, scores: np.ndarray) -> None:
        """Kalman-update the tracks matched in every stage at once (stages touch disjoint tracks);
        lost ones are re-found (their tracklet restarts)."""
        rows = np.concatenate([r for r, _ in stages])
        dets = np.concatenate([d for _, d in stages])
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

    def _start_tracks(
        self, left: np.ndarray, boxes: np.ndarray, scores: np.ndarray, feats: np.ndarray | None = None
    ) -> None:
        """Step 6: a track per leftover detection with `score >= epsilon`; unconfirmed until
        its second match, except on the sequence's first frame."""
        new = left[scores[left] >= self.new_track_thresh]
        if len(new) == 0:
            return
        first_frame = self.frame_count == 1
        mean, cov = self.kf.initiate(self.kf.boxes_to_measurements(boxes[new]))
        self.tracks.add(
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

    def _remove_tracks(self, unmatched_unconfirmed: np.ndarray) -> np.ndarray:
        """Step 7: drop the given rows, stale lost tracks and tracked/lost duplicates; returns the rows to report."""
        t = self.tracks
        removed = np.zeros(len(t), dtype=bool)
        removed[unmatched_unconfirmed] = True
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
        close = iou_distance_xyxy(xyxy[tracked], xyxy[lost], self.iou_offset) < self.duplicate_iou_dist
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
