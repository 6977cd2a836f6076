"""AI City 2019 scenario read for tracking (`read_aic19_scene`) and `cam_timestamp/SXX.txt`:
calibration, ROI, frame rate and clock per camera, and a clear error naming the file for each bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from citytrack.data.formats.aicity import (
    AIC19_FPS,
    Aic19Calibration,
    read_aic19_scene,
    read_cam_timestamps,
    write_aic19_calibration,
    write_cam_timestamps,
)
from citytrack.data.formats.errors import FormatError
from citytrack.data.formats.mot import write_mot
from citytrack.data.video import AtomicVideoWriter
from citytrack.multicam.calibration import intrinsics_from_fov, is_singular_homography, look_at_rotation

SIZE = (640, 480)
CENTRE = np.array([0.0, -20.0, 8.0])  # 8 m up a pole, 20 m back from the crossing
DOWN = (0.0, 0.0, 0.0)  # looking down at the crossing: the horizon is ~18 px below the top edge
UP = (0.0, 0.0, 12.0)  # tilted up over the road: the horizon runs through the lower image half


def _homography(target: tuple[float, float, float], size: tuple[int, int] = SIZE) -> np.ndarray:
    """Ground -> image of a pinhole camera at `CENTRE` looking at `target`."""
    K = intrinsics_from_fov(size[0], size[1], 60.0)
    R = look_at_rotation(CENTRE, target)
    return (K @ np.hstack([R, (-R @ CENTRE)[:, None]]))[:, [0, 1, 3]]


def _roi(size: tuple[int, int] = SIZE, top: float = 0.55) -> np.ndarray:
    """A road trapezoid from `top` (fraction of the height) to the bottom edge, white on black."""
    w, h = size
    image = np.zeros((h, w), np.uint8)
    polygon = np.array([[0.3 * w, top * h], [0.7 * w, top * h], [w - 1, h - 1], [0, h - 1]], np.int32)
    cv2.fillPoly(image, [polygon], 255)
    return image


def _scene(
    tmp_path: Path, homographies: dict[str, np.ndarray], offsets: dict[str, float] | None = None
) -> Path:
    """`<tmp>/train/S01/cXXX/{calibration.txt, roi.jpg, gt/gt.txt}` and `<tmp>/cam_timestamp/S01.txt`."""
    scene = tmp_path / "train" / "S01"
    for name, homography in homographies.items():
        write_aic19_calibration(scene / name / "calibration.txt", Aic19Calibration(homography=homography))
        cv2.imwrite(str(scene / name / "roi.jpg"), _roi())
        write_mot(
            scene / name / "gt" / "gt.txt",
            np.array([[1, 7, 100, 300, 50, 40, 1, -1, -1, -1]], float),
            kind="gt",
        )
    offsets = {name: 0.5 * i for i, name in enumerate(homographies)} if offsets is None else offsets
    write_cam_timestamps(tmp_path / "cam_timestamp" / "S01.txt", offsets)
    return scene


def test_every_camera_read_and_checked(tmp_path: Path) -> None:
    h = _homography(DOWN)
    scene = _scene(tmp_path, {"c015": -h, "c001": h}, {"c001": 0.0, "c015": 2.25, "c099": 7.0})
    setups = read_aic19_scene(scene, image_size=SIZE)
    assert [s.camera.name for s in setups] == ["c001", "c015"]  # camera order; c099 of the file is ignored
    first, second = setups
    assert first.image_size == SIZE and first.roi.shape == (480, 640) and first.roi.dtype == bool
    assert first.roi[470, 320] and not first.roi[10, 320]
    assert first.fps == AIC19_FPS == 10.0 and second.fps == 8.0  # the ReadMe's c015
    assert (first.time_offset, second.time_offset) == (0.0, 2.25)
    assert second.frame_time(1) == 2.25 and second.frame_time(np.array([9]))[0] == pytest.approx(3.25)
    assert first.camera.gt == scene / "c001" / "gt" / "gt.txt"
    # the file's sign of H does not matter: both cameras put the same pixel on the same ground point
    pixel = np.array([[320.0, 400.0]])
    ground = first.calibration.image_to_ground(pixel)
    np.testing.assert_allclose(second.calibration.image_to_ground(pixel), ground)
    np.testing.assert_allclose(first.calibration.ground_to_image(ground), pixel)


def test_gps_homography_as_the_real_files_have(tmp_path: Path) -> None:
    """The files map (latitude, longitude, 1) to pixels with H[2, 2] = 1: entries ~1e-9 to 1e+5."""
    lat0, lon0 = 42.498780, -90.686393  # the S03-S05 centre the ReadMe gives
    to_metres = np.array([[0.0, 82_000.0, -82_000.0 * lon0], [111_000.0, 0.0, -111_000.0 * lat0], [0, 0, 1]])
    gps = _homography(DOWN) @ to_metres
    scene = _scene(tmp_path, {"c010": gps / gps[2, 2], "c011": _homography(UP) @ to_metres})
    with pytest.raises(FormatError, match="behind the camera") as err:
        read_aic19_scene(scene, image_size=SIZE)
    assert err.value.path == str(scene / "c011" / "calibration.txt")
    shutil.rmtree(scene / "c011")
    (setup,) = read_aic19_scene(scene, image_size=SIZE)
    lat, lon = setup.calibration.image_to_ground(np.array([[320.0, 300.0]]))[0]
    assert abs(lat - lat0) < 1e-3 and abs(lon - lon0) < 1e-3  # within ~100 m of the crossing


def test_video_gives_size_and_frame_rate_and_the_roi_must_match(tmp_path: Path) -> None:
    small = (64, 48)
    scene = _scene(tmp_path, {"c001": _homography(DOWN, small)})
    cv2.imwrite(str(scene / "c001" / "roi.jpg"), _roi(small))
    with AtomicVideoWriter(scene / "c001" / "vdo.avi", fps=12.5, size=small, fourcc="MJPG") as writer:
        for _ in range(3):
            writer.write(np.full((48, 64, 3), 90, np.uint8))
    (setup,) = read_aic19_scene(scene)
    assert setup.image_size == small and setup.fps == 12.5 and setup.roi.shape == (48, 64)

    with pytest.raises(FormatError, match="video is 64x48 but image_size says") as err:
        read_aic19_scene(scene, image_size=SIZE)
    assert err.value.path == str(scene / "c001" / "vdo.avi")

    cv2.imwrite(str(scene / "c001" / "roi.jpg"), _roi(SIZE))
    with pytest.raises(FormatError, match="ROI image is 640x480 but the camera's images are 64x48") as err:
        read_aic19_scene(scene)
    assert err.value.path == str(scene / "c001" / "roi.jpg")

    (scene / "c001" / "vdo.avi").write_bytes(b"RIFF not really a video")
    with pytest.raises(FormatError) as err:
        read_aic19_scene(scene)
    assert err.value.path == str(scene / "c001" / "vdo.avi")


def test_roi_of_the_wrong_size_without_a_video(tmp_path: Path) -> None:
    scene = _scene(tmp_path, {"c001": _homography(DOWN)})
    with pytest.raises(FormatError, match="ROI image is 640x480 but the camera's images are 1280x960") as err:
        read_aic19_scene(scene, image_size={"c001": (1280, 960)})
    assert err.value.path == str(scene / "c001" / "roi.jpg")
    with pytest.raises(FormatError, match="no image_size") as err:
        read_aic19_scene(scene)
    assert err.value.path == str(scene / "c001" / "vdo.avi")


def test_camera_missing_from_cam_timestamp(tmp_path: Path) -> None:
    h = _homography(DOWN)
    scene = _scene(tmp_path, {"c001": h, "c002": h}, {"c001": 0.0})
    stamps = tmp_path / "cam_timestamp" / "S01.txt"
    with pytest.raises(FormatError, match="camera c002 of .* has no time offset") as err:
        read_aic19_scene(scene, image_size=SIZE)
    assert err.value.path == str(stamps)

    stamps.unlink()
    with pytest.raises(FormatError, match="time offsets .* is missing") as err:
        read_aic19_scene(scene, image_size=SIZE)
    assert err.value.path == str(stamps)
    elsewhere = tmp_path / "offsets.txt"
    write_cam_timestamps(elsewhere, {"c001": 1.0, "c002": 3.0})
    assert [s.time_offset for s in read_aic19_scene(scene, elsewhere, SIZE)] == [1.0, 3.0]


def test_calibration_that_maps_the_road_behind_the_camera(tmp_path: Path) -> None:
    up = _homography(UP)
    assert not is_singular_homography(up)  # a valid homography, only the wrong one for this road
    scene = _scene(tmp_path, {"c001": _homography(DOWN), "c002": up})
    with pytest.raises(FormatError, match="maps the road behind the camera") as err:
        read_aic19_scene(scene, image_size=SIZE)
    assert err.value.path == str(scene / "c002" / "calibration.txt")

    # the same downward camera passes, until its ROI reaches above its horizon (~18 px from the top)
    write_aic19_calibration(
        scene / "c002" / "calibration.txt", Aic19Calibration(homography=_homography(DOWN))
    )
    assert len(read_aic19_scene(scene, image_size=SIZE)) == 2
    cv2.imwrite(str(scene / "c002" / "roi.jpg"), _roi(top=0.0))
    with pytest.raises(FormatError, match=r"image point \(\d+, [0-9]\)") as err:
        read_aic19_scene(scene, image_size=SIZE)
    assert err.value.path == str(scene / "c002" / "calibration.txt")


def test_fisheye_camera_keeps_its_lens(tmp_path: Path) -> None:
    scene = _scene(tmp_path, {"c035": _homography(DOWN)})
    K = intrinsics_from_fov(*SIZE, 60.0)
    write_aic19_calibration(
        scene / "c035" / "calibration.txt",
        Aic19Calibration(_homography(DOWN), K, np.array([-0.2, 0.05, 0, 0])),
    )
    (setup,) = read_aic19_scene(scene, image_size=SIZE)
    assert setup.calibration.has_lens
    np.testing.assert_array_equal(setup.calibration.intrinsics, K)


@pytest.mark.parametrize(
    ("spoil", "target", "reason"),
    [
        (lambda cam: (cam / "calibration.txt").unlink(), "calibration.txt", "calibration is missing"),
        (lambda cam: (cam / "roi.jpg").unlink(), "roi.jpg", "ROI image is missing"),
        (lambda cam: (cam / "roi.jpg").write_bytes(b"\xff\xd8 truncated"), "roi.jpg", "cannot be decoded"),
        (lambda cam: cv2.imwrite(str(cam / "roi.jpg"), np.zeros((480, 640), np.uint8)), "roi.jpg", "all black"),
        (lambda cam: (cam / "calibration.txt").write_bytes(b"\x89PNG\r\n\x1a\n\xff"), "calibration.txt", "UTF-8"),
        (lambda cam: (cam / "calibration.txt").write_text("Homography matrix: 1 2 3;2 4 6;0 0 1\r\n"),
         "calibration.txt", "singular"),
    ],
)  # fmt: skip
def test_unreadable_files_are_named(tmp_path: Path, spoil, target: str, reason: str) -> None:
    scene = _scene(tmp_path, {"c001": _homography(DOWN)})
    spoil(scene / "c001")
    with pytest.raises(FormatError, match=reason) as err:
        read_aic19_scene(scene, image_size=SIZE)
    assert err.value.path == str(scene / "c001" / target)


def test_cam_timestamps_survive_windows_files_and_refuse_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "S03.txt"
    path.write_bytes(b"\xef\xbb\xbfc010 8.715  \r\n\r\nc011 8.457\r\nc015 0\t\r\n")
    assert read_cam_timestamps(path) == {"c010": 8.715, "c011": 8.457, "c015": 0.0}
    for content, line, reason in [
        ("c010 0\nS03 1.0\n", 2, "is not cXXX"),
        ("c010 nan\n", 1, "not finite"),
        ("\nc010 1.0 2.0\n", 2, "got 3 fields"),
    ]:
        path.write_text(content)
        with pytest.raises(FormatError, match=reason) as err:
            read_cam_timestamps(path)
        assert (err.value.path, err.value.line) == (str(path), line)
