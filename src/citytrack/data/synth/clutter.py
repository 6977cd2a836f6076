"""Street clutter: furniture, parked vehicles and trees (building fronts and ground markings:
`facades.py`, `markings.py`; their counts are `ClutterSpec` too).

Why: a detector trained on a world without clutter fires on the poles, signs, cones, windows
and cars of real footage. Everything here is background by construction (it never gets a
ground-truth box or id-map pixels), and much of it has a person's size and shape (poles
0.1-0.3 m wide and 1-3 m tall, bollards, sign posts, standing bins, steles, statues), so the
world itself supplies the hard negatives.

World-side only: geometry in metres, seeded and deterministic (`build_world` hands each
function its own random generator). `render.py` draws props once per camera as depth-sorted
sprites of the static background (a person walking behind a tree is hidden by it).

Placement, so that no person's ground truth is ever wrong and no camera is blinded:

- props stand in a street band around the walk rectangle (where people enter and leave), or,
  for a share `inside` of the small furniture, in the plaza, on spots that nobody walks over
  in the clip (people are planned first, so they are the same with or without clutter);
- vehicles park along the roads that lead out of the plaza;
- no prop overlaps an occluder, another prop or a camera's position, none crosses a camera's
  image plane, and none covers more than `max_view` of any camera's image.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from citytrack.data.synth.solids import BGR, Solid, ball, block, plate, polygon, prism, rect

if TYPE_CHECKING:
    from citytrack.data.synth.world import Occluder, SceneSpec, SynthCamera


@dataclass(frozen=True)
class ClutterSpec:
    """How many of each kind of clutter a scene gets (0 disables a kind); `world.clutter` in the config."""

    poles: int = 6  # plain posts 0.1-0.3 m wide, 1-3 m tall
    lamps: int = 5  # lamp posts with a globe or an arm
    signs: int = 5  # sign posts with one or two plates
    bins: int = 4  # standing bins, some on a post
    benches: int = 3
    bollards: int = 10  # in short rows along the kerb
    cones: int = 4  # traffic cones, in small groups
    steles: int = 3  # upright narrow things: info steles, ticket machines, statues
    vehicles: int = 5  # parked cars and vans
    trees: int = 5
    facades: int = 3  # near building fronts with rows of windows and doors, beyond the cameras
    crossings: int = 4  # zebra crossings with stop and centre lines on the roads
    lines: int = 2  # painted lines and tactile strips on the plaza
    covers: int = 4  # manhole and drain covers
    inside: float = 0.5  # share of the small furniture tried in the plaza (on spots nobody walks over)
    max_view: float = 0.08  # largest share of any camera's image one prop may cover

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ClutterSpec:
        """From the `world.clutter` config node; an unknown key is an error that names it."""
        known = [f.name for f in fields(cls)]
        for key in values:
            if key not in known:
                raise ValueError(f"world.clutter has no key {key!r} (known: {', '.join(known)})")
        return cls(**values)

    def validate(self) -> None:
        """Raise `ValueError` naming the first bad key (`SceneSpec.validate` turns it into `SynthConfigError`)."""
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "int" and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0):
                raise ValueError(f"synth config: world.clutter.{f.name} must be an integer >= 0, got {value!r}")
        if not 0.0 <= self.inside <= 1.0:
            raise ValueError(f"synth config: world.clutter.inside must be within [0, 1], got {self.inside!r}")
        if not 0.0 < self.max_view <= 1.0:
            raise ValueError(f"synth config: world.clutter.max_view must be within (0, 1], got {self.max_view!r}")


# ----------------------------------------------------------------------------- props
@dataclass
class Prop:
    """One piece of clutter: a few solids around a ground point."""

    kind: str
    center: np.ndarray  # (2,) ground point
    parts: list[Solid]
    inside: bool = False  # stands in the plaza, on a spot nobody walks over in the clip

    def vertices(self) -> np.ndarray:
        return np.vstack([p.vertices for p in self.parts])

    def footprint(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned ground box (lo, hi) of the whole prop."""
        xy = self.vertices()[:, :2]
        return xy.min(axis=0), xy.max(axis=0)


GREYS: tuple[BGR, ...] = ((150, 152, 155), (95, 98, 100), (45, 45, 48), (60, 75, 55), (170, 170, 165))
PAINTS: tuple[BGR, ...] = ((235, 235, 235), (185, 185, 190), (30, 30, 32), (120, 60, 30), (40, 40, 170),
                           (110, 110, 115), (60, 90, 40), (170, 140, 110), (50, 150, 200))
SIGN_COLOURS: tuple[BGR, ...] = ((160, 80, 20), (40, 40, 200), (230, 230, 230), (40, 200, 235), (60, 140, 40))
GREENS: tuple[BGR, ...] = ((50, 110, 60), (40, 90, 50), (60, 130, 90), (45, 100, 85), (70, 120, 70))


def _pick(rng: np.random.Generator, options: tuple[BGR, ...]) -> BGR:
    return options[int(rng.integers(len(options)))]


def _pole(rng: np.random.Generator, xy: np.ndarray) -> list[Solid]:
    w, h = rng.uniform(0.1, 0.3), rng.uniform(1.0, 3.0)
    colour = _pick(rng, GREYS)
    if rng.random() < 0.3:  # square post
        parts = [block(xy, 0.0, (w, w, h), rng.uniform(0, np.pi), colour)]
    else:
        parts = [prism(xy, 0.0, h, w / 2, w / 2, colour)]
    if rng.random() < 0.4:  # a reflective or painted band
        z = rng.uniform(0.5, 0.85) * h
        parts.append(prism(xy, z, 0.12, w / 2 + 0.01, w / 2 + 0.01, _pick(rng, ((230, 230, 230), (40, 200, 235), (40, 40, 200)))))
    return parts


def _lamp(rng: np.random.Generator, xy: np.ndarray) -> list[Solid]:
    h, r = rng.uniform(3.5, 6.5), rng.uniform(0.06, 0.1)
    colour = _pick(rng, GREYS[1:4])
    parts = [prism(xy, 0.0, 0.6, r * 1.8, r * 1.5, colour), prism(xy, 0.6, h - 0.6, r * 1.2, r, colour)]
    if rng.random() < 0.5:  # a globe on top
        parts.append(ball((*xy, h + 0.22), (0.24, 0.24, 0.26), (225, 230, 230)))
    else:  # an arm with a lamp head
        yaw = rng.uniform(0, 2 * np.pi)
        arm = rng.uniform(0.7, 1.3)
        d = np.array([np.cos(yaw), np.sin(yaw)])
        parts.append(block(xy + d * arm / 2, h - 0.08, (arm, 0.07, 0.07), yaw, colour))
        parts.append(block(xy + d * arm, h - 0.2, (0.5, 0.22, 0.14), yaw, colour))
    return parts


def _sign(rng: np.random.Generator, xy: np.ndarray) -> list[Solid]:
    h, r = rng.uniform(2.0, 2.8), rng.uniform(0.03, 0.045)
    yaw = rng.uniform(0, 2 * np.pi)
    parts = [prism(xy, 0.0, h, r, r, (150, 152, 155), sides=6)]
    d = np.array([np.cos(yaw), np.sin(yaw)]) * (r + 0.03)
    z = h - 0.05
    for _ in range(1 if rng.random() < 0.7 else 2):
        shape = int(rng.integers(4))
        size = rng.uniform(0.45, 0.75)
        outline = (rect(size, size * rng.uniform(0.8, 1.4)) if shape == 0 else polygon(12, size / 2) if shape == 1
                   else polygon(8, size / 2, np.pi / 8) if shape == 2 else polygon(4, size / 2 * 1.2, np.pi / 4))
        half = float(outline[:, 1].max())
        parts.append(plate((*(xy + d), z - half), yaw, outline, 0.03, _pick(rng, SIGN_COLOURS)))
        z -= 2 * half + 0.08
    return parts


def _bin(rng: np.random.Generator, xy: np.ndarray) -> list[Solid]:
    colour = _pick(rng, ((45, 70, 40), (80, 82, 85), (30, 30, 32), (0, 110, 230), (150, 90, 30)))
    if rng.random() < 0.35:  # a small bin on a post, at chest height
        yaw = rng.uniform(0, np.pi)
        return [prism(xy, 0.0, 1.0, 0.04, 0.04, (120, 122, 125), sides=6),
                block(xy, 0.55, (0.42, 0.32, 0.55), yaw, colour)]
    r, h = rng.uniform(0.24, 0.32), rng.uniform(0.85, 1.15)
    return [prism(xy, 0.0, h, r * 0.92, r, colour), prism(xy, h, 0.06, r * 1.05, r * 1.05, colour)]


def _bench(rng: np.random.Generator, xy: np.ndarray, yaw: float) -> list[Solid]:
    wood, metal = _pick(rng, ((40, 80, 120), (50, 95, 140), (70, 70, 75), (40, 60, 40))), _pick(rng, GREYS[1:3])
    length = rng.uniform(1.5, 2.0)
    c, s = np.cos(yaw), np.sin(yaw)
    along, back = np.array([c, s]), np.array([-s, c])
    parts = [block(xy + along * k * (length / 2 - 0.15), 0.0, (0.07, 0.45, 0.42), yaw, metal) for k in (-1, 1)]
    parts.append(block(xy, 0.42, (length, 0.46, 0.06), yaw, wood))
    if rng.random() < 0.8:
        parts.append(block(xy + back * 0.22, 0.5, (length, 0.05, 0.38), yaw, wood))
    return parts


def _bollard(rng: np.random.Generator, xy: np.ndarray) -> list[Solid]:
    r, h = rng.uniform(0.08, 0.12), rng.uniform(0.8, 1.1)
    colour = _pick(rng, ((45, 45, 48), (150, 152, 155), (50, 70, 45), (170, 170, 170)))
    parts = [prism(xy, 0.0, h, r, r, colour), ball((*xy, h), (r, r, r * 0.6), colour, segs=8, rings=3)]
    if rng.random() < 0.5:
        parts.append(prism(xy, h * 0.78, 0.08, r + 0.01, r + 0.01, _pick(rng, ((230, 230, 230), (40, 40, 200)))))
    return parts


def _cone(rng: np.random.Generator, xy: np.ndarray) -> list[Solid]:
    h = rng.uniform(0.5, 0.75)
    r = 0.26 * h
    orange = (20, 110, 245)
    return [block(xy, 0.0, (0.38, 0.38, 0.03), rng.uniform(0, np.pi), (30, 30, 30) if rng.random() < 0.5 else orange),
            prism(xy, 0.03, h * 0.45, r, r * 0.6, orange),
            prism(xy, 0.03 + h * 0.45, h * 0.2, r * 0.6 + 0.005, r * 0.43 + 0.005, (235, 235, 235)),
            prism(xy, 0.03 + h * 0.65, h * 0.35, r * 0.43, 0.02, orange)]


def _stele(rng: np.random.Generator, xy: np.ndarray) -> list[Solid]:
    yaw = rng.uniform(0, 2 * np.pi)
    kind = int(rng.integers(3))
    if kind == 0:  # info stele / advertising column with a poster on each broad side
        w, d, h = rng.uniform(0.4, 0.7), rng.uniform(0.15, 0.35), rng.uniform(1.5, 2.2)
        parts = [block(xy, 0.0, (d, w, h), yaw, _pick(rng, GREYS))]
        for side in (-1, 1):
            at = xy + side * (d / 2 + 0.01) * np.array([np.cos(yaw), np.sin(yaw)])
            parts.append(plate((*at, h * 0.55), yaw, rect(w * 0.8, h * 0.5), 0.02, _pick(rng, PAINTS)))
        return parts
    if kind == 1:  # ticket machine / parking meter
        colour = _pick(rng, ((60, 60, 62), (150, 100, 40), (40, 120, 40), (130, 130, 135)))
        return [prism(xy, 0.0, 1.05, 0.06, 0.06, colour, sides=6), block(xy, 1.0, (0.28, 0.34, 0.5), yaw, colour)]
    # a statue: a person-like figure in one stone or bronze colour (no skin, hair or clothes)
    colour = _pick(rng, ((150, 155, 160), (60, 90, 120), (200, 205, 205), (40, 50, 60)))
    s = rng.uniform(0.9, 1.1)
    side = np.array([-np.sin(yaw), np.cos(yaw)]) * 0.1 * s
    parts = [block(xy, 0.0, (0.6, 0.6, 0.4), yaw, (170, 170, 168))]
    parts += [prism(xy + k * side, 0.4, 0.8 * s, 0.07 * s, 0.06 * s, colour) for k in (-1, 1)]
    parts.append(prism(xy, 0.4 + 0.8 * s, 0.6 * s, 0.15 * s, 0.19 * s, colour, yaw=yaw))
    parts.append(ball((*xy, 0.4 + 1.55 * s), (0.1 * s, 0.1 * s, 0.12 * s), colour))
    return parts


def _vehicle(rng: np.random.Generator, xy: np.ndarray, yaw: float) -> list[Solid]:
    paint = _pick(rng, ((235, 235, 235), (190, 190, 192), (30, 30, 32), (110, 60, 30), (40, 40, 160),
                        (120, 122, 125), (60, 80, 40), (150, 150, 140)))
    glass = (70, 55, 45)
    c, s = np.cos(yaw), np.sin(yaw)
    fwd, left = np.array([c, s]), np.array([-s, c])
    van = rng.random() < 0.3
    length = rng.uniform(4.8, 5.5) if van else rng.uniform(3.8, 4.8)
    width = rng.uniform(1.9, 2.05) if van else rng.uniform(1.7, 1.9)
    parts = []
    for ax in (-1, 1):  # wheels first: the body hides most of them
        for side in (-1, 1):
            at = xy + fwd * ax * (length / 2 - 0.75) + left * side * (width / 2 - 0.08)
            parts.append(plate((*at, 0.31), yaw + np.pi / 2, polygon(8, 0.31, np.pi / 8), 0.2, (25, 25, 25)))
    if van:
        parts.append(block(xy, 0.35, (length, width, 1.75), yaw, paint))
        for side in (-1, 1):  # cab side windows and the windscreen
            at = xy + fwd * (length / 2 - 0.6) + left * side * (width / 2 + 0.01)
            parts.append(plate((*at, 1.65), yaw + np.pi / 2, rect(0.9, 0.55), 0.02, glass))
        parts.append(plate((*(xy + fwd * (length / 2 + 0.01)), 1.65), yaw, rect(width * 0.85, 0.6), 0.02, glass))
    else:
        parts.append(block(xy, 0.3, (length, width, 0.72), yaw, paint))
        cabin = length * rng.uniform(0.48, 0.58)
        at = xy - fwd * length * 0.06
        parts.append(block(at, 1.02, (cabin, width * 0.9, 0.4), yaw, glass))
        parts.append(block(at, 1.42, (cabin * 0.85, width * 0.86, 0.06), yaw, paint))
    return parts


def _tree(rng: np.random.Generator, xy: np.ndarray) -> list[Solid]:
    trunk_h, r = rng.uniform(1.8, 3.0), rng.uniform(0.1, 0.2)
    rx, rz = rng.uniform(1.0, 2.2), rng.uniform(1.2, 2.4)
    green = _pick(rng, GREENS)
    parts = [prism(xy, 0.0, trunk_h + 0.4 * rz, r, r * 0.7, _pick(rng, ((40, 60, 80), (60, 70, 80), (30, 45, 60))))]
    parts.append(ball((*xy, trunk_h + 0.8 * rz), (rx, rx * rng.uniform(0.85, 1.15), rz), green, rng, 0.18, segs=10, rings=5))
    for _ in range(int(rng.integers(0, 3))):  # lumps make the crown irregular
        off = rng.uniform(-0.5, 0.5, 2) * rx
        g = tuple(int(v * rng.uniform(0.85, 1.15)) for v in green)
        parts.append(ball((*(xy + off), trunk_h + rz * rng.uniform(0.9, 1.4)), (0.6 * rx, 0.6 * rx, 0.55 * rz),
                          g, rng, 0.18))  # type: ignore[arg-type]
    return parts


SMALL_KINDS = ("poles", "signs", "bins", "bollards", "cones", "steles")  # may stand in the plaza
WALKER_CLEARANCE = 0.6  # metres between a prop's footprint and any person's ground point


def make_clutter(spec: SceneSpec, occluders: list[Occluder], cameras: list[SynthCamera],
                 roads: tuple[float, float], walkers: np.ndarray, rng: np.random.Generator) -> list[Prop]:
    """Props of every kind in `spec.clutter`, placed by the rules in the module docstring.

    `walkers` (N, 2) are the ground points people occupy during the clip; every prop keeps
    `WALKER_CLEARANCE` metres from all of them.
    """
    c = spec.clutter
    hx, hy = spec.area[0] / 2 + spec.walk_margin, spec.area[1] / 2 + spec.walk_margin
    taken: list[tuple[np.ndarray, np.ndarray]] = []
    for occ in occluders:
        xy = occ.corners()[:, :2]
        taken.append((xy.min(axis=0) - 0.6, xy.max(axis=0) + 0.6))
    props: list[Prop] = []

    def fits(prop: Prop) -> bool:
        lo, hi = prop.footprint()
        if any((lo < b_hi).all() and (b_lo < hi).all() for b_lo, b_hi in taken):
            return False
        if len(walkers):
            gap = np.maximum(np.maximum(lo - walkers, walkers - hi), 0.0)
            if float((gap**2).sum(axis=1).min()) < WALKER_CLEARANCE**2:
                return False
        clear = np.array([hx + 0.8, hy + 0.8])
        if not prop.inside and (lo < clear).all() and (hi > -clear).all():  # outside props keep 0.8 m off the walk rectangle
            return False
        return all(_clear_of_camera(prop, cam, c.max_view) for cam in cameras)

    def add(prop: Prop, gap: float) -> bool:
        if not fits(prop):
            return False
        lo, hi = prop.footprint()
        taken.append((lo - gap, hi + gap))
        props.append(prop)
        return True

    def band_point(near: float, far: float) -> tuple[np.ndarray, np.ndarray]:
        """A point `near..far` metres outside the walk rectangle and the outward normal of its side."""
        off = rng.uniform(near, far)
        ex, ey = hx + off, hy + off
        u = rng.uniform(0, 4 * (ex + ey))
        for side, length in enumerate((2 * ex, 2 * ey, 2 * ex, 2 * ey)):
            if u <= length:
                t = u - length / 2
                return [(np.array([t, -ey]), np.array([0.0, -1.0])), (np.array([ex, t]), np.array([1.0, 0.0])),
                        (np.array([-t, ey]), np.array([0.0, 1.0])), (np.array([-ex, -t]), np.array([-1.0, 0.0]))][side]
            u -= length
        return np.array([ex, 0.0]), np.array([1.0, 0.0])

    def inside_point() -> np.ndarray:
        return rng.uniform(-0.45, 0.45, 2) * np.asarray(spec.area)

    builders = {"poles": _pole, "lamps": _lamp, "signs": _sign, "bins": _bin, "cones": _cone, "steles": _stele}
    for kind in ("trees", "vehicles", "lamps", "benches", "poles", "signs", "bins", "steles", "bollards", "cones"):
        n = getattr(c, kind)
        placed = 0
        for _attempt in range(40 * n):
            if placed >= n:
                break
            inside = kind in SMALL_KINDS and rng.random() < c.inside
            if kind == "vehicles":
                placed += _place_vehicle(rng, hx, hy, roads, add)
            elif kind == "trees":
                xy, _ = band_point(2.0, 8.0)
                placed += add(Prop(kind, xy, _tree(rng, xy)), 0.5)
            elif kind == "benches":
                xy, out = band_point(1.2, 4.0)
                yaw = float(np.arctan2(out[1], out[0])) - np.pi / 2  # facing the plaza
                placed += add(Prop(kind, xy, _bench(rng, xy, yaw)), 0.4)
            elif kind in ("bollards", "cones"):  # short rows along the kerb, small groups
                xy = inside_point() if inside else band_point(1.0, 2.5)[0]
                step = rng.uniform(1.2, 1.8) if kind == "bollards" else rng.uniform(0.5, 1.2)
                heading = rng.uniform(0, 2 * np.pi)
                if not inside:  # along the side of the plaza
                    heading = 0.0 if abs(abs(xy[1]) - hy) < abs(abs(xy[0]) - hx) else np.pi / 2
                d = np.array([np.cos(heading), np.sin(heading)])
                for k in range(min(n - placed, int(rng.integers(2, 6)))):
                    at = xy + d * k * step
                    if not add(Prop(kind, at, builders.get(kind, _bollard)(rng, at), inside), 0.2):
                        break
                    placed += 1
            else:
                xy = inside_point() if inside else band_point(0.9, 6.0)[0]
                placed += add(Prop(kind, xy, builders[kind](rng, xy), inside), 0.4 if inside else 0.3)
    return props


def _place_vehicle(rng: np.random.Generator, hx: float, hy: float, roads: tuple[float, float],
                   add: Callable[[Prop, float], bool]) -> bool:
    """One parked vehicle on a road arm, along it, 2-14 m out from the walk rectangle."""
    axis, sign = int(rng.integers(2)), float(rng.choice([-1.0, 1.0]))
    lateral = float(rng.choice([-0.62, 0.62]))
    out = (hx if axis == 0 else hy) + rng.uniform(4.0, 16.0)
    if axis == 0:  # the road along x lies at y = roads[0]
        xy, yaw = np.array([sign * out, roads[0] + lateral]), 0.0 if lateral < 0 else np.pi
    else:
        xy, yaw = np.array([roads[1] + lateral, sign * out]), np.pi / 2 if lateral > 0 else -np.pi / 2
    yaw += rng.uniform(-0.04, 0.04)
    return add(Prop("vehicles", xy, _vehicle(rng, xy, yaw)), 0.8)


def _clear_of_camera(prop: Prop, cam: SynthCamera, max_view: float) -> bool:
    """The prop neither stands at the camera, nor crosses its image plane, nor covers > max_view of its image."""
    lo, hi = prop.footprint()
    gap = np.maximum(np.maximum(lo - cam.center[:2], cam.center[:2] - hi), 0.0)
    if float(np.hypot(*gap)) < 1.0:
        return False
    P = cam.projection
    hom = prop.vertices() @ P[:, :3].T + P[:, 3]
    depth = hom[:, 2] / np.linalg.norm(P[2, :3])
    if (depth <= 0.3).all():
        return True  # behind the camera: unseen
    if (depth <= 0.3).any():
        return False
    uv = hom[:, :2] / hom[:, 2:]
    x0, y0 = np.clip(uv.min(axis=0), 0, [cam.width, cam.height])
    x1, y1 = np.clip(uv.max(axis=0), 0, [cam.width, cam.height])
    return (x1 - x0) * (y1 - y0) <= max_view * cam.width * cam.height
