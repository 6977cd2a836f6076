"""Multi-camera scenes as the scene runner sees them, from the AI City 2024 and 2023 layouts.

A `SceneSpec` is what `infer.py scene=...` names: a scene folder (`scene_XXX` of AI City 2024,
`S0XX` of AI City 2023), a split folder holding several, or a name looked up under search roots.
`load_scene` indexes one folder: per camera its video, its calibration (read and checked here, so a
missing, malformed or singular calibration is an error naming the file before any decoding) and,
where present, the ground truth as an AI City 2024 table (`camera_id obj_id frame_id x y w h
xworld yworld`). A camera whose video is missing is kept here; the video reader drops it with a
warning, so the rest of the scene still runs. A scene none of whose videos exists is an error.

Frames: inside the package a scene's frames are 0-based video indices (what the video reader and
the pipeline count), so `SceneInput.ground_truth` is shifted to them; `SceneInput.frame_base` is
the base the scene's files use (AI City 2024: 0; AI City 2023 `label.txt`, MOT-style: 1, or 0
when a label file holds frame 0), and results are written back in that base. The AI City 2023
labels have no world points: those columns are NaN (no ground-plane metric can be computed).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from citytrack.data.formats import aicity
from citytrack.data.formats.errors import FormatError
from citytrack.multicam.calibration import CalibrationError, CameraCalibration, calibration_from_aicity

PathLike = str | os.PathLike[str]


@dataclass
class SceneCamera:
    camera_id: int
    video: Path
    calibration_path: Path
    calibration: CameraCalibration


@dataclass
class SceneInput:
    """One scene: its cameras (sorted by id), layout, and ground truth (AI City 2024 columns) if any."""

    name: str
    scene_id: int
    dir: Path
    layout: str  # "aic24" | "aic23"
    cameras: list[SceneCamera]
    ground_truth: np.ndarray | None  # frames: 0-based video indices; world columns NaN when unknown
    frame_base: int = 0  # frame number of the first video frame in the scene's files (and results)

    @property
    def camera_ids(self) -> list[int]:
        return [c.camera_id for c in self.cameras]

    @property
    def has_world_ground_truth(self) -> bool:
        """Ground truth with ground-plane points (AI City 2024), so world metrics can be computed."""
        gt = self.ground_truth
        return gt is not None and len(gt) > 0 and bool(np.isfinite(gt[:, aicity.XWORLD : aicity.YWORLD + 1]).all())


def _read_calibration(path: Path) -> CameraCalibration:
    if not path.is_file():
        raise FormatError(path, "camera calibration is missing")
    record = aicity.read_aic24_calibration(path)  # malformed JSON, missing keys, singular H: FormatError
    try:
        return calibration_from_aicity(record)
    except CalibrationError as err:
        raise FormatError(path, f"unusable calibration: {err}") from None


AIC23_FRAME_BASE = 1  # AI City 2023 label.txt is MOT-style: the first video frame is frame 1


def _aic23_ground_truth(scene: aicity.Aic23Scene) -> tuple[np.ndarray | None, int]:
    """Per-camera `label.txt` (MOT columns) as one AI City 2024 table at 0-based video frames, and the
    labels' frame base (1, or 0 when a file holds frame 0). No world points: those columns are NaN.
    None when a camera has no label file."""
    tables = []
    for cam in scene.cameras:
        if not cam.label.is_file():
            return None, AIC23_FRAME_BASE
        mot = cam.read_labels()
        tables.append(np.c_[np.full(len(mot), cam.camera_id), mot[:, 1], mot[:, 0], mot[:, 2:6],
                            np.full((len(mot), 2), np.nan)])
    if not tables:
        return None, AIC23_FRAME_BASE
    gt = np.concatenate(tables)
    base = 0 if len(gt) and gt[:, aicity.FRAME_ID].min() == 0 else AIC23_FRAME_BASE
    gt[:, aicity.FRAME_ID] -= base
    return gt, base


def _check_videos(root: Path, cams: list[SceneCamera]) -> None:
    """A scene none of whose camera videos exists cannot run: say so before anything is decoded."""
    if not any(c.video.is_file() for c in cams):
        missing = ", ".join(str(c.video) for c in cams)
        raise FormatError(root, f"no camera video of this scene exists (looked for {missing})")


def load_scene(path: PathLike) -> SceneInput:
    """Index an AI City 2024 `scene_XXX` or 2023 `S0XX` folder; errors name the file and the problem."""
    root = Path(path)
    layout = aicity.scene_layout(root.name)
    if layout == "aic24":
        s24 = aicity.load_aic24_scene(root)
        cams = [SceneCamera(c.camera_id, c.video, c.calibration, _read_calibration(c.calibration)) for c in s24.cameras]
        _check_videos(root, cams)
        gt = s24.read_ground_truth() if s24.ground_truth is not None else None
        return SceneInput(root.name, s24.scene_id, root, "aic24", cams, gt, frame_base=0)
    if layout == "aic23":
        s23 = aicity.load_aic23_scene(root)
        cams = [SceneCamera(c.camera_id, c.video, c.calibration, _read_calibration(c.calibration)) for c in s23.cameras]
        _check_videos(root, cams)
        gt23, base = _aic23_ground_truth(s23)
        return SceneInput(root.name, s23.scene_id, root, "aic23", cams, gt23, frame_base=base)
    raise FormatError(root, "not a scene folder (expected scene_XXX of AI City 2024 or S0XX of AI City 2023)")


def is_scene_dir(path: Path) -> bool:
    return path.is_dir() and aicity.scene_layout(path.name) is not None


def find_scene_dirs(spec: PathLike, search_roots: list[PathLike] = ()) -> list[Path]:
    """Scene folders named by `spec`: a scene folder, a folder of scenes (or of splits), or a name.

    A name (`scene_061`, `S003`) is looked for under each search root, directly and one split
    level down. Nothing found is an error that lists every place looked at.
    """
    if not str(spec).strip():
        raise FileNotFoundError("no scene given (scene= is empty): name a scene folder (scene_XXX / S0XX), a folder "
                                "of scenes, or a scene name under " + (", ".join(map(str, search_roots)) or "data.root"))
    looked: list[str] = []
    candidates = [Path(spec)] + [Path(r) / spec for r in search_roots]
    for cand in candidates:
        looked.append(str(cand))
        if is_scene_dir(cand):
            return [cand]
        if cand.is_dir():
            found = _scenes_under(cand)
            if found:
                return found
            looked[-1] += " (a folder without scene_XXX / S0XX scenes)"
    for root in map(Path, search_roots):
        if root.is_dir():
            for split in sorted(p for p in root.iterdir() if p.is_dir()):
                cand = split / str(spec)
                looked.append(str(cand))
                if is_scene_dir(cand):
                    return [cand]
    raise FileNotFoundError(f"no scene {str(spec)!r}: looked for a scene folder (scene_XXX / S0XX) or a folder of "
                            f"scenes at: {', '.join(looked)}")


def _scenes_under(root: Path) -> list[Path]:
    for lister in (aicity.list_aic24_scenes, aicity.list_aic23_scenes):
        found = lister(root)
        if found:
            return found
    return []
