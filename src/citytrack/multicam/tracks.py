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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

SCT_COLUMNS: tuple[str, ...] = (
    "camera_id", "local_id", "frame_id", "x", "y", "w", "h", "xworld", "yworld", "score", "global_id",
)
"""Per-camera tracking rows: box `x, y, w, h` in pixels (top-left), frames as in the input (AI City
2024: 0-based), `xworld, yworld` the foot point on the ground plane (NaN when it cannot be mapped),
`global_id` -1 until an associator sets it."""
CAM, LOCAL_ID, FRAME, X, Y, W, H, XWORLD, YWORLD, SCORE, GLOBAL_ID = range(len(SCT_COLUMNS))


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
    """

    table: np.ndarray
    features: np.ndarray | None
    cameras: dict[int, CameraInfo]
    fps: float
    extras: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.table = np.asarray(self.table, dtype=np.float64).reshape(-1, len(SCT_COLUMNS))
        if self.features is not None and len(self.features) != len(self.table):
            raise ValueError(f"{len(self.features)} feature rows for {len(self.table)} track rows")


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
