"""Drawing lands where it projects: OpenCV fixed-point coordinates in the continuous pixel convention."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from citytrack.data.synth.raster import SHIFT, fixed_point


def _centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()]) + 0.5  # pixel i's centre is i + 0.5


@pytest.mark.parametrize("shape", ["square", "disc", "capsule"])
def test_drawn_shapes_are_centred_on_their_continuous_centre(shape: str) -> None:
    rng = np.random.default_rng(0)
    errors = []
    for _ in range(200):
        centre, r = rng.uniform(10, 14, 2), rng.uniform(2.0, 5.0)
        origin = rng.integers(-3, 4, 2).astype(float)  # a canvas whose top-left is not the image's
        mask = np.zeros((32, 32), np.uint8)
        if shape == "square":
            corners = centre + np.array([[-r, -r], [r, -r], [r, r], [-r, r]])
            cv2.fillConvexPoly(mask, fixed_point(corners + origin, origin), 1, cv2.LINE_8, SHIFT)
        elif shape == "disc":
            cv2.circle(mask, tuple(fixed_point(centre).tolist()), int(r * (1 << SHIFT)), 1, -1, cv2.LINE_8, SHIFT)
        else:
            a, b = fixed_point(centre - [0, r]).tolist(), fixed_point(centre + [0, r]).tolist()
            cv2.line(mask, tuple(a), tuple(b), 1, 3, cv2.LINE_8, SHIFT)
        errors.append(_centroid(mask) - centre)
    bias = np.mean(errors, axis=0)
    # unshifted coordinates (world versions 1-2) put every shape ~0.5 px right of and below its centre
    assert np.all(np.abs(bias) < 0.1), bias


def test_fixed_point_rounds_to_the_nearest_sixteenth() -> None:
    pts = np.array([[0.5, 0.5], [1.0, 2.0], [0.5 + 1 / 32 + 1e-9, 0.5 - 1 / 32 - 1e-9]])
    assert fixed_point(pts).tolist() == [[0, 0], [8, 24], [1, -1]]
    assert fixed_point(pts, (1.0, 2.0)).dtype == np.int32
    assert fixed_point(pts, (1.0, 2.0))[1].tolist() == [-8, -8]
