"""The bird's-eye view of a calibrated scene: ground-plane map, camera footprints, world tracks.

Works for any calibrated scene, real or synthetic, from `CameraCalibration`s alone:

- a camera's *footprint* is its image border mapped to the ground through
  `CameraCalibration.image_to_ground`; border points on or above the horizon, or farther than
  `max_range` from the camera, are pulled down their image column to the farthest point that is
  still on the ground within range (so a camera that sees the horizon gets a finite fan);
- camera positions and viewing arrows are drawn only when the calibration has a projection
  matrix (a homography alone does not know where the camera is);
- the map extent, unless given, covers every footprint and camera position.

World `x` points right and world `y` up in the picture (a top-down view, not mirrored).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from citytrack.multicam.calibration import CameraCalibration
from citytrack.visualize.draw import FONT, Colour, camera_colour, draw_label, id_colour

Extent = tuple[float, float, float, float]  # x_min, x_max, y_min, y_max (world units)
BACKGROUND: Colour = (32, 32, 32)
GRID: Colour = (52, 52, 52)


@dataclass(frozen=True)
class WorldToPixel:
    """Ground `(x, y)` to bird's-eye pixel `(col, row)`: `col = (x - x_min) ppm`, `row = (y_max - y) ppm`."""

    x_min: float
    y_max: float
    ppm: float  # pixels per world unit
    size: tuple[int, int]  # canvas (width, height)

    def __call__(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        return np.c_[(xy[:, 0] - self.x_min) * self.ppm, (self.y_max - xy[:, 1]) * self.ppm]

    def to_world(self, px: np.ndarray) -> np.ndarray:
        px = np.asarray(px, dtype=np.float64).reshape(-1, 2)
        return np.c_[self.x_min + px[:, 0] / self.ppm, self.y_max - px[:, 1] / self.ppm]

    @property
    def matrix(self) -> np.ndarray:
        """The same map as a 3x3 matrix on homogeneous ground points (for `cv2.warpPerspective`)."""
        return np.array(
            [[self.ppm, 0.0, -self.x_min * self.ppm], [0.0, -self.ppm, self.y_max * self.ppm], [0, 0, 1]]
        )

    @property
    def extent(self) -> Extent:
        w, h = self.size
        return self.x_min, self.x_min + w / self.ppm, self.y_max - h / self.ppm, self.y_max

    @classmethod
    def fit(cls, extent: Extent, size: tuple[int, int]) -> WorldToPixel:
        """The largest scale showing all of `extent` in a `size` canvas, centred, aspect kept."""
        x0, x1, y0, y1 = (float(v) for v in extent)
        if not (x1 > x0 and y1 > y0):
            raise ValueError(f"bird's-eye extent must have x_min < x_max and y_min < y_max, got {extent}")
        w, h = size
        ppm = min(w / (x1 - x0), h / (y1 - y0))
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        return cls(x_min=cx - w / (2 * ppm), y_max=cy + h / (2 * ppm), ppm=ppm, size=(int(w), int(h)))


def image_border(image_size: tuple[int, int], per_side: int = 40) -> np.ndarray:
    """`(4 per_side, 2)` points around the image border, clockwise from the bottom-left corner."""
    w, h = image_size
    t = np.linspace(0.0, 1.0, per_side, endpoint=False)
    return np.concatenate(
        [
            np.c_[t * w, np.full(per_side, h)],
            np.c_[np.full(per_side, w), h - t * h],
            np.c_[w - t * w, np.zeros(per_side)],
            np.c_[np.zeros(per_side), t * h],
        ]
    )


def _range_origin(cal: CameraCalibration, image_size: tuple[int, int]) -> np.ndarray:
    """Where `max_range` is measured from: the camera's ground position, else its bottom-centre ground point."""
    if cal.has_projection:
        return cal.camera_center[:2]
    w, h = image_size
    return cal.image_to_ground([[w / 2.0, float(h)]])[0]


def clamp_to_ground(
    cal: CameraCalibration,
    uv: np.ndarray,
    image_size: tuple[int, int],
    max_range: float = 30.0,
    steps: int = 30,
) -> np.ndarray:
    """Ground points `(N, 2)` of image points `uv`, each pulled down its column to stay on the ground in range.

    A point whose ground position is missing (on/above the horizon) or farther than `max_range`
    is replaced by the farthest valid point on the segment from the bottom of its column
    `(u, height)` to it (bisection: along an image column the valid part is one interval).
    NaN rows where even the bottom of the column is invalid.
    """
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    origin = _range_origin(cal, image_size)
    out = np.full_like(uv, np.nan)
    if not np.isfinite(origin).all():
        return out
    anchor = np.c_[uv[:, 0], np.full(len(uv), float(image_size[1]))]

    def ground(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g = cal.image_to_ground(anchor + t[:, None] * (uv - anchor))
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(g).all(axis=1) & (np.linalg.norm(g - origin, axis=1) <= max_range)
        return g, ok

    g1, ok1 = ground(np.ones(len(uv)))
    out[ok1] = g1[ok1]
    _, ok0 = ground(np.zeros(len(uv)))
    todo = np.flatnonzero(~ok1 & ok0)
    if len(todo):
        lo, hi = np.zeros(len(todo)), np.ones(len(todo))
        sub_anchor, sub_uv = anchor[todo], uv[todo]
        for _ in range(steps):
            mid = (lo + hi) / 2
            g = cal.image_to_ground(sub_anchor + mid[:, None] * (sub_uv - sub_anchor))
            with np.errstate(invalid="ignore"):
                ok = np.isfinite(g).all(axis=1) & (np.linalg.norm(g - origin, axis=1) <= max_range)
            lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
        out[todo] = cal.image_to_ground(sub_anchor + lo[:, None] * (sub_uv - sub_anchor))
    return out


def camera_footprint(
    cal: CameraCalibration, image_size: tuple[int, int], max_range: float = 30.0
) -> np.ndarray:
    """The ground polygon `(K, 2)` a camera sees, cut at `max_range`; `(0, 2)` when it sees no ground in range."""
    ground = clamp_to_ground(cal, image_border(image_size), image_size, max_range)
    ground = ground[np.isfinite(ground).all(axis=1)]
    return ground if len(ground) >= 3 else np.zeros((0, 2))


def _image_size(cal: CameraCalibration, size: tuple[int, int] | None) -> tuple[int, int]:
    size = size if size is not None else cal.image_size
    if size is None:
        raise ValueError(
            "an image size is needed for every camera (argument or CameraCalibration.image_size)"
        )
    return int(size[0]), int(size[1])


def scene_extent(
    cameras: Sequence[CameraCalibration],
    image_sizes: Sequence[tuple[int, int] | None] | None = None,
    max_range: float = 30.0,
    margin: float = 0.08,
    points: np.ndarray | None = None,
    footprints: bool = True,
) -> Extent:
    """World box around every footprint (unless `footprints=False`), camera position (with a
    projection) and extra `points` `(N, 2)` (a track table's world columns, say).

    Grown by `margin` of its larger side on each side. Raises when there is nothing to frame.
    Framing the tracks and cameras only (`points=..., footprints=False`) shows people larger when
    the cameras see far beyond where anyone walks; footprints are then cut at the canvas edge.
    """
    sizes = list(image_sizes) if image_sizes is not None else [None] * len(cameras)
    pts = []
    if footprints:
        pts += [
            camera_footprint(c, _image_size(c, s), max_range) for c, s in zip(cameras, sizes, strict=True)
        ]
    pts += [c.camera_center[None, :2] for c in cameras if c.has_projection]
    if points is not None:
        pts.append(np.asarray(points, dtype=np.float64).reshape(-1, 2))
    allp = np.concatenate(pts) if pts else np.zeros((0, 2))
    allp = allp[np.isfinite(allp).all(axis=1)]
    if not len(allp):
        raise ValueError("no camera footprint or point to frame: pass an explicit extent")
    (x0, y0), (x1, y1) = allp.min(axis=0), allp.max(axis=0)
    pad = margin * max(x1 - x0, y1 - y0, 1.0)
    return x0 - pad, x1 + pad, y0 - pad, y1 + pad


def _nice_step(span: float, max_lines: int = 10) -> float:
    for base in 10.0 ** np.floor(np.log10(max(span, 1e-9) / max_lines)) * np.array([1, 2, 5, 10]):
        if span / base <= max_lines:
            return float(base)
    return float(span)


def draw_grid(canvas: np.ndarray, w2p: WorldToPixel, colour: Colour = GRID) -> float:
    """World grid lines at a round step and a scale bar in the bottom-left corner; returns the step."""
    x0, x1, y0, y1 = w2p.extent
    step = _nice_step(max(x1 - x0, y1 - y0))
    h, w = canvas.shape[:2]
    for x in np.arange(np.ceil(x0 / step) * step, x1, step):
        c = round(float(w2p([[x, 0]])[0, 0]))
        cv2.line(canvas, (c, 0), (c, h - 1), colour, 1)
    for y in np.arange(np.ceil(y0 / step) * step, y1, step):
        r = round(float(w2p([[0, y]])[0, 1]))
        cv2.line(canvas, (0, r), (w - 1, r), colour, 1)
    bar = round(float(step * w2p.ppm))
    cv2.line(canvas, (12, h - 14), (12 + bar, h - 14), (220, 220, 220), 2)
    for end in (12, 12 + bar):
        cv2.line(canvas, (end, h - 19), (end, h - 9), (220, 220, 220), 1)
    cv2.putText(canvas, f"{step:g} m", (18 + bar, h - 9), FONT, 0.4, (220, 220, 220), 1, cv2.LINE_AA)
    return step


def draw_footprints(
    canvas: np.ndarray,
    footprints: Sequence[np.ndarray],
    w2p: WorldToPixel,
    colours: Sequence[Colour],
    alpha: float = 0.18,
) -> None:
    """Fill each ground polygon translucently and outline it, in its camera's colour (in place)."""
    overlay = canvas.copy()
    polys = [np.round(w2p(f)).astype(np.int32) for f in footprints]
    for poly, col in zip(polys, colours, strict=True):
        if len(poly) >= 3:
            cv2.fillPoly(overlay, [poly], col)
    cv2.addWeighted(overlay, alpha, canvas, 1 - alpha, 0, dst=canvas)
    for poly, col in zip(polys, colours, strict=True):
        if len(poly) >= 3:
            cv2.polylines(canvas, [poly], True, col, 1, cv2.LINE_AA)


def draw_cameras(
    canvas: np.ndarray,
    cameras: Sequence[CameraCalibration],
    image_sizes: Sequence[tuple[int, int]],
    w2p: WorldToPixel,
    names: Sequence[str],
    colours: Sequence[Colour],
    max_range: float = 30.0,
) -> None:
    """Camera position, arrow to the ground point at the image centre, and `name (h m high)`; projection only.

    The label goes behind the camera (away from what it looks at), else beside it, where it fits.
    """
    for cal, size, name, col in zip(cameras, image_sizes, names, colours, strict=True):
        if not cal.has_projection:
            continue
        centre = cal.camera_center
        p = np.round(w2p(centre[:2])[0]).astype(int)
        look = clamp_to_ground(cal, [[size[0] / 2, size[1] / 2]], size, max_range)
        direction = np.array([0.0, -1.0])
        if np.isfinite(look).all():
            q = np.round(w2p(look)[0]).astype(int)
            cv2.arrowedLine(canvas, tuple(p.tolist()), tuple(q.tolist()), col, 1, cv2.LINE_AA, tipLength=0.06)
            if np.any(q != p):
                direction = (q - p) / np.linalg.norm(q - p)
        cv2.circle(canvas, tuple(p.tolist()), 7, col, -1, cv2.LINE_AA)
        text = f"{name} ({centre[2]:.1f} m high)"
        draw_label(canvas, text, _label_origin(canvas.shape, p, direction, text, 0.45), col, 0.45)


def _label_origin(
    shape: tuple[int, ...], p: np.ndarray, look: np.ndarray, text: str, scale: float
) -> tuple[int, int]:
    """Bottom-left corner of a label for a marker at `p`: behind it (against `look`), else beside, inside the canvas."""
    (tw, th), base = cv2.getTextSize(text, FONT, scale, 1)
    h, w = shape[:2]
    gap = 11
    options = []
    for d in (-look, np.array([-look[1], look[0]]), np.array([look[1], -look[0]]), look):
        if abs(d[0]) >= abs(d[1]):  # left or right of the marker, vertically centred (slid to fit)
            x = p[0] + gap if d[0] > 0 else p[0] - gap - tw
            y = np.clip(p[1] + th // 2, th + base + 2, h - 2)
        else:  # above or below, horizontally centred (slid to fit)
            x = np.clip(p[0] - tw // 2, 2, max(2, w - tw - 6))
            y = p[1] - gap if d[1] < 0 else p[1] + gap + th
        options.append((int(x), int(y)))
    for x, y in options:
        if x >= 2 and x + tw + 4 <= w - 2 and y - th - base - 2 >= 0 and y + 2 <= h:
            return x, y
    x, y = options[0]
    return int(np.clip(x, 2, max(2, w - tw - 6))), int(np.clip(y, th + base + 2, h - 2))


def birds_eye_background(
    cameras: Sequence[CameraCalibration],
    image_sizes: Sequence[tuple[int, int] | None] | None,
    size_px: int | tuple[int, int],
    extent: Extent | None = None,
    *,
    names: Sequence[str] | None = None,
    max_range: float = 30.0,
) -> tuple[np.ndarray, WorldToPixel]:
    """A bird's-eye canvas (BGR uint8) with a metric grid, camera footprints and cameras, and its map.

    `image_sizes[i]` is camera `i`'s `(width, height)` (None: its `image_size`); `size_px` the
    canvas side or `(width, height)`; `extent` `(x_min, x_max, y_min, y_max)` in world units, by
    default `scene_extent` of the cameras. Camera `i` is drawn in `camera_colour(i)`, named
    `names[i]` (default `cam i+1`).
    """
    sizes = [_image_size(c, s) for c, s in zip(cameras, image_sizes or [None] * len(cameras), strict=True)]
    size = (int(size_px), int(size_px)) if np.isscalar(size_px) else (int(size_px[0]), int(size_px[1]))
    w2p = WorldToPixel.fit(extent if extent is not None else scene_extent(cameras, sizes, max_range), size)
    canvas = np.full((size[1], size[0], 3), BACKGROUND, dtype=np.uint8)
    draw_grid(canvas, w2p)
    colours = [camera_colour(i) for i in range(len(cameras))]
    draw_footprints(
        canvas, [camera_footprint(c, s, max_range) for c, s in zip(cameras, sizes, strict=True)], w2p, colours
    )
    names = list(names) if names is not None else [f"cam {i + 1}" for i in range(len(cameras))]
    draw_cameras(canvas, cameras, sizes, w2p, names, colours, max_range)
    return canvas, w2p


def draw_world_tracks(
    canvas: np.ndarray,
    w2p: WorldToPixel,
    trails: Mapping[int, np.ndarray],
    current: Mapping[int, np.ndarray],
    thickness: int = 2,
    fade: bool = True,
) -> None:
    """Per global id: its trail `(k, 2)` (oldest first; older segments fade) and a labelled dot at `current[id]`."""
    background = np.array(BACKGROUND, dtype=np.float64)
    for gid, pts in trails.items():
        px = w2p(pts)
        px = px[np.isfinite(px).all(axis=1)]
        col = np.array(id_colour(gid), dtype=np.float64)
        n = len(px)
        if n < 2:
            continue
        if not fade:
            cv2.polylines(
                canvas,
                [np.round(px).astype(np.int32)],
                False,
                tuple(int(v) for v in col),
                thickness,
                cv2.LINE_AA,
            )
            continue
        ipx = np.round(px).astype(int)
        for k in range(n - 1):
            a = 0.25 + 0.75 * (k + 1) / (n - 1)
            seg = tuple(int(v) for v in a * col + (1 - a) * background)
            cv2.line(canvas, tuple(ipx[k]), tuple(ipx[k + 1]), seg, thickness, cv2.LINE_AA)
    for gid, xy in current.items():
        p = w2p(xy)[0]
        if not np.isfinite(p).all():
            continue
        c = tuple(np.round(p).astype(int))
        col = id_colour(gid)
        cv2.circle(canvas, c, 6, (15, 15, 15), -1, cv2.LINE_AA)
        cv2.circle(canvas, c, 5, col, -1, cv2.LINE_AA)
        draw_label(canvas, str(gid), (c[0] + 7, c[1] - 4), col, 0.4)
