"""AI City 2019 Track 1 (vehicles): `SXX/cXXX/{vdo.avi, calibration.txt, gt/gt.txt, det/det_*.txt, roi.jpg}`
and `cam_timestamp/SXX.txt` (per-camera start offsets in seconds).

`calibration.txt` as the real files write it: lines in any order, blank lines, Windows (CRLF)
line endings, trailing spaces and a UTF-8 byte-order mark are all accepted.

- `Homography matrix: a b c;d e f;g h i`: GPS (latitude, longitude, 1) -> image, required once;
  a bare `a b c;d e f;g h i` line is the same (a real S03 camera file is written so);
- `Reprojection error: x` (optional);
- fisheye cameras: `Intrinsic parameter matrix: a b c;d e f;g h i` and
  `Distortion coefficients: k1 k2 p1 p2 [...]`, both or neither; the homography then maps
  to the undistorted image (`multicam.calibration.CameraCalibration` keeps the lens model).

Anything else (unknown key, non-numeric or non-finite entry, wrong number of entries, a key
twice, no homography, a singular homography, half a lens model) raises `FormatError` naming
the file and the line.

`load_aic19_scene` only indexes a scenario's paths; `aic19_scene.read_aic19_scene` reads and
cross-checks everything a tracker needs of each camera.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from citytrack.data.formats import mot
from citytrack.data.formats.aicity import aic24
from citytrack.data.formats.aicity._common import (
    C_CAMERA_RE,
    S_SCENE_RE,
    PathLike,
    check_homography,
    numbered_dirs,
    scene_dirs,
)
from citytrack.data.formats.errors import FormatError, read_text_file
from citytrack.multicam.lens import DISTORTION_SIZES, LensError, check_lens
from citytrack.utils.io import atomic_open


@dataclass
class Aic19Calibration:
    """`calibration.txt` of an AI City 2019 camera.

    `homography` maps world GPS (latitude, longitude, 1) to image as in the dataset;
    fisheye cameras add `intrinsics` (3x3) and `distortion` (OpenCV's k1 k2 p1 p2 [k3 ...]).
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


def _parse_numbers(path: PathLike, text: str, line: int, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split()]
    except ValueError:
        raise FormatError(path, f"{what} has a non-numeric entry", line) from None
    if not np.isfinite(values).all():
        raise FormatError(path, f"{what} has a non-finite entry (nan/inf)", line)
    return values


def _parse_matrix_text(path: PathLike, text: str, line: int, what: str) -> np.ndarray:
    """`a b c;d e f;g h i` (a trailing `;` tolerated) -> 3x3 array."""
    rows = [_parse_numbers(path, row, line, what) for row in text.strip().rstrip(";").split(";")]
    if len(rows) != 3 or any(len(r) != 3 for r in rows):
        counts = "+".join(str(len(r)) for r in rows)
        raise FormatError(
            path, f"{what} must be 3x3 written as 'a b c;d e f;g h i', got {counts} entries", line
        )
    return np.asarray(rows, dtype=np.float64)


def _parse_calibration_value(path: PathLike, attr: str, key: str, text: str, line: int) -> Any:
    if attr in ("homography", "intrinsics"):
        return _parse_matrix_text(path, text, line, key)
    values = _parse_numbers(path, text, line, key)
    if attr == "distortion":
        if len(values) not in DISTORTION_SIZES:
            sizes = ", ".join(map(str, DISTORTION_SIZES))
            raise FormatError(path, f"expected {sizes} distortion coefficients, got {len(values)}", line)
        return np.asarray(values, dtype=np.float64)
    if len(values) != 1 or values[0] < 0:
        raise FormatError(path, f"{key} must be one number >= 0", line)
    return values[0]


def read_aic19_calibration(path: PathLike) -> Aic19Calibration:
    """Read `calibration.txt` in any of the forms the module docstring lists; the homography is required."""
    values: dict[str, Any] = {}
    lines: dict[str, int] = {}
    text = read_text_file(path).removeprefix("\ufeff")
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        key, sep, rest = line.partition(":")
        key = " ".join(key.split())
        attr = _AIC19_KEYS.get(key.lower()) if sep else None
        if not sep and ";" in line:  # a bare `a b c;d e f;g h i` line is the homography
            key, rest, attr = "homography matrix", line, "homography"
        if attr is None:
            raise FormatError(
                path,
                f"unknown calibration line {line[:60]!r}: expected 'Homography matrix: a b c;d e f;g h i', "
                "a bare 'a b c;d e f;g h i', 'Reprojection error: x', 'Intrinsic parameter matrix: ...' "
                "or 'Distortion coefficients: ...'",
                number,
            )
        if attr in lines:
            raise FormatError(path, f"{key} given twice (first on line {lines[attr]})", number)
        lines[attr] = number
        values[attr] = _parse_calibration_value(path, attr, key, rest, number)
    if "homography" not in values:
        raise FormatError(
            path, "missing 'Homography matrix: a b c;d e f;g h i' line (or a bare 'a b c;d e f;g h i')"
        )
    check_homography(path, values["homography"], line=lines["homography"])
    if ("intrinsics" in values) != ("distortion" in values):
        have, need = ("intrinsics", "distortion") if "intrinsics" in values else ("distortion", "intrinsics")
        raise FormatError(path, f"a fisheye camera needs both lens lines; {need} is missing", lines[have])
    if "intrinsics" in values:
        try:
            values["intrinsics"], values["distortion"] = check_lens(
                values["intrinsics"], values["distortion"]
            )
        except LensError as err:
            raise FormatError(path, str(err), lines["intrinsics"]) from None
    return Aic19Calibration(**values)


def _matrix_text(matrix: np.ndarray) -> str:
    return ";".join(" ".join(repr(float(v)) for v in row) for row in np.asarray(matrix, dtype=np.float64))


def write_aic19_calibration(path: PathLike, calib: Aic19Calibration) -> None:
    """Write `calibration.txt` atomically in the dataset's `Key: values` layout (lossless floats)."""
    homography = np.asarray(calib.homography, dtype=np.float64)
    if homography.shape != (3, 3):
        raise FormatError(path, f"homography must be 3x3, got {homography.shape}")
    check_homography(path, homography)
    lines = []
    if (calib.intrinsics is None) != (calib.distortion is None):
        raise FormatError(path, "a fisheye calibration needs both intrinsics and distortion coefficients")
    if calib.intrinsics is not None:
        try:
            intrinsics, distortion = check_lens(calib.intrinsics, calib.distortion)
        except LensError as err:
            raise FormatError(path, str(err)) from None
        lines.append(f"Intrinsic parameter matrix: {_matrix_text(intrinsics)}")
        lines.append("Distortion coefficients: " + " ".join(repr(float(v)) for v in distortion))
    lines.append(f"Homography matrix: {_matrix_text(homography)}")
    if calib.reprojection_error is not None:
        lines.append(f"Reprojection error: {float(calib.reprojection_error)!r}")
    with atomic_open(path) as handle:
        handle.write("\n".join(lines) + "\n")


def read_cam_timestamps(path: PathLike) -> dict[str, float]:
    """`cam_timestamp/SXX.txt` lines `c001 0.000` -> {"c001": 0.0}: each video's start time in seconds.

    Blank lines, Windows (CRLF) line endings and surrounding spaces are accepted; a name that is
    not `cXXX`, a non-numeric or non-finite offset, or a camera listed twice raises `FormatError`
    at its line.
    """
    offsets: dict[str, float] = {}
    for number, raw in enumerate(read_text_file(path).removeprefix("\ufeff").splitlines(), start=1):
        fields = raw.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise FormatError(path, f"expected 'camera offset', got {len(fields)} fields", number)
        name, value = fields
        if C_CAMERA_RE.match(name) is None:
            raise FormatError(path, f"camera name {name!r} is not cXXX", number)
        try:
            offset = float(value)
        except ValueError:
            raise FormatError(path, f"offset {value!r} is not a number", number) from None
        if not np.isfinite(offset):
            raise FormatError(path, f"offset {value!r} is not finite", number)
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


_AIC19_SCENE_RE = S_SCENE_RE


def default_timestamps_path(scene_dir: PathLike) -> Path:
    """`<dataset>/cam_timestamp/SXX.txt` of `<dataset>/<split>/SXX`: the dataset keeps it beside `train/`, `test/`."""
    root = Path(scene_dir)
    return root.parent.parent / "cam_timestamp" / f"{root.name}.txt"


def load_aic19_scene(scene_dir: PathLike, timestamps: PathLike | None = None) -> Aic19Scene:
    """Index an `SXX` folder; camera offsets come from `timestamps` or the dataset's `cam_timestamp/`."""
    root = Path(scene_dir)
    if not root.is_dir() or _AIC19_SCENE_RE.match(root.name) is None:
        raise FormatError(root, "not an AI City 2019 scenario folder (expected an existing SXX)")
    cameras = []
    for camera_id, d in numbered_dirs(root, C_CAMERA_RE):
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
        candidate = default_timestamps_path(root)
        timestamps = candidate if candidate.is_file() else None
    offsets = read_cam_timestamps(timestamps) if timestamps is not None else None
    return Aic19Scene(name=root.name, dir=root, cameras=cameras, timestamps=offsets)


# --------------------------------------------------------------------------- ground truth
def list_aic19_scenes(root: PathLike, split: str | None = None) -> list[Path]:
    """`SXX` folders of `root/split`, of `root`, or of every split under `root`."""
    return scene_dirs(root, split, _AIC19_SCENE_RE)


def read_aic19_ground_truth(path: PathLike) -> tuple[np.ndarray, dict[str, list[int]]]:
    """Multi-camera ground truth as `(N, 9)` rows `camera_id obj_id frame_id x y w h xworld yworld`.

    `path`: a 9-column file (the Track 1 submission columns), an `SXX` folder (its cameras'
    `gt/gt.txt`, MOTChallenge rows, world columns set to -1), or a folder of scenarios (those
    without ground truth skipped). Frames stay 1-based as in the files. Also returns scene name ->
    camera ids. No ground truth at all, or a camera id in two scenes, raises `FormatError`.
    """
    root = Path(path)
    if root.is_file():
        table = aic24.read_track1(root)  # the same 9 columns
        return table, {root.stem: sorted({int(c) for c in table[:, aic24.CAMERA_ID]})}
    if not root.is_dir():
        raise FormatError(root, "no such file or folder")
    scene_paths = [root] if _AIC19_SCENE_RE.match(root.name) else list_aic19_scenes(root)
    tables: list[np.ndarray] = []
    scenes: dict[str, list[int]] = {}
    owner: dict[int, str] = {}  # camera id -> its scenario folder
    for scene_dir in scene_paths:
        cameras = [c for c in load_aic19_scene(scene_dir).cameras if c.gt is not None]
        for camera in cameras:
            if camera.camera_id in owner:
                raise FormatError(
                    scene_dir, f"camera {camera.name} also belongs to {owner[camera.camera_id]}"
                )
            owner[camera.camera_id] = str(scene_dir)
            gt = mot.read_mot(camera.gt, kind="gt")
            rows = np.full((len(gt), len(aic24.AIC24_COLUMNS)), -1.0)
            rows[:, aic24.CAMERA_ID] = camera.camera_id
            rows[:, aic24.OBJ_ID : aic24.BH + 1] = gt[:, [mot.ID, mot.FRAME, mot.X, mot.Y, mot.W, mot.H]]
            tables.append(rows)
        if cameras:
            scenes[scene_dir.name] = [c.camera_id for c in cameras]
    if not scenes:
        raise FormatError(root, "no cXXX/gt/gt.txt in this scenario folder (or folder of scenarios)")
    return np.concatenate(tables), scenes
