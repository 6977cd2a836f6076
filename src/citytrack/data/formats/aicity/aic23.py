"""AI City 2023 Track 1 (synthetic people): `<split>/S0XX/c0XX/{video.mp4, label.txt, calibration.json}`.

`label.txt` is MOT-style per camera; `calibration.json` has the 2024 keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from citytrack.data.formats.aicity._common import C_CAMERA_RE, S_SCENE_RE, PathLike, numbered_dirs, scene_dirs
from citytrack.data.formats.aicity.aic24 import Aic24Calibration, read_aic24_calibration
from citytrack.data.formats.errors import FormatError
from citytrack.data.formats.mot import read_mot

# ------------------------------------------------------------------------------ AIC23

_AIC23_SCENE_RE = S_SCENE_RE
_AIC23_CAMERA_RE = C_CAMERA_RE


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
        for i, d in numbered_dirs(root, _AIC23_CAMERA_RE)
    ]
    if not cameras:
        raise FormatError(root, "scene has no c0XX camera folders")
    return Aic23Scene(scene_id=int(match.group(1)), dir=root, cameras=cameras)


def list_aic23_scenes(root: PathLike, split: str | None = None) -> list[Path]:
    """`S0XX` folders under `root/split` (or under every split of `root` when None)."""
    return scene_dirs(root, split, _AIC23_SCENE_RE)


def aic23_scene_dirname(scene_id: int) -> str:
    return f"S{int(scene_id):03d}"


def aic23_camera_dirname(camera_id: int) -> str:
    return f"c{int(camera_id):03d}"
