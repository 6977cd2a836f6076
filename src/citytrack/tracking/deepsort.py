"""DeepSORT (Wojke et al., ICIP 2017): SORT with a matching cascade over an appearance gallery.

Per frame, following the reference `deep_sort/tracker.py` (and PaddleDetection's port):

1. Kalman-predict every track (`(x, y, a, h)` state, height-scaled noise).
2. Matching cascade over *confirmed* tracks: tracks seen most recently are matched first
   (`time_since_update = 1, 2, ...`). The cost is the smallest cosine distance between the
   detection and the track's gallery of its last `nn_budget` embeddings, with pairs outside
   the Kalman chi-square gate (squared Mahalanobis > 9.4877) forbidden; matches above
   `max_cosine_distance` are rejected. With `motion_weight` (the paper's lambda, eq. 5; 0 in the
   paper's MOT16 runs and in the reference code) the cost is `lambda * d1 + (1 - lambda) * d2`, d1 the
   squared Mahalanobis distance and d2 the cosine one, admissible where both are inside their gates.
3. IoU matching (`1 - IoU <= max_iou_distance`) of unconfirmed tracks and of confirmed
   tracks missed for one frame against the detections left.
4. Update matched tracks; a tentative track that misses is deleted, a confirmed one after
   more than `max_age` misses; a new tentative track per unmatched detection, confirmed
   after `n_init` hits.

Without embeddings (none given and no embedder) it degrades to a motion-only DeepSORT:
the cascade uses the Mahalanobis-gated IoU distance with the `max_iou_distance` limit.
"""

from __future__ import annotations

import numpy as np

from citytrack.tracking.base import BaseTracker, Embedder, drop_crowded_appearance
from citytrack.tracking.kalman import XyahKalman
from citytrack.tracking.matching import (
    CHI2INV95,
    INFTY_COST,
    gallery_distance,
    gate_cost_matrix,
    iou_distance,
    min_cost_matching,
)
from citytrack.tracking.track import TrackSet, TrackState
from citytrack.utils.boxes import xywh_to_xyxy

CONFIRMED, TENTATIVE = int(TrackState.CONFIRMED), int(TrackState.TENTATIVE)


class DeepSort(BaseTracker):
    """DeepSORT with the paper's defaults.

    Args:
        max_cosine_distance: appearance gate (0.2).
        nn_budget: embeddings kept per track (100).
        max_iou_distance: IoU-stage gate `1 - IoU` (0.7).
        max_age: misses before a confirmed track is deleted (A_max, 30).
        n_init: hits before a tentative track is confirmed (3).
        min_confidence: detections below this score are ignored.
        only_position: gate on the box centre only (2-D chi-square).
        max_report_misses: confirmed tracks missed for up to this many frames are still
            reported with their predicted box (deep_sort_app reports 1).
        appearance_max_cover: a box with more than this share of its area inside another box
            carries no appearance (`drop_crowded_appearance`): it can match only in the IoU stage
            and adds nothing to the track's gallery. None: off, as published.
        motion_weight: the paper's lambda: the cascade's cost mixes in the squared Mahalanobis
            distance with this weight. The paper uses 0 "when there is substantial camera motion";
            for static cameras a small weight lets position break ties between similar-looking people.
    """

    def __init__(
        self,
        max_cosine_distance: float = 0.2,
        nn_budget: int = 100,
        max_iou_distance: float = 0.7,
        max_age: int = 30,
        n_init: int = 3,
        min_confidence: float = 0.0,
        only_position: bool = False,
        max_report_misses: int = 1,
        appearance_max_cover: float | None = None,
        motion_weight: float = 0.0,
        frame_rate: float = 30.0,
        embedder: Embedder | None = None,
    ) -> None:
        if nn_budget < 1:
            raise ValueError(f"nn_budget must be >= 1, got {nn_budget}")
        if not 0.0 <= motion_weight < 1.0:
            raise ValueError(f"motion_weight must be in [0, 1), got {motion_weight}")
        self.max_cosine_distance = max_cosine_distance
        self.nn_budget = nn_budget
        self.max_iou_distance = max_iou_distance
        self.max_age = max_age
        self.n_init = n_init
        self.min_confidence = min_confidence
        self.only_position = only_position
        self.max_report_misses = max_report_misses
        self.appearance_max_cover = appearance_max_cover
        self.motion_weight = motion_weight
        super().__init__(XyahKalman(), frame_rate=frame_rate, embedder=embedder)

    def _make_tracks(self) -> TrackSet:
        """Tracks with a gallery of their last `nn_budget` embeddings (the cascade's cost)."""
        return TrackSet(self.kf.ndim_x, gallery_budget=self.nn_budget)

    def _cascade(
        self, boxes: np.ndarray, meas: np.ndarray, feats: np.ndarray | None, dets: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Matching cascade of confirmed tracks by age; returns `(track rows, det indices)` matched."""
        t = self.tracks
        confirmed = np.flatnonzero(t.state == CONFIRMED)
        if len(confirmed) == 0 or len(dets) == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        gate = self.kf.gating_distance(t.mean[confirmed], t.cov[confirmed], meas[dets], self.only_position)
        chi2 = CHI2INV95[2 if self.only_position else 4]
        if feats is not None:
            cost = gallery_distance(t.gallery[confirmed], t.gallery_count[confirmed], feats[dets])
            limit = self.max_cosine_distance
            if self.motion_weight > 0:
                lam = self.motion_weight
                outside = cost > limit
                cost = lam * gate + (1.0 - lam) * cost
                cost[outside] = INFTY_COST
                limit = lam * chi2 + (1.0 - lam) * limit
        else:
            cost = iou_distance(self._boxes(confirmed), boxes[dets])
            limit = self.max_iou_distance
        cost = gate_cost_matrix(cost, gate, chi2)
        # a track with no admissible detection can match nothing at its level and does not
        # change the assignment of the others there: only levels with candidates are solved
        has_candidate = (cost <= limit).any(axis=1)
        if not has_candidate.any():
            return np.empty(0, np.int64), np.empty(0, np.int64)
        free = np.ones(len(dets), dtype=bool)
        rows, cols = [], []
        ages = t.time_since_update[confirmed]
        for level in np.unique(ages[has_candidate]):  # 1, 2, ...: recently seen tracks choose first
            open_cols = np.flatnonzero(free)
            if len(open_cols) == 0:
                break
            sel = np.flatnonzero((ages == level) & has_candidate)
            matches, _, _ = min_cost_matching(cost[sel][:, open_cols], limit)
            if len(matches):
                rows.append(sel[matches[:, 0]])
                cols.append(open_cols[matches[:, 1]])
                free[open_cols[matches[:, 1]]] = False
        matched_rows = np.concatenate(rows) if rows else np.empty(0, np.int64)
        matched_cols = np.concatenate(cols) if cols else np.empty(0, np.int64)
        return confirmed[matched_rows], matched_cols

    def _step(
        self, boxes: np.ndarray, scores: np.ndarray, embeddings: np.ndarray | None, image: np.ndarray | None
    ) -> np.ndarray:
        t = self.tracks
        dets = np.flatnonzero(scores >= self.min_confidence)
        feats = self._embed(image, boxes[dets], None if embeddings is None else embeddings[dets])
        feats_all = None
        if feats is not None:
            feats_all = np.zeros((len(boxes), feats.shape[1]))
            feats_all[dets] = feats
        if self.appearance_max_cover is not None:
            feats_all = drop_crowded_appearance(feats_all, xywh_to_xyxy(boxes), dets, self.appearance_max_cover)
        meas = self.kf.boxes_to_measurements(boxes) if len(boxes) else np.zeros((0, 4))

        # 1. predict
        t.mean, t.cov = self.kf.predict(t.mean, t.cov)
        t.age += 1
        t.time_since_update += 1
        t.det_index[:] = -1

        # 2. matching cascade (confirmed tracks, appearance or IoU, Mahalanobis-gated)
        cascade_rows, cascade_cols = self._cascade(boxes, meas, feats_all, dets)
        matched = np.zeros(len(t), dtype=bool)
        matched[cascade_rows] = True
        free = np.ones(len(dets), dtype=bool)
        free[cascade_cols] = False

        # 3. IoU matching: unconfirmed tracks + confirmed tracks missed only this frame
        candidates = np.flatnonzero(~matched & ((t.state == TENTATIVE) | (t.time_since_update == 1)))
        open_cols = np.flatnonzero(free)
        cost = iou_distance(self._boxes(candidates), boxes[dets[open_cols]])
        if cost.size:
            cost[t.time_since_update[candidates] > 1] = INFTY_COST
        matches, _, _ = min_cost_matching(cost, self.max_iou_distance)
        rows = np.concatenate([cascade_rows, candidates[matches[:, 0]]])
        det_idx = dets[np.concatenate([cascade_cols, open_cols[matches[:, 1]]])]
        free[open_cols[matches[:, 1]]] = False

        # 4. update matched tracks
        if len(rows):
            t.mean[rows], t.cov[rows] = self.kf.update(t.mean[rows], t.cov[rows], meas[det_idx])
            t.hits[rows] += 1
            t.time_since_update[rows] = 0
            t.score[rows] = scores[det_idx]
            t.det_index[rows] = det_idx
            t.end_frame[rows] = self.frame_count
            if feats_all is not None:
                t.set_features(rows, feats_all[det_idx], alpha=0.0)
            promote = rows[(t.state[rows] == TENTATIVE) & (t.hits[rows] >= self.n_init)]
            t.state[promote] = CONFIRMED

        # 5. delete missed tentative tracks and confirmed tracks older than max_age
        missed = t.time_since_update > 0
        dead = missed & ((t.state == TENTATIVE) | (t.time_since_update > self.max_age))
        if dead.any():
            t.keep(~dead)

        # 6. a tentative track per unmatched detection
        new = dets[free]
        mean, cov = self.kf.initiate(meas[new])
        t.add(
            mean,
            cov,
            self._new_ids(len(new)),
            self.frame_count,
            scores[new],
            new,
            features=None if feats_all is None else feats_all[new],
        )
        report = (t.state == CONFIRMED) & (t.time_since_update <= self.max_report_misses)
        return np.flatnonzero(report)
