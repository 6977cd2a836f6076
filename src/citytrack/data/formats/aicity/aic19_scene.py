"""An AI City 2019 scenario read for tracking: every camera's calibration, road mask, frame rate
and clock, checked against each other.

`aic19.load_aic19_scene` only indexes the files; `read_aic19_scene` opens them and refuses, with
a `FormatError` naming the file, whatever would make a vehicle tracker silently wrong: a camera
missing from `cam_timestamp/SXX.txt`, an ROI image of another size than the video, a calibration
that maps the road behind the camera (`check_road_in_front`), a missing or unreadable file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from citytrack.data.formats.aicity._common import PathLike
from citytrack.data.formats.aicity.aic19 import Aic19Camera, default_timestamps_path, load_aic19_scene
from citytrack.data.formats.errors import FormatError, require_file
from citytrack.data.video import probe_video
from citytrack.multicam.calibration import CalibrationError, CameraCalibration, calibration_from_aicity

AIC19_FPS = 10.0
"""Frame rate of the AI City 2019 videos (dataset ReadMe), used when a camera has no readable video."""
AIC19_FPS_EXCEPTIONS: dict[str, float] = {"c015": 8.0}
"""Cameras the ReadMe gives another frame rate (S03's c015 runs at 8 fps)."""


@dataclass
class Aic19CameraSetup:
    """One camera ready for tracking: its files, ground calibration, road mask, frame rate and clock.

    `roi` is the `(height, width)` bool mask of `roi.jpg` (white: where vehicles are annotated);
    `time_offset` the video's start in seconds from `cam_timestamp/SXX.txt`.
    """

    camera: Aic19Camera
    calibration: CameraCalibration
    roi: np.ndarray
    image_size: tuple[int, int]
    fps: float
    time_offset: float

    def frame_time(self, frame_id: np.ndarray | float) -> np.ndarray | float:
        """Scene time in seconds of 1-based frame ids: `time_offset + (frame_id - 1) / fps`."""
        return self.time_offset + (np.asarray(frame_id, dtype=np.float64) - 1.0) / self.fps


def _read_roi(path: Path, image_size: tuple[int, int]) -> np.ndarray:
    """`roi.jpg` as a bool mask (JPEG noise: > 127 is inside), checked against the camera's image size."""
    require_file(path, "ROI image")
    gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise FormatError(path, "ROI image cannot be decoded")
    width, height = image_size
    if gray.shape != (height, width):
        raise FormatError(
            path, f"ROI image is {gray.shape[1]}x{gray.shape[0]} but the camera's images are {width}x{height}"
        )
    roi = gray > 127
    if not roi.any():
        raise FormatError(path, "ROI image is all black (no road to track on)")
    return roi


def road_sample_points(roi: np.ndarray, lower_half: bool = True) -> np.ndarray:
    """Image points `(N, 2)` a ground calibration must map in front of the camera.

    The ROI (the road) and, with `lower_half`, the lower image half (the road nearest a camera
    looking down at it): a grid of about 64 points a side over them, plus the corners of the ROI's
    convex hull and of the lower half. Without lens distortion `w` is affine in the pixel, so these
    corners alone decide it exactly; the grid covers a fisheye camera, whose undistortion bends
    the region.
    """
    height, width = roi.shape
    step = max(1, min(width, height) // 64)
    grid = np.zeros_like(roi)
    grid[::step, ::step] = True
    region = roi | (np.arange(height)[:, None] >= height // 2) if lower_half else roi
    v, u = np.nonzero(grid & region)
    contours, _ = cv2.findContours(roi.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    points = [np.column_stack([u, v]), cv2.convexHull(np.concatenate(contours)).reshape(-1, 2)]
    if lower_half:
        points.append([[0, height // 2], [width - 1, height // 2], [0, height - 1], [width - 1, height - 1]])
    return np.concatenate(points).astype(np.float64)


def check_road_in_front(path: PathLike, calibration: CameraCalibration, roi: np.ndarray) -> None:
    """Refuse a calibration that maps the road behind the camera, naming `path`.

    A ground homography sends an image point beyond the horizon (the image line where the third
    row of `H^-1` gives `w = 0`) to a ground point *behind* the camera. A file's sign of `H` is
    arbitrary, so the ground side of the horizon is the image centre's, as
    `CameraCalibration.from_homography` decides it; every `road_sample_points` point must then map
    to a finite ground point. A horizon through the ROI or the lower image half means a wrong,
    inverted or other camera's matrix. A fisheye camera is checked on its ROI only: its
    distortion polynomial is fitted where the road is and may fold over in the image corners.
    """
    points = road_sample_points(roi, lower_half=not calibration.has_lens)
    behind = ~np.isfinite(calibration.image_to_ground(points)).all(1)
    if behind.any():
        u, v = points[int(np.flatnonzero(behind)[0])]
        raise FormatError(
            path,
            f"homography maps the road behind the camera: image point ({u:.0f}, {v:.0f}) of the ROI or "
            f"lower image half lies beyond the horizon ({int(behind.sum())} of {len(points)} sampled "
            "points); is the matrix inverted or another camera's?",
        )


def _camera_size_and_fps(
    camera: Aic19Camera, image_size: tuple[int, int] | Mapping[str, tuple[int, int]] | None
) -> tuple[tuple[int, int], float]:
    """The video's size and frame rate; without a video, the given size and the dataset's rate."""
    given = image_size.get(camera.name) if isinstance(image_size, Mapping) else image_size
    if camera.video.exists():
        info = probe_video(camera.video)  # VideoError (a FormatError) names an unreadable video
        if given is not None and tuple(given) != info.size:
            raise FormatError(
                camera.video, f"video is {info.width}x{info.height} but image_size says {given}"
            )
        return info.size, info.fps if info.fps > 0 else AIC19_FPS_EXCEPTIONS.get(camera.name, AIC19_FPS)
    if given is None:
        raise FormatError(
            camera.video, "video is missing and no image_size was given to check roi.jpg against"
        )
    return (int(given[0]), int(given[1])), AIC19_FPS_EXCEPTIONS.get(camera.name, AIC19_FPS)


def read_aic19_scene(
    scene_dir: PathLike,
    timestamps: PathLike | None = None,
    image_size: tuple[int, int] | Mapping[str, tuple[int, int]] | None = None,
) -> list[Aic19CameraSetup]:
    """Every camera of an `SXX` folder, read and cross-checked, in camera order.

    Per camera: size and frame rate from `vdo.avi` (`probe_video`), or `image_size` (one
    `(width, height)` or a map from camera name) and 10 fps (8 for c015) when there is no video;
    `calibration.txt` as a `CameraCalibration` (lens model kept, oriented by the image centre);
    `roi.jpg`, which must have the video's size; the time offset from `timestamps` (default
    `default_timestamps_path`). Raises `FormatError` naming the file: a missing or unreadable
    file, a camera missing from the timestamps, an ROI of another size, a calibration that maps
    the road behind the camera (`check_road_in_front`).
    """
    stamp_path = Path(timestamps) if timestamps is not None else default_timestamps_path(scene_dir)
    require_file(stamp_path, "camera time offsets (cam_timestamp/SXX.txt; pass timestamps=)")
    scene = load_aic19_scene(scene_dir, stamp_path)
    offsets = scene.timestamps or {}
    setups = []
    for camera in scene.cameras:
        if camera.name not in offsets:
            raise FormatError(stamp_path, f"camera {camera.name} of {scene.dir} has no time offset here")
        size, fps = _camera_size_and_fps(camera, image_size)
        require_file(camera.calibration, "calibration")
        record = camera.read_calibration()
        try:
            calibration = calibration_from_aicity(record, size)
        except CalibrationError as err:
            raise FormatError(camera.calibration, str(err)) from None
        roi = _read_roi(camera.roi, size)
        check_road_in_front(camera.calibration, calibration, roi)
        setups.append(Aic19CameraSetup(camera, calibration, roi, size, fps, offsets[camera.name]))
    return setups
