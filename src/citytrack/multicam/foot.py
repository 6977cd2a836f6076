"""Foot points: where in the image a tracked person touches the ground.

The ground-plane position of a person is the foot point mapped through the camera's
homography, so this step decides the world coordinates every cross-camera method uses. It is a
replaceable step (`pose=...`): `BoxBottomCentre` is the AI City baseline without pose;
`PoseFootPoint` uses body keypoints (COCO-17) where they say more than the box: below the ankles
when the feet are seen, extrapolated by body proportions when the lower body is hidden or cut by
the frame edge (the AIC24 rules, `../shared/notes/aic24_cluster_self_refinement.md`), and the box
bottom centre otherwise. With calibrated cameras (a projection matrix) and a `stature`, it instead
fits the person's vertical body axis in 3D (`vertical_ground_points`): knees, hips, shoulders and
head stand at known fractions of stature above one ground point, so that point follows from where
the joints are in the image, with no need to see the feet.

Both are called as `foot_point(boxes (N, 4) xywh) -> (N, 2)` image points; the scene pipeline adds
`keypoints=(N, 17, 3)` (x, y, confidence in image pixels), `image_sizes=(N, 2)` (width, height
of each box's camera), `calibrations` (each box's camera) and `tracks=(N, 2)` (camera, track id)
when a keypoint extractor runs, and `BoxBottomCentre` ignores them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from citytrack.multicam.calibration import CameraCalibration
from citytrack.multicam.tracks import NUM_KEYPOINTS as NUM_JOINTS

# COCO-17 joints (`tracks.KEYPOINT_NAMES`) grouped into the body levels the rules use, lowest first.
NOSE, EYE_L, EYE_R, EAR_L, EAR_R, SHO_L, SHO_R = range(7)
HIP_L, HIP_R, KNEE_L, KNEE_R, ANKLE_L, ANKLE_R = range(11, 17)
LEVELS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("ankle", (ANKLE_L, ANKLE_R)),
    ("knee", (KNEE_L, KNEE_R)),
    ("hip", (HIP_L, HIP_R)),
    ("shoulder", (SHO_L, SHO_R)),
    ("head", (NOSE, EYE_L, EYE_R, EAR_L, EAR_R)),
)
"""Body levels, lowest first: a level's image point is the mean of its confident joints."""

ANTHROPOMETRIC_HEIGHTS: dict[str, float] = {
    "ankle": 0.039, "knee": 0.285, "hip": 0.530, "shoulder": 0.818, "head": 0.936,
}
"""Height above the sole as a fraction of stature (Drillis & Contini 1966, as drawn in Winter,
*Biomechanics and Motor Control of Human Movement*, 4th ed., fig. 4.1: ankle 0.039 H, knee 0.285 H,
greater trochanter 0.530 H, shoulder 0.818 H, eyes 0.936 H). Real people; `conf/pose/synthetic.yaml`
carries the synthetic body model's own values (`data/synth/body.py`)."""

BOX, ANKLES, EXTRAPOLATED, VERTICAL = 0, 1, 2, 3
"""Which rule gave a foot point (`PoseFootPoint.estimate`)."""

VERTICAL_LEVELS = ("knee", "hip", "shoulder", "head")
"""Body levels the 3D fit uses: those that stay above the ground point while walking (ankles swing
with the stride, so they are left out)."""


def vertical_ground_points(
    projections: np.ndarray, points: np.ndarray, valid: np.ndarray, heights: np.ndarray,
    stature: float | np.ndarray, prior_weight: float | np.ndarray, iterations: int = 2,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ground points `(N, 2)` under upright people from body levels seen in undistorted images.

    A level `l` seen at image point `p_l` lies at `(g, h_l S)`: the ground point `g` raised by its
    fraction `h_l` of stature `S`, so `p_l ~ P (g_x, g_y, h_l S, 1)` gives two equations linear in
    `(g_x, g_y, S)`. First `S = stature` is fixed (any one level gives the ray's crossing with its
    height); then the equations are scaled to pixels by each level's depth and `S` is freed under a
    Gaussian prior (`prior_weight` = keypoint noise in px / stature spread in m), a MAP estimate:
    levels far apart vertically say how tall the person is, a single level leans on the prior.
    Depth from apparent size alone would turn a few pixels of joint noise into metres.

    Args:
        projections: `(N, 3, 4)` each box's camera projection matrix.
        points: `(N, L, 2)` undistorted image points of the levels; `valid` `(N, L)` which are seen
            (bool), or each level's weight (keypoint noise over that point's own noise; 0 = unseen).
        heights: `(L,)` fractions of stature above the sole.
        stature / prior_weight: the prior's mean (m) and weight, one for all or `(N,)` per box
            (a tracked person's own estimate, `PoseFootPoint(track_stature=True)`).
    Returns:
        `(N, 2)` ground points, `(N,)` whether the fit is usable (a seen level, finite, the
        person in front of the camera, a stature within 0.5-2.5 m), `(N,)` the fitted stature
        and `(N,)` its posterior variance per unit keypoint variance (times the keypoint noise
        in px, squared: the stature's variance in m^2, the prior included).
    """
    P = np.asarray(projections, dtype=np.float64)
    uv = np.asarray(points, dtype=np.float64)
    w_seen = np.asarray(valid, dtype=np.float64)  # 0/1, or a level's weight (keypoint noise / its own)
    h = np.asarray(heights, dtype=np.float64)
    n, L = w_seen.shape
    # rows a = u P[2] - P[0] and v P[2] - P[1]: a . (g_x, g_y, h S, 1) = 0, shape (N, L, 2, 4)
    a = uv[..., :, None] * P[:, None, None, 2, :] - P[:, None, :2, :]
    A = np.concatenate([a[..., :2], a[..., 2:3] * h[None, :, None, None]], axis=-1)  # unknowns g_x, g_y, S
    b = -a[..., 3]
    eye = np.eye(3)[None]
    mean = np.broadcast_to(np.asarray(stature, dtype=np.float64), (n,))
    weight2 = np.broadcast_to(np.asarray(prior_weight, dtype=np.float64) ** 2, (n,))
    # 1. stature fixed: (g_x, g_y) from the rays' crossings with the levels' heights
    A2 = (A[..., :2] * w_seen[..., None, None]).reshape(n, 2 * L, 2)
    b2 = ((b - A[..., 2] * mean[:, None, None]) * w_seen[..., None]).reshape(n, 2 * L)
    M = A2.transpose(0, 2, 1) @ A2 + 1e-12 * np.eye(2)[None]
    g = np.linalg.solve(M, (A2.transpose(0, 2, 1) @ b2[..., None]))[..., 0]
    S = mean.copy()
    M3 = np.broadcast_to(eye, (n, 3, 3))
    depth = np.ones((n, L))
    for _ in range(iterations):  # 2. pixel-scaled rows, stature under its prior
        X = np.concatenate([np.broadcast_to(g[:, None, :], (n, L, 2)), (h[None, :] * S[:, None])[..., None],
                            np.ones((n, L, 1))], axis=-1)
        depth = np.einsum("nk,nlk->nl", P[:, 2, :], X)
        scale = w_seen / np.where(np.abs(depth) > 1e-9, depth, 1.0)
        A3 = (A * scale[..., None, None]).reshape(n, 2 * L, 3)
        b3 = (b * scale[..., None]).reshape(n, 2 * L)
        M3 = A3.transpose(0, 2, 1) @ A3 + weight2[:, None, None] * np.diag([0.0, 0.0, 1.0])[None] + 1e-12 * eye
        rhs = A3.transpose(0, 2, 1) @ b3[..., None]
        rhs[:, 2, 0] += weight2 * mean
        sol = np.linalg.solve(M3, rhs)[..., 0]
        g, S = sol[:, :2], sol[:, 2]
    ok = (w_seen.sum(axis=1) > 0) & np.isfinite(g).all(axis=1) & (S > 0.5) & (S < 2.5)
    ok &= ((depth > 0) | (w_seen == 0)).all(axis=1)
    var = np.linalg.inv(M3)[:, 2, 2]
    return g, ok, S, var


class BoxBottomCentre:
    """`(x + w/2, y + h)`: the bottom centre of the (amodal) box, the ground point of a standing person.

    `height_fraction < 1` takes a point higher up the box (AIC23's fallback uses 0.95).
    """

    def __init__(self, height_fraction: float = 1.0) -> None:
        self.height_fraction = float(height_fraction)

    def __call__(
        self,
        boxes: np.ndarray,
        camera_ids: np.ndarray | None = None,
        keypoints: np.ndarray | None = None,
        image_sizes: np.ndarray | None = None,
        calibrations: Sequence[CameraCalibration] | None = None,
        tracks: np.ndarray | None = None,
    ) -> np.ndarray:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        return np.c_[boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1] + boxes[:, 3] * self.height_fraction]


class PoseFootPoint:
    """Foot point from COCO-17 keypoints, vectorised over all boxes of a step.

    Per box, with `levels` the body levels (ankle, knee, hip, shoulder, head) that have a joint of
    confidence >= `conf_thresh` not within `edge_margin` px of the image border (a joint on the
    border is cut, not seen):

    1. ankles seen: the sole lies below the ankles by the ankle height, scaled by the body's own
       length in the image: `foot = p_L + (p_L - p_U) h_L / (h_U - h_L)` with `L` the ankles and `U`
       the reference level above (shoulders, else head, hips, knees). Only ankles: `h_ankle * box h`
       below them;
    2. lower body hidden or cut (the lowest seen level is the knees, hips or shoulders): the same
       extrapolation from that level (AIC24's per-part ratios, from fixed body proportions instead
       of its running average);
    3. otherwise (no pose, one level only, or a reference level less than `min_span` of stature
       above the lowest, too short to scale from): `fallback` (the box bottom centre).

    `extrapolate="cut"` keeps rule 2 for boxes cut by the bottom of the frame and takes the box bottom
    centre for the lower body hidden by something in front, where an amodal box (as the synthetic-trained
    detector gives, and as MOTChallenge and AI City annotate) already covers the hidden legs; the default
    `"hidden"` extrapolates in both cases, as AIC24 does for visible-extent boxes.

    The extrapolation follows the body's axis in the image, so people leaning in the image (steep
    cameras, image corners) keep their foot under the body. `joint_heights` are fractions of
    stature above the sole (`ANTHROPOMETRIC_HEIGHTS` by default).

    With `stature` (metres) and `calibrations` that have a projection matrix, every box with a seen
    knee, hip, shoulder or head level takes the 3D fit instead (`vertical_ground_points`, rule
    `VERTICAL`), returned as the image of that ground point: the hip and shoulders of a person
    are right above the ground point, where the ankles of a walker are not, and the fit needs no
    foot at all. `keypoint_sigma` (px) over `stature_sigma` (m) weighs the stature prior.

    `track_stature`: a person's stature does not change from frame to frame, so with `tracks`
    (each box's `(camera, track id)`) every fit's evidence about it (its posterior less the prior,
    a Gaussian in information form) is pooled per track, and the track's next fits take that
    pooled estimate as their prior: a person seen whole once keeps their own stature when the
    legs are hidden later, where the population prior alone would put a child or a tall adult
    metres off along the viewing ray. Pooled evidence stops at `stature_floor` (m): one
    person's keypoint errors repeat from frame to frame. A frame whose own estimate is more than
    three standard deviations from the track's is not pooled (a keypoint failure, or a track
    that switched people). `reset()` forgets the tracks (the scene runner calls it per scene).

    `box_sigma` (a share of the box height): the box's bottom centre joins the fit as one more
    level, the sole (height 0), its noise `box_sigma x box height` px against `keypoint_sigma`.
    An amodal box (as annotated, and as the synthetic-trained detector predicts) reaches the
    ground even where the legs are hidden, so with the head and shoulders it spans the whole
    body: the stature follows from the image, not the prior. Boxes cut by the frame's bottom
    edge (within `edge_margin`) do not join.
    """

    def __init__(
        self,
        conf_thresh: float = 0.3,
        joint_heights: Mapping[str, float] | None = None,
        min_span: float = 0.2,
        edge_margin: float = 2.0,
        fallback: BoxBottomCentre | None = None,
        extrapolate: str = "hidden",
        stature: float | None = None,
        stature_sigma: float = 0.1,
        keypoint_sigma: float = 2.0,
        track_stature: bool = False,
        stature_floor: float = 0.03,
        box_sigma: float | None = None,
    ) -> None:
        heights = dict(ANTHROPOMETRIC_HEIGHTS if joint_heights is None else joint_heights)
        names = [name for name, _ in LEVELS]
        if set(heights) != set(names):
            raise ValueError(f"joint_heights needs exactly {names}, got {sorted(heights)}")
        h = np.array([float(heights[n]) for n in names])
        if not (np.all(np.diff(h) > 0) and h[0] >= 0 and h[-1] <= 1):
            raise ValueError(f"joint_heights must rise from ankle to head within [0, 1], got {heights}")
        if extrapolate not in ("hidden", "cut"):
            raise ValueError(f"extrapolate must be 'hidden' or 'cut', got {extrapolate!r}")
        if stature is not None and not (0.5 < stature < 2.5 and stature_sigma > 0 and keypoint_sigma > 0):
            raise ValueError(f"stature must be in (0.5, 2.5) m with positive sigmas, got {stature}, "
                             f"{stature_sigma}, {keypoint_sigma}")
        if not stature_floor > 0:
            raise ValueError(f"stature_floor must be positive, got {stature_floor}")
        if box_sigma is not None and not box_sigma > 0:
            raise ValueError(f"box_sigma must be positive (a share of the box height) or null, got {box_sigma}")
        self.box_sigma = None if box_sigma is None else float(box_sigma)
        self.stature = None if stature is None else float(stature)
        self.stature_sigma, self.keypoint_sigma = float(stature_sigma), float(keypoint_sigma)
        self.track_stature, self.stature_floor = bool(track_stature), float(stature_floor)
        self._statures: dict[tuple[int, int], tuple[float, float]] = {}  # track -> (information, information x mean)
        self.extrapolate = extrapolate
        self.conf_thresh, self.min_span, self.edge_margin = float(conf_thresh), float(min_span), float(edge_margin)
        self.heights = h
        self.fallback = fallback if fallback is not None else BoxBottomCentre()

    def __call__(
        self,
        boxes: np.ndarray,
        camera_ids: np.ndarray | None = None,
        keypoints: np.ndarray | None = None,
        image_sizes: np.ndarray | None = None,
        calibrations: Sequence[CameraCalibration] | None = None,
        tracks: np.ndarray | None = None,
    ) -> np.ndarray:
        return self.estimate(boxes, keypoints, image_sizes, calibrations, tracks)[0]

    def reset(self) -> None:
        """Forget the tracks' statures (a new scene: its track ids start over)."""
        self._statures.clear()

    def seen_joints(self, keypoints: np.ndarray, image_sizes: np.ndarray | None = None) -> np.ndarray:
        """`(N, 17)` bool: confident, finite and (with `image_sizes`) not on the image border."""
        kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, NUM_JOINTS, 3)
        ok = np.isfinite(kp).all(axis=2) & (np.nan_to_num(kp[..., 2], nan=-1.0) >= self.conf_thresh)
        if image_sizes is not None:
            size = np.asarray(image_sizes, dtype=np.float64).reshape(-1, 1, 2)
            m = self.edge_margin
            with np.errstate(invalid="ignore"):
                inside = (kp[..., :2] > m).all(axis=2) & (kp[..., :2] < size - m).all(axis=2)
            ok &= inside
        return ok

    def estimate(
        self, boxes: np.ndarray, keypoints: np.ndarray | None, image_sizes: np.ndarray | None = None,
        calibrations: Sequence[CameraCalibration] | None = None, tracks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Foot points `(N, 2)` and the rule that gave each (`BOX`, `ANKLES`, `EXTRAPOLATED`, `VERTICAL`);
        `calibrations`: each box's camera (the 3D fit needs them and `stature`); `tracks`: `(N, 2)`
        each box's camera and track id (pooled statures with `track_stature`)."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        out = self.fallback(boxes)
        rule = np.full(len(boxes), BOX, dtype=np.int64)
        if keypoints is None or not len(boxes):
            return out, rule
        kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, NUM_JOINTS, 3)
        if len(kp) != len(boxes):
            raise ValueError(f"{len(kp)} keypoint sets for {len(boxes)} boxes")
        seen = self.seen_joints(kp, image_sizes)
        xy = np.where(seen[..., None], kp[..., :2], 0.0)
        # per level: mean of its seen joints (N, G, 2), and whether it has one (N, G)
        count = np.stack([seen[:, list(j)].sum(axis=1) for _, j in LEVELS], axis=1)
        point = np.stack([xy[:, list(j)].sum(axis=1) for _, j in LEVELS], axis=1) / np.maximum(count, 1)[..., None]
        valid = count > 0
        n, rows = len(boxes), np.arange(len(boxes))
        low = np.argmax(valid, axis=1)  # lowest seen level (0 where none: masked by `any_seen`)
        any_seen = valid.any(axis=1)
        # reference level above: shoulders, head, hips, knees, the first seen at least min_span higher
        up = np.full(n, -1)
        for g in (3, 4, 2, 1):
            ok = (up < 0) & valid[:, g] & (self.heights[g] - self.heights[low] >= self.min_span - 1e-9)
            up = np.where(ok, g, up)
        has_up = any_seen & (up >= 0)
        h_low, h_up = self.heights[low], self.heights[np.maximum(up, 0)]
        p_low, p_up = point[rows, low], point[rows, np.maximum(up, 0)]
        scale = np.where(has_up, h_low / np.maximum(h_up - h_low, 1e-9), 0.0)
        extrap = p_low + (p_low - p_up) * scale[:, None]
        ankles = any_seen & (low == 0)
        use = has_up
        if self.extrapolate == "cut" and image_sizes is not None:
            # an amodal box (the detector's) already stands in for feet hidden by something in front;
            # its bottom is only wrong where the frame cuts it
            size = np.asarray(image_sizes, dtype=np.float64).reshape(-1, 2)
            cut = boxes[:, 1] + boxes[:, 3] >= size[:, 1] - self.edge_margin
            use = has_up & (ankles | cut)
        out[use] = extrap[use]
        rule[use] = np.where(ankles[use], ANKLES, EXTRAPOLATED)
        lone = ankles & ~has_up  # ankles and nothing to scale by: the box height stands for stature
        out[lone] = p_low[lone] + np.c_[np.zeros(int(lone.sum())), self.heights[0] * boxes[lone, 3]]
        rule[lone] = ANKLES
        if self.stature is not None and calibrations is not None:
            self._vertical(out, rule, point, valid, calibrations, tracks, boxes, image_sizes)
        return out, rule

    def _vertical(self, out: np.ndarray, rule: np.ndarray, point: np.ndarray, valid: np.ndarray,
                  calibrations: Sequence[CameraCalibration], tracks: np.ndarray | None = None,
                  boxes: np.ndarray | None = None, image_sizes: np.ndarray | None = None) -> None:
        """Overwrite `out` / `rule` in place with the 3D fit where the box's camera has a projection."""
        if len(calibrations) != len(out):
            raise ValueError(f"{len(calibrations)} calibrations for {len(out)} boxes")
        if tracks is not None and len(tracks) != len(out):
            raise ValueError(f"{len(tracks)} track keys for {len(out)} boxes")
        names = [name for name, _ in LEVELS]
        cols = [names.index(v) for v in VERTICAL_LEVELS]
        fit = np.array([c is not None and c.has_projection for c in calibrations]) & valid[:, cols].any(axis=1)
        if not fit.any():
            return
        idx = np.flatnonzero(fit)
        cams = {id(calibrations[i]): calibrations[i] for i in idx}
        which = np.array([id(calibrations[i]) for i in idx])
        pts = point[idx][:, cols].copy()
        weight = valid[idx][:, cols].astype(np.float64)
        heights = self.heights[cols]
        if self.box_sigma is not None and boxes is not None:  # the box bottom as the sole's level
            b = boxes[idx]
            sole = np.c_[b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3]]
            w_box = self.keypoint_sigma / np.maximum(self.box_sigma * b[:, 3], 1e-6)
            if image_sizes is not None:
                bottom = np.asarray(image_sizes, dtype=np.float64).reshape(-1, 2)[idx, 1]
                w_box = np.where(sole[:, 1] >= bottom - self.edge_margin, 0.0, w_box)
            pts = np.concatenate([sole[:, None], pts], axis=1)
            weight = np.concatenate([w_box[:, None], weight], axis=1)
            heights = np.r_[0.0, heights]
        for key, calib in cams.items():
            if calib.has_lens:  # the projection maps to the undistorted image
                mine = which == key
                pts[mine] = calib.undistort(pts[mine].reshape(-1, 2)).reshape(-1, pts.shape[1], 2)
        P = np.stack([calibrations[i].projection for i in idx])
        keys = None
        if self.track_stature and tracks is not None:
            keys = [(int(tracks[i][0]), int(tracks[i][1])) for i in idx]
        mean, sigma = self._stature_priors(keys, len(idx))
        ground, ok, fitted, var = vertical_ground_points(P, pts, weight, heights, mean, self.keypoint_sigma / sigma)
        if keys is not None:
            self._pool_statures(keys, ok, fitted, self.keypoint_sigma**2 * var, mean, sigma)
        for key, calib in cams.items():
            mine = (which == key) & ok
            if mine.any():
                uv = calib.ground_to_image(ground[mine])
                good = np.isfinite(uv).all(axis=1)
                out[idx[mine][good]], rule[idx[mine][good]] = uv[good], VERTICAL

    def _stature_priors(self, keys: list[tuple[int, int]] | None, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Prior mean and standard deviation (m) of each box's stature: the population's, combined with
        the evidence pooled for its track."""
        mean, sigma = np.full(n, self.stature, dtype=np.float64), np.full(n, self.stature_sigma)
        for j, key in enumerate(keys or ()):
            if key in self._statures:
                info, info_mean = self._statures[key]
                precision = self.stature_sigma**-2 + info
                mean[j] = (self.stature * self.stature_sigma**-2 + info_mean) / precision
                sigma[j] = precision**-0.5
        return mean, sigma

    def _pool_statures(self, keys: list[tuple[int, int]], ok: np.ndarray, fitted: np.ndarray,
                       posterior_var: np.ndarray, prior_mean: np.ndarray, prior_sigma: np.ndarray) -> None:
        """Add each fit's own evidence (posterior information less the prior's) to its track's pool."""
        prior_info = prior_sigma**-2
        with np.errstate(divide="ignore", invalid="ignore"):
            info = 1.0 / posterior_var - prior_info
            own = (fitted / posterior_var - prior_mean * prior_info) / info
        cap = self.stature_floor**-2
        for j, key in enumerate(keys):
            if not (ok[j] and np.isfinite(own[j]) and info[j] > 1e-6):
                continue
            pooled, pooled_mean = self._statures.get(key, (0.0, 0.0))
            if pooled > 0 and abs(own[j] - prior_mean[j]) > 3.0 * np.sqrt(1.0 / info[j] + prior_sigma[j] ** 2):
                continue  # disagrees with the track's own estimate: a keypoint failure or a switched track
            pooled, pooled_mean = pooled + info[j], pooled_mean + info[j] * own[j]
            if pooled > cap:
                pooled_mean, pooled = pooled_mean * cap / pooled, cap
            self._statures[key] = (pooled, pooled_mean)
