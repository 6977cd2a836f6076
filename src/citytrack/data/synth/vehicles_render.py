"""Rasterise a `city.City` into camera images, vehicle id maps and exact per-vehicle ground truth.

Vehicles are a few convex solids each (`solids.block` for body, window band, roof and cargo box,
`solids.plate` for wheels), drawn with back faces culled; vehicles are painted far to near by the
distance of their centre from the camera (correct for separate boxes on a ground plane seen from
above), and within a vehicle from the ground up. The road background (asphalt, lane and stop
lines, kerbs, verges, sky and haze) is computed once per camera by mapping every pixel to the
ground through the camera's homography, and so is the road mask written as `roi.jpg`.

Ground truth per vehicle and frame (`CityFrame`):

- `full_boxes`: the extent of the vehicle's projected 3D bounding box (length x width x height at
  its pose), amodal: as if nothing occluded it and the image had no border, `x, y, w, h` in
  pixels (image coordinates, pixel i's centre is i as in the calibration);
- `visible_boxes` / `visibility`: the tight box of its pixels in the id map, and those pixels
  over the pixels of its unoccluded, unclipped silhouette;
- `world`: the ground-plane centre of its footprint; `heading`: direction of travel (radians).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from citytrack.data.synth.city import City, Vehicle
from citytrack.data.synth.solids import Solid, block, plate, polygon

SHIFT = 4
ONE = 1 << SHIFT
SUN = np.array([0.35, -0.45, 0.82]) / np.linalg.norm([0.35, -0.45, 0.82])
SKY = np.array([225, 205, 185], dtype=np.float32)  # BGR near the horizon
GLASS = (62, 50, 42)
TYRE = (24, 24, 26)
NOISE_BANK = 4


def vehicle_solids(v: Vehicle, xy: np.ndarray, heading: float) -> list[Solid]:
    """The vehicle's parts in drawing order (wheels, body, windows, roof, cargo box)."""
    L, W, H = v.size
    fwd = np.array([np.cos(heading), np.sin(heading)])
    left = np.array([-fwd[1], fwd[0]])
    heavy = v.kind in ("bus", "truck")
    clear, r = (0.45, 0.5) if heavy else (0.3, 0.33)
    parts = []
    for ax in (-1, 1):
        for side in (-1, 1):
            at = xy + fwd * ax * (L / 2 - 1.1 * r - 0.3) + left * side * (W / 2 - 0.12)
            parts.append(plate((*at, r), heading + np.pi / 2, polygon(8, r, np.pi / 8), 0.24, TYRE))
    if v.kind == "truck":  # cab in front, cargo box behind
        cab = v.cabin * L
        cab_at = xy + fwd * (L / 2 - cab / 2)
        parts.append(block(cab_at, clear, (cab, W, 0.45 * (H - clear)), heading, v.colour))
        parts.append(block(cab_at, clear + 0.45 * (H - clear), (cab * 0.9, W * 0.94, 0.3 * (H - clear)), heading, GLASS))
        parts.append(block(cab_at, clear + 0.75 * (H - clear), (cab * 0.9, W * 0.94, 0.1), heading, v.colour))
        box_len = L - cab - 0.3
        parts.append(block(xy - fwd * (L / 2 - box_len / 2), clear, (box_len, W, H - clear), heading, (215, 218, 220)))
        return parts
    body_top = {"car": 0.42, "suv": 0.45, "van": 0.5, "bus": 0.45}[v.kind] * (H - clear) + clear
    cabin = v.cabin * L
    shift = {"car": -0.06, "suv": -0.08, "van": 0.05, "bus": 0.0}[v.kind] * L
    parts.append(block(xy, clear, (L, W, body_top - clear), heading, v.colour))
    at = xy + fwd * (shift if v.kind != "van" else (L - cabin) / 2 - 0.05)
    roof = 0.08 if v.kind != "bus" else 0.25
    parts.append(block(at, body_top, (cabin, W * 0.92, H - body_top - roof), heading, GLASS))
    parts.append(block(at, H - roof, (cabin * (0.92 if v.kind == "car" else 0.99), W * 0.9, roof), heading, v.colour))
    return parts


def box_corners(v: Vehicle, xy: np.ndarray, heading: float) -> np.ndarray:
    """(8, 3) corners of the vehicle's 3D bounding box."""
    return block(xy, 0.0, tuple(v.size), heading, (0, 0, 0)).vertices


@dataclass
class CityFrame:
    """One camera frame: image, id map (0 background, k + 1 vehicle k of the city) and ground truth
    of the vehicles drawn (`vehicles` are indices into `City.vehicles`)."""

    frame: int  # 0-based
    image: np.ndarray
    id_map: np.ndarray
    vehicles: np.ndarray  # (N,)
    full_boxes: np.ndarray  # (N, 4) x, y, w, h
    visible_boxes: np.ndarray  # (N, 4); zeros where nothing is visible
    visible_pixels: np.ndarray  # (N,)
    visibility: np.ndarray  # (N,)
    world: np.ndarray  # (N, 2)
    heading: np.ndarray  # (N,)


class CityRenderer:
    """Renders one camera of a city; build once per camera, call `render(frame)` per 0-based frame."""

    def __init__(self, city: City, c: int) -> None:
        self.city, self.c, self.cam = city, c, city.cameras[c]
        self.W, self.H = self.cam.width, self.cam.height
        self.P = self.cam.projection / np.linalg.norm(self.cam.projection[2, :3])  # w = depth in metres
        self.background, self.roi = self._render_ground()
        rng = np.random.default_rng([city.noise_seed, c])
        levels = np.rint(self.cam.noise_sigma * rng.standard_normal((NOISE_BANK, self.H, self.W, 3)))
        self.noise = [(np.clip(n, 0, 255).astype(np.uint8), np.clip(-n, 0, 255).astype(np.uint8)) for n in levels]

    def _render_ground(self) -> tuple[np.ndarray, np.ndarray]:
        """Background image and road mask from every pixel's ground point."""
        spec, cam = self.city.spec, self.cam
        u, v = np.meshgrid(np.arange(self.W, dtype=np.float64), np.arange(self.H, dtype=np.float64))
        g = np.stack([u, v, np.ones_like(u)], -1) @ cam.calibration.homography_inv.T
        ground = g[..., 2] > 1e-9
        with np.errstate(divide="ignore", invalid="ignore"):
            x, y = g[..., 0] / g[..., 2], g[..., 1] / g[..., 2]
        x, y = np.where(ground, x, 0.0), np.where(ground, y, 0.0)
        B, half = spec.block, spec.lane_width
        nx, ny = spec.grid
        lo_x, hi_x, lo_y, hi_y = -0.8 * B - half, (nx - 1 + 0.8) * B + half, -0.8 * B - half, (ny - 1 + 0.8) * B + half
        ix, iy = np.clip(np.rint(x / B), 0, nx - 1), np.clip(np.rint(y / B), 0, ny - 1)
        dx, dy = np.abs(x - ix * B), np.abs(y - iy * B)  # to the nearest north-south and east-west road centre
        on_ew = (dy < half) & (x > lo_x) & (x < hi_x)
        on_ns = (dx < half) & (y > lo_y) & (y < hi_y)
        road = ground & (on_ew | on_ns)
        walk = ground & ~road & (((dy < half + 2.5) & (x > lo_x) & (x < hi_x)) | ((dx < half + 2.5) & (y > lo_y) & (y < hi_y)))
        crossing = (dx < half) & (dy < half)
        centre_line = ((on_ew & (dy < 0.08)) | (on_ns & (dx < 0.08))) & ~crossing
        dashes = ((on_ew & (np.abs(dy - half + 0.15) < 0.07)) | (on_ns & (np.abs(dx - half + 0.15) < 0.07))) & ~crossing
        stop = (on_ew & (np.abs(dx - half - 0.5) < 0.2) & ~crossing) | (on_ns & (np.abs(dy - half - 0.5) < 0.2) & ~crossing)
        texture = 0.9 + 0.1 * np.sin(0.9 * x + 2.1 * np.sin(0.37 * y)) * np.cos(0.7 * y - 1.3 * np.sin(0.29 * x))
        img = np.empty((self.H, self.W, 3), dtype=np.float32)
        img[:] = np.array([70, 110, 95], dtype=np.float32)  # verges and lots
        img[walk] = (165, 168, 170)
        img[road] = (88, 90, 92)
        img[road & centre_line] = (40, 180, 215)  # yellow centre line
        img[road & (dashes | stop)] = (225, 225, 225)
        img *= texture[..., None].astype(np.float32)
        dist = np.hypot(x - cam.center[0], y - cam.center[1])
        haze = np.where(ground, 1 - np.exp(-np.maximum(dist - 40, 0) / 250), 1.0)[..., None].astype(np.float32)
        img = img * (1 - haze) + SKY * haze
        img = np.clip(img * cam.gain * cam.cast.astype(np.float32), 0, 255).astype(np.uint8)
        return img, road

    def _project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        hom = pts @ self.P[:, :3].T + self.P[:, 3]
        return hom[:, :2] / hom[:, 2:], hom[:, 2]

    def _fill(self, image: np.ndarray | None, mask: np.ndarray, solid: Solid, origin: np.ndarray, label: int) -> None:
        """Fill a convex solid's camera-facing faces (lit by the sun) into `image` and `mask`."""
        uv, _ = self._project(solid.vertices)
        pts = np.round((uv - origin) * ONE).astype(np.int32)
        facing = np.einsum("ij,ij->i", solid.normals, self.cam.center - solid.vertices[[f[0] for f in solid.faces]]) > 0
        light = 0.6 + 0.4 * np.maximum(solid.normals @ SUN, 0.0)
        for k in np.flatnonzero(facing).tolist():
            poly = pts[solid.faces[k]]
            if image is not None:
                col = np.clip(np.asarray(solid.colour, dtype=np.float64) * light[k] * self.cam.gain * self.cam.cast, 0, 255)
                cv2.fillConvexPoly(image, poly, tuple(float(x) for x in col), cv2.LINE_8, SHIFT)
            cv2.fillConvexPoly(mask, poly, label, cv2.LINE_8, SHIFT)

    def render(self, frame: int) -> CityFrame:
        t = self.city.frame_time(self.c, frame)
        image = self.background.copy()
        id_map = np.zeros((self.H, self.W), dtype=np.uint16)
        items = []
        for k, v in enumerate(self.city.vehicles):
            xy, heading, present = v.pose(t)
            if not present[0]:
                continue
            corners = box_corners(v, xy[0], float(heading[0]))
            uv, depth = self._project(corners)
            if depth.min() < 1.0:  # at or behind the camera: not drawn, no ground truth
                continue
            x0, y0 = uv.min(0)
            x1, y1 = uv.max(0)
            if x1 < 0 or y1 < 0 or x0 > self.W - 1 or y0 > self.H - 1:
                continue
            items.append((float(np.linalg.norm(np.append(xy[0], v.size[2] / 2) - self.cam.center)), k, xy[0],
                          float(heading[0]), np.array([x0, y0, x1 - x0, y1 - y0])))
        items.sort(key=lambda it: -it[0])
        full_px = []
        for _, k, xy, heading, box in items:
            solids = vehicle_solids(self.city.vehicles[k], xy, heading)
            for s in solids:
                self._fill(image, id_map, s, np.zeros(2), k + 1)
            # Unoccluded, unclipped silhouette over the full box (bounded to 4 image sizes for huge near boxes).
            ox, oy = np.floor(box[:2]) - 1
            w = int(min(np.ceil(box[2]) + 3, 4 * self.W))
            h = int(min(np.ceil(box[3]) + 3, 4 * self.H))
            scratch = np.zeros((h, w), dtype=np.uint8)
            for s in solids:
                self._fill(None, scratch, s, np.array([ox, oy]), 255)
            full_px.append(int(cv2.countNonZero(scratch)))
        n = len(items)
        idx = np.array([it[1] for it in items], dtype=np.int64)
        visible = np.zeros((n, 4))
        pixels = np.zeros(n, dtype=np.int64)
        if n:
            labels = id_map.astype(np.int64)
            counts = np.bincount(labels.ravel(), minlength=len(self.city.vehicles) + 1)
            pixels = counts[idx + 1]
            for j, k in enumerate(idx.tolist()):
                if pixels[j]:
                    ys, xs = np.nonzero(id_map == k + 1)
                    visible[j] = (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
        pos, neg = self.noise[frame % NOISE_BANK]
        image = cv2.subtract(cv2.add(image, pos), neg)
        return CityFrame(
            frame, image, id_map, idx,
            np.array([it[4] for it in items]).reshape(n, 4), visible, pixels,
            pixels / np.maximum(np.array(full_px, dtype=np.float64), 1.0),
            np.array([it[2] for it in items]).reshape(n, 2), np.array([it[3] for it in items]),
        )
