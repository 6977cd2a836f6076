"""Camera-motion compensation (global motion between consecutive frames) for BoT-SORT.

`apply(image)` returns the `2x3` affine that maps the previous frame's pixel coordinates
to the current frame's; the tracker warps its predicted boxes with it before matching,
so a panning or shaking camera does not look like every target jumping. Two OpenCV
estimators, as in BoT-SORT's `gmc.py`:

- `sparse_optical_flow`: Shi-Tomasi corners (`goodFeaturesToTrack`) tracked by pyramidal
  Lucas-Kanade (`calcOpticalFlowPyrLK`), then a RANSAC similarity
  (`estimateAffinePartial2D`);
- `ecc`: dense intensity alignment (`findTransformECC`, Euclidean motion).

Frames are processed at `1 / downscale` resolution; the translation is scaled back.
"""

from __future__ import annotations

import logging
from typing import Literal

import cv2
import numpy as np

log = logging.getLogger(__name__)

CmcMethod = Literal["sparse_optical_flow", "ecc", "none"]
_METHODS = ("sparse_optical_flow", "ecc", "none")


class CameraMotionCompensation:
    """Frame-to-frame global affine motion.

    Args:
        method: `sparse_optical_flow`, `ecc` or `none` (identity).
        downscale: images are shrunk by this factor before estimation (speed).
        max_corners, quality_level, min_distance, block_size: `goodFeaturesToTrack` settings.
        ecc_iterations, ecc_eps: `findTransformECC` termination criteria.
        mask_detections: ignore corners inside detection boxes (moving people, not camera).
    """

    def __init__(
        self,
        method: CmcMethod = "sparse_optical_flow",
        downscale: int = 2,
        max_corners: int = 1000,
        quality_level: float = 0.01,
        min_distance: int = 1,
        block_size: int = 3,
        ecc_iterations: int = 100,
        ecc_eps: float = 1e-5,
        mask_detections: bool = False,
    ) -> None:
        if method not in _METHODS:
            raise ValueError(f"cmc method must be one of {_METHODS}, got {method!r}")
        if downscale < 1:
            raise ValueError(f"downscale must be >= 1, got {downscale}")
        self.method = method
        self.downscale = int(downscale)
        self.max_corners = max_corners
        self.quality_level = quality_level
        self.min_distance = min_distance
        self.block_size = block_size
        self.ecc_iterations = ecc_iterations
        self.ecc_eps = ecc_eps
        self.mask_detections = mask_detections
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame (new sequence)."""
        self._prev: np.ndarray | None = None
        self._prev_points: np.ndarray | None = None

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        if self.downscale > 1:
            h, w = gray.shape[:2]
            gray = cv2.resize(gray, (w // self.downscale, h // self.downscale))
        return gray

    def _mask(self, shape: tuple[int, ...], boxes: np.ndarray | None) -> np.ndarray | None:
        if not self.mask_detections or boxes is None or len(boxes) == 0:
            return None
        mask = np.full(shape[:2], 255, dtype=np.uint8)
        scaled = np.round(np.asarray(boxes)[:, :4] / self.downscale).astype(int)
        for x, y, w, h in scaled:  # a few dozen boxes per frame; rasterising needs the loop
            mask[max(y, 0) : max(y + h, 0), max(x, 0) : max(x + w, 0)] = 0
        return mask

    def apply(self, image: np.ndarray, boxes: np.ndarray | None = None) -> np.ndarray:
        """Affine `(2, 3)` from the previous frame to this one (identity on the first frame)."""
        identity = np.eye(2, 3)
        if self.method == "none":
            return identity
        frame = self._prepare(np.asarray(image))
        if self.method == "ecc":
            warp = self._ecc(frame)
        else:
            warp = self._sparse_flow(frame, self._mask(frame.shape, boxes))
        self._prev = frame
        return warp

    def _ecc(self, frame: np.ndarray) -> np.ndarray:
        warp = np.eye(2, 3, dtype=np.float32)
        if self._prev is None or self._prev.shape != frame.shape:
            return warp.astype(np.float64)
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, self.ecc_iterations, self.ecc_eps)
        try:
            _, warp = cv2.findTransformECC(
                cv2.GaussianBlur(self._prev, (3, 3), 1.5),
                cv2.GaussianBlur(frame, (3, 3), 1.5),
                warp,
                cv2.MOTION_EUCLIDEAN,
                criteria,
                None,
                1,
            )
        except cv2.error as err:
            log.warning("ECC did not converge (%s); assuming a static camera for this frame", err)
            warp = np.eye(2, 3, dtype=np.float32)
        # with template = previous and input = current frame, ECC finds W such that
        # current(W(x)) ~ previous(x): W maps previous-frame coordinates to current ones
        warp = warp.astype(np.float64)
        warp[:, 2] *= self.downscale
        return warp

    def _sparse_flow(self, frame: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        warp = np.eye(2, 3)
        points = cv2.goodFeaturesToTrack(
            frame,
            maxCorners=self.max_corners,
            qualityLevel=self.quality_level,
            minDistance=self.min_distance,
            blockSize=self.block_size,
            mask=mask,
        )
        prev, prev_points = self._prev, self._prev_points
        self._prev_points = points
        if prev is None or prev_points is None or prev.shape != frame.shape or len(prev_points) == 0:
            return warp
        moved, status, _ = cv2.calcOpticalFlowPyrLK(prev, frame, prev_points, None)
        ok = status.reshape(-1) == 1
        if ok.sum() <= 4:
            log.warning("CMC: only %d tracked corners; assuming a static camera for this frame", int(ok.sum()))
            return warp
        affine, _ = cv2.estimateAffinePartial2D(prev_points[ok], moved[ok], method=cv2.RANSAC)
        if affine is None:
            return warp
        affine = affine.astype(np.float64)
        affine[:, 2] *= self.downscale
        return affine
