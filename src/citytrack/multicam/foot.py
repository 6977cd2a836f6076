"""Foot points: where in the image a tracked person touches the ground.

The ground-plane position of a person is the foot point mapped through the camera's
homography, so this step decides the world coordinates every cross-camera method uses. It is a
replaceable step (`pose=...`): `BoxBottomCentre` is the AI City baseline without pose; a
keypoint-based estimator replaces it when the feet are hidden or cut by the frame edge.
"""

from __future__ import annotations

import numpy as np


class BoxBottomCentre:
    """`(x + w/2, y + h)`: the bottom centre of the (amodal) box, the ground point of a standing person.

    `height_fraction < 1` takes a point higher up the box (AIC23's fallback uses 0.95).
    """

    def __init__(self, height_fraction: float = 1.0) -> None:
        self.height_fraction = float(height_fraction)

    def __call__(self, boxes: np.ndarray, camera_ids: np.ndarray | None = None) -> np.ndarray:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        return np.c_[boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1] + boxes[:, 3] * self.height_fraction]
