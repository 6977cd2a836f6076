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
- `world`: the ground-plane centre of its footprint; `heading`: direction of travel (radians);
- `orientation`: the vehicle's heading relative to the camera, seen from above, in eight 45-degree
  bins (`orientation_bins`). Let `a` be the angle, counter-clockwise (z up), from the direction
  vehicle -> camera centre (ground plane) to the heading, wrapped to [0, 360); the bin is
  `round(a / 45) mod 8`, each bin centred on its multiple of 45 degrees:
  0 front (driving straight at the camera), 1 front and to the camera's right, 2 driving to the
  camera's right (seen side-on, moving right in the image), 3 rear, moving right, 4 rear (driving
  straight away), 5 rear, moving left, 6 driving to the camera's left, 7 front, moving left.
  "The camera's right" is the right of its horizontal line of sight to the vehicle.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from citytrack.data.synth.city import City, Vehicle
from citytrack.data.synth.raster import SHIFT, fixed_point
from citytrack.data.synth.solids import Solid, block, plate, polygon

SUN = np.array([0.35, -0.45, 0.82]) / np.linalg.norm([0.35, -0.45, 0.82])
SKY = np.array([225, 205, 185], dtype=np.float32)  # BGR near the horizon
GLASS = (62, 50, 42)
TYRE = (24, 24, 26)
NOISE_BANK = 4


def vehicle_solids(v: Vehicle, xy: np.ndarray, heading: float) -> list[Solid]:
    """The vehicle's parts in drawing order (wheels, body, trim, stripe, windows, roof, rack, cargo box, logo)."""
    L, W, H = v.size
    looks = v.looks
    if looks.rack is not None:  # the rack stays inside the vehicle's size (its 3D box is the amodal box)
        H = H - looks.rack[0]
    fwd = np.array([np.cos(heading), np.sin(heading)])
    left = np.array([-fwd[1], fwd[0]])
    heavy = v.kind in ("bus", "truck")
    clear, r = (0.45, 0.5) if heavy else (0.3, 0.33)
    parts = []
    for ax in (-1, 1):
        for side in (-1, 1):
            at = xy + fwd * ax * (L / 2 - 1.1 * r - 0.3) + left * side * (W / 2 - 0.12)
            parts.append(plate((*at, r), heading + np.pi / 2, polygon(8, r, np.pi / 8), 0.24, TYRE))

    def bumpers(length: float, centre: np.ndarray) -> None:
        if looks.trim is not None:  # drawn after the body, over its ends
            for ax in (-1, 1):
                parts.append(block(centre + fwd * ax * (length / 2 - 0.1), clear - 0.05, (0.2, W, 0.28),
                                   heading, looks.trim))

    if v.kind == "truck":  # cab in front, cargo box behind
        cab = v.cabin * L
        cab_at = xy + fwd * (L / 2 - cab / 2)
        parts.append(block(cab_at, clear, (cab, W, 0.45 * (H - clear)), heading, v.colour))
        bumpers(cab * 2 - 0.01, cab_at - fwd * (cab / 2 - 0.005))
        parts.append(block(cab_at, clear + 0.45 * (H - clear), (cab * 0.9, W * 0.94, 0.3 * (H - clear)), heading, looks.glass))
        parts.append(block(cab_at, clear + 0.75 * (H - clear), (cab * 0.9, W * 0.94, 0.1), heading, v.colour))
        box_len = L - cab - 0.3
        box_at = xy - fwd * (L / 2 - box_len / 2)
        parts.append(block(box_at, clear, (box_len, W, H - clear), heading, looks.cargo))
        if looks.logo is not None:  # a panel on both sides of the cargo box
            parts.append(block(box_at, clear + 0.3 * (H - clear), (box_len * 0.6, W, 0.4 * (H - clear)),
                               heading, looks.logo))
        return parts
    body_top = {"car": 0.42, "suv": 0.45, "van": 0.5, "bus": 0.45}[v.kind] * (H - clear) + clear
    cabin = v.cabin * L
    shift = {"car": -0.06, "suv": -0.08, "van": 0.05, "bus": 0.0}[v.kind] * L
    parts.append(block(xy, clear, (L, W, body_top - clear), heading, v.colour))
    bumpers(L, xy)
    if looks.stripe is not None:
        parts.append(block(xy, clear + 0.55 * (body_top - clear), (L * 0.96, W, 0.25 * (body_top - clear)),
                           heading, looks.stripe))
    at = xy + fwd * (shift if v.kind != "van" else (L - cabin) / 2 - 0.05)
    roof = 0.08 if v.kind != "bus" else 0.25
    parts.append(block(at, body_top, (cabin, W * 0.92, H - body_top - roof), heading, looks.glass))
    roof_len = cabin * (0.92 if v.kind == "car" else 0.99)
    parts.append(block(at, H - roof, (roof_len, W * 0.9, roof), heading, looks.roof or v.colour))
    if looks.rack is not None:
        height, colour = looks.rack
        parts.append(block(at, H, (roof_len * 0.75, W * 0.7, height), heading, colour))
    return parts


ORIENTATION_BINS = 8
ORIENTATION_NAMES = ("front", "front-right", "right", "rear-right", "rear", "rear-left", "left", "front-left")


def orientation_bins(camera_xy: np.ndarray, world: np.ndarray, heading: np.ndarray) -> np.ndarray:
    """Camera-relative orientation bins `(N,)` int of vehicles at ground points `world (N, 2)` with
    headings `(N,)` radians, seen from the camera centre's ground point `camera_xy (2,)` (see the
    module docstring: 0 front, 2 moving to the camera's right, 4 rear, 6 moving left)."""
    world = np.asarray(world, dtype=np.float64).reshape(-1, 2)
    to_cam = np.asarray(camera_xy, dtype=np.float64)[:2] - world
    a = np.asarray(heading, dtype=np.float64) - np.arctan2(to_cam[:, 1], to_cam[:, 0])
    return (np.rint(np.mod(a, 2 * np.pi) / (2 * np.pi / ORIENTATION_BINS)).astype(np.int64) % ORIENTATION_BINS)


class VehicleModel:
    """A vehicle's solids built once in its own frame (footprint centre at the origin, heading 0), as
    flat arrays: placing it at a pose is one rotation and translation, not a rebuild of every solid
    per frame (the renderer's hot path)."""

    def __init__(self, v: Vehicle) -> None:
        solids = vehicle_solids(v, np.zeros(2), 0.0)
        offsets = np.cumsum([0] + [len(s.vertices) for s in solids])
        self.vertices = np.vstack([s.vertices for s in solids])  # (V, 3)
        self.faces = [f + o for s, o in zip(solids, offsets[:-1].tolist(), strict=True) for f in s.faces]
        self.first = np.array([f[0] for f in self.faces], dtype=np.int64)
        self.normals = np.vstack([s.normals for s in solids])  # (F, 3)
        self.colours = np.array([s.colour for s in solids for _ in s.faces], dtype=np.float64)  # (F, 3)
        self.corners = box_corners(v, np.zeros(2), 0.0)  # (8, 3)
        self.height = float(v.size[2])

    @staticmethod
    def _rotate(pts: np.ndarray, xy: np.ndarray | None, heading: float) -> np.ndarray:
        c, s = np.cos(heading), np.sin(heading)
        out = pts @ np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
        if xy is not None:
            out[:, :2] += xy
        return out

    def place(self, xy: np.ndarray, heading: float) -> tuple[np.ndarray, np.ndarray]:
        """World vertices `(V, 3)` and face normals `(F, 3)` at footprint centre `xy` and `heading`."""
        return self._rotate(self.vertices, xy, heading), self._rotate(self.normals, None, heading)

    def place_corners(self, xy: np.ndarray, heading: float) -> np.ndarray:
        """The 3D bounding box's corners `(8, 3)` at a pose."""
        return self._rotate(self.corners, xy, heading)


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
    orientation: np.ndarray  # (N,) int, camera-relative bins 0..7 (`orientation_bins`)


class CityRenderer:
    """Renders one camera of a city; build once per camera, call `render(frame)` per 0-based frame."""

    def __init__(self, city: City, c: int) -> None:
        self.city, self.c, self.cam = city, c, city.cameras[c]
        self.W, self.H = self.cam.width, self.cam.height
        self.P = self.cam.projection / np.linalg.norm(self.cam.projection[2, :3])  # w = depth in metres
        self.background, self.roi = self._render_ground()
        self.center = np.array(self.cam.center, dtype=np.float64)  # a property that solves R x = -t: once here
        self.models = [VehicleModel(v) for v in city.vehicles]
        # Every vehicle's 3D box corners in its own frame, stacked, for culling all of them in one step.
        self._corners = np.stack([m.corners for m in self.models]) if self.models else np.zeros((0, 8, 3))
        self._pose_table: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
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

    def _poses(self, frame: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every vehicle's footprint centre `(V, 2)`, heading `(V,)` and presence `(V,)` at `frame`,
        from a table of the camera's frames computed once (one `Vehicle.pose` call per vehicle)."""
        if self._pose_table is None:
            times = self.city.time_offsets[self.c] + np.arange(self.city.spec.frames) / self.city.spec.fps
            poses = [v.pose(times) for v in self.city.vehicles]
            V = len(poses)
            self._pose_table = (np.stack([p[0] for p in poses], 1) if V else np.zeros((len(times), 0, 2)),
                                np.stack([p[1] for p in poses], 1) if V else np.zeros((len(times), 0)),
                                np.stack([p[2] for p in poses], 1) if V else np.zeros((len(times), 0), dtype=bool))
        if 0 <= frame < self.city.spec.frames:
            xy, heading, present = self._pose_table
            return xy[frame], heading[frame], present[frame]
        t = self.city.frame_time(self.c, frame)
        poses = [v.pose(t) for v in self.city.vehicles]
        return (np.array([p[0][0] for p in poses]).reshape(-1, 2), np.array([p[1][0] for p in poses]),
                np.array([p[2][0] for p in poses], dtype=bool))

    def _candidates(self, xy: np.ndarray, heading: np.ndarray, present: np.ndarray) -> np.ndarray:
        """Indices of the present vehicles whose 3D box may be drawn: all boxes projected in one step, with
        a pixel and a centimetre of slack; `render` decides exactly, per vehicle, as before this cull."""
        k = np.flatnonzero(present)
        if not len(k):
            return k
        c, s = np.cos(heading[k]), np.sin(heading[k])
        local = self._corners[k]
        pts = np.empty_like(local)
        pts[..., 0] = local[..., 0] * c[:, None] - local[..., 1] * s[:, None] + xy[k, 0, None]
        pts[..., 1] = local[..., 0] * s[:, None] + local[..., 1] * c[:, None] + xy[k, 1, None]
        pts[..., 2] = local[..., 2]
        hom = pts @ self.P[:, :3].T + self.P[:, 3]
        depth = hom[..., 2]
        ok = depth.min(1) >= 1.0 - 1e-2
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = hom[..., :2] / np.where(depth[..., None] > 0, depth[..., None], 1.0)
        lo, hi = uv.min(1), uv.max(1)
        ok &= (hi[:, 0] >= -1) & (hi[:, 1] >= -1) & (lo[:, 0] <= self.W) & (lo[:, 1] <= self.H)
        return k[ok]

    def _fill_vehicle(self, image: np.ndarray | None, mask: np.ndarray, model: VehicleModel, xy: np.ndarray,
                      heading: float, origin: tuple[float, float], label: int) -> None:
        """Fill the vehicle's camera-facing faces, part by part, into `image` (lit by the sun) and `mask`."""
        verts, normals = model.place(xy, heading)
        uv, _ = self._project(verts)
        pts = fixed_point(uv, origin)
        facing = np.einsum("ij,ij->i", normals, self.center - verts[model.first]) > 0
        if image is not None:
            light = 0.6 + 0.4 * np.maximum(normals @ SUN, 0.0)
            cols = np.clip(model.colours * light[:, None] * self.cam.gain * self.cam.cast, 0, 255).tolist()
        for f in np.flatnonzero(facing).tolist():
            poly = pts[model.faces[f]]
            if image is not None:
                cv2.fillConvexPoly(image, poly, cols[f], cv2.LINE_8, SHIFT)
            cv2.fillConvexPoly(mask, poly, label, cv2.LINE_8, SHIFT)

    def render(self, frame: int) -> CityFrame:
        image = self.background.copy()
        id_map = np.zeros((self.H, self.W), dtype=np.uint16)
        xy_all, heading_all, present = self._poses(frame)
        items = []
        for k in self._candidates(xy_all, heading_all, present).tolist():
            model, xy, heading = self.models[k], xy_all[k], float(heading_all[k])
            uv, depth = self._project(model.place_corners(xy, heading))
            if depth.min() < 1.0:  # at or behind the camera: not drawn, no ground truth
                continue
            x0, y0 = uv.min(0)
            x1, y1 = uv.max(0)
            if x1 < 0 or y1 < 0 or x0 > self.W - 1 or y0 > self.H - 1:
                continue
            items.append((float(np.linalg.norm(np.append(xy, model.height / 2) - self.center)), k, xy,
                          heading, np.array([x0, y0, x1 - x0, y1 - y0])))
        items.sort(key=lambda it: -it[0])
        full_px = []
        for _, k, xy, heading, box in items:
            model = self.models[k]
            self._fill_vehicle(image, id_map, model, xy, heading, (0.0, 0.0), k + 1)
            # Unoccluded, unclipped silhouette: just drawn, before nearer vehicles cover it, when it lies
            # inside the image; else drawn again over the full box (bounded to 4 image sizes for huge near boxes).
            ox, oy = np.floor(box[:2]) - 1
            w = int(min(np.ceil(box[2]) + 3, 4 * self.W))
            h = int(min(np.ceil(box[3]) + 3, 4 * self.H))
            if ox >= 0 and oy >= 0 and ox + w <= self.W and oy + h <= self.H:
                region = id_map[int(oy):int(oy) + h, int(ox):int(ox) + w]
                full_px.append(int(np.count_nonzero(region == k + 1)))
            else:
                scratch = np.zeros((h, w), dtype=np.uint8)
                self._fill_vehicle(None, scratch, model, xy, heading, (float(ox), float(oy)), 255)
                full_px.append(int(cv2.countNonZero(scratch)))
        n = len(items)
        idx = np.array([it[1] for it in items], dtype=np.int64)
        visible = np.zeros((n, 4))
        pixels = np.zeros(n, dtype=np.int64)
        for j, (_, k, _, _, box) in enumerate(items):
            # A vehicle's pixels lie inside its full box (its silhouette is inside its projected 3D box;
            # one pixel of margin for the fill's rounding): count and bound them there, not over the image.
            x0, y0 = max(int(np.floor(box[0])) - 1, 0), max(int(np.floor(box[1])) - 1, 0)
            x1, y1 = min(int(np.ceil(box[0] + box[2])) + 2, self.W), min(int(np.ceil(box[1] + box[3])) + 2, self.H)
            if x1 <= x0 or y1 <= y0:
                continue
            mine = (id_map[y0:y1, x0:x1] == k + 1).view(np.uint8)
            pixels[j] = cv2.countNonZero(mine)
            if pixels[j]:
                bx, by, bw, bh = cv2.boundingRect(mine)
                visible[j] = (x0 + bx, y0 + by, bw, bh)
        world = np.array([it[2] for it in items]).reshape(n, 2)
        heading = np.array([it[3] for it in items], dtype=np.float64)
        pos, neg = self.noise[frame % NOISE_BANK]
        image = cv2.subtract(cv2.add(image, pos), neg)
        return CityFrame(
            frame, image, id_map, idx,
            np.array([it[4] for it in items]).reshape(n, 4), visible, pixels,
            pixels / np.maximum(np.array(full_px, dtype=np.float64), 1.0),
            world, heading, orientation_bins(self.center[:2], world, heading),
        )
