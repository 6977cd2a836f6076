"""Track storage as a struct of arrays, and the track life cycle.

Trackers keep all their tracks in one `TrackSet`: one row per track across parallel
arrays (Kalman mean and covariance, id, state, counters, appearance). Steps of the
association select rows with index arrays and update them in place, so a frame costs a
handful of array operations whatever the number of tracks, and no per-track Python
objects are created or destroyed.

Life cycle (`TrackState`): a track is born `TENTATIVE`, becomes `CONFIRMED` after
enough hits, turns `LOST` when it misses detections, and is `REMOVED` (dropped from the
set) when it misses for too long or dies tentative.
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar

import numpy as np


class TrackState(IntEnum):
    """Where a track is in its life cycle."""

    TENTATIVE = 0
    CONFIRMED = 1
    LOST = 2
    REMOVED = 3


class TrackSet:
    """All live tracks of one tracker, one row each.

    Fields: `mean (T, n)`, `cov (T, n, n)`, `track_id`, `state`, `hits` (total updates),
    `hit_streak` (consecutive updated frames), `age` (frames since birth),
    `time_since_update`, `start_frame`, `end_frame` (last updated frame), `score` (last
    detection score), `det_index` (detection matched this frame, -1 if none), `activated`
    (ByteTrack's is_activated), `tracklet_len`, `expired` (ByteTrack: passed the lost-track
    buffer once, see `ByteTrack`); appearance: `feature (T, D)` (smoothed,
    L2-normalised; zero row when unknown) and a DeepSORT gallery `(T, budget, D)` ring
    buffer with `gallery_count` and `gallery_next`.
    """

    _SCALARS: ClassVar[dict[str, type]] = {
        "track_id": np.int64,
        "state": np.int8,
        "hits": np.int64,
        "hit_streak": np.int64,
        "age": np.int64,
        "time_since_update": np.int64,
        "start_frame": np.int64,
        "end_frame": np.int64,
        "score": np.float64,
        "det_index": np.int64,
        "activated": bool,
        "tracklet_len": np.int64,
        "expired": bool,
        "gallery_count": np.int64,
        "gallery_next": np.int64,
    }

    def __init__(self, ndim_x: int, gallery_budget: int = 0) -> None:
        self.ndim_x = ndim_x
        self.gallery_budget = gallery_budget
        self.feature_dim: int | None = None
        self.clear()

    def clear(self) -> None:
        """Drop every track (new sequence)."""
        self.mean = np.zeros((0, self.ndim_x))
        self.cov = np.zeros((0, self.ndim_x, self.ndim_x))
        for name, dtype in self._SCALARS.items():
            setattr(self, name, np.zeros(0, dtype=dtype))
        self.feature = np.zeros((0, self.feature_dim or 0))
        self.gallery = np.zeros((0, self.gallery_budget, self.feature_dim or 0), dtype=np.float32)

    def __len__(self) -> int:
        return len(self.track_id)

    def _array_names(self) -> list[str]:
        return ["mean", "cov", "feature", "gallery", *self._SCALARS]

    def keep(self, index: np.ndarray) -> None:
        """Keep only the rows selected by a boolean mask or an index array (in that order)."""
        for name in self._array_names():
            setattr(self, name, getattr(self, name)[index])

    def add(
        self,
        mean: np.ndarray,
        cov: np.ndarray,
        track_id: np.ndarray,
        frame: int,
        score: np.ndarray,
        det_index: np.ndarray,
        state: TrackState = TrackState.TENTATIVE,
        activated: bool | np.ndarray = False,
        features: np.ndarray | None = None,
    ) -> np.ndarray:
        """Append new tracks (one hit each); returns their row indices."""
        n = len(mean)
        start = len(self)
        if n == 0:
            return np.arange(start, start)
        new = {
            "track_id": np.asarray(track_id, dtype=np.int64),
            "state": np.full(n, int(state), dtype=np.int8),
            "hits": np.ones(n, dtype=np.int64),
            "hit_streak": np.ones(n, dtype=np.int64),
            "age": np.ones(n, dtype=np.int64),
            "time_since_update": np.zeros(n, dtype=np.int64),
            "start_frame": np.full(n, frame, dtype=np.int64),
            "end_frame": np.full(n, frame, dtype=np.int64),
            "score": np.asarray(score, dtype=np.float64),
            "det_index": np.asarray(det_index, dtype=np.int64),
            "activated": np.broadcast_to(np.asarray(activated, dtype=bool), (n,)).copy(),
            "tracklet_len": np.zeros(n, dtype=np.int64),
            "expired": np.zeros(n, dtype=bool),
            "gallery_count": np.zeros(n, dtype=np.int64),
            "gallery_next": np.zeros(n, dtype=np.int64),
        }
        for name, values in new.items():
            setattr(self, name, np.concatenate([getattr(self, name), values]))
        self.mean = np.concatenate([self.mean, mean])
        self.cov = np.concatenate([self.cov, cov])
        rows = np.arange(start, start + n)
        self.feature = np.concatenate([self.feature, np.zeros((n, self.feature.shape[1]))])
        self.gallery = np.concatenate(
            [self.gallery, np.zeros((n, self.gallery_budget, self.gallery.shape[2]), dtype=np.float32)]
        )
        if features is not None:
            self.set_features(rows, features, alpha=0.0)
        return rows

    def _ensure_feature_dim(self, dim: int) -> None:
        if self.feature_dim == dim:
            return
        if self.feature_dim is not None and self.feature_dim != dim:
            raise ValueError(f"embedding dimension changed from {self.feature_dim} to {dim} within a sequence")
        self.feature_dim = dim
        self.feature = np.zeros((len(self), dim))
        self.gallery = np.zeros((len(self), self.gallery_budget, dim), dtype=np.float32)

    def set_features(self, rows: np.ndarray, features: np.ndarray, alpha: float) -> None:
        """Blend new L2-normalised embeddings into `feature` by EMA (`f <- a f + (1 - a) new`,
        BoT-SORT's alpha 0.9), and push them into the gallery ring buffer (DeepSORT budget).

        Rows whose feature is still unknown (zero) take the new embedding as is. An all-zero new
        embedding is no evidence (a crowded crop the tracker dropped): its row is left unchanged.
        """
        features = np.asarray(features, dtype=np.float64)
        if len(rows):
            evidence = np.any(features != 0, axis=1)
            rows, features = np.asarray(rows)[evidence], features[evidence]
        if len(rows) == 0:
            return
        self._ensure_feature_dim(features.shape[1])
        norm = np.linalg.norm(features, axis=1, keepdims=True)
        features = features / np.where(norm > 0, norm, 1.0)
        old = self.feature[rows]
        known = np.any(old != 0, axis=1, keepdims=True)
        blended = np.where(known, alpha * old + (1.0 - alpha) * features, features)
        bnorm = np.linalg.norm(blended, axis=1, keepdims=True)
        self.feature[rows] = blended / np.where(bnorm > 0, bnorm, 1.0)
        if self.gallery_budget > 0:
            slot = self.gallery_next[rows]
            self.gallery[rows, slot] = features
            self.gallery_next[rows] = (slot + 1) % self.gallery_budget
            self.gallery_count[rows] = np.minimum(self.gallery_count[rows] + 1, self.gallery_budget)
