"""The tracker protocol every association method implements, and its shared plumbing.

A tracker is built from its Hydra config and called once per frame, in order:

    tracker = hydra.utils.instantiate(cfg.tracker)
    for frame, dets in ...:
        out = tracker.update(dets, frame=frame, embeddings=None, image=None)

`dets` is `(N, 5+)` `[x, y, w, h, score, ...]` (extra columns ignored); the output is
`(M, 7)` `[x, y, w, h, track_id, score, det_index]` where `det_index` is the row of
`dets` the track was matched to this frame (-1 for a track reported from prediction
only). Call `update` for every frame, with an empty array when a frame has no
detections, so the motion model stays in step. `reset()` starts a new sequence.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from citytrack.tracking.kalman import BatchedKalmanFilter
from citytrack.tracking.matching import covered_fraction
from citytrack.tracking.track import TrackSet

log = logging.getLogger(__name__)

OUTPUT_COLUMNS: tuple[str, ...] = ("x", "y", "w", "h", "track_id", "score", "det_index")
Embedder = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""`embedder(image HxWx3 BGR, boxes_xywh (N, 4)) -> (N, D)` appearance embeddings, or any object with
that `embed(image, boxes)` method (the ReID `FeatureExtractor`, an oracle, a test double)."""


def embed_boxes(embedder: object, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The one way every tracker asks an embedder for `(N, D)` features of one image's boxes."""
    fn = getattr(embedder, "embed", embedder)
    if not callable(fn):
        raise TypeError(f"embedder {embedder!r} is neither callable nor has an embed(image, boxes) method")
    return np.asarray(fn(image, boxes), dtype=np.float64)


def drop_crowded_appearance(
    features: np.ndarray | None, boxes_xyxy: np.ndarray, among: np.ndarray, max_cover: float | None
) -> np.ndarray | None:
    """`features` (indexed like `boxes_xyxy`) with the rows of crowded boxes zeroed: a box of `among`
    with more than `max_cover` of its area inside another box of `among` (`covered_fraction`).

    A zero row is "no appearance" to both trackers: the box is matched by motion only and leaves the
    track's embedding as it was. Why: its crop shows the other person too, and on real video, where a
    synthetic-trained ReID net separates people less well than in its own world, such mixed crops are
    what re-link two people who cross. `max_cover=None` keeps every row (the published trackers).
    """
    if features is None or max_cover is None or len(among) < 2:
        return features
    crowded = among[covered_fraction(boxes_xyxy[among]) > max_cover]
    if len(crowded) == 0:
        return features
    features = np.array(features, dtype=np.float64)
    features[crowded] = 0.0
    return features


@runtime_checkable
class Tracker(Protocol):
    """What the runners, benchmarks and multi-camera code rely on."""

    def update(
        self,
        dets: np.ndarray,
        frame: int | None = None,
        embeddings: np.ndarray | None = None,
        image: np.ndarray | None = None,
    ) -> np.ndarray: ...

    def reset(self, frame_rate: float | None = None) -> None: ...


class BaseTracker(ABC):
    """Input checks, id counter, embedder callback and output packing shared by all trackers.

    Subclasses pass their Kalman filter (the motion model is a dependency, not a hook) and
    implement `_step(boxes, scores, embeddings, image) -> rows` where `rows` indexes
    `self.tracks` in output order.
    """

    def __init__(self, kf: BatchedKalmanFilter, frame_rate: float = 30.0, embedder: Embedder | None = None) -> None:
        self.kf = kf
        self.frame_rate = float(frame_rate)
        self.embedder = embedder
        self.tracks = self._make_tracks()
        self.reset()

    def _make_tracks(self) -> TrackSet:
        """Track storage sized for the Kalman state (DeepSORT adds an appearance gallery)."""
        return TrackSet(self.kf.ndim_x)

    def reset(self, frame_rate: float | None = None) -> None:
        """Forget every track and restart ids at 1 (new sequence); optionally set its frame rate."""
        if frame_rate is not None:
            if frame_rate <= 0:
                raise ValueError(f"frame_rate must be positive, got {frame_rate}")
            self.frame_rate = float(frame_rate)
        self.tracks.clear()
        self.frame_count = 0
        self.frame: int | None = None
        self._next_id = 1
        self._on_reset()

    def _on_reset(self) -> None:
        """Hook for subclasses whose state depends on the frame rate or the sequence."""

    def _new_ids(self, n: int) -> np.ndarray:
        ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        self._next_id += n
        return ids

    def update(
        self,
        dets: np.ndarray,
        frame: int | None = None,
        embeddings: np.ndarray | None = None,
        image: np.ndarray | None = None,
    ) -> np.ndarray:
        """Associate one frame's detections; returns `(M, 7)` rows of `OUTPUT_COLUMNS`."""
        dets = np.asarray(dets, dtype=np.float64)
        if dets.size == 0:
            dets = dets.reshape(0, 5)
        if dets.ndim != 2 or dets.shape[1] < 5:
            raise ValueError(f"dets must be (N, 5+) [x, y, w, h, score], got shape {dets.shape}")
        boxes, scores = dets[:, :4], dets[:, 4]
        if embeddings is not None:
            embeddings = np.asarray(embeddings)
            if embeddings.ndim != 2 or len(embeddings) != len(dets):
                raise ValueError(
                    f"embeddings must be (N, D) with N = {len(dets)} detections, got shape {embeddings.shape}"
                )
        # Non-finite or empty boxes (a broken detector, a bad file row) would poison the Kalman
        # state (NaN, singular innovation): they are dropped, and det_index still names input rows.
        valid = np.isfinite(dets[:, :5]).all(axis=1) & (dets[:, 2] > 0) & (dets[:, 3] > 0)
        kept: np.ndarray | None = None
        if not valid.all():
            kept = np.flatnonzero(valid)
            log.warning("frame %s: dropped %d detections with non-finite values or non-positive size",
                        frame, int((~valid).sum()))
            boxes, scores = boxes[kept], scores[kept]
            embeddings = embeddings[kept] if embeddings is not None else None
        self.frame_count += 1
        self.frame = int(frame) if frame is not None else self.frame_count
        rows = self._step(boxes, scores, embeddings, image)
        out = self._pack(rows)
        if kept is not None and len(out):
            matched = out[:, 6] >= 0
            out[matched, 6] = kept[out[matched, 6].astype(np.int64)]
        return out

    def _embed(self, image: np.ndarray | None, boxes: np.ndarray, embeddings: np.ndarray | None) -> np.ndarray | None:
        """Embeddings given, else computed by the embedder callback when there is an image."""
        if embeddings is not None or self.embedder is None or image is None or len(boxes) == 0:
            return embeddings
        return embed_boxes(self.embedder, image, boxes)

    @abstractmethod
    def _step(
        self, boxes: np.ndarray, scores: np.ndarray, embeddings: np.ndarray | None, image: np.ndarray | None
    ) -> np.ndarray: ...

    def _boxes(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Current `(x, y, w, h)` boxes of the given rows (all rows when None)."""
        mean = self.tracks.mean if rows is None else self.tracks.mean[rows]
        return self.kf.states_to_boxes(mean)

    def _pack(self, rows: np.ndarray) -> np.ndarray:
        t = self.tracks
        out = np.empty((len(rows), len(OUTPUT_COLUMNS)))
        if len(rows):
            out[:, :4] = self._boxes(rows)
            out[:, 4] = t.track_id[rows]
            out[:, 5] = t.score[rows]
            out[:, 6] = t.det_index[rows]
        return out
