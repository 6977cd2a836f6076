"""Sub-pixel OpenCV drawing in the project's pixel convention.

Projections, boxes and ground truth use continuous pixel coordinates: pixel i covers [i, i + 1), its
centre at i + 0.5. OpenCV's drawing puts pixel i's centre at i. Points handed to OpenCV unshifted land
every drawn shape half a pixel right of and below its ground truth (world versions 1-2: a keypoint
network trained with mirror augmentation erred by that half pixel in x, the one axis mirroring hides).
"""

from __future__ import annotations

import numpy as np

SHIFT = 4  # sub-pixel bits of OpenCV's fixed-point drawing coordinates
ONE = 1 << SHIFT


def fixed_point(points: np.ndarray, origin: tuple[float, float] | np.ndarray = (0.0, 0.0)) -> np.ndarray:
    """int32 OpenCV drawing coordinates (`SHIFT` fractional bits) of continuous pixel `points` `(..., 2)`,
    relative to `origin` (the top-left of the canvas they are drawn into, in the same pixels)."""
    rel = np.asarray(points, dtype=np.float64) - np.asarray(origin, dtype=np.float64)
    return np.floor((rel - 0.5) * ONE + 0.5).astype(np.int32)
