"""The vehicle world (`layout=aic19`): a grid of intersections, two-way roads, vehicles on routes,
cameras on poles over the roads.

Why a separate world from `world.py`: vehicles follow lanes through intersections at road
speeds and cameras sit far apart with their own clocks, so nothing of the plaza planner
(walk margins, groups, one shared view) applies; only the camera model (`SynthCamera`) and the
drawing primitive (`solids.py`) are shared.

Conventions: metres, `z` up, right-hand traffic; intersection `(i, j)` is at
`(i * block, j * block)`. A vehicle's pose is the ground-plane centre of its footprint and its
heading (radians, direction of travel). Scene time `t` (seconds) is common to all cameras; camera
`c`'s 1-based frame `k` is taken at `time_offset[c] + (k - 1) / fps`, as `cam_timestamp/SXX.txt` says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from citytrack.data.synth.world import SynthCamera, SynthConfigError
from citytrack.multicam.calibration import intrinsics_from_fov, look_at_rotation

BGR = tuple[int, int, int]

CITY_VERSION = 4
"""Bumped when the same config renders another city (2: per-vehicle looks; 3: `gt.txt` and the simulated
detections clipped to the image, as the real annotation is; 4: vehicles drawn where they project, not half
a pixel right and below, `raster.fixed_point`); `meta.json` records it
and `ensure_synthetic_dataset` / `ensure_city_veri` regenerate cities of another version."""

# type: (length, width, height) ranges in metres, chance among new vehicles
VEHICLE_TYPES: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float], float]] = {
    "car": ((3.9, 4.9), (1.7, 1.9), (1.35, 1.5), 0.5),
    "suv": ((4.4, 5.0), (1.85, 2.0), (1.65, 1.85), 0.22),
    "van": ((4.8, 5.6), (1.9, 2.05), (1.9, 2.3), 0.13),
    "bus": ((10.5, 12.5), (2.45, 2.55), (2.9, 3.2), 0.05),
    "truck": ((6.5, 9.0), (2.3, 2.5), (2.8, 3.4), 0.10),
}
# Real-world car colour shares (white, black, grey, silver, blue, red, brown, green, yellow), BGR.
COLOURS: dict[str, tuple[BGR, float]] = {
    "white": ((238, 238, 236), 0.3), "black": ((28, 28, 30), 0.2), "gray": ((115, 117, 120), 0.17),
    "silver": ((190, 190, 192), 0.12), "blue": ((140, 60, 25), 0.08), "red": ((35, 35, 170), 0.07),
    "brown": ((40, 60, 95), 0.03), "green": ((50, 90, 40), 0.02), "yellow": ((40, 190, 230), 0.01),
}


def _plain(value: Any) -> Any:
    """A config value as the spec holds it: scalars as they are, lists as tuples, mappings as dicts."""
    if value is None or isinstance(value, (int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): float(v) for k, v in value.items()}
    return tuple(value)


@dataclass
class CitySpec:
    """The vehicle world's settings (`conf/synth/layout/aic19.yaml`, key `layout.city`) plus the frame grid."""

    cameras: int = 4
    frames: int = 60
    fps: float = 10.0
    width: int = 640
    height: int = 360
    vehicles: int = 20  # routes per scene (ids global over scenes)
    grid: tuple[int, int] = (3, 2)  # intersections along x, y
    block: float = 70.0  # metres between intersections
    lane_width: float = 3.5  # one lane each way
    speed: tuple[float, float] = (8.0, 15.0)  # cruise speeds, m/s
    turn_speed: float = 6.0  # m/s through turns
    stop_prob: float = 0.3  # chance to stop at an intersection (red light)
    stop_time: tuple[float, float] = (1.0, 5.0)  # seconds
    camera_height: tuple[float, float] = (6.0, 15.0)
    camera_hfov: tuple[float, float] = (55.0, 80.0)
    camera_setback: tuple[float, float] = (8.0, 16.0)  # metres from the road centre point a camera watches
    max_time_offset: float = 2.0  # seconds, per-camera clock start
    noise_sigma: tuple[float, float] = (1.5, 4.0)
    gain: tuple[float, float] = (0.85, 1.1)
    colour_cast: float = 0.05
    type_mix: Mapping[str, float] | None = None  # chance per vehicle type (None: VEHICLE_TYPES' real-road shares)

    @classmethod
    def from_config(cls, cfg: Any) -> CitySpec:
        """From the composed synth config; `SynthConfigError` names a bad or unknown key."""
        city: Mapping[str, Any] = dict(cfg.layout.city)
        names = {f.name for f in fields(cls)}
        unknown = set(city) - names
        if unknown:
            raise SynthConfigError(f"synth config: unknown key layout.city.{min(unknown)}")
        values = {k: _plain(v) for k, v in city.items()}
        spec = cls(cameras=cfg.cameras, frames=cfg.frames, fps=float(cfg.fps), width=cfg.width, height=cfg.height, **values)
        spec.validate()
        return spec

    def validate(self) -> None:
        """Raise `SynthConfigError` naming the first bad key."""
        def bad(key: str, rule: str) -> SynthConfigError:
            return SynthConfigError(f"synth config: layout.city.{key} must be {rule}, got {getattr(self, key)!r}")

        for key in ("vehicles",):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 1:
                raise bad(key, "a positive integer")
        if len(self.grid) != 2 or min(self.grid) < 1 or self.grid[0] * self.grid[1] < 2:
            raise bad("grid", "[nx, ny] with at least 2 intersections")
        if not self.block >= 30:
            raise bad("block", ">= 30 metres")
        if not 2.5 <= self.lane_width <= 5:
            raise bad("lane_width", "within [2.5, 5] metres")
        if not 1.0 <= self.speed[0] <= self.speed[1] <= 40:
            raise bad("speed", "[lo, hi] m/s with 1 <= lo <= hi <= 40")
        if not 1.0 <= self.turn_speed:
            raise bad("turn_speed", ">= 1 m/s")
        if not 0 <= self.stop_prob <= 1:
            raise bad("stop_prob", "a probability in [0, 1]")
        if not 0 <= self.stop_time[0] <= self.stop_time[1]:
            raise bad("stop_time", "[lo, hi] seconds with 0 <= lo <= hi")
        if not 2.0 <= self.camera_height[0] <= self.camera_height[1]:
            raise bad("camera_height", "[lo, hi] metres with 2 <= lo <= hi")
        if self.type_mix is not None:
            mix = self.type_mix
            if (not isinstance(mix, Mapping) or not set(mix) <= set(VEHICLE_TYPES) or min(mix.values(), default=-1) < 0
                    or sum(mix.values()) <= 0):
                raise bad("type_mix", f"a mapping of {sorted(VEHICLE_TYPES)} to non-negative weights, not all zero")
        if not 10 <= self.camera_hfov[0] <= self.camera_hfov[1] < 150:
            raise bad("camera_hfov", "within [10, 150) degrees")
        if not 0 <= self.camera_setback[0] <= self.camera_setback[1]:
            raise bad("camera_setback", "[lo, hi] metres with 0 <= lo <= hi")
        if not 0 <= self.max_time_offset:
            raise bad("max_time_offset", ">= 0 seconds")
        if not 0 <= self.noise_sigma[0] <= self.noise_sigma[1]:
            raise bad("noise_sigma", "[lo, hi] with 0 <= lo <= hi")


# ----------------------------------------------------------------------------- roads and routes
CARGO_COLOURS: tuple[BGR, ...] = ((215, 218, 220), (235, 235, 235), (40, 40, 160), (150, 90, 30), (60, 120, 60),
                                  (30, 140, 220), (90, 90, 95))
TRIM_COLOURS: tuple[BGR, ...] = ((30, 30, 32), (70, 70, 72), (160, 160, 165))


@dataclass
class VehicleLooks:
    """What tells two vehicles of one type and colour name apart, as make, model and options do on
    real roads: the exact paint shade, window tint, bumper and trim colour, a roof of another colour,
    roof racks or boxes, a side stripe, and for trucks the cargo box colour and a side logo.
    `None` parts are absent."""

    glass: BGR = (62, 50, 42)
    trim: BGR | None = None  # bumpers front and back
    roof: BGR | None = None  # two-tone roof
    rack: tuple[float, BGR] | None = None  # roof rack / box: height (m), colour
    stripe: BGR | None = None  # a band along the sides
    cargo: BGR = (215, 218, 220)
    logo: BGR | None = None


def draw_looks(rng: np.random.Generator, kind: str, colour: BGR) -> tuple[BGR, VehicleLooks]:
    """The vehicle's paint (its colour name's shade, varied) and its `VehicleLooks`."""
    paint = np.asarray(colour, dtype=np.float64) * rng.uniform(0.82, 1.12) + rng.normal(0.0, 7.0, 3)
    paint_bgr: BGR = tuple(int(c) for c in np.clip(paint, 8, 250))  # type: ignore[assignment]
    tint = rng.uniform(0.55, 1.5)
    glass: BGR = tuple(int(c) for c in np.clip(np.array([62, 50, 42]) * tint + rng.normal(0, 4, 3), 10, 160))  # type: ignore[assignment]
    looks = VehicleLooks(glass=glass)
    if rng.random() < 0.55:
        looks.trim = TRIM_COLOURS[int(rng.integers(len(TRIM_COLOURS)))]
    if kind in ("car", "suv") and rng.random() < 0.15:
        looks.roof = (25, 25, 28) if float(np.mean(paint)) > 100 else (235, 235, 235)
    if kind in ("car", "suv", "van") and rng.random() < 0.2:
        looks.rack = (float(rng.uniform(0.06, 0.4)), TRIM_COLOURS[int(rng.integers(2))])
    if kind != "truck" and rng.random() < (0.6 if kind == "bus" else 0.12):
        looks.stripe = tuple(int(c) for c in rng.integers(20, 240, 3))  # type: ignore[assignment]
    if kind == "truck":
        looks.cargo = CARGO_COLOURS[int(rng.integers(len(CARGO_COLOURS)))]
        if rng.random() < 0.5:
            looks.logo = tuple(int(c) for c in rng.integers(20, 240, 3))  # type: ignore[assignment]
    return paint_bgr, looks


@dataclass
class Vehicle:
    """One vehicle on one route: looks, size and its path sampled densely by arc length."""

    global_id: int
    kind: str
    colour_name: str
    colour: BGR
    size: np.ndarray  # (3,) length, width, height
    cabin: float  # share of the length under the cabin / windows
    path: np.ndarray  # (M, 2) lane centre points, ~0.5 m apart
    times: np.ndarray  # (M,) scene time at each path point (non-decreasing; equal while stopped)
    looks: VehicleLooks = field(default_factory=VehicleLooks)

    def pose(self, t: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Footprint centres `(N, 2)`, headings `(N,)` and presence `(N,)` at scene times `t`."""
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        present = (t >= self.times[0]) & (t <= self.times[-1])
        # The last path index reached by time t (the vehicle waits at a stop: several equal times).
        k = np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, len(self.times) - 2)
        dt = self.times[k + 1] - self.times[k]
        a = np.where(dt > 0, (t - self.times[k]) / np.where(dt > 0, dt, 1.0), 0.0)[:, None]
        xy = self.path[k] * (1 - a) + self.path[k + 1] * a
        seg = self.path[k + 1] - self.path[k]
        return xy, np.arctan2(seg[:, 1], seg[:, 0]), present


_DIRS = ((1, 0), (0, 1), (-1, 0), (0, -1))  # east, north, west, south


def _turn_curve(entry: np.ndarray, corner: np.ndarray, exit_: np.ndarray, step: float) -> np.ndarray:
    """A quadratic Bezier from the stop line to the far side of the intersection (a straight is a line)."""
    n = max(2, int(np.ceil((np.linalg.norm(corner - entry) + np.linalg.norm(exit_ - corner)) / step)))
    s = np.linspace(0, 1, n)[:, None]
    return (1 - s) ** 2 * entry + 2 * s * (1 - s) * corner + s**2 * exit_


def plan_route(spec: CitySpec, rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[int, bool]]]:
    """A route entering the grid from outside, going straight or turning at each intersection,
    until it leaves it: lane points `(M, 2)` about 0.5 m apart, and for every intersection the
    path index of its stop line and whether the turn is a real turn (slower)."""
    nx, ny = spec.grid
    B, half, off = spec.block, spec.lane_width, spec.lane_width / 2  # road half width: one lane each way
    stub = 0.8 * B  # roads run this far outside the grid
    # Entry: a border intersection, driving inward from a stub.
    borders = [((0, j), 0) for j in range(ny)] + [((nx - 1, j), 2) for j in range(ny)]
    borders += [((i, 0), 1) for i in range(nx)] + [((i, ny - 1), 3) for i in range(nx)]
    node, d = borders[rng.integers(len(borders))]
    node = np.array(node)
    step = 0.5
    centre = node * B
    dx = np.array(_DIRS[d], dtype=np.float64)
    right = np.array([dx[1], -dx[0]])
    start = centre - dx * (stub + half) + right * off
    points = [start]
    stops: list[tuple[int, bool]] = []
    for _ in range(nx + ny + 4):
        centre = node * B
        dx = np.array(_DIRS[d], dtype=np.float64)
        right = np.array([dx[1], -dx[0]])
        stop_line = centre - dx * half + right * off
        seg = np.linspace(points[-1], stop_line, max(2, int(np.ceil(np.linalg.norm(stop_line - points[-1]) / step))))
        points.extend(seg[1:])
        # Choose the way out: straight, left or right (no U-turns), inside the grid or out on a stub.
        choices = [d, (d + 1) % 4, (d + 3) % 4]
        weights = np.array([0.5, 0.25, 0.25])
        nd = choices[rng.choice(3, p=weights)]
        ox = np.array(_DIRS[nd], dtype=np.float64)
        oright = np.array([ox[1], -ox[0]])
        exit_ = centre + ox * half + oright * off
        corner = stop_line + dx * float(np.dot(exit_ - stop_line, dx)) if nd != d else (stop_line + exit_) / 2
        stops.append((len(points) - 1, nd != d))
        points.extend(_turn_curve(stop_line, corner, exit_, step)[1:])
        d, nxt = nd, node + np.array(_DIRS[nd])
        if not (0 <= nxt[0] < nx and 0 <= nxt[1] < ny):
            end = exit_ + ox * stub
            seg = np.linspace(exit_, end, max(2, int(np.ceil(stub / step))))
            points.extend(seg[1:])
            break
        node = nxt
    return np.asarray(points), stops


def speed_profile(path: np.ndarray, stops: list[tuple[int, bool]], spec: CitySpec, rng: np.random.Generator,
                  t0: float) -> np.ndarray:
    """Scene time at each path point: cruise speed, slower through turns, braking to and
    accelerating from stop lines where the light is red (and waiting there)."""
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
    cruise = rng.uniform(*spec.speed)
    v = np.full(len(s), cruise)
    brake, accel = 3.0, 2.0  # m/s^2
    waits = np.zeros(len(s))
    for index, turning in stops:
        s_stop = s[index]
        if rng.random() < spec.stop_prob:
            v = np.minimum(v, np.sqrt(2 * brake * np.maximum(s_stop - s, 0)) + np.where(s > s_stop, np.inf, 0))
            v = np.minimum(v, np.sqrt(2 * accel * np.maximum(s - s_stop, 0)) + np.where(s < s_stop, np.inf, 0))
            waits[index] = rng.uniform(*spec.stop_time)
        if turning:  # slow down to the turn speed 15 m before the stop line and keep it through the curve
            lim = spec.turn_speed + np.sqrt(2 * brake * np.clip(s_stop - 15 - s, 0, None))
            lim = np.where((s >= s_stop) & (s <= s_stop + 2.2 * spec.lane_width * 1.6), spec.turn_speed, lim)
            after = s > s_stop + 2.2 * spec.lane_width * 1.6
            lim = np.where(after, spec.turn_speed + np.sqrt(2 * accel * np.maximum(s - s_stop - 2.2 * spec.lane_width * 1.6, 0)), lim)
            v = np.minimum(v, lim)
    v_mid = np.maximum((v[1:] + v[:-1]) / 2, 0.3)  # a crawl floor: the stop itself is the explicit wait
    dt = np.diff(s) / v_mid + waits[:-1]
    return t0 + np.concatenate([[0.0], np.cumsum(dt)])


def _pick(rng: np.random.Generator, table: Mapping[str, Any], weight: int) -> str:
    names = list(table)
    w = np.array([table[n][weight] for n in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=w / w.sum()))]


def collide(a: Vehicle, b: Vehicle, t: np.ndarray, gap: float) -> bool:
    """Whether the footprints of `a` and `b`, each grown by `gap / 2`, overlap at any of the times `t`
    where both drive (separating-axis test of two rotated rectangles)."""
    pa, ha, ina = a.pose(t)
    pb, hb, inb = b.pose(t)
    both = ina & inb
    if not both.any():
        return False
    d = pb[both] - pa[both]
    half = [(a.size[:2] + gap) / 2, (b.size[:2] + gap) / 2]
    axes = []
    for h in (ha[both], hb[both]):
        axes += [np.c_[np.cos(h), np.sin(h)], np.c_[-np.sin(h), np.cos(h)]]
    separated = np.zeros(len(d), dtype=bool)
    for ax in axes:
        reach = sum(hl[0] * np.abs(np.einsum("ij,ij->i", ax, f)) + hl[1] * np.abs(np.einsum("ij,ij->i", ax, s))
                    for hl, f, s in ((half[0], axes[0], axes[1]), (half[1], axes[2], axes[3])))
        separated |= np.abs(np.einsum("ij,ij->i", d, ax)) > reach
    return not separated.all()


MIN_GAP = 1.0  # metres between vehicles (bumper to bumper along a lane, or crossing an intersection)
START_TRIES = 25


def make_vehicles(spec: CitySpec, rng: np.random.Generator, id_offset: int, duration: float,
                  looks_seed: int = 0) -> list[Vehicle]:
    """Vehicles with routes, starting so that they are spread over the scene's `duration` seconds
    (some already on their way at time 0).

    There is no traffic simulation: a vehicle's start time is drawn again (up to `START_TRIES`
    times) until it keeps `MIN_GAP` to every earlier vehicle during the scene (no one drives into a
    car waiting at a red light or through a crossing one); a vehicle that finds no such start is
    left out, so a dense setting gives fewer vehicles than asked for. Looks (`draw_looks`) come
    from their own generator per vehicle (`looks_seed`, id), so they never move a route.
    """
    out: list[Vehicle] = []
    check = np.arange(-1.0, duration + 1.0, 0.1)
    types = VEHICLE_TYPES if spec.type_mix is None else {
        name: (*VEHICLE_TYPES[name][:3], float(spec.type_mix.get(name, 0.0))) for name in VEHICLE_TYPES}
    for k in range(spec.vehicles):
        kind = _pick(rng, types, 3)
        (l0, l1), (w0, w1), (h0, h1), _ = VEHICLE_TYPES[kind]
        colour_name = _pick(rng, COLOURS, 1) if kind not in ("bus",) or rng.random() < 0.5 else "yellow"
        path, stops = plan_route(spec, rng)
        times = speed_profile(path, stops, spec, rng, 0.0)
        cabin = {"car": 0.5, "suv": 0.62, "van": 0.8, "bus": 0.95, "truck": 0.28}[kind] * rng.uniform(0.92, 1.05)
        paint, looks = draw_looks(np.random.default_rng([looks_seed, id_offset + k + 1]), kind, COLOURS[colour_name][0])
        v = Vehicle(id_offset + k + 1, kind, colour_name, paint,
                    np.array([rng.uniform(l0, l1), rng.uniform(w0, w1), rng.uniform(h0, h1)]),
                    float(min(cabin, 0.97)), path, times, looks)
        for _ in range(START_TRIES):
            # On the road somewhere in [0, duration]: up to 80% through its route at time 0.
            v.times = times + rng.uniform(-0.8 * times[-1], max(duration - 0.2 * times[-1], 0.0))
            if not any(collide(v, u, check, MIN_GAP) for u in out):
                out.append(v)
                break
    return out


# ----------------------------------------------------------------------------- cameras
def camera_sites(spec: CitySpec) -> list[np.ndarray]:
    """Road points cameras watch: intersections first (centre out), then the middles of the blocks."""
    nx, ny = spec.grid
    mid = np.array([(nx - 1) / 2, (ny - 1) / 2]) * spec.block
    nodes = sorted((np.array([i, j], dtype=np.float64) * spec.block for i in range(nx) for j in range(ny)),
                   key=lambda p: (float(np.linalg.norm(p - mid)), float(p[0]), float(p[1])))
    segs = [np.array([i + 0.5, j]) * spec.block for i in range(nx - 1) for j in range(ny)]
    segs += [np.array([i, j + 0.5]) * spec.block for i in range(nx) for j in range(ny - 1)]
    return nodes + segs


def make_city_cameras(spec: CitySpec, rng: np.random.Generator) -> tuple[list[SynthCamera], np.ndarray]:
    """Cameras on poles `camera_height` high beside the roads, looking down at a road point.

    The first two watch the central intersection from opposite corners (an overlapping pair, so
    that vehicles are seen by two cameras as AI City 2019's ground truth needs); the others each
    watch another site, far apart. Returns the cameras and their clock offsets (seconds).
    """
    sites = camera_sites(spec)
    cams = []
    for i in range(spec.cameras):
        site = sites[0] if i < 2 else sites[(i - 1) % len(sites)]
        angle = (np.pi / 4 + np.pi * i if i < 2 else rng.uniform(0, 2 * np.pi)) + rng.uniform(-0.3, 0.3)
        back = rng.uniform(*spec.camera_setback) + spec.lane_width
        center = np.array([*(site + back * np.array([np.cos(angle), np.sin(angle)])), rng.uniform(*spec.camera_height)])
        target = np.array([*(site + rng.uniform(-3, 3, 2) - 0.25 * back * np.array([np.cos(angle), np.sin(angle)])), 0.0])
        hfov = float(rng.uniform(*spec.camera_hfov))
        K = intrinsics_from_fov(spec.width, spec.height, hfov)
        R = look_at_rotation(center, target)
        cast = 1.0 + rng.uniform(-spec.colour_cast, spec.colour_cast, size=3)
        cams.append(SynthCamera(i, K, R, -R @ center, spec.width, spec.height, hfov, float(rng.uniform(*spec.gain)),
                                cast, float(rng.uniform(*spec.noise_sigma))))
    offsets = np.round(rng.uniform(0, spec.max_time_offset, spec.cameras), 3)
    offsets[0] = 0.0  # the dataset's first camera starts the clock
    return cams, offsets


@dataclass
class City:
    """One scene of the vehicle world."""

    spec: CitySpec
    scene_index: int
    cameras: list[SynthCamera]
    time_offsets: np.ndarray  # (C,) seconds
    vehicles: list[Vehicle]
    noise_seed: int

    def frame_time(self, c: int, frame: int) -> float:
        """Scene time of camera `c`'s 0-based `frame`."""
        return float(self.time_offsets[c] + frame / self.spec.fps)


def build_city(spec: CitySpec, seed: int, scene_index: int = 0, id_offset: int = 0) -> City:
    """A deterministic scene: cameras, vehicles and noise each draw from their own child seed."""
    cam_ss, veh_ss, noise_ss = np.random.SeedSequence([seed, scene_index, 19]).spawn(3)
    cams, offsets = make_city_cameras(spec, np.random.default_rng(cam_ss))
    duration = spec.frames / spec.fps + float(offsets.max())
    looks_seed = int(np.random.SeedSequence([seed, scene_index, 29]).generate_state(1)[0])
    vehicles = make_vehicles(spec, np.random.default_rng(veh_ss), id_offset, duration, looks_seed)
    return City(spec, scene_index, cams, offsets, vehicles, int(noise_ss.generate_state(1)[0]))
