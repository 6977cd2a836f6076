"""The synthetic world: ground plane, static occluders, cameras, agents and their paths.

Everything here is geometry and appearance in world units (metres, `z` up); nothing is
rasterised (that is `render.py`). A `World` is built from a `SceneSpec` and a seed and is
fully deterministic: each part (cameras, occluders, people, paths, noise) draws from its own
child of `numpy.random.SeedSequence(seed, scene)`, so changing the number of frames does not
change anyone's clothes.

Agents carry a `kind` ("person" today). The vehicle world (cars on roads, cameras far apart,
time offsets; `layout=aic19`) is its own world in `city.py`, sharing `SynthCamera` and `solids.py`.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, field

import numpy as np

from citytrack.data.synth.clutter import ClutterSpec, Prop, make_clutter
from citytrack.data.synth.facades import Facade, make_facades, near_facades
from citytrack.data.synth.imaging import CameraImaging, sample_camera_imaging
from citytrack.data.synth.markings import paint_markings
from citytrack.multicam.calibration import CameraCalibration, intrinsics_from_fov, look_at_rotation

BGR = tuple[int, int, int]


class SynthConfigError(ValueError):
    """A synthetic-world setting is out of range; the message names the key and the value."""


# ----------------------------------------------------------------------------- specs
@dataclass
class SceneSpec:
    """What a scene contains; built from the Hydra config (`conf/synth/synth.yaml`)."""

    cameras: int = 4
    people: int = 12
    frames: int = 60
    fps: float = 10.0
    width: int = 640
    height: int = 360
    area: tuple[float, float] = (20.0, 14.0)  # walkable plaza, metres (x, y)
    occluders: int = 6
    camera_height: tuple[float, float] = (3.0, 8.0)
    camera_hfov: tuple[float, float] = (60.0, 85.0)
    camera_distance: tuple[float, float] = (2.0, 5.0)  # beyond the walk margin
    walk_margin: float = 1.5  # people enter/leave on a rectangle this far outside the plaza
    group_prob: float = 0.25
    stop_prob: float = 0.35
    speed: tuple[float, float] = (0.8, 1.8)  # walking speeds (m/s): normal about the middle, sd a quarter of the range
    slow_prob: float = 0.1  # slow walkers (strolling, elderly, on the phone): half the lowest speed to the lowest
    child_prob: float = 0.06  # children, 1.0-1.4 m, walking with an adult's group where there is one
    carry_prob: float = 0.5  # carrying a backpack, shoulder bag, handbag or suitcase
    dark_clothes_prob: float = 0.75  # a garment in dull, dark real-world colours (else a bright one)
    texture_ppm: float = 0.0  # ground texture pixels per metre; 0 = from the image width
    noise_sigma: tuple[float, float] = (2.0, 6.0)
    gain: tuple[float, float] = (0.8, 1.15)
    colour_cast: float = 0.07
    motion_blur: tuple[float, float] = (0.0, 2.0)  # per-camera linear blur, pixels (imaging.py)
    jpeg_quality: tuple[int, int] = (70, 95)  # per-camera JPEG quality; 100 = none
    flicker: float = 0.01  # per-frame exposure gain, standard deviation
    white_balance: float = 0.04  # per-camera colour temperature error, +- this share red vs blue
    dusk_prob: float = 0.1  # a scene at dusk: darker, warmer, flatter, lit windows
    body_shading: tuple[float, float] = (0.0, 0.0)  # per-camera strength of people's relief shading (render.py)
    cloth_texture: tuple[float, float] = (0.0, 0.0)  # per-camera amplitude of a pattern over people's surfaces
    clutter: ClutterSpec = field(default_factory=ClutterSpec)

    def validate(self) -> None:
        """Raise `SynthConfigError` naming the first bad key."""
        positive_int = {"cameras": self.cameras, "people": self.people, "frames": self.frames,
                        "width": self.width, "height": self.height}
        for key, value in positive_int.items():
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise SynthConfigError(f"synth config: {key} must be a positive integer, got {value!r}")
        if self.width < 16 or self.height < 16:
            raise SynthConfigError(f"synth config: image size must be at least 16x16, got {self.width}x{self.height}")
        if not self.fps > 0:
            raise SynthConfigError(f"synth config: fps must be positive, got {self.fps!r}")
        if self.occluders < 0:
            raise SynthConfigError(f"synth config: occluders must be >= 0, got {self.occluders!r}")
        if min(self.area) <= 2:
            raise SynthConfigError(f"synth config: area must be larger than 2x2 m, got {self.area!r}")
        lo, hi = self.camera_height
        if not 0.5 <= lo <= hi:
            raise SynthConfigError(f"synth config: camera_height must be a range [lo, hi] with 0.5 <= lo <= hi, got {self.camera_height!r}")
        lo, hi = self.camera_hfov
        if not 10 <= lo <= hi < 170:
            raise SynthConfigError(f"synth config: camera_hfov must be within [10, 170) degrees, got {self.camera_hfov!r}")
        if self.camera_distance[0] < 0.5 or self.camera_distance[1] < self.camera_distance[0]:
            raise SynthConfigError(f"synth config: camera_distance must be [lo, hi] with lo >= 0.5, got {self.camera_distance!r}")
        for key in ("group_prob", "stop_prob", "slow_prob", "child_prob", "carry_prob", "dark_clothes_prob"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise SynthConfigError(f"synth config: {key} must be a probability in [0, 1], got {getattr(self, key)!r}")
        if not 0.2 <= self.speed[0] <= self.speed[1] <= 3.0:
            raise SynthConfigError(f"synth config: speed must be [lo, hi] m/s with 0.2 <= lo <= hi <= 3, got {self.speed!r}")
        if not 0.0 <= self.motion_blur[0] <= self.motion_blur[1] <= 15.0:
            raise SynthConfigError(
                f"synth config: world.motion_blur must be [lo, hi] pixels with 0 <= lo <= hi <= 15, got {self.motion_blur!r}")
        if not 10 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise SynthConfigError(
                f"synth config: world.jpeg_quality must be [lo, hi] with 10 <= lo <= hi <= 100, got {self.jpeg_quality!r}")
        for key in ("body_shading", "cloth_texture"):
            lo, hi = getattr(self, key)
            if not 0.0 <= lo <= hi <= 0.9:
                raise SynthConfigError(f"synth config: world.{key} must be [lo, hi] with 0 <= lo <= hi <= 0.9, got {getattr(self, key)!r}")
        for key, top in (("flicker", 0.2), ("white_balance", 0.3), ("dusk_prob", 1.0)):
            if not 0.0 <= getattr(self, key) <= top:
                raise SynthConfigError(f"synth config: world.{key} must be within [0, {top}], got {getattr(self, key)!r}")
        try:
            self.clutter.validate()
        except ValueError as err:
            raise SynthConfigError(str(err)) from None


# ----------------------------------------------------------------------------- cameras
@dataclass
class SynthCamera:
    """A calibrated camera plus its per-camera look (lighting, sensor noise, imaging chain)."""

    index: int  # 0-based within the scene
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    width: int
    height: int
    hfov: float
    gain: float
    cast: np.ndarray  # (3,) BGR multipliers
    noise_sigma: float
    imaging: CameraImaging = field(default_factory=CameraImaging)
    calibration: CameraCalibration = field(init=False)

    def __post_init__(self) -> None:
        self.calibration = CameraCalibration.from_intrinsics_extrinsics(self.K, self.R, self.t, (self.width, self.height))

    @property
    def camera_id(self) -> int:
        """1-based id used in files (`camera_0001`, `c001`)."""
        return self.index + 1

    @property
    def projection(self) -> np.ndarray:
        assert self.calibration.projection is not None
        return self.calibration.projection

    @property
    def center(self) -> np.ndarray:
        return self.calibration.camera_center

    def light(self, colour: BGR | np.ndarray) -> BGR:
        """A surface colour as this camera records it (gain and colour cast)."""
        c = np.clip(np.asarray(colour, dtype=np.float64) * self.gain * self.cast, 0, 255)
        return (int(c[0]), int(c[1]), int(c[2]))


def make_cameras(spec: SceneSpec, rng: np.random.Generator, look: np.random.Generator | None = None) -> list[SynthCamera]:
    """Cameras around the plaza, `camera_height` high, all looking at its middle so the views overlap
    (a higher camera looks more steeply down). `look` draws each camera's imaging chain (blur,
    compression, flicker, white balance) apart from `rng`, so the geometry of a seed does not
    depend on those settings; without it the chain is neutral."""
    ax, ay = spec.area[0] / 2 + spec.walk_margin, spec.area[1] / 2 + spec.walk_margin
    offset = rng.uniform(0, 2 * np.pi)
    cams = []
    for i in range(spec.cameras):
        angle = offset + 2 * np.pi * i / spec.cameras + rng.uniform(-0.25, 0.25) * np.pi / max(spec.cameras, 2)
        d = rng.uniform(*spec.camera_distance)
        center = np.array([(ax + d) * np.cos(angle), (ay + d) * np.sin(angle), rng.uniform(*spec.camera_height)])
        target = np.array([rng.uniform(-0.2, 0.2) * spec.area[0], rng.uniform(-0.2, 0.2) * spec.area[1], 0.0])
        # A higher camera looks more steeply; aim a bit beyond the middle so the far side stays in view.
        target[:2] += -center[:2] / np.linalg.norm(center[:2]) * rng.uniform(0.0, 0.15) * min(spec.area)
        hfov = float(rng.uniform(*spec.camera_hfov))
        K = intrinsics_from_fov(spec.width, spec.height, hfov)
        R = look_at_rotation(center, target)
        t = -R @ center
        cast = 1.0 + rng.uniform(-spec.colour_cast, spec.colour_cast, size=3)
        imaging = CameraImaging() if look is None else sample_camera_imaging(
            look, spec.motion_blur, spec.jpeg_quality, spec.flicker, spec.white_balance)
        cams.append(
            SynthCamera(i, K, R, t, spec.width, spec.height, hfov, float(rng.uniform(*spec.gain)), cast,
                        float(rng.uniform(*spec.noise_sigma)), imaging)
        )
    return cams


# ----------------------------------------------------------------------------- occluders
OCCLUDER_KINDS: dict[str, tuple[tuple[float, float, float], tuple[BGR, ...]]] = {
    # kind: (size x, y, z in metres, colour choices BGR)
    "pillar": ((0.5, 0.5, 3.2), ((170, 172, 175), (120, 122, 128), (150, 160, 170))),
    "box": ((1.2, 0.9, 1.1), ((60, 110, 160), (50, 80, 120), (140, 140, 150))),
    "bench": ((1.8, 0.55, 0.5), ((40, 80, 120), (70, 70, 75))),
    "planter": ((1.3, 1.3, 0.8), ((110, 120, 130), (90, 100, 105))),
    "kiosk": ((2.2, 1.6, 2.6), ((60, 60, 170), (150, 90, 40), (60, 140, 60))),
}


@dataclass
class Occluder:
    """A static extruded box (pillar, crate, bench, planter, kiosk) standing on the ground."""

    kind: str
    center: np.ndarray  # (2,)
    size: np.ndarray  # (3,) x, y, z extents before yaw
    yaw: float
    colour: BGR

    def corners(self) -> np.ndarray:
        """(8, 3): bottom face (4, counter-clockwise seen from above) then top face."""
        hx, hy = self.size[0] / 2, self.size[1] / 2
        local = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        xy = local @ np.array([[c, s], [-s, c]]) + self.center
        bottom = np.c_[xy, np.zeros(4)]
        top = np.c_[xy, np.full(4, self.size[2])]
        return np.vstack([bottom, top])

    def footprint_radius(self) -> float:
        return float(np.hypot(self.size[0], self.size[1]) / 2)


def make_occluders(spec: SceneSpec, rng: np.random.Generator) -> list[Occluder]:
    """Occluders spread over the plaza, not overlapping each other."""
    kinds = list(OCCLUDER_KINDS)
    out: list[Occluder] = []
    for _ in range(spec.occluders):
        kind = kinds[int(rng.integers(len(kinds)))]
        size, colours = OCCLUDER_KINDS[kind]
        size_arr = np.asarray(size) * rng.uniform(0.85, 1.15, size=3)
        for _attempt in range(50):
            center = rng.uniform(-0.4, 0.4, size=2) * np.asarray(spec.area)
            r = float(np.hypot(size_arr[0], size_arr[1]) / 2)
            if all(np.linalg.norm(center - o.center) > r + o.footprint_radius() + 1.5 for o in out):
                break
        else:
            continue  # plaza too crowded for another one
        out.append(Occluder(kind, center, size_arr, float(rng.uniform(0, np.pi)), colours[int(rng.integers(len(colours)))]))
    return out


# ----------------------------------------------------------------------------- people
SKIN_TONES: tuple[BGR, ...] = ((196, 224, 255), (125, 194, 241), (105, 172, 224), (66, 134, 198), (36, 85, 141), (30, 54, 94))
HAIR_COLOURS: tuple[BGR, ...] = ((25, 25, 28), (30, 45, 70), (40, 75, 120), (90, 170, 215), (160, 160, 165), (30, 60, 150))
SHOE_COLOURS: tuple[BGR, ...] = ((30, 30, 30), (230, 230, 235), (50, 70, 100))
DULL_CLOTHES: dict[str, tuple[BGR, float, float]] = {
    # name: (BGR, share as a top or a bag, share as trousers / skirt); most pedestrians wear these
    "black": ((24, 24, 26), 0.20, 0.22),
    "charcoal": ((52, 50, 50), 0.10, 0.08),
    "dark grey": ((88, 88, 90), 0.08, 0.06),
    "grey": ((140, 140, 142), 0.08, 0.05),
    "light grey": ((190, 190, 192), 0.05, 0.02),
    "white": ((228, 230, 232), 0.09, 0.02),
    "navy": ((80, 42, 30), 0.10, 0.08),
    "denim blue": ((135, 96, 70), 0.05, 0.22),
    "light denim": ((185, 152, 122), 0.02, 0.08),
    "brown": ((45, 65, 95), 0.06, 0.04),
    "dark green": ((50, 70, 45), 0.05, 0.03),
    "olive": ((60, 95, 95), 0.03, 0.03),
    "beige": ((160, 190, 205), 0.06, 0.05),
    "khaki": ((110, 150, 170), 0.02, 0.05),
    "burgundy": ((42, 32, 100), 0.03, 0.01),
}
_DULL = np.array([c for c, _, _ in DULL_CLOTHES.values()], dtype=np.float64)
_DULL_SHARES = {part: shares / shares.sum() for part, shares in (
    ("upper", np.array([u for _, u, _ in DULL_CLOTHES.values()])), ("lower", np.array([lo for _, _, lo in DULL_CLOTHES.values()])))}
PATTERNS = ("solid", "stripes", "check")
CARRY_KINDS = ("none", "backpack", "shoulder", "handbag", "suitcase")
CARRY_SHARES = (0.45, 0.25, 0.18, 0.12)  # of the carriers: backpack, shoulder bag, handbag, suitcase


def _garment_colour(rng: np.random.Generator, dull_prob: float, part: str = "upper") -> BGR:
    """A clothing (or bag) colour: with `dull_prob` a real-world dull or dark one (`DULL_CLOTHES`,
    shares for `part` "upper" or "lower", brightness varied +-15%), else a bright saturated one."""
    if rng.random() < dull_prob:
        c = _DULL[int(rng.choice(len(_DULL), p=_DULL_SHARES[part]))] * rng.uniform(0.85, 1.15) + rng.uniform(-6, 6, size=3)
        b, g, r = np.clip(c, 0, 255).astype(int).tolist()
        return (b, g, r)
    h, s, v = rng.random(), rng.uniform(0.45, 0.95), rng.uniform(0.45, 0.95)
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return (int(b * 255), int(g * 255), int(r * 255))


def _contrasting(colour: BGR, rng: np.random.Generator, dull_prob: float) -> BGR:
    for _ in range(20):
        c = _garment_colour(rng, dull_prob)
        if sum(abs(a - b) for a, b in zip(c, colour, strict=True)) > 180:
            return c
    return tuple(255 - v for v in colour)  # type: ignore[return-value]


@dataclass
class Appearance:
    """Identity-defining look of one person; constant over the scene and across cameras."""

    height: float
    build: float
    skin: BGR
    hair: BGR
    long_hair: bool
    upper: BGR
    upper2: BGR
    long_sleeves: bool
    pattern: str
    lower: BGR
    shoes: BGR
    carry: str  # one of CARRY_KINDS
    carry_colour: BGR


def make_appearance(rng: np.random.Generator, spec: SceneSpec, child: bool = False) -> Appearance:
    """A random look with `spec`'s clothing and carrying shares; a `child` is 1.0-1.4 m tall, slighter,
    and carries at most a backpack."""
    dull = spec.dark_clothes_prob
    upper = _garment_colour(rng, dull)
    height = rng.uniform(1.0, 1.4) if child else np.clip(rng.normal(1.71, 0.085), 1.5, 1.95)
    carry = "none"
    if rng.random() < spec.carry_prob:
        carry = "backpack" if child else CARRY_KINDS[1 + int(rng.choice(len(CARRY_SHARES), p=CARRY_SHARES))]
    return Appearance(
        height=float(height),
        build=float(rng.uniform(0.85, 1.05) if child else rng.uniform(0.85, 1.15)),
        skin=SKIN_TONES[int(rng.integers(len(SKIN_TONES)))],
        hair=HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))],
        long_hair=bool(rng.random() < 0.35),
        upper=upper,
        upper2=_contrasting(upper, rng, dull),
        long_sleeves=bool(rng.random() < 0.5),
        pattern=PATTERNS[int(rng.choice(3, p=[0.65, 0.25, 0.1]))],
        lower=_garment_colour(rng, 1.0 - (1.0 - dull) / 2, "lower"),  # bright trousers: half as often as tops
        shoes=SHOE_COLOURS[int(rng.integers(len(SHOE_COLOURS)))],
        carry=carry,
        carry_colour=_garment_colour(rng, dull),
    )


@dataclass
class Agent:
    """Anything that moves. `kind` is "person" today; vehicles would add their own body model."""

    index: int  # 0-based within the scene
    global_id: int  # 1-based, unique over the whole dataset (files, ReID pids)
    kind: str
    appearance: Appearance
    speed: float  # preferred walking speed, m/s
    phase0: float
    group: int  # index of the group leader (itself when alone)


@dataclass
class Trajectories:
    """Per frame and agent: position (F, A, 2), heading (F, A), gait phase (F, A), swing amplitude (F, A), present (F, A)."""

    position: np.ndarray
    heading: np.ndarray
    phase: np.ndarray
    swing: np.ndarray
    present: np.ndarray


_SEGMENT_STEPS = np.linspace(0.0, 1.0, 24)[:, None]


def _segment_hits_box(p0: np.ndarray, p1: np.ndarray, occ: Occluder, pad: float) -> bool:
    """Does the walk segment p0-p1 pass within `pad` of the occluder's (rotated) footprint?"""
    c, s = math.cos(occ.yaw), math.sin(occ.yaw)
    rot = np.array([[c, -s], [s, c]])  # world -> occluder frame (inverse yaw)
    a, b = (p0 - occ.center) @ rot.T, (p1 - occ.center) @ rot.T
    half = occ.size[:2] / 2 + pad
    q = a + (b - a) * _SEGMENT_STEPS  # 24 points along the segment, all at once
    return bool((np.abs(q) <= half).all(axis=1).any())


def _boundary_point(spec: SceneSpec, rng: np.random.Generator) -> np.ndarray:
    hx, hy = spec.area[0] / 2 + spec.walk_margin, spec.area[1] / 2 + spec.walk_margin
    side = int(rng.integers(4))
    u = rng.uniform(-0.8, 0.8)
    return np.array([[hx, u * hy], [-hx, u * hy], [u * hx, hy], [u * hx, -hy]][side])


def _plan_path(spec: SceneSpec, occluders: list[Occluder], rng: np.random.Generator) -> list[np.ndarray]:
    """Entry on the walk boundary, 1-3 waypoints in the plaza, exit on the boundary; avoids occluders."""
    best: list[np.ndarray] = []
    for _attempt in range(30):
        pts = [_boundary_point(spec, rng)]
        for _ in range(int(rng.integers(1, 4))):
            pts.append(rng.uniform(-0.42, 0.42, size=2) * np.asarray(spec.area))
        pts.append(_boundary_point(spec, rng))
        best = pts
        if not any(_segment_hits_box(a, b, o, 0.45) for a, b in zip(pts[:-1], pts[1:], strict=True) for o in occluders):
            return pts
    return best


def _timeline(points: list[np.ndarray], speed: float, stops: dict[int, float], t0: float) -> tuple[np.ndarray, np.ndarray]:
    """Knot times and positions of a walk along `points`, pausing `stops[i]` seconds at point i."""
    times, knots = [t0], [points[0]]
    t = t0
    for i in range(1, len(points)):
        t += float(np.linalg.norm(points[i] - points[i - 1])) / speed
        times.append(t)
        knots.append(points[i])
        if i in stops:
            t += stops[i]
            times.append(t)
            knots.append(points[i])
    return np.asarray(times), np.asarray(knots)


def make_people(
    spec: SceneSpec, occluders: list[Occluder], rng: np.random.Generator, id_offset: int = 0
) -> tuple[list[Agent], Trajectories]:
    """People with appearances and full-scene trajectories (entering, stopping, crossing, groups).

    A child joins the group of an earlier adult when there is one; a group walks at its leader's
    speed; leaders draw theirs from `spec.speed`, or are slow walkers (`spec.slow_prob`).
    """
    F, A = spec.frames, spec.people
    duration = F / spec.fps
    times = np.arange(F) / spec.fps
    position = np.zeros((F, A, 2))
    heading = np.zeros((F, A))
    phase = np.zeros((F, A))
    swing = np.zeros((F, A))
    present = np.zeros((F, A), dtype=bool)
    agents: list[Agent] = []
    plans: list[tuple[np.ndarray, np.ndarray]] = []
    adults: list[int] = []
    for k in range(A):
        child = bool(rng.random() < spec.child_prob)
        app = make_appearance(rng, spec, child)
        leader = k
        if child and adults:
            leader = agents[adults[int(rng.integers(len(adults)))]].group  # with an adult
        elif k > 0 and rng.random() < spec.group_prob:
            leader = agents[int(rng.integers(k))].group  # join an existing group
        if not child:
            adults.append(k)
        if leader != k:
            lead = agents[leader]
            speed = lead.speed
            t_lead, knots_lead = plans[leader]
            d = knots_lead[-1] - knots_lead[0]
            side = np.array([-d[1], d[0]]) / max(np.linalg.norm(d), 1e-6)
            n_members = sum(1 for a in agents if a.group == leader)
            offset = side * 0.65 * ((n_members + 1) // 2) * (1 if n_members % 2 else -1)
            t_knots = t_lead + rng.uniform(0.0, 0.4)
            knots = knots_lead + offset
        else:
            lo, hi = spec.speed
            slow = rng.random() < spec.slow_prob
            speed = float(rng.uniform(0.5 * lo, lo) if slow else np.clip(rng.normal((lo + hi) / 2, (hi - lo) / 4), lo, hi))
            pts = _plan_path(spec, occluders, rng)
            stops = {i: float(rng.uniform(1.5, 5.0)) for i in range(1, len(pts) - 1) if rng.random() < spec.stop_prob}
            length = sum(float(np.linalg.norm(b - a)) for a, b in zip(pts[:-1], pts[1:], strict=True))
            walk_time = length / speed + sum(stops.values())
            # Start so that the walk overlaps the clip: some are already inside at frame 0.
            t0 = float(rng.uniform(-0.7 * walk_time, max(duration - 0.3 * walk_time, 0.0) + 1e-3))
            t_knots, knots = _timeline(pts, speed, stops, t0)
        plans.append((t_knots, knots))
        agents.append(Agent(k, id_offset + k + 1, "person", app, speed, float(rng.uniform(0, 2 * np.pi)), leader))
        pos = np.stack([np.interp(times, t_knots, knots[:, 0]), np.interp(times, t_knots, knots[:, 1])], axis=1)
        position[:, k] = pos
        present[:, k] = (times >= t_knots[0]) & (times <= t_knots[-1])
        # Heading from the segment being walked (kept while standing), gait phase from distance.
        seg = np.clip(np.searchsorted(t_knots, times, side="right") - 1, 0, len(t_knots) - 2)
        dirs = knots[1:] - knots[:-1]
        moving = np.linalg.norm(dirs, axis=1) > 1e-9
        last_dir = np.zeros_like(dirs)
        cur = dirs[int(np.argmax(moving))] if moving.any() else np.array([1.0, 0.0])
        for i in range(len(dirs)):
            if moving[i]:
                cur = dirs[i]
            last_dir[i] = cur
        heading[:, k] = np.arctan2(last_dir[seg, 1], last_dir[seg, 0])
        seg_speed = np.where(moving, speed, 0.0)[seg]
        seg_speed = np.where(present[:, k], seg_speed, 0.0)
        stride = 2 * 0.415 * app.height
        dist = np.cumsum(seg_speed) / spec.fps
        phase[:, k] = agents[-1].phase0 + 2 * np.pi * dist / stride
        swing[:, k] = np.clip(seg_speed / (1.3 * app.height / 1.71), 0.0, 1.2)  # full swing at 1.3 m/s for 1.71 m
    # Ease the swing in and out of stops over ~0.3 s so legs do not snap.
    kernel = np.ones(max(1, int(round(0.3 * spec.fps))))
    kernel /= kernel.sum()
    for k in range(A):
        swing[:, k] = np.convolve(np.pad(swing[:, k], (len(kernel) // 2, len(kernel) - 1 - len(kernel) // 2), mode="edge"), kernel, "valid")
    return agents, Trajectories(position, heading, phase, swing, present)


# ----------------------------------------------------------------------------- ground
@dataclass
class GroundTexture:
    """A top-down image of the ground; pixel (0, 0) is world (x0, y0), `ppm` pixels per metre.

    Drawn once in world coordinates and warped into every camera, so the paving, grass and
    paths line up across views exactly as the calibration says.
    """

    image: np.ndarray
    x0: float
    y0: float
    ppm: float
    roads: tuple[float, float] = (0.0, 0.0)  # centre lines of the roads leading out: y of the one along x, x of the other

    def world_from_texture(self) -> np.ndarray:
        """3x3 map from texture pixel centres `(col, row, 1)` to world `(x, y, 1)`."""
        s = 1.0 / self.ppm
        return np.array([[s, 0, self.x0 + 0.5 * s], [0, s, self.y0 + 0.5 * s], [0, 0, 1.0]])


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    import cv2

    small = rng.standard_normal((max(2, shape[0] // cells), max(2, shape[1] // cells))).astype(np.float32)
    return cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def make_ground(spec: SceneSpec, rng: np.random.Generator, margin: float = 20.0) -> GroundTexture:
    """Paved plaza with tiles and grout, walkways leading out, grass around; in world coordinates.

    The resolution (`texture_ppm`, 0 = from the image width) only needs to match what the
    cameras resolve, so small test scenes build their ground in milliseconds.
    """
    ppm = float(spec.texture_ppm) if spec.texture_ppm > 0 else float(np.clip(spec.width / 20.0, 6.0, 40.0))
    hx, hy = spec.area[0] / 2 + margin, spec.area[1] / 2 + margin
    w, h = int(round(2 * hx * ppm)), int(round(2 * hy * ppm))
    X = ((np.arange(w, dtype=np.float32) + 0.5) / ppm - hx)[None, :]
    Y = ((np.arange(h, dtype=np.float32) + 0.5) / ppm - hy)[:, None]
    blot = _smooth_noise(rng, (h, w), max(2, int(3 * ppm)))
    grain = rng.standard_normal((h, w), dtype=np.float32)
    # Plaza: square tiles with per-tile shade and dark grout.
    px, py = spec.area[0] / 2 + spec.walk_margin + 0.5, spec.area[1] / 2 + spec.walk_margin + 0.5
    plaza = (np.abs(X) <= px) & (np.abs(Y) <= py)
    tile = float(rng.choice([0.5, 0.6, 0.8]))
    tx, ty = np.floor(X / tile), np.floor(Y / tile)
    shade_table = rng.uniform(0.88, 1.1, size=(89, 97)).astype(np.float32)
    tile_shade = shade_table[(ty.astype(np.int64) % 89), (tx.astype(np.int64) % 97)]
    fx, fy = X / tile - tx, Y / tile - ty
    grout = (np.minimum(fx, 1 - fx) < 0.03) | (np.minimum(fy, 1 - fy) < 0.03)
    r = np.hypot(X, Y)
    r0 = 0.22 * min(spec.area)
    ring = (r > r0) & (r < r0 + 0.8)
    kerb = plaza & ((np.abs(np.abs(X) - px) < 0.12) | (np.abs(np.abs(Y) - py) < 0.12))
    walk = np.zeros((h, w), dtype=bool)
    roads = []
    for axis in (0, 1):
        c = float(rng.uniform(-0.3, 0.3)) * spec.area[1 - axis]
        walk |= np.abs((Y if axis == 0 else X) - c) < 1.5
        roads.append(c)
    walk &= ~plaza
    paving = np.array(rng.choice([[150, 160, 168], [140, 150, 165], [165, 165, 160]]), dtype=np.float32)
    grass = np.array([55, 120, 75], dtype=np.float32)
    asphalt = np.array([78, 80, 84], dtype=np.float32)
    # Brightness factor and base colour per pixel, then one multiply.
    tile_f = tile_shade * np.where(grout, 0.62, 1.0).astype(np.float32) * (1 + 0.04 * grain)
    grass_f = 1.0 + 0.12 * blot + 0.08 * grain
    walk_f = 1.0 + 0.1 * grain + 0.05 * blot
    factor = np.where(plaza, tile_f, np.where(walk, walk_f, grass_f))
    img = np.where(plaza[..., None], paving, np.where(walk[..., None], asphalt, grass)) * factor[..., None]
    img = np.where(ring[..., None], img * np.array([0.75, 0.78, 0.85], dtype=np.float32), img)
    img = np.where(kerb[..., None], np.array([190, 195, 200], dtype=np.float32), img)
    img *= (1.0 + 0.05 * _smooth_noise(rng, (h, w), max(2, int(1.5 * ppm))))[..., None]
    return GroundTexture(np.clip(img, 0, 255).astype(np.uint8), -hx, -hy, ppm, (roads[0], roads[1]))


# ----------------------------------------------------------------------------- world
@dataclass
class World:
    """One scene: everything needed to render any camera at any frame."""

    scene_index: int  # 0-based
    spec: SceneSpec
    seed: int
    cameras: list[SynthCamera]
    occluders: list[Occluder]
    agents: list[Agent]
    traj: Trajectories
    ground: GroundTexture
    sun: np.ndarray  # unit vector towards the light
    noise_seed: int
    buildings: list[Facade] = field(default_factory=list)  # skyline and near fronts, never in front of anyone
    clutter: list[Prop] = field(default_factory=list)  # street furniture, vehicles, trees: background, no ground truth
    dusk: float = 0.0  # 0 day .. 1 dusk (imaging.tone_lut), the same for every camera of the scene

    @property
    def frames(self) -> int:
        return self.spec.frames


def build_world(spec: SceneSpec, seed: int, scene_index: int = 0, id_offset: int = 0) -> World:
    """Deterministic world for (seed, scene_index); `id_offset` makes person ids global over scenes."""
    spec.validate()
    ss = np.random.SeedSequence([int(seed), int(scene_index)])
    # One generator per part; the later ones were added later, so older parts of a seed stay as they were.
    r_cam, r_occ, r_people, r_ground, r_misc, r_look, r_clutter, r_context = (
        np.random.default_rng(s) for s in ss.spawn(8))
    dusk = float(r_look.uniform(0.5, 1.0)) if r_look.random() < spec.dusk_prob else 0.0
    cameras = make_cameras(spec, r_cam, r_look)
    occluders = make_occluders(spec, r_occ)
    ground = make_ground(spec, r_ground)
    paint_markings(ground, spec, r_context)
    agents, traj = make_people(spec, occluders, r_people, id_offset)
    # Clutter goes where nobody walks in the clip, so people are the same with or without it.
    clutter = make_clutter(spec, occluders, cameras, ground.roads, traj.position[traj.present], r_clutter)
    az, el = r_misc.uniform(0, 2 * np.pi), r_misc.uniform(0.5, 1.1)
    sun = np.array([np.cos(az) * np.cos(el), np.sin(az) * np.cos(el), np.sin(el)])
    noise_seed = int(r_misc.integers(2**31))
    buildings = make_facades(make_buildings(spec, r_misc), r_context) + near_facades(spec, r_context)
    return World(scene_index, spec, int(seed), cameras, occluders, agents, traj, ground, sun, noise_seed, buildings,
                 clutter, dusk)


BUILDING_COLOURS: tuple[BGR, ...] = ((170, 180, 190), (140, 160, 185), (120, 130, 150), (180, 175, 165), (110, 120, 135), (150, 150, 200))


def make_buildings(spec: SceneSpec, rng: np.random.Generator) -> list[Occluder]:
    """A ring of city blocks 40-70 m out: a skyline behind the plaza, drawn into the background."""
    out = []
    n = 18
    for i in range(n):
        angle = 2 * np.pi * (i + rng.uniform(-0.3, 0.3)) / n
        r = max(spec.area) / 2 + rng.uniform(60.0, 90.0)
        size = np.array([rng.uniform(14, 26), rng.uniform(12, 20), rng.uniform(10, 45)])
        colour = BUILDING_COLOURS[int(rng.integers(len(BUILDING_COLOURS)))]
        out.append(Occluder("building", np.array([r * np.cos(angle), r * np.sin(angle)]), size, angle, colour))
    return out
