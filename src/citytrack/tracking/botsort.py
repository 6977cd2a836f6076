"""BoT-SORT (Aharon et al., 2022): ByteTrack + (x, y, w, h) Kalman + IoU/appearance fusion + CMC.

Differences from ByteTrack, following `NirAharon/BoT-SORT tracker/mc_bot_sort.py`:

- Kalman state `(x, y, w, h)` with width and height noise (box width follows the target);
  lost tracks stop both size velocities.
- Camera-motion compensation: the affine warp between frames (`cmc.py`) is applied to the
  predicted means and covariances of all tracks; off when no image is given.
- First association cost `min(d_iou, d_emb)` where `d_emb = cos_dist / 2` is set to 1 above
  `appearance_thresh` (theta_emb) or where the IoU distance exceeds `proximity_thresh`
  (theta_iou), so appearance can only re-link boxes that are also close. Without
  embeddings the cost is ByteTrack's fused IoU.
- Track embeddings are an EMA `f <- 0.9 f + 0.1 f_new` (L2-normalised).
- The reference (`tracker/bot_sort.py`, `mc_bot_sort.py`) reports every tracked track,
  including those born in this frame (`output_stracks = [t for t in tracked_stracks]`,
  the `is_activated` filter commented out): `output_unconfirmed=True`.
"""

from __future__ import annotations

import numpy as np

from citytrack.tracking.base import Embedder, drop_crowded_appearance
from citytrack.tracking.bytetrack import LOST, ByteTrack
from citytrack.tracking.cmc import CameraMotionCompensation
from citytrack.tracking.kalman import XywhKalman
from citytrack.tracking.matching import CHI2INV95, embedding_distance, fuse_score, iou_distance_xyxy


class BotSort(ByteTrack):
    """BoT-SORT with the published defaults (`tools/track.py`).

    Args:
        track_high_thresh: tau_high of the first association.
        track_low_thresh: detections at or below it are dropped.
        new_track_thresh: minimum score to start a track.
        match_thresh, second_match_thresh, unconfirmed_match_thresh, track_buffer,
        fuse_score, min_box_area, aspect_ratio_thresh, iou_offset, reference_removal,
        output_unconfirmed: as in ByteTrack (the last on by default: the reference reports
        tracks from their first frame).
        proximity_thresh: theta_iou, appearance is ignored for pairs with IoU distance above it.
        appearance_thresh: theta_emb, half cosine distances above it count as no match.
        ema_alpha: weight of the old embedding in the track's moving average.
        appearance_for_unconfirmed: use the fused cost for unconfirmed tracks too (AIC23 variant).
        appearance_max_cover: a high-score box with more than this share of its area inside
            another high-score box carries no appearance (`drop_crowded_appearance`); None: off,
            as published.
        appearance_fusion: "min" (published): the first association's cost is `min(d_iou, d_emb)`,
            so appearance alone can link any close pair. "gate": the cost is the fused IoU, and
            appearance only forbids pairs whose half cosine distance exceeds `appearance_thresh`
            (a track seen with some appearance never matches a box that looks unlike it). For a
            ReID net that tells people apart less well than in its own world (synthetic to real):
            appearance can then only prevent a link, never make one motion would not.
        relink_lost: after the two IoU stages, lost tracks may take a high-score box still unmatched
            by appearance alone (half cosine distance under `appearance_thresh`), among the boxes
            their Kalman filter admits (Mahalanobis, chi-square 95%, 4 dof; the gate widens while
            the track is lost). BoT-SORT's appearance otherwise acts only on boxes that overlap the
            prediction (`proximity_thresh`), so a person who comes out from behind an occluder
            away from where the filter drifted starts a new identity. False: as published.
        cmc: camera-motion compensation (`CameraMotionCompensation` or None for off).

    `update` runs ByteTrack's seven steps (the shared step methods of `ByteTrack`); what
    BoT-SORT changes is written out in `_step`: the `(x, y, w, h)` Kalman filter, embeddings
    of the high-score boxes, camera-motion compensation after the prediction, and the
    IoU/appearance cost of the first association.
    """

    def __init__(
        self,
        track_high_thresh: float = 0.6,
        track_low_thresh: float = 0.1,
        new_track_thresh: float = 0.7,
        match_thresh: float = 0.8,
        second_match_thresh: float = 0.5,
        unconfirmed_match_thresh: float = 0.7,
        track_buffer: int = 30,
        proximity_thresh: float = 0.5,
        appearance_thresh: float = 0.25,
        ema_alpha: float = 0.9,
        appearance_for_unconfirmed: bool = False,
        appearance_max_cover: float | None = None,
        appearance_fusion: str = "min",
        relink_lost: bool = False,
        fuse_score: bool = True,
        duplicate_iou_dist: float = 0.15,
        min_box_area: float = 10.0,
        aspect_ratio_thresh: float = 1.6,
        iou_offset: float = 1.0,
        reference_removal: bool = True,
        output_unconfirmed: bool = True,
        cmc: CameraMotionCompensation | None = None,
        frame_rate: float = 30.0,
        embedder: Embedder | None = None,
    ) -> None:
        self.proximity_thresh = proximity_thresh
        self.appearance_thresh = appearance_thresh
        self.ema_alpha = ema_alpha
        self.appearance_for_unconfirmed = appearance_for_unconfirmed
        self.appearance_max_cover = appearance_max_cover
        if appearance_fusion not in ("min", "gate"):
            raise ValueError(f"appearance_fusion must be 'min' or 'gate', got {appearance_fusion!r}")
        self.appearance_fusion = appearance_fusion
        self.relink_lost = relink_lost
        self.cmc = cmc
        super().__init__(
            track_thresh=track_high_thresh,
            low_thresh=track_low_thresh,
            new_track_thresh=new_track_thresh,
            match_thresh=match_thresh,
            second_match_thresh=second_match_thresh,
            unconfirmed_match_thresh=unconfirmed_match_thresh,
            track_buffer=track_buffer,
            fuse_score=fuse_score,
            duplicate_iou_dist=duplicate_iou_dist,
            min_box_area=min_box_area,
            aspect_ratio_thresh=aspect_ratio_thresh,
            iou_offset=iou_offset,
            reference_removal=reference_removal,
            output_unconfirmed=output_unconfirmed,
            frame_rate=frame_rate,
            embedder=embedder,
            kalman=XywhKalman(),
        )

    def _on_reset(self) -> None:
        super()._on_reset()
        if self.cmc is not None:
            self.cmc.reset()

    def _step(
        self, boxes: np.ndarray, scores: np.ndarray, embeddings: np.ndarray | None, image: np.ndarray | None
    ) -> np.ndarray:
        det_xyxy = self._begin_frame(boxes)

        # 1. split detections by score; appearance of the high-score boxes (None: motion only)
        high, low = self._split_by_score(scores)
        feats = self._high_score_features(image, boxes, high, embeddings)
        feats = drop_crowded_appearance(feats, det_xyxy, high, self.appearance_max_cover)

        # 2. predict confirmed + lost tracks, then warp every track by the camera motion (CMC)
        pool, unconfirmed = self._predict_pool()
        self._compensate_camera_motion(image, boxes)
        trk_xyxy = self.kf.states_to_xyxy(self.tracks.mean)

        # 3. first association: pool vs high-score detections, min(fused IoU, gated appearance)
        cost = self._fused_cost(pool, high, trk_xyxy, det_xyxy, scores, feats)
        first, u_pool, left = self._associate(pool, high, cost, self.match_thresh)

        # 4. second association (as ByteTrack): low-score detections, plain IoU, no appearance
        was_lost = u_pool[self.tracks.state[u_pool] == LOST]
        second = self._second_association(u_pool, low, trk_xyxy, det_xyxy)
        relinked, left = self._relink_lost(was_lost, left, boxes, feats)

        # 5. unconfirmed tracks vs the high-score detections left (appearance too: AIC23 variant)
        if self.appearance_for_unconfirmed:
            cost = self._fused_cost(unconfirmed, left, trk_xyxy, det_xyxy, scores, feats)
        else:
            cost = self._motion_cost(trk_xyxy[unconfirmed], det_xyxy[left], scores[left])
        third, u_unconfirmed, left = self._associate(unconfirmed, left, cost, self.unconfirmed_match_thresh)
        self._apply_matches((first, second, relinked, third), boxes, scores)
        if feats is not None:  # embedding EMA of tracks matched to high-score boxes (low ones carry none)
            rows = np.concatenate([first[0], relinked[0], third[0]])
            dets = np.concatenate([first[1], relinked[1], third[1]])
            self.tracks.set_features(rows, feats[dets], alpha=self.ema_alpha)

        # 6. start tracks from confident unmatched detections, with their embeddings
        self._start_tracks(left, boxes, scores, feats)

        # 7. remove unmatched unconfirmed tracks, stale lost tracks and tracked/lost duplicates
        return self._remove_tracks(u_unconfirmed)

    def _high_score_features(
        self, image: np.ndarray | None, boxes: np.ndarray, high: np.ndarray, embeddings: np.ndarray | None
    ) -> np.ndarray | None:
        """Embeddings indexed like `boxes`: the given ones, or the embedder's for the high-score boxes."""
        if embeddings is not None:
            return np.asarray(embeddings, dtype=np.float64)
        computed = self._embed(image, boxes[high], None)
        if computed is None:
            return None
        feats = np.zeros((len(boxes), computed.shape[1]))
        feats[high] = computed
        return feats

    def _relink_lost(
        self, lost: np.ndarray, left: np.ndarray, boxes: np.ndarray, feats: np.ndarray | None
    ) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
        """Step 4b (`relink_lost`): tracks lost before this frame vs the high-score boxes left, by
        appearance under each track's Kalman gate; `((rows, dets) matched, dets still left)`."""
        none = (np.empty(0, np.int64), np.empty(0, np.int64))
        if not self.relink_lost or feats is None or len(lost) == 0 or len(left) == 0:
            return none, left
        t = self.tracks
        emb_d, known = self._appearance_distance(lost, feats[left])
        gate = self.kf.gating_distance(t.mean[lost], t.cov[lost], self.kf.boxes_to_measurements(boxes[left]))
        emb_d[~known | (gate > CHI2INV95[4])] = 1.0
        relinked, _, left = self._associate(lost, left, emb_d, self.appearance_thresh)
        return relinked, left

    def _appearance_distance(self, rows: np.ndarray, det_feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Half cosine distances of tracks `rows` to `det_feats`, and where both sides have an embedding
        (a zero row is none: a track not seen with appearance yet, a box `drop_crowded_appearance` emptied)."""
        track_feats = self.tracks.feature[rows]
        known = np.any(track_feats != 0, axis=1)[:, None] & np.any(det_feats != 0, axis=1)
        return embedding_distance(track_feats, det_feats) / 2.0, known

    def _compensate_camera_motion(self, image: np.ndarray | None, boxes: np.ndarray) -> None:
        """Warp every track's predicted state by the frame-to-frame affine camera motion."""
        if self.cmc is None or image is None:
            return
        warp = self.cmc.apply(image, boxes)
        t = self.tracks
        if len(t) == 0 or np.allclose(warp, np.eye(2, 3)):
            return
        rot = warp[:, :2]
        big = np.kron(np.eye(4), rot)  # the same 2x2 acts on (x, y), (w, h) and both velocities
        t.mean = t.mean @ big.T
        t.mean[:, :2] += warp[:, 2]
        t.cov = big @ t.cov @ big.T

    def _fused_cost(
        self,
        rows: np.ndarray,
        dets: np.ndarray,
        trk_xyxy: np.ndarray,
        det_xyxy: np.ndarray,
        scores: np.ndarray,
        feats: np.ndarray | None,
    ) -> np.ndarray:
        """`min(d_iou, d_emb)` with appearance only for close pairs; fused IoU without embeddings."""
        iou_d = iou_distance_xyxy(trk_xyxy[rows], det_xyxy[dets], self.iou_offset)
        cost = fuse_score(iou_d, scores[dets]) if self.fuse_score else iou_d
        if feats is None or iou_d.size == 0:
            return cost
        emb_d, known = self._appearance_distance(rows, feats[dets])
        if self.appearance_fusion == "gate":
            return np.where(known & (emb_d > self.appearance_thresh), 1.0, cost)
        emb_d[(emb_d > self.appearance_thresh) | (iou_d > self.proximity_thresh) | ~known] = 1.0
        return np.minimum(cost, emb_d)
