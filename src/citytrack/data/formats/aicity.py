"""AI City Challenge layouts: 2024 and 2023 Track 1 (people), 2019 Track 1 (vehicles).

- 2024: `<split>/scene_XXX/camera_XXXX/{video.mp4, calibration.json}` plus the scene's
  `ground_truth.txt`; submissions (`track1.txt`) have the same 9 columns
  `camera_id obj_id frame_id x y w h xworld yworld` (`AIC24_COLUMNS`), frames 0-based,
  object ids global across the cameras of a scene.
- 2023: `<split>/S0XX/c0XX/{video.mp4, label.txt, calibration.json}`, `label.txt`
  MOT-style per camera.
- 2019: `SXX/cXXX/{vdo.avi, calibration.txt, gt/gt.txt, det/det_*.txt, roi.jpg}` and
  `cam_timestamp/SXX.txt` (per-camera start offsets in seconds).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from citytrack.data.formats.errors import FormatError, read_text_file
from citytrack.data.formats.mot import parse_numeric_table, read_mot
from citytrack.utils.io import atomic_open

PathLike = str | os.PathLike[str]

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


def _check_homography(path: PathLike, homography: np.ndarray, name: str = "homography matrix") -> None:
    if np.linalg.matrix_rank(homography) < 3:
        raise FormatError(path, f"{name} is singular (cannot map the image back to the ground plane)")


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
    try:
        data = json.loads(read_text_file(path))
    except json.JSONDecodeError as err:
        raise FormatError(path, f"invalid JSON: {err.msg}", err.lineno) from None
    if not isinstance(data, dict):
        raise FormatError(path, "calibration must be a JSON object")
    projection = _matrix(path, data, PROJECTION_KEY, (3, 4))
    homography = _matrix(path, data, HOMOGRAPHY_KEY, (3, 3))
    _check_homography(path, homography)
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
    _check_homography(path, homography)
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


def _numbered_dirs(root: Path, pattern: re.Pattern[str]) -> list[tuple[int, Path]]:
    found = []
    for child in root.iterdir():
        match = pattern.match(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    return sorted(found)


def load_aic24_scene(scene_dir: PathLike) -> Aic24Scene:
    """Index a `scene_XXX` folder; it must be named so and contain at least one camera."""
    root = Path(scene_dir)
    match = _SCENE_RE.match(root.name)
    if not root.is_dir() or match is None:
        raise FormatError(root, "not an AI City 2024 scene folder (expected an existing scene_XXX)")
    cameras = [
        Aic24Camera(camera_id=i, dir=d, video=d / "video.mp4", calibration=d / "calibration.json")
        for i, d in _numbered_dirs(root, _CAMERA_RE)
    ]
    if not cameras:
        raise FormatError(root, "scene has no camera_XXXX folders")
    gt = root / "ground_truth.txt"
    return Aic24Scene(
        scene_id=int(match.group(1)), dir=root, cameras=cameras, ground_truth=gt if gt.is_file() else None
    )


def _scene_dirs(root: PathLike, split: str | None, pattern: re.Pattern[str]) -> list[Path]:
    """Scene folders of `root/split`, of `root` itself, or of every split under `root`."""
    base = Path(root)
    if split is not None:
        base = base / split
    if not base.is_dir():
        raise FormatError(base, "folder does not exist")
    direct = [d for _, d in _numbered_dirs(base, pattern)]
    if direct or split is not None:
        return direct
    nested: list[Path] = []
    for child in sorted(p for p in base.iterdir() if p.is_dir()):
        nested.extend(d for _, d in _numbered_dirs(child, pattern))
    return nested


def list_aic24_scenes(root: PathLike, split: str | None = None) -> list[Path]:
    """`scene_XXX` folders under `root/split` (or under every split of `root` when None)."""
    return _scene_dirs(root, split, _SCENE_RE)


# ------------------------------------------------------------------------------ AIC23

_AIC23_SCENE_RE = re.compile(r"^S(\d+)$")
_AIC23_CAMERA_RE = re.compile(r"^c(\d+)$")


@dataclass
class Aic23Camera:
    """`c0XX` folder: video, MOT-style `label.txt` and `calibration.json` paths."""

    camera_id: int
    dir: Path
    video: Path
    label: Path
    calibration: Path

    def read_labels(self) -> np.ndarray:
        return read_aic23_labels(self.label)

    def read_calibration(self) -> Aic24Calibration:
        """The synthetic scenes' calibration.json has the 2024 keys."""
        return read_aic24_calibration(self.calibration)


@dataclass
class Aic23Scene:
    scene_id: int
    dir: Path
    cameras: list[Aic23Camera]


def read_aic23_labels(path: PathLike) -> np.ndarray:
    """Read a camera's MOT-style `label.txt` (`MOT_COLUMNS` table; frame 0 is admitted)."""
    return read_mot(path, kind="gt", min_frame=0)


def load_aic23_scene(scene_dir: PathLike) -> Aic23Scene:
    """Index an `S0XX` folder of AI City 2023 Track 1."""
    root = Path(scene_dir)
    match = _AIC23_SCENE_RE.match(root.name)
    if not root.is_dir() or match is None:
        raise FormatError(root, "not an AI City 2023 scene folder (expected an existing S0XX)")
    cameras = [
        Aic23Camera(
            camera_id=i,
            dir=d,
            video=d / "video.mp4",
            label=d / "label.txt",
            calibration=d / "calibration.json",
        )
        for i, d in _numbered_dirs(root, _AIC23_CAMERA_RE)
    ]
    if not cameras:
        raise FormatError(root, "scene has no c0XX camera folders")
    return Aic23Scene(scene_id=int(match.group(1)), dir=root, cameras=cameras)


def list_aic23_scenes(root: PathLike, split: str | None = None) -> list[Path]:
    """`S0XX` folders under `root/split` (or under every split of `root` when None)."""
    return _scene_dirs(root, split, _AIC23_SCENE_RE)


def scene_layout(name: str) -> str | None:
    """`"aic24"` for a `scene_XXX` folder name, `"aic23"` for `S0XX`, else None."""
    if _SCENE_RE.match(name):
        return "aic24"
    return "aic23" if _AIC23_SCENE_RE.match(name) else None


def aic23_scene_dirname(scene_id: int) -> str:
    return f"S{int(scene_id):03d}"


def aic23_camera_dirname(camera_id: int) -> str:
    return f"c{int(camera_id):03d}"


# ------------------------------------------------------------------------------ AIC19


@dataclass
class Aic19Calibration:
    """`calibration.txt` of an AI City 2019 camera.

    `homography` maps world GPS (latitude, longitude, 1) to image as in the dataset;
    fisheye cameras add `intrinsics` (3x3) and `distortion` (k1 k2 p1 p2).
    """

    homography: np.ndarray
    intrinsics: np.ndarray | None = None
    distortion: np.ndarray | None = None
    reprojection_error: float | None = None


_AIC19_KEYS = {
    "homography matrix": "homography",
    "intrinsic parameter matrix": "intrinsics",
    "distortion coefficients": "distortion",
    "reprojection error": "reprojection_error",
}


def _parse_matrix_text(path: PathLike, text: str, line: int, what: str) -> np.ndarray:
    """`a b c;d e f;g h i` -> 3x3 array."""
    try:
        rows = [[float(v) for v in row.split()] for row in text.strip().rstrip(";").split(";")]
    except ValueError:
        raise FormatError(path, f"{what} has a non-numeric entry", line) from None
    if len(rows) != 3 or any(len(r) != 3 for r in rows):
        raise FormatError(path, f"{what} must be 3x3 written as 'a b c;d e f;g h i'", line)
    return np.asarray(rows, dtype=np.float64)


def read_aic19_calibration(path: PathLike) -> Aic19Calibration:
    """Read `calibration.txt` lines `Key: values`; the homography is required."""
    values: dict[str, Any] = {}
    for number, raw in enumerate(read_text_file(path).splitlines(), start=1):
        if not raw.strip():
            continue
        key, sep, rest = raw.partition(":")
        attr = _AIC19_KEYS.get(key.strip().lower())
        if not sep or attr is None:
            raise FormatError(path, f"unknown calibration line {raw.strip()[:60]!r}", number)
        if attr in ("homography", "intrinsics"):
            values[attr] = _parse_matrix_text(path, rest, number, key.strip())
        elif attr == "distortion":
            try:
                coeffs = np.asarray([float(v) for v in rest.split()], dtype=np.float64)
            except ValueError:
                raise FormatError(path, "distortion coefficients are not numeric", number) from None
            if coeffs.size not in (4, 5, 8):
                raise FormatError(
                    path, f"expected 4, 5 or 8 distortion coefficients, got {coeffs.size}", number
                )
            values[attr] = coeffs
        else:
            try:
                values[attr] = float(rest)
            except ValueError:
                raise FormatError(path, "reprojection error is not a number", number) from None
    if "homography" not in values:
        raise FormatError(path, "missing 'Homography matrix' line")
    _check_homography(path, values["homography"])
    return Aic19Calibration(**values)


def _matrix_text(matrix: np.ndarray) -> str:
    return ";".join(" ".join(repr(float(v)) for v in row) for row in np.asarray(matrix, dtype=np.float64))


def write_aic19_calibration(path: PathLike, calib: Aic19Calibration) -> None:
    """Write `calibration.txt` atomically in the dataset's `Key: values` layout (lossless floats)."""
    homography = np.asarray(calib.homography, dtype=np.float64)
    if homography.shape != (3, 3):
        raise FormatError(path, f"homography must be 3x3, got {homography.shape}")
    _check_homography(path, homography)
    lines = []
    if calib.intrinsics is not None:
        intrinsics = np.asarray(calib.intrinsics, dtype=np.float64)
        if intrinsics.shape != (3, 3):
            raise FormatError(path, f"intrinsics must be 3x3, got {intrinsics.shape}")
        lines.append(f"Intrinsic parameter matrix: {_matrix_text(intrinsics)}")
    if calib.distortion is not None:
        lines.append(
            "Distortion coefficients: " + " ".join(repr(float(v)) for v in np.ravel(calib.distortion))
        )
    lines.append(f"Homography matrix: {_matrix_text(homography)}")
    if calib.reprojection_error is not None:
        lines.append(f"Reprojection error: {float(calib.reprojection_error)!r}")
    with atomic_open(path) as handle:
        handle.write("\n".join(lines) + "\n")


def read_cam_timestamps(path: PathLike) -> dict[str, float]:
    """`cam_timestamp/SXX.txt` lines `c001 0.000` -> {"c001": 0.0} (start offsets in seconds)."""
    offsets: dict[str, float] = {}
    for number, raw in enumerate(read_text_file(path).splitlines(), start=1):
        fields = raw.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise FormatError(path, f"expected 'camera offset', got {len(fields)} fields", number)
        name, value = fields
        try:
            offset = float(value)
        except ValueError:
            raise FormatError(path, f"offset {value!r} is not a number", number) from None
        if name in offsets:
            raise FormatError(path, f"camera {name!r} listed twice", number)
        offsets[name] = offset
    return offsets


def write_cam_timestamps(path: PathLike, offsets: dict[str, float]) -> None:
    """Write `SXX.txt` atomically, cameras in name order, offsets lossless."""
    body = "".join(f"{name} {float(offsets[name])!r}\n" for name in sorted(offsets))
    with atomic_open(path) as handle:
        handle.write(body)


@dataclass
class Aic19Camera:
    """`cXXX` folder: video, calibration, gt, detections by detector name, ROI mask."""

    camera_id: int
    name: str
    dir: Path
    video: Path
    calibration: Path
    gt: Path | None
    dets: dict[str, Path]
    roi: Path

    def read_calibration(self) -> Aic19Calibration:
        return read_aic19_calibration(self.calibration)


@dataclass
class Aic19Scene:
    """`SXX` folder; `timestamps` from `<root>/cam_timestamp/SXX.txt` when that file exists."""

    name: str
    dir: Path
    cameras: list[Aic19Camera]
    timestamps: dict[str, float] | None


_AIC19_SCENE_RE = re.compile(r"^S(\d+)$")


def load_aic19_scene(scene_dir: PathLike, timestamps: PathLike | None = None) -> Aic19Scene:
    """Index an `SXX` folder; camera offsets come from `timestamps` or the dataset's `cam_timestamp/`."""
    root = Path(scene_dir)
    if not root.is_dir() or _AIC19_SCENE_RE.match(root.name) is None:
        raise FormatError(root, "not an AI City 2019 scenario folder (expected an existing SXX)")
    cameras = []
    for camera_id, d in _numbered_dirs(root, _AIC23_CAMERA_RE):
        det_dir = d / "det"
        dets = (
            {p.stem[len("det_") :]: p for p in sorted(det_dir.glob("det_*.txt"))} if det_dir.is_dir() else {}
        )
        gt = d / "gt" / "gt.txt"
        cameras.append(
            Aic19Camera(
                camera_id=camera_id,
                name=d.name,
                dir=d,
                video=d / "vdo.avi",
                calibration=d / "calibration.txt",
                gt=gt if gt.is_file() else None,
                dets=dets,
                roi=d / "roi.jpg",
            )
        )
    if not cameras:
        raise FormatError(root, "scenario has no cXXX camera folders")
    if timestamps is None:
        # the dataset keeps cam_timestamp/ beside train/ and test/
        candidate = root.parent.parent / "cam_timestamp" / f"{root.name}.txt"
        timestamps = candidate if candidate.is_file() else None
    offsets = read_cam_timestamps(timestamps) if timestamps is not None else None
    return Aic19Scene(name=root.name, dir=root, cameras=cameras, timestamps=offsets)
