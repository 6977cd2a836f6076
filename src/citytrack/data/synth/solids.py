"""Convex solids: the one primitive that street clutter and buildings are made of.

Why one primitive: a convex polyhedron needs no sorting within itself (back faces are culled),
its image silhouette and its shadow on the ground are convex hulls of projected vertices, and
boxes, posts, frusta, ellipsoids and slabs are all of this kind, so the renderer has one
drawing routine (`CameraRenderer._draw_solid`) for occluders, clutter and buildings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BGR = tuple[int, int, int]


@dataclass
class Solid:
    """A convex polyhedron of one colour."""

    vertices: np.ndarray  # (V, 3)
    faces: list[np.ndarray]  # vertex indices per face
    normals: np.ndarray  # (F, 3) outward unit normals
    colour: BGR
    shade: np.ndarray  # (F,) per-face brightness (leaves, weathering); ones for a plain surface

    @property
    def centroid(self) -> np.ndarray:
        return self.vertices.mean(axis=0)


def _solid(vertices: np.ndarray, faces: list[list[int]], colour: BGR, shade: np.ndarray | None = None) -> Solid:
    v = np.asarray(vertices, dtype=np.float64)
    idx = [np.asarray(f, dtype=np.int64) for f in faces]
    # Newell's normal of every face at once: faces padded to one length by repeating their last
    # vertex (a zero-length edge adds nothing), then oriented away from the solid's centre.
    m = max(len(f) for f in faces)
    p = v[np.array([list(f) + [f[-1]] * (m - len(f)) for f in faces])]  # (F, m, 3)
    real = (np.arange(m) < np.array([len(f) for f in faces])[:, None])[..., None]
    q = np.roll(p, -1, axis=1)
    normals = np.stack([((p[..., 1] - q[..., 1]) * (p[..., 2] + q[..., 2])).sum(1),
                        ((p[..., 2] - q[..., 2]) * (p[..., 0] + q[..., 0])).sum(1),
                        ((p[..., 0] - q[..., 0]) * (p[..., 1] + q[..., 1])).sum(1)], axis=1)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    centres = (p * real).sum(axis=1) / real.sum(axis=1)
    normals *= np.where((normals * (centres - v.mean(axis=0))).sum(axis=1) >= 0, 1.0, -1.0)[:, None]
    return Solid(v, idx, normals, colour, np.ones(len(idx)) if shade is None else np.asarray(shade, dtype=np.float64))


def block(xy: np.ndarray | tuple[float, float], z0: float, size: np.ndarray | tuple[float, float, float], yaw: float,
          colour: BGR) -> Solid:
    """A box standing at height `z0`, rotated by `yaw` about z; corners as `Occluder.corners` (bottom, then top)."""
    hx, hy, h = size[0] / 2, size[1] / 2, size[2]
    local = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
    c, s = np.cos(yaw), np.sin(yaw)
    ring = local @ np.array([[c, s], [-s, c]]) + np.asarray(xy, dtype=np.float64)
    v = np.vstack([np.c_[ring, np.full(4, z0)], np.c_[ring, np.full(4, z0 + h)]])
    faces = [[4, 5, 6, 7], [3, 2, 1, 0]] + [[i, (i + 1) % 4, (i + 1) % 4 + 4, i + 4] for i in range(4)]
    return _solid(v, faces, colour)


def prism(xy: np.ndarray | tuple[float, float], z0: float, height: float, r_bottom: float, r_top: float,
          colour: BGR, sides: int = 8, yaw: float = 0.0) -> Solid:
    """An upright `sides`-gon cylinder or frustum (poles, bins, cones, trunks)."""
    a = yaw + 2 * np.pi * np.arange(sides) / sides
    ring = np.c_[np.cos(a), np.sin(a)]
    xy = np.asarray(xy, dtype=np.float64)
    v = np.vstack([np.c_[xy + r_bottom * ring, np.full(sides, z0)], np.c_[xy + r_top * ring, np.full(sides, z0 + height)]])
    faces = [list(range(sides, 2 * sides)), list(range(sides))[::-1]]
    faces += [[k, (k + 1) % sides, sides + (k + 1) % sides, sides + k] for k in range(sides)]
    return _solid(v, faces, colour)


def ball(center: np.ndarray | tuple[float, float, float], radii: tuple[float, float, float], colour: BGR,
         rng: np.random.Generator | None = None, jitter: float = 0.0, segs: int = 8, rings: int = 4) -> Solid:
    """An ellipsoid as a low polyhedron (crowns, globes, heads); `jitter` varies face brightness (foliage)."""
    lat = np.pi * np.arange(1, rings) / rings
    lon = 2 * np.pi * np.arange(segs) / segs
    unit = [np.array([0.0, 0.0, 1.0])]
    for phi in lat:
        unit += [np.array([np.sin(phi) * np.cos(t), np.sin(phi) * np.sin(t), np.cos(phi)]) for t in lon]
    unit.append(np.array([0.0, 0.0, -1.0]))
    v = np.asarray(center, dtype=np.float64) + np.asarray(unit) * np.asarray(radii)
    bottom = len(unit) - 1
    faces = [[0, 1 + (k + 1) % segs, 1 + k] for k in range(segs)]
    for r in range(rings - 2):
        o0, o1 = 1 + r * segs, 1 + (r + 1) * segs
        faces += [[o0 + k, o0 + (k + 1) % segs, o1 + (k + 1) % segs, o1 + k] for k in range(segs)]
    last = 1 + (rings - 2) * segs
    faces += [[last + k, last + (k + 1) % segs, bottom] for k in range(segs)]
    shade = None if rng is None or jitter <= 0 else 1.0 + jitter * rng.uniform(-1, 1, len(faces))
    return _solid(v, faces, colour, shade)


def plate(center: np.ndarray | tuple[float, float, float], yaw: float, outline: np.ndarray, thickness: float,
          colour: BGR) -> Solid:
    """A vertical slab: `outline` (N, 2) in the plate's (across, up) plane, extruded along the horizontal
    direction `yaw` (sign plates, wheels, posters, window panes)."""
    d = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    u = np.array([-np.sin(yaw), np.cos(yaw), 0.0])
    flat = np.asarray(center, dtype=np.float64) + outline[:, :1] * u + outline[:, 1:] * np.array([0.0, 0.0, 1.0])
    n = len(outline)
    v = np.vstack([flat + d * thickness / 2, flat - d * thickness / 2])
    faces = [list(range(n)), list(range(n, 2 * n))] + [[k, (k + 1) % n, n + (k + 1) % n, n + k] for k in range(n)]
    return _solid(v, faces, colour)


def polygon(sides: int, radius: float, roll: float = 0.0) -> np.ndarray:
    a = roll + 2 * np.pi * np.arange(sides) / sides
    return radius * np.c_[np.cos(a), np.sin(a)]


def rect(w: float, h: float) -> np.ndarray:
    return np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])


def shadow_outline(solid: Solid, sun: np.ndarray) -> np.ndarray:
    """(V, 2) ground points of the solid's vertices cast along the sun; their convex hull is its shadow."""
    return solid.vertices[:, :2] - np.outer(solid.vertices[:, 2] / sun[2], sun[:2])
