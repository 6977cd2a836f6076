"""The contract between the scene runner and the cross-camera associators.

Per-camera tracking of one scene produces rows of `SCT_COLUMNS` (one per tracked box per
camera per frame) with, row-aligned, the box's appearance embedding. A cross-camera
associator turns the per-camera `local_id`s into `global_id`s, one per person across all
cameras of the scene:

- online methods (AI City 2024) see the rows frame by frame through `update` and return the
  global ids of that frame at once, using no future frames;
- offline methods (AI City 2023) see the whole scene in `finish`;
- every method's `finish(tracks)` returns the final table (rows may be added or removed there:
  interpolation, boundary-box removal), with `global_id >= 1` on every row it keeps.

With a keypoint extractor (`pose=...`), every row also has its box's body keypoints, row-aligned
beside the table as `(N, 17, 3)` float32 `x, y, confidence` in image pixels, COCO-17 order
(`KEYPOINT_NAMES`), in `SceneTracks.keypoints`; an associator that reads them sets
`uses_keypoints = True` and takes them per frame as `update(frame, rows, features, keypoints=...)`.
The table's columns do not change, so associators without pose run unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from citytrack.data.formats.coco import COCO_KEYPOINTS, NUM_KEYPOINTS

SCT_COLUMNS: tuple[str, ...] = (
    "camera_id", "local_id", "frame_id", "x", "y", "w", "h", "xworld", "yworld", "score", "global_id",
)
"""Per-camera tracking rows: box `x, y, w, h` in pixels (top-left), frames as in the input (AI City
2024: 0-based), `xworld, yworld` the foot point on the ground plane (NaN when it cannot be mapped),
`global_id` -1 until an associator sets it."""
CAM, LOCAL_ID, FRAME, X, Y, W, H, XWORLD, YWORLD, SCORE, GLOBAL_ID = range(len(SCT_COLUMNS))

KEYPOINT_NAMES = COCO_KEYPOINTS
"""COCO-17 joints of the row-aligned keypoints (`SceneTracks.keypoints`), left before right."""
LIMB_JOINTS: tuple[int, ...] = tuple(range(7, 17))
"""Elbows, wrists, hips, knees, ankles: the joints AIC24 counts to call a track reliable."""
BODY_PARTS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("head", (0, 1, 2, 3, 4)), ("shoulders", (5, 6)), ("hips", (11, 12)), ("knees", (13, 14)), ("ankles", (15, 16)),
)
"""The five parts whose visibility two views compare (AIC24's head, neck, shoulders, hips, knees;
COCO has no neck, so the ankles take its place)."""


def empty_keypoints(n: int = 0) -> np.ndarray:
    """`(n, 17, 3)` keypoints of rows without a pose: NaN positions, confidence 0."""
    kp = np.full((n, NUM_KEYPOINTS, 3), np.nan, np.float32)
    kp[..., 2] = 0.0
    return kp


def confident_joints(keypoints: np.ndarray, conf: float, joints: tuple[int, ...] | None = None) -> np.ndarray:
    """Per row, how many of `joints` (default all) have confidence above `conf`."""
    c = np.nan_to_num(np.asarray(keypoints)[..., 2], nan=0.0)
    if joints is not None:
        c = c[:, list(joints)]
    return (c > conf).sum(axis=1)


def part_visibility(keypoints: np.ndarray, conf: float) -> np.ndarray:
    """`(N, 5)` bool over `BODY_PARTS`: a pair part is seen when its mean confidence exceeds `conf`
    (as AIC24 averages left and right), the head when any face joint does (a profile hides half)."""
    c = np.nan_to_num(np.asarray(keypoints)[..., 2], nan=0.0)
    cols = [c[:, list(j)].max(axis=1) if name == "head" else c[:, list(j)].mean(axis=1) for name, j in BODY_PARTS]
    return np.stack(cols, axis=1) > conf if len(c) else np.zeros((0, len(BODY_PARTS)), dtype=bool)


@dataclass
class CameraInfo:
    """What an associator may know of a camera besides its rows."""

    camera_id: int
    image_size: tuple[int, int]  # (width, height)
    homography: np.ndarray | None = None  # ground (x, y, 1) -> image (u, v, 1)


@dataclass
class SceneTracks:
    """Every camera's tracked boxes of one scene, `table` (N, 11) of `SCT_COLUMNS` sorted by frame.

    `features` (N, D) are the unit-norm embeddings of the rows' boxes, or None when ReID is off
    (rows reported from motion only, without a detection, carry their track's last embedding).
    `keypoints` (N, 17, 3) are the rows' boxes' body keypoints, or None when pose is off.
    """

    table: np.ndarray
    features: np.ndarray | None
    cameras: dict[int, CameraInfo]
    fps: float
    extras: dict[str, object] = field(default_factory=dict)
    keypoints: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.table = np.asarray(self.table, dtype=np.float64).reshape(-1, len(SCT_COLUMNS))
        if self.features is not None and len(self.features) != len(self.table):
            raise ValueError(f"{len(self.features)} feature rows for {len(self.table)} track rows")
        if self.keypoints is not None and np.shape(self.keypoints) != (len(self.table), NUM_KEYPOINTS, 3):
            raise ValueError(f"keypoints of shape {np.shape(self.keypoints)} for {len(self.table)} track rows")


def empty_table() -> np.ndarray:
    return np.zeros((0, len(SCT_COLUMNS)))


@runtime_checkable
class CrossCameraAssociator(Protocol):
    """`multicam=online|offline|none`: built by Hydra, `reset` once per scene."""

    def reset(self, cameras: dict[int, CameraInfo], fps: float) -> None: ...

    def update(self, frame: int, rows: np.ndarray, features: np.ndarray | None) -> np.ndarray:
        """Global ids `(n,)` for this frame's rows (-1 where not decided yet; offline: all -1)."""
        ...

    def finish(self, tracks: SceneTracks) -> np.ndarray:
        """The final `(M, 11)` table of the scene with `global_id` set."""
        ...
