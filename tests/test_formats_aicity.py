"""AI City 2019/2023/2024 readers and writers: round trips, malformed files, folder loaders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from citytrack.data.formats.aicity import (
    AIC24_COLUMNS,
    Aic19Calibration,
    Aic24Calibration,
    aic23_camera_dirname,
    aic23_scene_dirname,
    aic24_camera_dirname,
    aic24_scene_dirname,
    list_aic23_scenes,
    list_aic24_scenes,
    load_aic19_scene,
    load_aic23_scene,
    load_aic24_scene,
    read_aic19_calibration,
    read_aic24_calibration,
    read_aic24_ground_truth,
    read_cam_timestamps,
    read_track1,
    write_aic19_calibration,
    write_aic24_calibration,
    write_aic24_ground_truth,
    write_cam_timestamps,
    write_track1,
)
from citytrack.data.formats.errors import FormatError
from citytrack.data.formats.mot import write_mot


def _calibration() -> Aic24Calibration:
    # a camera 5 m above the origin looking down-forward: K [R | t]
    k = np.array([[800.0, 0, 320], [0, 800, 180], [0, 0, 1]])
    angle = np.deg2rad(120)
    r = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]])
    t = -r @ np.array([0.0, -8.0, 5.0])
    projection = k @ np.hstack([r, t[:, None]])
    homography = projection[:, [0, 1, 3]]
    extras = {"intrinsic matrix": k, "camera coordinates": [0.0, -8.0, 5.0], "scale factor": 1.0}
    return Aic24Calibration(projection=projection, homography=homography, extras=extras)


def _gt_table() -> np.ndarray:
    return np.array(
        [
            [1, 0, 0, 10, 20, 30, 60, 1.5, -2.25],
            [2, 0, 0, 100, 50, 25, 55, 1.5, -2.25],
            [1, 7, 3, 11, 21, 31, 61, 0.123456, 4.0],
        ]
    )


def test_ground_truth_round_trip_integer_boxes(tmp_path: Path) -> None:
    path = tmp_path / "ground_truth.txt"
    write_aic24_ground_truth(path, _gt_table())
    assert path.read_text().splitlines()[0] == "1 0 0 10 20 30 60 1.500000 -2.250000"
    back = read_aic24_ground_truth(path)
    assert back.shape == (3, len(AIC24_COLUMNS)) and back.dtype == np.float64
    np.testing.assert_allclose(back, _gt_table(), atol=1e-6)


def test_ground_truth_keeps_fractional_boxes_and_submission_rounds(tmp_path: Path) -> None:
    table = _gt_table()
    table[0, 3] = 10.26
    write_aic24_ground_truth(tmp_path / "gt.txt", table)
    assert read_aic24_ground_truth(tmp_path / "gt.txt")[0, 3] == pytest.approx(10.26)
    write_track1(tmp_path / "track1.txt", table)
    back = read_track1(tmp_path / "track1.txt")
    assert back[0, 3] == 10 and np.all(back[:, 3:7] == np.round(back[:, 3:7]))


def test_empty_ground_truth(tmp_path: Path) -> None:
    write_aic24_ground_truth(tmp_path / "gt.txt", np.zeros((0, 9)))
    assert read_aic24_ground_truth(tmp_path / "gt.txt").shape == (0, 9)


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        ("1 0 0 10 20 30 60 1 2\n1 0 1 10 20 30 60 1\n", 2, "at least 9"),
        ("1 0 0 10 20 30 60 1 2 3\n", 1, "at most 9"),
        ("1 0 0 10 20 30 60 1 2\n1 0 x 10 20 30 60 1 2\n", 2, "non-numeric"),
        ("1 0 -1 10 20 30 60 1 2\n", 1, ">= 0"),
        ("1 0 0.5 10 20 30 60 1 2\n", 1, "frame_id"),
        ("1.5 0 0 10 20 30 60 1 2\n", 1, "camera_id"),
        ("1 0 0 10 20 0 60 1 2\n", 1, "width"),
    ],
)
def test_malformed_ground_truth(tmp_path: Path, content: str, line: int, reason: str) -> None:
    path = tmp_path / "ground_truth.txt"
    path.write_text(content)
    with pytest.raises(FormatError) as err:
        read_aic24_ground_truth(path)
    assert err.value.line == line and reason in str(err.value) and str(path) in str(err.value)


def test_calibration_round_trip_with_extras(tmp_path: Path) -> None:
    calib = _calibration()
    path = tmp_path / "calibration.json"
    write_aic24_calibration(path, calib)
    raw = json.loads(path.read_text())
    assert set(raw) == {
        "camera projection matrix",
        "homography matrix",
        "intrinsic matrix",
        "camera coordinates",
        "scale factor",
    }
    back = read_aic24_calibration(path)
    np.testing.assert_array_equal(back.projection, calib.projection)
    np.testing.assert_array_equal(back.homography, calib.homography)
    np.testing.assert_array_equal(back.extras["intrinsic matrix"], calib.extras["intrinsic matrix"])
    assert back.extras["scale factor"] == 1.0
    # the homography is the ground-plane (z=0) restriction of the projection
    world = np.array([1.0, 2.0, 0.0, 1.0])
    via_p = back.projection @ world
    via_h = back.homography @ np.array([1.0, 2.0, 1.0])
    np.testing.assert_allclose(via_p[:2] / via_p[2], via_h[:2] / via_h[2])


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"homography matrix": np.eye(3).tolist()}, "camera projection matrix"),
        ({"camera projection matrix": np.eye(3, 4).tolist()}, "homography matrix"),
        ({"camera projection matrix": np.eye(3).tolist(), "homography matrix": np.eye(3).tolist()}, "3x4"),
        ({"camera projection matrix": np.eye(3, 4).tolist(), "homography matrix": np.eye(2).tolist()}, "3x3"),
        (
            {
                "camera projection matrix": np.eye(3, 4).tolist(),
                "homography matrix": np.ones((3, 3)).tolist(),
            },
            "singular",
        ),
        (
            {"camera projection matrix": np.eye(3, 4).tolist(), "homography matrix": [["a"] * 3] * 3},
            "numeric",
        ),
    ],
)
def test_malformed_calibration(tmp_path: Path, data: dict, reason: str) -> None:
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(data))
    with pytest.raises(FormatError, match=reason):
        read_aic24_calibration(path)


def test_calibration_invalid_json_names_line(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    path.write_text('{\n "homography matrix": [1, 2,\n')
    with pytest.raises(FormatError) as err:
        read_aic24_calibration(path)
    assert err.value.line is not None and "invalid JSON" in str(err.value)


def test_writer_refuses_singular_homography(tmp_path: Path) -> None:
    calib = _calibration()
    calib.homography = np.zeros((3, 3))
    with pytest.raises(FormatError, match="singular"):
        write_aic24_calibration(tmp_path / "c.json", calib)
    assert not (tmp_path / "c.json").exists()


def test_aic24_folder_layout(tmp_path: Path) -> None:
    assert aic24_scene_dirname(1) == "scene_001" and aic24_camera_dirname(123) == "camera_0123"
    split = tmp_path / "train"
    for scene in (2, 1):
        for cam in (12, 3):
            write_aic24_calibration(
                split / aic24_scene_dirname(scene) / aic24_camera_dirname(cam) / "calibration.json",
                _calibration(),
            )
    write_aic24_ground_truth(split / "scene_001" / "ground_truth.txt", _gt_table())
    (tmp_path / "val" / "scene_005" / "camera_0001").mkdir(parents=True)
    (split / "notes").mkdir()
    assert [p.name for p in list_aic24_scenes(tmp_path, "train")] == ["scene_001", "scene_002"]
    assert [p.name for p in list_aic24_scenes(tmp_path)] == ["scene_001", "scene_002", "scene_005"]
    assert [p.name for p in list_aic24_scenes(split)] == ["scene_001", "scene_002"]
    scene = load_aic24_scene(split / "scene_001")
    assert scene.scene_id == 1 and [c.camera_id for c in scene.cameras] == [3, 12]
    assert scene.cameras[0].video == split / "scene_001" / "camera_0003" / "video.mp4"
    np.testing.assert_allclose(scene.read_ground_truth(), _gt_table(), atol=1e-6)
    assert scene.cameras[1].read_calibration().projection.shape == (3, 4)
    assert load_aic24_scene(split / "scene_002").ground_truth is None
    with pytest.raises(FormatError, match="scene_XXX"):
        load_aic24_scene(split / "notes")
    (split / "scene_009").mkdir()
    with pytest.raises(FormatError, match="no camera"):
        load_aic24_scene(split / "scene_009")


def test_aic23_scene_with_labels(tmp_path: Path) -> None:
    scene_dir = tmp_path / "validation" / aic23_scene_dirname(5)
    assert scene_dir.name == "S005" and aic23_camera_dirname(27) == "c027"
    labels = np.array([[0, 3, 10, 20, 30, 40, 1, -1, -1, -1], [1, 3, 11, 21, 30, 40, 1, -1, -1, -1]], float)
    for cam in (27, 26):
        write_mot(scene_dir / f"c0{cam}" / "label.txt", labels, kind="gt", min_frame=0)
        write_aic24_calibration(scene_dir / f"c0{cam}" / "calibration.json", _calibration())
    scene = load_aic23_scene(scene_dir)
    assert scene.scene_id == 5 and [c.camera_id for c in scene.cameras] == [26, 27]
    np.testing.assert_array_equal(scene.cameras[0].read_labels()[:, :2], labels[:, :2])
    assert scene.cameras[1].read_calibration().homography.shape == (3, 3)
    assert list_aic23_scenes(tmp_path) == [scene_dir]


def test_aic19_calibration_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "calibration.txt"
    path.write_text(
        "Homography matrix: 4.5e-05 -1.2e-04 4.2e-02;1.1e-05 2.2e-05 -2.3e-03;-9.9e-09 2.0e-07 -3.1e-04\n"
        "Reprojection error: 1.25\n"
    )
    calib = read_aic19_calibration(path)
    assert calib.homography[0, 2] == pytest.approx(4.2e-02) and calib.homography[2, 0] == pytest.approx(
        -9.9e-09
    )
    assert calib.intrinsics is None and calib.distortion is None and calib.reprojection_error == 1.25
    fisheye = Aic19Calibration(
        homography=calib.homography,
        intrinsics=np.array([[1300.0, 0, 960], [0, 1300, 540], [0, 0, 1]]),
        distortion=np.array([-0.3, 0.1, 0.001, -0.0002]),
    )
    write_aic19_calibration(tmp_path / "out.txt", fisheye)
    text = (tmp_path / "out.txt").read_text()
    assert (
        "Intrinsic parameter matrix: 1300.0 0.0 960.0;" in text
        and "Distortion coefficients: -0.3 0.1" in text
    )
    back = read_aic19_calibration(tmp_path / "out.txt")
    np.testing.assert_array_equal(back.homography, fisheye.homography)
    np.testing.assert_array_equal(back.intrinsics, fisheye.intrinsics)
    np.testing.assert_array_equal(back.distortion, fisheye.distortion)


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        ("Homography matrix: 1 0 0;0 1 0\n", 1, "3x3"),
        ("Homography matrix: 1 0 0;0 1 0;0 0 q\n", 1, "non-numeric"),
        ("Reprojection error: 1\nFocal: 3\n", 2, "unknown"),
        ("Reprojection error: 1\n", None, "missing"),
        ("Homography matrix: 1 1 1;1 1 1;1 1 1\n", 1, "singular"),
        ("Distortion coefficients: 1 2\nHomography matrix: 1 0 0;0 1 0;0 0 1\n", 1, "distortion"),
    ],
)
def test_malformed_aic19_calibration(tmp_path: Path, content: str, line: int | None, reason: str) -> None:
    path = tmp_path / "calibration.txt"
    path.write_text(content)
    with pytest.raises(FormatError) as err:
        read_aic19_calibration(path)
    assert err.value.line == line and reason in str(err.value)


def test_cam_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "S02.txt"
    path.write_text("c006 0\nc007 0.061\n\nc008 0.421\n")
    assert read_cam_timestamps(path) == {"c006": 0.0, "c007": 0.061, "c008": 0.421}
    write_cam_timestamps(tmp_path / "out.txt", {"c010": 1.5, "c002": 0.1 + 0.2})
    assert read_cam_timestamps(tmp_path / "out.txt") == {"c002": 0.1 + 0.2, "c010": 1.5}
    path.write_text("c006 0\nc006 1\n")
    with pytest.raises(FormatError, match="twice"):
        read_cam_timestamps(path)
    path.write_text("c006 zero\n")
    with pytest.raises(FormatError, match="not a number"):
        read_cam_timestamps(path)


def test_aic19_scene_layout(tmp_path: Path) -> None:
    scene_dir = tmp_path / "train" / "S01"
    write_cam_timestamps(tmp_path / "cam_timestamp" / "S01.txt", {"c001": 0.0, "c002": 1.64})
    gt = np.array([[1, 5, 10, 20, 30, 40, 1, -1, -1, -1]], float)
    for name in ("c002", "c001"):
        write_mot(scene_dir / name / "gt" / "gt.txt", gt, kind="gt")
        write_mot(scene_dir / name / "det" / "det_yolo3.txt", gt, kind="det")
        write_mot(scene_dir / name / "det" / "det_ssd512.txt", gt, kind="det")
        write_aic19_calibration(scene_dir / name / "calibration.txt", Aic19Calibration(homography=np.eye(3)))
    scene = load_aic19_scene(scene_dir)
    assert scene.name == "S01" and [c.name for c in scene.cameras] == ["c001", "c002"]
    assert scene.timestamps == {"c001": 0.0, "c002": 1.64}
    cam = scene.cameras[1]
    assert cam.camera_id == 2 and sorted(cam.dets) == ["ssd512", "yolo3"] and cam.gt is not None
    assert cam.video.name == "vdo.avi" and cam.roi.name == "roi.jpg"
    np.testing.assert_array_equal(cam.read_calibration().homography, np.eye(3))
    (tmp_path / "cam_timestamp" / "S01.txt").unlink()
    assert load_aic19_scene(scene_dir).timestamps is None


BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe"


@pytest.mark.parametrize(
    "reader",
    [read_aic24_ground_truth, read_track1, read_aic24_calibration, read_aic19_calibration, read_cam_timestamps],
)
def test_binary_file_is_a_format_error(tmp_path: Path, reader) -> None:
    path = tmp_path / "not_text.txt"
    path.write_bytes(BINARY)
    with pytest.raises(FormatError, match="not a UTF-8 text file") as err:
        reader(path)
    assert err.value.path == str(path) and str(path) in str(err.value)
