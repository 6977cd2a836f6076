"""AI City Challenge layouts, one module per edition: 2024 and 2023 Track 1 (people),
2019 Track 1 (vehicles). Everything is re-exported here, so `from citytrack.data.formats
import aicity; aicity.load_aic24_scene(...)` works whichever edition a name belongs to.

- `aic24`: `<split>/scene_XXX/camera_XXXX/{video.mp4, calibration.json}` plus the scene's
  `ground_truth.txt`; submissions (`track1.txt`) have the same 9 columns (`AIC24_COLUMNS`).
- `aic23`: `<split>/S0XX/c0XX/{video.mp4, label.txt, calibration.json}`, `label.txt` MOT-style.
- `aic19`: `SXX/cXXX/{vdo.avi, calibration.txt, gt/gt.txt, det/det_*.txt, roi.jpg}` and
  `cam_timestamp/SXX.txt`; `aic19_scene.read_aic19_scene` reads a scenario for tracking, every
  camera's calibration, ROI, frame rate and time offset checked against each other.
"""

from __future__ import annotations

from citytrack.data.formats.aicity._common import S_SCENE_RE
from citytrack.data.formats.aicity.aic19 import (
    Aic19Calibration,
    Aic19Camera,
    Aic19Scene,
    default_timestamps_path,
    list_aic19_scenes,
    load_aic19_scene,
    read_aic19_calibration,
    read_aic19_ground_truth,
    read_cam_timestamps,
    write_aic19_calibration,
    write_cam_timestamps,
)
from citytrack.data.formats.aicity.aic19_scene import (
    AIC19_FPS,
    Aic19CameraSetup,
    check_road_in_front,
    read_aic19_scene,
)
from citytrack.data.formats.aicity.aic23 import (
    Aic23Camera,
    Aic23Scene,
    aic23_camera_dirname,
    aic23_scene_dirname,
    list_aic23_scenes,
    load_aic23_scene,
    read_aic23_labels,
)
from citytrack.data.formats.aicity.aic24 import _SCENE_RE as _AIC24_SCENE_RE
from citytrack.data.formats.aicity.aic24 import (
    AIC24_COLUMNS,
    BH,
    BW,
    BX,
    BY,
    CAMERA_ID,
    FRAME_ID,
    HOMOGRAPHY_KEY,
    OBJ_ID,
    PROJECTION_KEY,
    XWORLD,
    YWORLD,
    Aic24Calibration,
    Aic24Camera,
    Aic24Scene,
    aic24_camera_dirname,
    aic24_scene_dirname,
    list_aic24_scenes,
    load_aic24_scene,
    read_aic24_calibration,
    read_aic24_ground_truth,
    read_track1,
    write_aic24_calibration,
    write_aic24_ground_truth,
    write_track1,
)


def scene_layout(name: str) -> str | None:
    """`"aic24"` for a `scene_XXX` folder name, `"aic23"` for `S0XX`, else None."""
    if _AIC24_SCENE_RE.match(name):
        return "aic24"
    return "aic23" if S_SCENE_RE.match(name) else None


__all__ = [
    "AIC19_FPS", "AIC24_COLUMNS", "BH", "BW", "BX", "BY", "CAMERA_ID", "FRAME_ID", "HOMOGRAPHY_KEY", "OBJ_ID",
    "PROJECTION_KEY", "XWORLD", "YWORLD",
    "Aic19Calibration", "Aic19Camera", "Aic19CameraSetup", "Aic19Scene", "Aic23Camera", "Aic23Scene",
    "Aic24Calibration", "Aic24Camera", "Aic24Scene",
    "aic23_camera_dirname", "aic23_scene_dirname", "aic24_camera_dirname", "aic24_scene_dirname",
    "check_road_in_front", "default_timestamps_path",
    "list_aic19_scenes", "list_aic23_scenes", "list_aic24_scenes",
    "load_aic19_scene", "load_aic23_scene", "load_aic24_scene",
    "read_aic19_calibration", "read_aic19_ground_truth", "read_aic19_scene", "read_aic23_labels",
    "read_aic24_calibration", "read_aic24_ground_truth", "read_cam_timestamps", "read_track1", "scene_layout",
    "write_aic19_calibration", "write_aic24_calibration", "write_aic24_ground_truth", "write_cam_timestamps",
    "write_track1",
]
