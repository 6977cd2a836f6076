"""Articulated person model: 3D key points for all people at once, and the parts drawn from them.

A person is a set of `J` world points (joints, torso rings, head, the corners of what they
carry) computed in one numpy pass for every person of a frame, and a list of parts (capsules
between two points, spheres, convex hulls of several points) that the renderer projects and
fills. Carried objects (backpack, shoulder bag, handbag in the left hand, suitcase rolled on
the right) are parts of the person like any other, so they are in the silhouette, the id map
and the box, as real annotations include bags; the points of objects a person does not carry
collapse onto the pelvis, so they cost nothing and do not widen the renderer's crop.
Legs and arms swing with the gait phase; the swing amplitude follows walking speed and
drops to zero while standing; the arm pulling a suitcase does not swing. Parts come in
per-view draw orders (front/back x left/right visible) so that the renderer paints far limbs
before the torso and near limbs after it without sorting, and in two levels of detail:
people a few dozen pixels tall are drawn with fewer, merged parts. Proportions are one
skeleton scaled by stature (children included) and widened by build.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from citytrack.data.synth.world import CARRY_KINDS, Appearance

# ---------------------------------------------------------------- point indices
FOOT, PELVIS, HIP_L, HIP_R, KNEE_L, KNEE_R, ANKLE_L, ANKLE_R, TOE_L, TOE_R = range(10)
SHO_L, SHO_R, ELB_L, ELB_R, HAND_L, HAND_R, NECK, NECK_TOP, HAIR, FACE, HEAD_TOP = range(10, 21)
RING0 = 21  # 5 torso rings x 4 corners (front-left, front-right, back-right, back-left), hip to shoulder
MID0 = RING0 + 20  # 5 rings x (front middle, back middle)
PACK0 = MID0 + 10  # backpack box, 8 corners
SBAG0 = PACK0 + 8  # shoulder bag box, 8 corners
HBAG0 = SBAG0 + 8  # handbag box hanging from the left hand, 8 corners
CASE0 = HBAG0 + 8  # suitcase box on the right, 8 corners
CASE_TOP = CASE0 + 8  # where the suitcase's handle leaves its top
PELV0 = CASE_TOP + 1  # 4 corners below the hip ring (pelvis hull)
HAIR_BACK = PELV0 + 4
NUM_POINTS = HAIR_BACK + 1
LEVELS = 5
BACKPACK, SHOULDER_BAG, HANDBAG, SUITCASE = (CARRY_KINDS.index(k) for k in ("backpack", "shoulder", "handbag", "suitcase"))
CARRIED_POINTS = {BACKPACK: range(PACK0, PACK0 + 8), SHOULDER_BAG: range(SBAG0, SBAG0 + 8), HANDBAG: range(HBAG0, HBAG0 + 8),
                  SUITCASE: range(CASE0, CASE_TOP + 1)}
"""Carried-object code (index in `world.CARRY_KINDS`) -> its body points."""

# draw-op kinds
CAPSULE, SPHERE, HULL = 0, 1, 2
COLOUR_KEYS = ("skin", "hair", "upper", "upper2", "lower", "shoes", "bag")
SKIN, HAIR_C, UPPER, UPPER2, LOWER, SHOES, BAG = range(7)


@dataclass
class BodyShape:
    """Per-person proportions as arrays over people, so the pose is computed in one pass."""

    height: np.ndarray  # (A,)
    build: np.ndarray  # (A,)
    carry: np.ndarray  # (A,) int: index in `world.CARRY_KINDS`

    @classmethod
    def from_appearances(cls, apps: list[Appearance]) -> BodyShape:
        return cls(np.array([a.height for a in apps]), np.array([a.build for a in apps]),
                   np.array([CARRY_KINDS.index(a.carry) for a in apps], dtype=np.int64))

    def take(self, index: np.ndarray) -> BodyShape:
        """The shapes of the people `index` (e.g. one entry per person and frame of a chunk)."""
        return BodyShape(self.height[index], self.build[index], self.carry[index])


def body_points(
    position: np.ndarray, heading: np.ndarray, phase: np.ndarray, swing: np.ndarray, shape: BodyShape
) -> np.ndarray:
    """World points `(A, NUM_POINTS, 3)` of `A` people (arrays of shape (A,) or (A, 2))."""
    H = shape.height[:, None]
    B = shape.build[:, None]
    A = len(H)
    a = np.zeros((A, NUM_POINTS))  # along the heading (forward)
    b = np.zeros((A, NUM_POINTS))  # to the left
    z = np.zeros((A, NUM_POINTS))
    s = np.sin(phase)[:, None]
    c = np.cos(phase)[:, None]
    amp = swing[:, None]
    pull = (shape.carry == SUITCASE)[:, None]  # the right hand pulls a suitcase

    hip_z = 0.52 * H
    sho_z = 0.815 * H
    # Half widths at hip and shoulder and half depth: with the arms the body is ~0.28 H broad (bideltoid breadth).
    hw_h, hw_s, d = 0.085 * H * B, 0.095 * H * B, 0.06 * H * B
    z[:, [PELVIS]] = hip_z
    for hip, knee, ankle, toe, sign in ((HIP_L, KNEE_L, ANKLE_L, TOE_L, 1.0), (HIP_R, KNEE_R, ANKLE_R, TOE_R, -1.0)):
        alpha = sign * amp * 0.42 * s  # thigh swing
        beta = amp * 0.7 * np.maximum(0.0, sign * c)  # knee bends while the leg swings forward
        b[:, [hip]] = sign * hw_h * 0.6
        z[:, [hip]] = hip_z
        thigh = 0.5 * hip_z
        a[:, [knee]] = thigh * np.sin(alpha)
        b[:, [knee]] = sign * hw_h * 0.55
        z[:, [knee]] = hip_z - thigh * np.cos(alpha)
        shin = 0.47 * hip_z
        a[:, [ankle]] = a[:, [knee]] + shin * np.sin(alpha - beta)
        b[:, [ankle]] = sign * hw_h * 0.5
        z[:, [ankle]] = z[:, [knee]] - shin * np.cos(alpha - beta)
        a[:, [toe]] = a[:, [ankle]] + 0.075 * H
        b[:, [toe]] = b[:, [ankle]]
        z[:, [toe]] = z[:, [ankle]] - 0.012 * H
    for sho, elb, hand, sign in ((SHO_L, ELB_L, HAND_L, 1.0), (SHO_R, ELB_R, HAND_R, -1.0)):
        gamma = -sign * amp * 0.38 * s  # arms swing against the legs
        bend = 0.15 + 0.25 * amp
        b[:, [sho, elb, hand]] = sign * (hw_s + 0.017 * H * B)
        if sign < 0:  # pulling a suitcase: the arm hangs still, the hand a little out to the side
            gamma = np.where(pull, 0.0, gamma)
            bend = np.where(pull, 0.1, bend)
            b[:, [hand]] = np.where(pull, b[:, [hand]] - 0.06, b[:, [hand]])
        z[:, [sho]] = sho_z - 0.02 * H
        upper, fore = 0.18 * H, 0.16 * H
        a[:, [elb]] = upper * np.sin(gamma)
        z[:, [elb]] = z[:, [sho]] - upper * np.cos(gamma)
        a[:, [hand]] = a[:, [elb]] + fore * np.sin(gamma + bend)
        z[:, [hand]] = z[:, [elb]] - fore * np.cos(gamma + bend)
    z[:, [NECK]] = sho_z
    z[:, [NECK_TOP]] = 0.875 * H
    head_z = 0.925 * H
    a[:, [HAIR]] = -0.012 * H
    z[:, [HAIR]] = head_z + 0.01 * H
    a[:, [FACE]] = 0.012 * H
    z[:, [FACE]] = head_z - 0.006 * H
    z[:, [HEAD_TOP]] = H
    a[:, [HAIR_BACK]] = -0.05 * H
    z[:, [HAIR_BACK]] = sho_z + 0.02 * H
    for level in range(LEVELS):
        f = level / (LEVELS - 1)
        zl = hip_z + (sho_z + 0.025 * H - hip_z) * f
        hw = hw_h + (hw_s - hw_h) * f
        base = RING0 + 4 * level
        for corner, (da, db) in enumerate(((1, 1), (1, -1), (-1, -1), (-1, 1))):
            a[:, [base + corner]] = da * d
            b[:, [base + corner]] = db * hw
            z[:, [base + corner]] = zl
        a[:, [MID0 + 2 * level]] = d
        a[:, [MID0 + 2 * level + 1]] = -d
        z[:, [MID0 + 2 * level, MID0 + 2 * level + 1]] = zl
    for corner, (da, db) in enumerate(((1, 1), (1, -1), (-1, -1), (-1, 1))):
        a[:, [PELV0 + corner]] = da * d
        b[:, [PELV0 + corner]] = db * hw_h
        z[:, [PELV0 + corner]] = hip_z - 0.07 * H
    _box(a, b, z, PACK0, (-d - 0.13, -d), (-0.15 * B, 0.15 * B), (sho_z - 0.33, sho_z - 0.02 * H))
    _box(a, b, z, SBAG0, (-0.11, 0.11), (hw_h + 0.02, hw_h + 0.11), (hip_z - 0.08, hip_z + 0.16))
    # Handbag: held by its straps, hanging below the left hand and swinging with it.
    ha, hb, hz = a[:, [HAND_L]], b[:, [HAND_L]], z[:, [HAND_L]]
    _box(a, b, z, HBAG0, (ha - 0.13, ha + 0.13), (hb - 0.05, hb + 0.05), (hz - 0.27, hz - 0.05))
    # Cabin suitcase (55 x 38 x 22 cm) on its wheels under the right hand, a little behind it.
    ca, cb = a[:, [HAND_R]] - 0.08, b[:, [HAND_R]]
    _box(a, b, z, CASE0, (ca - 0.19, ca + 0.19), (cb - 0.11, cb + 0.11), (0.02, 0.57))
    a[:, [CASE_TOP]], b[:, [CASE_TOP]], z[:, [CASE_TOP]] = ca, cb, 0.57
    # Points of objects a person does not carry collapse onto the pelvis (drawn by nobody).
    for code, points in CARRIED_POINTS.items():
        rows = shape.carry != code
        cols = list(points)
        a[np.ix_(rows, cols)] = 0.0
        b[np.ix_(rows, cols)] = 0.0
        z[np.ix_(rows, cols)] = hip_z[rows]
    # Rotate (a, b) into the world and move to the foot position.
    ch, sh = np.cos(heading)[:, None], np.sin(heading)[:, None]
    out = np.empty((A, NUM_POINTS, 3))
    out[..., 0] = position[:, 0:1] + a * ch - b * sh
    out[..., 1] = position[:, 1:2] + a * sh + b * ch
    out[..., 2] = z
    return out


def _box(a: np.ndarray, b: np.ndarray, z: np.ndarray, first: int, ar: tuple, br: tuple, zr: tuple) -> None:
    """Write the 8 corners of an axis-aligned (in the body frame) box at `first`."""
    i = first
    for zz in zr:
        for aa, bb in ((ar[1], br[1]), (ar[1], br[0]), (ar[0], br[0]), (ar[0], br[1])):
            a[:, [i]] = aa
            b[:, [i]] = bb
            z[:, [i]] = zz
            i += 1


# ---------------------------------------------------------------- parts and draw orders
Op = tuple[int, tuple[int, ...], float, int]  # (kind, point indices, radius in metres, colour key)


def _ring(level: int) -> tuple[int, ...]:
    return tuple(range(RING0 + 4 * level, RING0 + 4 * level + 4))


def _torso_ops(app: Appearance, lite: bool) -> list[Op]:
    if app.pattern == "solid":
        return [(HULL, _ring(0) + _ring(LEVELS - 1), 0.0, UPPER)]
    slabs = 2 if lite else LEVELS - 1
    step = (LEVELS - 1) // slabs
    ops: list[Op] = []
    for i in range(slabs):
        lo, hi = i * step, (i + 1) * step
        if app.pattern == "stripes" or lite:
            ops.append((HULL, _ring(lo) + _ring(hi), 0.0, UPPER if i % 2 == 0 else UPPER2))
        else:  # check: left and right halves swap colours every slab
            for half in range(2):
                pts: list[int] = []
                for lv in (lo, hi):
                    r = _ring(lv)
                    mf, mb = MID0 + 2 * lv, MID0 + 2 * lv + 1
                    pts += [r[0], mf, mb, r[3]] if half == 0 else [mf, r[1], r[2], mb]
                ops.append((HULL, tuple(pts), 0.0, UPPER if (i + half) % 2 == 0 else UPPER2))
    return ops


def _leg_ops(app: Appearance, left: bool, lite: bool) -> list[Op]:
    hip, knee, ankle, toe = (HIP_L, KNEE_L, ANKLE_L, TOE_L) if left else (HIP_R, KNEE_R, ANKLE_R, TOE_R)
    r = 0.055 * app.height * app.build
    if lite:
        return [(CAPSULE, (hip, ankle), r * 0.9, LOWER)]
    return [(CAPSULE, (hip, knee), r, LOWER), (CAPSULE, (knee, ankle), r * 0.78, LOWER), (CAPSULE, (ankle, toe), 0.045, SHOES)]


def _arm_ops(app: Appearance, left: bool, lite: bool) -> list[Op]:
    sho, elb, hand = (SHO_L, ELB_L, HAND_L) if left else (SHO_R, ELB_R, HAND_R)
    r = 0.027 * app.height * app.build
    if lite:
        return [(CAPSULE, (sho, hand), r, UPPER)]
    fore = UPPER if app.long_sleeves else SKIN
    return [(CAPSULE, (sho, elb), r, UPPER), (CAPSULE, (elb, hand), r * 0.85, fore), (SPHERE, (hand,), r * 0.9, SKIN)]


def _held_ops(app: Appearance, left: bool, lite: bool) -> list[Op]:
    """What the hand of this side holds (drawn right after its arm): a handbag left, a suitcase right."""
    if left and app.carry == "handbag":
        return [(HULL, tuple(CARRIED_POINTS[HANDBAG]), 0.0, BAG)]
    if not left and app.carry == "suitcase":
        case: list[Op] = [(HULL, tuple(range(CASE0, CASE0 + 8)), 0.0, BAG)]
        return case if lite else [(CAPSULE, (HAND_R, CASE_TOP), 0.012, BAG), *case]
    return []


def _head_ops(app: Appearance, front: bool, lite: bool) -> list[Op]:
    hair = (SPHERE, (HAIR,), 0.064 * app.height, HAIR_C)
    face = (SPHERE, (FACE,), 0.058 * app.height, SKIN)
    neck = (CAPSULE, (NECK, NECK_TOP), 0.028 * app.height, SKIN)
    head = [hair, face] if front else [face, hair]
    return head if lite else [neck, *head]


def draw_orders(app: Appearance, lite: bool) -> list[list[Op]]:
    """Four part lists indexed by `2 * front + left_visible`: far parts first, near parts last."""
    orders = []
    for front in (False, True):
        for left_visible in (False, True):
            far_left = not left_visible
            long_hair = [(CAPSULE, (HAIR, HAIR_BACK), 0.05 * app.height, HAIR_C)] if app.long_hair else []
            back_bag: list[Op] = [(HULL, tuple(CARRIED_POINTS[BACKPACK]), 0.0, BAG)] if app.carry == "backpack" else []
            side_bag: list[Op] = [(HULL, tuple(CARRIED_POINTS[SHOULDER_BAG]), 0.0, BAG)] if app.carry == "shoulder" else []
            ops: list[Op] = []
            ops += _arm_ops(app, far_left, lite) + _held_ops(app, far_left, lite)
            if front:
                ops += back_bag + long_hair
            if left_visible is False:
                ops += side_bag  # the bag hangs on the left side, hidden behind the body
            ops += _leg_ops(app, far_left, lite) + _leg_ops(app, not far_left, lite)
            if not lite:
                ops.append((HULL, _ring(0) + tuple(range(PELV0, PELV0 + 4)), 0.0, LOWER))
            ops += _torso_ops(app, lite)
            ops += _head_ops(app, front, lite)
            if not front:
                ops += long_hair + back_bag
            if left_visible:
                ops += side_bag
            ops += _arm_ops(app, not far_left, lite) + _held_ops(app, not far_left, lite)
            orders.append(ops)
    return orders


def person_colours(app: Appearance) -> list[tuple[int, int, int]]:
    """Surface colours in `COLOUR_KEYS` order."""
    return [app.skin, app.hair, app.upper, app.upper2, app.lower, app.shoes, app.carry_colour]
