"""Lens distortion of a camera: OpenCV's model, `K` plus `k1 k2 p1 p2 [k3 ...]`.

Cameras whose ground homography is calibrated on the *undistorted* image (the AI City 2019
fisheye cameras) need their pixels undistorted before the homography and the homography's
output distorted back; `CameraCalibration` does both through the two functions here.
"""

from __future__ import annotations

import cv2
import numpy as np

DISTORTION_SIZES = (4, 5, 8, 12, 14)
"""Coefficient counts of OpenCV's models: `k1 k2 p1 p2 [k3 [k4 k5 k6 [s1 s2 s3 s4 [tx ty]]]]`."""

# cv2.undistortPoints stops after 5 iterations (~0.3 px off near the corners of a strong fisheye);
# iterating to convergence makes the two functions inverse to ~1e-9 px
_UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)


class LensError(ValueError):
    """A lens model cannot be used: not a camera matrix, or the wrong distortion coefficients."""


def check_lens(intrinsics: object, distortion: object) -> tuple[np.ndarray, np.ndarray]:
    """`K (3, 3)` scaled so `K[2, 2] = 1` and the coefficients `(n,)`; raises `LensError` if unusable.

    `K` must be `[[fx s cx] [0 fy cy] [0 0 1]]` up to scale with positive focal lengths, the
    coefficients finite and as many as one of OpenCV's models takes (`DISTORTION_SIZES`).
    """
    K = np.asarray(intrinsics, dtype=np.float64)
    if K.shape != (3, 3) or not np.isfinite(K).all():
        raise LensError(f"intrinsics must be a finite 3x3 matrix, got {K.tolist()}")
    if K[2, 2] == 0 or K[2, 0] != 0 or K[2, 1] != 0 or K[1, 0] != 0:
        raise LensError(f"intrinsics must be a camera matrix [[fx s cx] [0 fy cy] [0 0 1]], got {K.tolist()}")
    K = K / K[2, 2]
    if not (K[0, 0] > 0 and K[1, 1] > 0):
        raise LensError(f"intrinsics need positive focal lengths, got fx={K[0, 0]}, fy={K[1, 1]}")
    dist = np.asarray(distortion, dtype=np.float64).reshape(-1)
    if dist.size not in DISTORTION_SIZES:
        sizes = ", ".join(map(str, DISTORTION_SIZES))
        raise LensError(f"expected {sizes} distortion coefficients, got {dist.size}")
    if not np.isfinite(dist).all():
        raise LensError(f"distortion coefficients are not finite: {dist.tolist()}")
    return K, dist


def undistort_points(uv: np.ndarray, K: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Pixels `(N, 2)` to the undistorted image of the same `K` (`cv2.undistortPointsIter`); NaN rows stay NaN."""
    out = np.array(uv, dtype=np.float64).reshape(-1, 2)
    ok = np.isfinite(out).all(1)
    if ok.any():
        pts = np.ascontiguousarray(out[ok]).reshape(-1, 1, 2)
        out[ok] = cv2.undistortPointsIter(pts, K, dist, None, K, _UNDISTORT_CRITERIA).reshape(-1, 2)
    return out


def distort_points(uv: np.ndarray, K: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """The inverse of `undistort_points`: undistorted pixels `(N, 2)` to the camera's (`cv2.projectPoints`)."""
    out = np.array(uv, dtype=np.float64).reshape(-1, 2)
    ok = np.isfinite(out).all(1)
    if ok.any():
        rays = np.linalg.solve(K, np.column_stack([out[ok], np.ones(int(ok.sum()))]).T).T  # z = 1
        pixels, _ = cv2.projectPoints(rays, np.zeros(3), np.zeros(3), K, dist)
        out[ok] = pixels.reshape(-1, 2)
    return out
