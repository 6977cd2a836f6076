"""Building fronts: storeys of windows and doors on the skyline's blocks and on near buildings.

Why: windows and doors are among the commonest false positives of a detector trained without
them (a door is person-sized). Near fronts stand along the plaza's sides beyond the farthest
camera, so they can never come between a camera and a person. World-side only (seeded,
deterministic); `render.py` draws each block and then `facade_quads` on the walls it sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from citytrack.data.synth.solids import BGR, Solid, block

if TYPE_CHECKING:
    from citytrack.data.synth.world import Occluder, SceneSpec


@dataclass
class Facade:
    """A building block and the look of its walls: storeys of windows, doors on the ground floor."""

    solid: Solid
    storey: float  # floor height, metres
    bay: float  # window spacing along a wall
    window: tuple[float, float]  # width, height
    sill: float  # window bottom above its floor
    glass: BGR
    door: BGR
    shopfront: bool  # ground floor of shop windows instead of ordinary ones
    seed: int  # per-window variation (reflections, lit at dusk), the same in every camera


BUILDING_GLASS: tuple[BGR, ...] = ((95, 80, 65), (70, 62, 55), (120, 105, 90), (60, 60, 62), (110, 115, 100))
DOOR_COLOURS: tuple[BGR, ...] = ((35, 50, 70), (60, 60, 62), (80, 60, 45), (40, 40, 110), (70, 62, 55))


def _facade(solid: Solid, rng: np.random.Generator) -> Facade:
    storey = float(rng.uniform(2.9, 3.6))
    bay = float(rng.uniform(2.2, 3.6))
    window = (float(rng.uniform(0.35, 0.6) * bay), float(rng.uniform(0.4, 0.6) * storey))
    return Facade(solid, storey, bay, window, float(rng.uniform(0.7, 1.0)), BUILDING_GLASS[int(rng.integers(len(BUILDING_GLASS)))],
                  DOOR_COLOURS[int(rng.integers(len(DOOR_COLOURS)))], bool(rng.random() < 0.4), int(rng.integers(2**31)))


def make_facades(blocks: list[Occluder], rng: np.random.Generator) -> list[Facade]:
    """Window and door looks for existing building blocks (the skyline)."""
    return [_facade(block(b.center, 0.0, b.size, b.yaw, b.colour), rng) for b in blocks]


def near_facades(spec: SceneSpec, rng: np.random.Generator) -> list[Facade]:
    """`spec.clutter.facades` building fronts along the plaza's sides, beyond the farthest camera."""
    from citytrack.data.synth.world import BUILDING_COLOURS

    hx, hy = spec.area[0] / 2 + spec.walk_margin, spec.area[1] / 2 + spec.walk_margin
    out: list[Facade] = []
    boxes: list[tuple[np.ndarray, np.ndarray]] = []
    for _attempt in range(30 * spec.clutter.facades):
        if len(out) >= spec.clutter.facades:
            break
        side = int(rng.integers(4))
        gap = spec.camera_distance[1] + rng.uniform(3.0, 8.0)  # the cameras are at most this far out
        length, depth, height = rng.uniform(12.0, 30.0), rng.uniform(8.0, 14.0), rng.uniform(7.0, 22.0)
        along = rng.uniform(-1, 1) * ((hx if side % 2 == 0 else hy) + 6.0)
        if side % 2 == 0:  # a front facing the plaza across its y sides
            y = (hy + gap + depth / 2) * (1 if side == 0 else -1)
            centre, size = np.array([along, y]), np.array([length, depth, height])
        else:
            x = (hx + gap + depth / 2) * (1 if side == 1 else -1)
            centre, size = np.array([x, along]), np.array([depth, length, height])
        lo, hi = centre - size[:2] / 2, centre + size[:2] / 2
        if any((lo < b_hi + 1.0).all() and (b_lo - 1.0 < hi).all() for b_lo, b_hi in boxes):
            continue
        boxes.append((lo, hi))
        out.append(_facade(block(centre, 0.0, size, 0.0, BUILDING_COLOURS[int(rng.integers(len(BUILDING_COLOURS)))]), rng))
    return out


def facade_quads(f: Facade, dusk: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows and doors on the four walls: corners (N, 4, 3), colours (N, 3) BGR, wall face index (N,).

    Quads sit 3 cm in front of their wall, so a renderer draws them right after the wall. At
    dusk (`dusk` in [0, 1]) up to 35% of windows are lit; which ones is fixed by `f.seed`.
    """
    rng = np.random.default_rng(f.seed)
    v = f.solid.vertices
    height = float(v[4, 2] - v[0, 2])
    quads, colours, walls = [], [], []
    for wall in range(2, 6):  # the side faces of `block`
        i = wall - 2
        a, b = v[i], v[(i + 1) % 4]
        length = float(np.linalg.norm(b[:2] - a[:2]))
        e = (b - a) / max(length, 1e-9)
        lift = f.solid.normals[wall] * 0.03
        cols = int((length - 1.0) // f.bay)
        if cols < 1:
            continue
        s = (length - (cols - 1) * f.bay) / 2 + f.bay * np.arange(cols)
        doors = set(rng.choice(cols, size=min(cols, int(rng.integers(1, 3))), replace=False).tolist())
        floors = int((height - 0.4) // f.storey)
        for fl in range(floors):
            for k in range(cols):
                if fl == 0 and k in doors:
                    w, z0, z1, colour = rng.uniform(1.0, 1.7), 0.0, rng.uniform(2.1, 2.5), np.asarray(f.door, float)
                elif fl == 0 and f.shopfront:
                    w, z0, z1, colour = 0.82 * f.bay, 0.35, 2.6, np.asarray(f.glass, float) * 1.2
                else:
                    w, z0 = f.window[0], fl * f.storey + f.sill
                    z1 = z0 + f.window[1]
                    colour = np.asarray(f.glass, float)
                    if z1 > height - 0.3:
                        continue
                colour = colour * rng.uniform(0.75, 1.3)
                if rng.random() < 0.35 * dusk and not (fl == 0 and k in doors):
                    colour = np.array([90.0, 200.0, 250.0]) * rng.uniform(0.8, 1.0)
                p0, p1 = a + e * (s[k] - w / 2) + lift, a + e * (s[k] + w / 2) + lift
                quads.append([p0 + [0, 0, z0], p1 + [0, 0, z0], p1 + [0, 0, z1], p0 + [0, 0, z1]])
                colours.append(np.clip(colour, 0, 255))
                walls.append(wall)
    if not quads:
        return np.zeros((0, 4, 3)), np.zeros((0, 3)), np.zeros(0, dtype=np.int64)
    return np.asarray(quads), np.asarray(colours), np.asarray(walls)
