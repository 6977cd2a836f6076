"""AI City 2024 Track 1 (people, multi-camera): tables, `calibration.json` and folders.

`<split>/scene_XXX/camera_XXXX/{video.mp4, calibration.json}` plus the scene's
`ground_truth.txt`; submissions (`track1.txt`) have the same 9 columns
`camera_id obj_id frame_id x y w h xworld yworld` (`AIC24_COLUMNS`), frames 0-based,
object ids global across the cameras of a scene.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from citytrack.data.formats.aicity._common import PathLike, check_homography, numbered_dirs, scene_dirs
from citytrack.data.formats.errors import FormatError, read_json_file, read_text_file
from citytrack.data.formats.mot import parse_numeric_table
from citytrack.utils.io import atomic_open

# --------------------------------------------------------------------------- AIC24 tables

AIC24_COLUMNS: tuple[str, ...] = ("camera_id", "obj_id", "frame_id", "x", "y", "w", "h", "xworld", "yworld")
CAMERA_ID, OBJ_ID, FRAME_ID, BX, BY, BW, BH, XWORLD, YWORLD = range(9)


def _validate_aic24_table(table: np.ndarray, path: PathLike, lines: np.ndarray | None = None) -> None:
    """Integer ids and frames (>= 0), positive box sizes, finite values."""
    table = np.asarray(table)
    if table.ndim != 2 or table.shape[1] != len(AIC24_COLUMNS):
        raise FormatError(path, f"AI City table must have shape (N, {len(AIC24_COLUMNS)}), got {table.shape}")
    if lines is None:
        lines = np.arange(1, len(table) + 1)
    checks = [
        (~np.isfinite(table).all(axis=1), "non-finite value (nan/inf)"),
        (table[:, CAMERA_ID] != np.round(table[:, CAMERA_ID]), "camera_id is not an integer"),
        (table[:, OBJ_ID] != np.round(table[:, OBJ_ID]), "obj_id is not an integer"),
        (table[:, FRAME_ID] != np.round(table[:, FRAME_ID]), "frame_id is not an integer"),
        (table[:, FRAME_ID] < 0, "frame_id must be >= 0 (AI City frames are 0-based)"),
        (table[:, BW] <= 0, "box width must be positive"),
        (table[:, BH] <= 0, "box height must be positive"),
    ]
    for mask, message in checks:
        if mask.any():
            raise FormatError(path, message, int(lines[int(np.flatnonzero(mask)[0])]))


def _read_aic24_table(path: PathLike) -> np.ndarray:
    text = read_text_file(path)
    n = len(AIC24_COLUMNS)
    table, _counts, lines = parse_numeric_table(path, text, n, n, "AI City")
    _validate_aic24_table(table, path, lines)
    return table


def _write_aic24_table(path: PathLike, table: np.ndarray, integer_boxes: bool) -> None:
    table = np.asarray(table, dtype=np.float64)
    _validate_aic24_table(table, path)
    boxes = table[:, BX : BH + 1]
    if integer_boxes:
        box_fmt = "%d"
        table = table.copy()
        table[:, BX : BH + 1] = np.maximum(np.round(boxes), [-np.inf, -np.inf, 1, 1])
    else:
        box_fmt = "%d" if np.all(boxes == np.round(boxes)) else "%.2f"
    fmt = " ".join(["%d"] * 3 + [box_fmt] * 4 + ["%.6f"] * 2)
    body = "\n".join(fmt % tuple(row) for row in table.tolist())
    with atomic_open(path) as handle:
        handle.write(body + "\n" if body else "")


def read_aic24_ground_truth(path: PathLike) -> np.ndarray:
    """Read a scene's `ground_truth.txt` into a float64 `(N, 9)` table (`AIC24_COLUMNS`)."""
    return _read_aic24_table(path)


def write_aic24_ground_truth(path: PathLike, table: np.ndarray) -> None:
    """Write `ground_truth.txt` atomically; boxes stay integers when they are, else 2 decimals."""
    _write_aic24_table(path, table, integer_boxes=False)


def read_track1(path: PathLike) -> np.ndarray:
    """Read a Track 1 submission (`track1.txt`), same columns as the ground truth."""
    return _read_aic24_table(path)


def write_track1(path: PathLike, table: np.ndarray, integer_boxes: bool = True) -> None:
    """Write a Track 1 submission atomically, boxes rounded to whole pixels as the evaluator expects."""
    _write_aic24_table(path, table, integer_boxes=integer_boxes)


# --------------------------------------------------------------------- AIC24 calibration

PROJECTION_KEY = "camera projection matrix"
HOMOGRAPHY_KEY = "homography matrix"


@dataclass
class Aic24Calibration:
    """One camera's `calibration.json`.

    `projection` maps world (x, y, z, 1) to image; `homography` maps the ground plane
    (x, y, 1) to image. `extras` keeps every other key ("intrinsic matrix", "extrinsic
    matrix", "camera coordinates", "scale factor", ...), numeric lists as arrays.
    """

    projection: np.ndarray
    homography: np.ndarray
    extras: dict[str, Any] = field(default_factory=dict)


def _matrix(path: PathLike, data: dict[str, Any], key: str, shape: tuple[int, int]) -> np.ndarray:
    if key not in data:
        raise FormatError(path, f"missing key {key!r}")
    try:
        matrix = np.asarray(data[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise FormatError(path, f"{key!r} is not a numeric matrix") from None
    if matrix.shape != shape:
        raise FormatError(path, f"{key!r} must be {shape[0]}x{shape[1]}, got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise FormatError(path, f"{key!r} has non-finite entries")
    return matrix


def _extra_value(value: Any) -> Any:
    """Numeric (nested) lists become float arrays; anything else is kept as loaded."""
    if isinstance(value, list):
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            return value
        return array
    return value


def read_aic24_calibration(path: PathLike) -> Aic24Calibration:
    """Read `calibration.json`; missing keys, wrong shapes or a singular homography raise."""
    data = read_json_file(path)
    if not isinstance(data, dict):
        raise FormatError(path, "calibration must be a JSON object")
    projection = _matrix(path, data, PROJECTION_KEY, (3, 4))
    homography = _matrix(path, data, HOMOGRAPHY_KEY, (3, 3))
    check_homography(path, homography)
    extras = {k: _extra_value(v) for k, v in data.items() if k not in (PROJECTION_KEY, HOMOGRAPHY_KEY)}
    return Aic24Calibration(projection=projection, homography=homography, extras=extras)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_aic24_calibration(path: PathLike, calib: Aic24Calibration) -> None:
    """Write `calibration.json` atomically (validated first, so no invalid file is produced)."""
    data = {PROJECTION_KEY: calib.projection, HOMOGRAPHY_KEY: calib.homography}
    projection = _matrix(path, data, PROJECTION_KEY, (3, 4))
    homography = _matrix(path, data, HOMOGRAPHY_KEY, (3, 3))
    check_homography(path, homography)
    out = {PROJECTION_KEY: projection.tolist(), HOMOGRAPHY_KEY: homography.tolist()}
    out.update({k: _jsonable(v) for k, v in calib.extras.items()})
    with atomic_open(path) as handle:
        json.dump(out, handle, indent=4)
        handle.write("\n")


# ------------------------------------------------------------------------- AIC24 folders

_SCENE_RE = re.compile(r"^scene_(\d+)$")
_CAMERA_RE = re.compile(r"^camera_(\d+)$")


def aic24_scene_dirname(scene_id: int) -> str:
    """`scene_001` for 1."""
    return f"scene_{int(scene_id):03d}"


def aic24_camera_dirname(camera_id: int) -> str:
    """`camera_0001` for 1."""
    return f"camera_{int(camera_id):04d}"


@dataclass
class Aic24Camera:
    """One camera folder; `video` and `calibration` are paths (they may be absent on disk)."""

    camera_id: int
    dir: Path
    video: Path
    calibration: Path

    def read_calibration(self) -> Aic24Calibration:
        return read_aic24_calibration(self.calibration)


@dataclass
class Aic24Scene:
    """One scene folder with its cameras (sorted by id) and `ground_truth.txt` (None if absent)."""

    scene_id: int
    dir: Path
    cameras: list[Aic24Camera]
    ground_truth: Path | None

    def read_ground_truth(self) -> np.ndarray:
        if self.ground_truth is None:
            raise FormatError(self.dir, "scene has no ground_truth.txt")
        return read_aic24_ground_truth(self.ground_truth)


def load_aic24_scene(scene_dir: PathLike) -> Aic24Scene:
    """Index a `scene_XXX` folder; it must be named so and contain at least one camera."""
    root = Path(scene_dir)
    match = _SCENE_RE.match(root.name)
    if not root.is_dir() or match is None:
        raise FormatError(root, "not an AI City 2024 scene folder (expected an existing scene_XXX)")
    cameras = [
        Aic24Camera(camera_id=i, dir=d, video=d / "video.mp4", calibration=d / "calibration.json")
        for i, d in numbered_dirs(root, _CAMERA_RE)
    ]
    if not cameras:
        raise FormatError(root, "scene has no camera_XXXX folders")
    gt = root / "ground_truth.txt"
    return Aic24Scene(
        scene_id=int(match.group(1)), dir=root, cameras=cameras, ground_truth=gt if gt.is_file() else None
    )


def list_aic24_scenes(root: PathLike, split: str | None = None) -> list[Path]:
    """`scene_XXX` folders under `root/split` (or under every split of `root` when None)."""
    return scene_dirs(root, split, _SCENE_RE)
