"""AI City 2019 Track 1 (vehicles): `SXX/cXXX/{vdo.avi, calibration.txt, gt/gt.txt, det/det_*.txt, roi.jpg}`
and `cam_timestamp/SXX.txt` (per-camera start offsets in seconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from citytrack.data.formats.aicity._common import (
    C_CAMERA_RE,
    S_SCENE_RE,
    PathLike,
    check_homography,
    numbered_dirs,
)
from citytrack.data.formats.errors import FormatError, read_text_file
from citytrack.utils.io import atomic_open


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
    check_homography(path, values["homography"])
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


_AIC19_SCENE_RE = S_SCENE_RE


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
        # the dataset keeps cam_timestamp/ beside train/ and test/
        candidate = root.parent.parent / "cam_timestamp" / f"{root.name}.txt"
        timestamps = candidate if candidate.is_file() else None
    offsets = read_cam_timestamps(timestamps) if timestamps is not None else None
    return Aic19Scene(name=root.name, dir=root, cameras=cameras, timestamps=offsets)
