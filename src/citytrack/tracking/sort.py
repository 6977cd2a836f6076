"""SORT (Bewley et al., ICIP 2016): Kalman prediction + IoU Hungarian matching.

Follows the reference implementation (abewley/sort) step for step, because the paper's
MOT15 table is reproduced from it: state `(u, v, s, r)`, matches below IoU 0.3 rejected,
a track is reported only in frames where it was matched and once it has `min_hits`
consecutive matches after its birth (or during the first `min_hits` frames of the
sequence), and it is deleted after more than `max_age` frames without a match. The
reported box is the Kalman state after the update.
"""

from __future__ import annotations

import numpy as np

from citytrack.tracking.base import BaseTracker, Embedder
from citytrack.tracking.kalman import SortKalman
from citytrack.tracking.matching import iou_matrix, solve_assignment
from citytrack.tracking.track import TrackState


class Sort(BaseTracker):
    """SORT with the paper's defaults.

    Args:
        iou_threshold: minimum IoU of a match (IoU_min in the paper).
        max_age: frames a track survives without a match (T_Lost).
        min_hits: consecutive matches before a track is reported.
        det_thresh: detections below this score are ignored.
    """

    def __init__(
        self,
        iou_threshold: float = 0.3,
        max_age: int = 1,
        min_hits: int = 3,
        det_thresh: float = 0.0,
        frame_rate: float = 30.0,
        embedder: Embedder | None = None,
    ) -> None:
        self.iou_threshold = iou_threshold
        self.max_age = max_age
        self.min_hits = min_hits
        self.det_thresh = det_thresh
        super().__init__(SortKalman(), frame_rate=frame_rate, embedder=embedder)

    def _associate(self, det_boxes: np.ndarray, trk_boxes: np.ndarray) -> np.ndarray:
        """`(K, 2)` [det, track] pairs with IoU >= threshold, as `associate_detections_to_trackers`."""
        if len(det_boxes) == 0 or len(trk_boxes) == 0:
            return np.empty((0, 2), dtype=np.int64)
        iou = iou_matrix(det_boxes, trk_boxes)
        above = iou > self.iou_threshold
        if above.sum(axis=1).max() == 1 and above.sum(axis=0).max() == 1:
            pairs = np.stack(np.nonzero(above), axis=1)  # unambiguous: no assignment needed
        else:
            pairs = solve_assignment(-iou)  # maximise the total IoU, as the reference
        keep = iou[pairs[:, 0], pairs[:, 1]] >= self.iou_threshold
        return pairs[keep].astype(np.int64)

    def _step(
        self, boxes: np.ndarray, scores: np.ndarray, embeddings: np.ndarray | None, image: np.ndarray | None
    ) -> np.ndarray:
        keep_dets = np.flatnonzero(scores >= self.det_thresh)
        boxes, scores = boxes[keep_dets], scores[keep_dets]
        t = self.tracks

        # 1. predict every track; drop those whose predicted box became invalid
        t.mean, t.cov = self.kf.predict(t.mean, t.cov)
        predicted = self._boxes()
        valid = np.all(np.isfinite(predicted), axis=1)
        if not valid.all():
            t.keep(valid)
            predicted = predicted[valid]
        t.age += 1
        t.hit_streak[t.time_since_update > 0] = 0
        t.time_since_update += 1
        t.det_index[:] = -1

        # 2. associate detections with predictions by IoU
        pairs = self._associate(boxes, predicted)
        det_rows, trk_rows = pairs[:, 0], pairs[:, 1]

        # 3. update matched tracks
        if len(pairs):
            t.mean[trk_rows], t.cov[trk_rows] = self.kf.update(
                t.mean[trk_rows], t.cov[trk_rows], self.kf.boxes_to_measurements(boxes[det_rows])
            )
            t.time_since_update[trk_rows] = 0
            t.hits[trk_rows] += 1
            t.hit_streak[trk_rows] += 1
            t.score[trk_rows] = scores[det_rows]
            t.det_index[trk_rows] = keep_dets[det_rows]

        # 4. a new track for every unmatched detection (SORT counts hits after birth)
        unmatched = np.ones(len(boxes), dtype=bool)
        unmatched[det_rows] = False
        new_dets = np.flatnonzero(unmatched)
        mean, cov = self.kf.initiate(self.kf.boxes_to_measurements(boxes[new_dets]))
        new_rows = t.add(mean, cov, self._new_ids(len(new_dets)), self.frame, scores[new_dets], keep_dets[new_dets])
        t.hits[new_rows] = 0
        t.hit_streak[new_rows] = 0

        # 5. report matched tracks with enough consecutive hits
        confirmed = t.hit_streak >= self.min_hits
        t.state[confirmed] = TrackState.CONFIRMED
        report = (t.time_since_update < 1) & (confirmed | (self.frame_count <= self.min_hits))
        out_rows = np.flatnonzero(report)

        # 6. delete tracks unmatched for more than max_age frames (after reporting)
        alive = t.time_since_update <= self.max_age
        if not alive.all():
            remap = np.cumsum(alive) - 1
            out_rows = remap[out_rows]  # reported rows have tsu 0, so they survive
            t.keep(alive)
        return out_rows
