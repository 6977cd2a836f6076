"""What the AI City readers of every edition share: the homography check and the numbered folders."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from citytrack.data.formats.errors import FormatError
from citytrack.multicam.calibration import is_singular_homography

PathLike = str | os.PathLike[str]

S_SCENE_RE = re.compile(r"^S(\d+)$")
"""`S0XX` (2023) and `SXX` (2019) scene folders."""
C_CAMERA_RE = re.compile(r"^c(\d+)$")
"""`c0XX` (2023) and `cXXX` (2019) camera folders."""


def check_homography(
    path: PathLike, homography: np.ndarray, name: str = "homography matrix", line: int | None = None
) -> None:
    """Reject exactly what `CameraCalibration` would (one singularity test for both); `line` names where it is."""
    if is_singular_homography(homography):
        raise FormatError(path, f"{name} is singular (cannot map the image back to the ground plane)", line)


def numbered_dirs(root: Path, pattern: re.Pattern[str]) -> list[tuple[int, Path]]:
    found = []
    for child in root.iterdir():
        match = pattern.match(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    return sorted(found)


def scene_dirs(root: PathLike, split: str | None, pattern: re.Pattern[str]) -> list[Path]:
    """Scene folders of `root/split`, of `root` itself, or of every split under `root`."""
    base = Path(root)
    if split is not None:
        base = base / split
    if not base.is_dir():
        raise FormatError(base, "folder does not exist")
    direct = [d for _, d in numbered_dirs(base, pattern)]
    if direct or split is not None:
        return direct
    nested: list[Path] = []
    for child in sorted(p for p in base.iterdir() if p.is_dir()):
        nested.extend(d for _, d in numbered_dirs(child, pattern))
    return nested
