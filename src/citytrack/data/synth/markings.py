"""Ground markings: zebra crossings, stop and centre lines, plaza lines, tactile strips, covers.

Why: painted stripes and lines are high-contrast edges real detectors must learn to ignore.
Painted into the world's top-down ground texture in metres, so every camera sees them through
its calibrated homography, exactly where they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from citytrack.data.synth.raster import SHIFT, fixed_point

if TYPE_CHECKING:
    from citytrack.data.synth.world import GroundTexture, SceneSpec


def paint_markings(ground: GroundTexture, spec: SceneSpec, rng: np.random.Generator) -> None:
    """Paint zebra crossings, road lines, plaza lines and covers into the ground texture, in world metres."""
    c = spec.clutter
    img, ppm = ground.image, ground.ppm
    origin = np.array([ground.x0, ground.y0])
    paint = img.copy()

    def poly(pts: np.ndarray, colour: tuple[float, float, float]) -> None:
        tp = fixed_point((np.asarray(pts) - origin) * ppm)
        cv2.fillConvexPoly(paint, tp, colour, cv2.LINE_AA, SHIFT)

    def rect(x0: float, y0: float, x1: float, y1: float, colour: tuple[float, float, float]) -> None:
        poly(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]), colour)

    def road_rect(axis: int, sign: float, s0: float, s1: float, t0: float, t1: float,
                  colour: tuple[float, float, float]) -> None:
        """Rectangle on a road arm: `s` outward along the arm, `t` across it from its centre line."""
        a, b = sorted((sign * s0, sign * s1))
        centre = ground.roads[axis]
        if axis == 0:
            rect(a, centre + t0, b, centre + t1, colour)
        else:
            rect(centre + t0, a, centre + t1, b, colour)

    white, yellow = (225.0, 230.0, 230.0), (60.0, 200.0, 235.0)
    px, py = spec.area[0] / 2 + spec.walk_margin + 0.5, spec.area[1] / 2 + spec.walk_margin + 0.5
    arms = [(0, 1.0), (0, -1.0), (1, 1.0), (1, -1.0)]
    order = rng.permutation(len(arms))
    for k in range(c.crossings):
        axis, sign = arms[int(order[k % 4])]
        start = (px if axis == 0 else py) + rng.uniform(0.5, 3.0) + 6.0 * (k // 4)
        length = rng.uniform(2.5, 4.0)
        bar = rng.uniform(0.4, 0.55)
        t = -1.45
        while t + bar <= 1.45:  # bars along the traffic, across the road width
            road_rect(axis, sign, start, start + length, t, t + bar, white)
            t += 2 * bar
        road_rect(axis, sign, start + length + 0.6, start + length + 0.9, -1.45, 0.0, white)  # stop line
        line = yellow if rng.random() < 0.3 else white
        s, dash = start + length + 1.5, rng.uniform(1.0, 2.0)
        while s < start + length + 14.0:  # dashed centre line outward
            road_rect(axis, sign, s, s + dash, -0.06, 0.06, line)
            s += 2 * dash
    for _ in range(c.lines):
        if rng.random() < 0.5:  # a painted line across the plaza
            colour = white if rng.random() < 0.7 else yellow
            w = rng.uniform(0.08, 0.15)
            if rng.random() < 0.5:
                y = rng.uniform(-0.8, 0.8) * py
                rect(-px, y - w / 2, px, y + w / 2, colour)
            else:
                x = rng.uniform(-0.8, 0.8) * px
                rect(x - w / 2, -py, x + w / 2, py, colour)
        else:  # a tactile strip along one edge, inside the kerb
            sx, sy = float(rng.choice([-1.0, 1.0])), rng.random() < 0.5
            lo, hi = sorted(rng.uniform(-0.9, 0.9, 2))
            tactile = (90.0, 190.0, 215.0)
            if sy:
                rect(lo * px, sx * (py - 0.8), hi * px, sx * (py - 0.4), tactile)
            else:
                rect(sx * (px - 0.8), lo * py, sx * (px - 0.4), hi * py, tactile)
    for _ in range(c.covers):
        at = rng.uniform(-1, 1, 2) * np.array([px, py])
        if rng.random() < 0.4:  # on a road arm
            axis = int(rng.integers(2))
            at[1 - axis] = ground.roads[axis] + rng.uniform(-1.0, 1.0)
            at[axis] = rng.choice([-1, 1]) * ((px if axis == 0 else py) + rng.uniform(1.0, 12.0))
        r = rng.uniform(0.3, 0.4)
        ring = np.c_[np.cos(np.linspace(0, 2 * np.pi, 16, endpoint=False)), np.sin(np.linspace(0, 2 * np.pi, 16, endpoint=False))]
        if rng.random() < 0.5:
            poly(at + r * ring, (70.0, 72.0, 75.0))
            poly(at + 0.8 * r * ring, (95.0, 97.0, 100.0))
        else:  # a square drain grate
            rect(at[0] - r, at[1] - r * 0.6, at[0] + r, at[1] + r * 0.6, (50.0, 52.0, 55.0))
    # Worn paint: keep some of the ground's grain under it.
    cv2.addWeighted(img, 0.18, paint, 0.82, 0.0, dst=img)
