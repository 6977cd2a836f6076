"""Foot points: where in the image a tracked person touches the ground.

The ground-plane position of a person is the foot point mapped through the camera's
homography, so this step decides the world coordinates every cross-camera method uses. It is a
replaceable step (`pose=...`): `BoxBottomCentre` is the AI City baseline without pose;
`PoseFootPoint` uses body keypoints (COCO-17) where they say more than the box: below the ankles
when the feet are seen, extrapolated by body proportions when the lower body is hidden or cut by
the frame edge (the AIC24 rules, `../shared/notes/aic24_cluster_self_refinement.md`), and the box
bottom centre otherwise.

Both are called as `foot_point(boxes (N, 4) xywh) -> (N, 2)` image points; the scene pipeline adds
`keypoints=(N, 17, 3)` (x, y, confidence in image pixels) and `image_sizes=(N, 2)` (width, height
of each box's camera) when a keypoint extractor runs, and `BoxBottomCentre` ignores them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

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

BOX, ANKLES, EXTRAPOLATED = 0, 1, 2
"""Which rule gave a foot point (`PoseFootPoint.estimate`)."""


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
    """

    def __init__(
        self,
        conf_thresh: float = 0.3,
        joint_heights: Mapping[str, float] | None = None,
        min_span: float = 0.2,
        edge_margin: float = 2.0,
        fallback: BoxBottomCentre | None = None,
        extrapolate: str = "hidden",
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
    ) -> np.ndarray:
        return self.estimate(boxes, keypoints, image_sizes)[0]

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
        self, boxes: np.ndarray, keypoints: np.ndarray | None, image_sizes: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Foot points `(N, 2)` and the rule that gave each (`BOX`, `ANKLES`, `EXTRAPOLATED`)."""
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
        return out, rule
