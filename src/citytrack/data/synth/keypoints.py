"""COCO-17 keypoint ground truth of the synthetic people: world points, projection, visibility.

Mapping from the articulated body (`body.py`) to COCO's 17 joints, per person in the body
frame (forward `f` = walking heading, left `l`, up `z`; `H` = the person's height):

- shoulders, elbows, hips, knees, ankles: the body's own joints (`SHO_*`, `ELB_*`, `HIP_*`,
  `KNEE_*`, `ANKLE_*`);
- wrists: the hand points (`HAND_*`, the end of the forearm capsule);
- nose: the face sphere's centre `FACE` + 0.052 H f - 0.004 H z (just inside its front surface);
- eyes: `FACE` + 0.045 H f +- 0.020 H l + 0.008 H z;
- ears: the head centre (midway between `FACE` and `HAIR`) +- 0.055 H l - 0.005 H f.

Every face point lies inside the head's drawn spheres, so its pixel is the person's own
when nothing covers the head. The lateral axis comes from the shoulders (`SHO_L - SHO_R`
is the left axis scaled), so the points need only the body points.

Visibility in COCO's convention, per camera:

- 0: the projected joint is outside the image (or behind the camera): not labelled;
- 1: inside the image but occluded: no pixel of the `(2 r + 1)^2` neighbourhood (r =
  `NEIGHBOURHOOD`) of the joint's pixel belongs to the person in the final id map (another
  person or an occluder is drawn there), or a face point is turned away from the camera
  (nose and eyes on the back of the head, an ear on the far side: its outward direction
  makes an angle of more than ~100 degrees with the direction to the camera);
- 2: visible.

Other self-occlusion (a far arm behind the torso) is not modelled: such a joint is visible
when its pixel shows the person, as an annotator looking at the silhouette would mark it.
The joint's pixel is the one the renderer draws the point in (`rint` of its coordinates:
OpenCV's pixel-centre convention for the drawn shapes); the coordinates themselves are the
exact projection, the same image coordinates as the boxes.
"""

from __future__ import annotations

import numpy as np

from citytrack.data.formats.coco import NUM_KEYPOINTS
from citytrack.data.synth import body

NEIGHBOURHOOD = 1  # the joint's pixel and its 8 neighbours decide occlusion
# COCO-17 order -> the body point each joint is (face points are offsets from FACE / the head centre)
_BODY_JOINTS = {
    5: body.SHO_L, 6: body.SHO_R, 7: body.ELB_L, 8: body.ELB_R, 9: body.HAND_L, 10: body.HAND_R,
    11: body.HIP_L, 12: body.HIP_R, 13: body.KNEE_L, 14: body.KNEE_R, 15: body.ANKLE_L, 16: body.ANKLE_R,
}  # fmt: skip
_BODY_IDX = np.array(list(_BODY_JOINTS.values()))
_COCO_IDX = np.array(list(_BODY_JOINTS.keys()))
# Face points: (base: 0 = FACE, 1 = head centre), offsets (forward, left, up) in heights, outward
# direction (forward, left) that faces the camera when the point is seen.
_FACE = (
    (0, 0, (0.052, 0.0, -0.004), (1.0, 0.0)),  # nose
    (1, 0, (0.045, 0.020, 0.008), (0.82, 0.57)),  # left eye
    (2, 0, (0.045, -0.020, 0.008), (0.82, -0.57)),  # right eye
    (3, 1, (-0.005, 0.055, 0.0), (0.0, 1.0)),  # left ear
    (4, 1, (-0.005, -0.055, 0.0), (0.0, -1.0)),  # right ear
)
_FACE_IDX = np.array([k for k, *_ in _FACE])
_FACE_BASE = np.array([b for _, b, *_ in _FACE])
_FACE_OFFSET = np.array([o for *_, o, _ in _FACE])  # (5, 3)
_FACE_OUTWARD = np.array([d for *_, d in _FACE])  # (5, 2)
TURNED_AWAY_COS = -0.17  # cos(~100 degrees)


def world_keypoints(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COCO-17 joints `(A, 17, 3)` of people with body points `(A, J, 3)` (mapping above), and the
    horizontal outward directions `(A, 5, 2)` of their five face points (nose, eyes, ears).

    Computed once per chunk of frames by `PoseCache`, shared by every camera.
    """
    A = len(points)
    out = np.empty((A, NUM_KEYPOINTS, 3))
    out[:, _COCO_IDX] = points[:, _BODY_IDX]
    if A == 0:
        return out, np.zeros((0, len(_FACE), 2))
    # left axis from the shoulders, forward = left turned clockwise (both horizontal, unit)
    left = points[:, body.SHO_L, :2] - points[:, body.SHO_R, :2]
    left /= np.maximum(np.sqrt((left**2).sum(1, keepdims=True)), 1e-9)
    forward = np.stack([left[:, 1], -left[:, 0]], axis=1)
    height = points[:, body.HEAD_TOP, 2] - points[:, body.FOOT, 2]
    face = points[:, body.FACE]
    base = np.stack([face, 0.5 * (face + points[:, body.HAIR])], axis=1)[:, _FACE_BASE]  # (A, 5, 3)
    off = _FACE_OFFSET[None] * height[:, None, None]  # (A, 5, 3)
    base[..., :2] += off[..., 0:1] * forward[:, None] + off[..., 1:2] * left[:, None]
    base[..., 2] += off[..., 2]
    out[:, _FACE_IDX] = base
    outward = _FACE_OUTWARD[None, :, 0:1] * forward[:, None] + _FACE_OUTWARD[None, :, 1:2] * left[:, None]
    return out, outward


def face_turned_away(joints: np.ndarray, outward: np.ndarray, camera_center: np.ndarray) -> np.ndarray:
    """`(N, 17)` bool: face joints on the side of the head away from the camera (self-occluded).

    `joints`, `outward`: from `world_keypoints`.
    """
    out = np.zeros(joints.shape[:2], dtype=bool)
    to_cam = camera_center[:2] - joints[:, 0, :2]  # from the nose; the head is small against the distance
    to_cam /= np.maximum(np.sqrt((to_cam**2).sum(1, keepdims=True)), 1e-9)
    out[:, _FACE_IDX] = (outward * to_cam[:, None]).sum(-1) < TURNED_AWAY_COS
    return out


def keypoint_visibility(
    uv: np.ndarray, depth: np.ndarray, id_map: np.ndarray, ids: np.ndarray, turned_away: np.ndarray | None = None,
    radius: int = NEIGHBOURHOOD,
) -> np.ndarray:
    """COCO visibility `(N, 17)` int (0 outside, 1 occluded, 2 visible) of projected joints.

    `uv`, `depth`: `(N, 17, 2)` (finite) and `(N, 17)` projections; `ids`: `(N,)` each person's value in
    `id_map`; `turned_away`: `(N, 17)` self-occluded face points (see the module docstring).
    The neighbourhood of a joint on the image's outermost `radius` pixels is moved inside.
    """
    H, W = id_map.shape
    if len(uv) == 0:
        return np.zeros(depth.shape, dtype=np.int64)
    x, y = uv[..., 0], uv[..., 1]
    inside = (depth > 0) & (x >= 0) & (x < W) & (y >= 0) & (y < H)
    xi = np.clip(np.floor(x), radius, W - 1 - radius).astype(np.intp)  # pixel i covers [i, i + 1)
    yi = np.clip(np.floor(y), radius, H - 1 - radius).astype(np.intp)
    d = np.arange(-radius, radius + 1)
    offsets = (d[:, None] * W + d[None, :]).ravel()
    who = np.asarray(ids).astype(id_map.dtype)[:, None, None]  # same dtype: no up-cast of the gathered ids
    own = (id_map.ravel()[(yi * W + xi)[..., None] + offsets] == who).any(axis=-1)
    if turned_away is not None:
        own &= ~turned_away
    return np.where(inside, np.where(own, 2, 1), 0)


def project_keypoints(
    joints: np.ndarray, outward: np.ndarray, projection: np.ndarray, camera_center: np.ndarray,
    id_map: np.ndarray, ids: np.ndarray,
) -> np.ndarray:
    """`(N, 17, 3)` x, y (image pixels), v (COCO visibility) of N people.

    `joints`, `outward`: from `world_keypoints`; `projection`: the camera's 3x4 matrix with the
    third row giving depth (> 0 in front, as `CameraRenderer.P`); `ids`: each person's value in the
    final `id_map`. Joints behind the camera keep x = y = 0.
    """
    hom = joints @ projection[:, :3].T + projection[:, 3]
    depth = hom[..., 2]
    out = np.zeros(joints.shape)
    np.divide(hom[..., :2], depth[..., None], out=out[..., :2], where=depth[..., None] > 1e-9)
    out[..., 2] = keypoint_visibility(out[..., :2], depth, id_map, ids, face_turned_away(joints, outward, camera_center))
    return out
