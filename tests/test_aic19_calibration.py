"""AI City 2019 `calibration.txt`: every form the real files come in, every refusal with file and line,
and the fisheye lens model carried into `CameraCalibration` (undistort before the homography)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from citytrack.data.formats.aicity import Aic19Calibration, read_aic19_calibration, write_aic19_calibration
from citytrack.data.formats.errors import FormatError
from citytrack.multicam.calibration import (
    CalibrationError,
    CameraCalibration,
    calibration_from_aicity,
    look_at_rotation,
    stack_calibrations,
)

# a GPS -> pixel homography of the size the real files have (entries from 1e-9 to 1e-2)
H_TEXT = "4.5e-05 -1.2e-04 4.2e-02;1.1e-05 2.2e-05 -2.3e-03;-9.9e-09 2.0e-07 -3.1e-04"
H = np.array([[4.5e-05, -1.2e-04, 4.2e-02], [1.1e-05, 2.2e-05, -2.3e-03], [-9.9e-09, 2.0e-07, -3.1e-04]])
K_TEXT = "500 0 320;0 500 240;0 0 1"
K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
DIST = np.array([-0.25, 0.08, 0.001, -0.0005])


def _write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "calibration.txt"
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)  # bytes: \r\n stays as written
    return path


@pytest.mark.parametrize(
    ("content", "reprojection_error", "lens"),
    [
        (f"Homography matrix: {H_TEXT}\nReprojection error: 2.5\n", 2.5, False),
        (f"Homography matrix: {H_TEXT}\n", None, False),
        (f"{H_TEXT}\n", None, False),  # the bare line of a real S03 camera
        (f"{H_TEXT};\nReprojection error: 0\n", 0.0, False),  # bare, trailing ';'
        (f"Homography matrix: {H_TEXT}\r\nReprojection error: 1.25\r\n", 1.25, False),  # Windows
        (
            f"\r\n\r\nHomography matrix: {H_TEXT}   \r\n\r\n\r\nReprojection error: 1.25 \t\r\n\r\n",
            1.25,
            False,
        ),
        (f"\ufeffHomography matrix: {H_TEXT}\r\n", None, False),  # a byte-order mark from a Windows editor
        (f"Reprojection error: 3\nhomography  MATRIX : {H_TEXT}\n", 3.0, False),  # order and key spacing
        (
            f"Intrinsic parameter matrix: {K_TEXT}\r\nDistortion coefficients: "
            + " ".join(map(str, DIST))
            + f"\r\nHomography matrix: {H_TEXT}\r\nReprojection error: 4.75\r\n",
            4.75,
            True,
        ),
    ],
)
def test_every_accepted_form(
    tmp_path: Path, content: str, reprojection_error: float | None, lens: bool
) -> None:
    calib = read_aic19_calibration(_write(tmp_path, content))
    np.testing.assert_array_equal(calib.homography, H)
    assert calib.reprojection_error == reprojection_error
    if lens:
        np.testing.assert_array_equal(calib.intrinsics, K)
        np.testing.assert_array_equal(calib.distortion, DIST)
    else:
        assert calib.intrinsics is None and calib.distortion is None


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        (f"Homography matrix: {H_TEXT.replace('-3.1e-04', 'x')}\n", 1, "non-numeric"),
        (f"Homography matrix: {H_TEXT.replace('-3.1e-04', 'nan')}\n", 1, "non-finite"),
        ("Homography matrix: 1 0 0;0 1 0 0;0 0 1\n", 1, "3x3"),
        ("Homography matrix: 1 0 0;0 1 0\n", 1, "3x3"),
        ("\n\n1 0 0;0 1 0;0 0\n", 3, "3x3"),  # a bare line with 8 entries
        ("Reprojection error: 1.5\r\n", None, "missing 'Homography matrix"),
        ("\n\nHomography matrix: 1 2 3;2 4 6;0 0 1\n", 3, "singular"),
        ("Reprojection error: 1\n\n1 2 3;2 4 6;1 1 1\n", 3, "singular"),  # bare and singular
        (f"Homography matrix: {H_TEXT}\n{H_TEXT}\n", 2, "twice"),
        (f"Focal length: 3\nHomography matrix: {H_TEXT}\n", 1, "unknown calibration line"),
        (f"Homography matrix: {H_TEXT}\nhello\n", 2, "unknown calibration line"),
        (f"Homography matrix: {H_TEXT}\nReprojection error: small\n", 2, "non-numeric"),
        (f"Homography matrix: {H_TEXT}\nReprojection error: 1 2\n", 2, "one number"),
        (f"Intrinsic parameter matrix: {K_TEXT}\nHomography matrix: {H_TEXT}\n", 1, "distortion is missing"),
        (
            f"Homography matrix: {H_TEXT}\nDistortion coefficients: -0.2 0.05 0 0\n",
            2,
            "intrinsics is missing",
        ),
        (
            f"Intrinsic parameter matrix: {K_TEXT}\nDistortion coefficients: -0.2 0.05 0\nHomography matrix: {H_TEXT}",
            2,
            "distortion coefficients, got 3",
        ),
        (
            f"Intrinsic parameter matrix: -{K_TEXT}\nDistortion coefficients: 0 0 0 0\nHomography matrix: {H_TEXT}\n",
            1,
            "positive focal",
        ),
        ("Intrinsic parameter matrix: 500 0 320;0 500 240\n", 1, "3x3"),
    ],
)
def test_every_refusal_names_file_and_line(
    tmp_path: Path, content: str, line: int | None, reason: str
) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(FormatError) as err:
        read_aic19_calibration(path)
    assert err.value.path == str(path) and err.value.line == line
    assert reason in err.value.reason
    assert str(err.value).startswith(f"{path}:{line}:" if line is not None else f"{path}:")


def test_writer_refuses_half_a_lens_model_and_round_trips_a_fisheye(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="both intrinsics and distortion"):
        write_aic19_calibration(tmp_path / "half.txt", Aic19Calibration(homography=H, intrinsics=K))
    assert not (tmp_path / "half.txt").exists()
    write_aic19_calibration(tmp_path / "fish.txt", Aic19Calibration(H, K, DIST, 1.5))
    back = read_aic19_calibration(tmp_path / "fish.txt")
    for a, b in ((back.homography, H), (back.intrinsics, K), (back.distortion, DIST)):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- fisheye round trip
def _brown_conrady(uv_undistorted: np.ndarray) -> np.ndarray:
    """The k1 k2 p1 p2 model written out (the oracle; the code under test goes through OpenCV)."""
    k1, k2, p1, p2 = DIST
    x = (uv_undistorted[:, 0] - K[0, 2]) / K[0, 0]
    y = (uv_undistorted[:, 1] - K[1, 2]) / K[1, 1]
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 * r2
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.column_stack([K[0, 0] * xd + K[0, 2], K[1, 1] * yd + K[1, 2]])


def _pinhole_homography() -> np.ndarray:
    """Ground -> undistorted image of a camera 8 m up, 20 m back, looking at the origin (metres)."""
    R = look_at_rotation([0.0, -20.0, 8.0], [0.0, 0.0, 0.0])
    P = K @ np.hstack([R, -R @ np.array([[0.0], [-20.0], [8.0]])])
    return P[:, [0, 1, 3]]


def test_fisheye_file_undistorts_before_the_homography(tmp_path: Path) -> None:
    homography = _pinhole_homography()
    h_text = ";".join(" ".join(repr(float(v)) for v in row) for row in homography)
    path = _write(
        tmp_path,
        f"Intrinsic parameter matrix: {K_TEXT}\r\nDistortion coefficients: {' '.join(map(str, DIST))}\r\n"
        f"Homography matrix: {h_text}\r\nReprojection error: 3.1\r\n",
    )
    cam = calibration_from_aicity(read_aic19_calibration(path), image_size=(640, 480))
    assert cam.has_lens
    xs, ys = np.meshgrid(np.linspace(-6, 6, 7), np.linspace(-8, 10, 7))
    ground = np.column_stack([xs.ravel(), ys.ravel()])
    undistorted = CameraCalibration(homography).ground_to_image(ground)
    pixels = _brown_conrady(undistorted)
    assert ((pixels >= 0) & (pixels < [640, 480])).all()  # the round trip is tested inside the image
    np.testing.assert_allclose(cam.ground_to_image(ground), pixels, atol=1e-6)
    np.testing.assert_allclose(cam.image_to_ground(pixels), ground, atol=1e-6)
    np.testing.assert_allclose(cam.undistort(pixels), undistorted, atol=1e-6)
    # the lens matters: the homography alone puts the distorted pixels decimetres away
    assert np.abs(CameraCalibration(homography).image_to_ground(pixels) - ground).max() > 0.2
    # NaN stays NaN, and a point above the horizon still maps to NaN after undistortion
    out = cam.image_to_ground(np.array([[np.nan, 100.0], [320.0, 0.0]]))
    assert np.isnan(out).all()


def test_lens_model_is_checked_and_kept_out_of_the_batched_functions() -> None:
    homography = _pinhole_homography()
    with pytest.raises(CalibrationError, match="both intrinsics and distortion"):
        CameraCalibration(homography, intrinsics=K)
    with pytest.raises(CalibrationError, match="distortion coefficients, got 3"):
        CameraCalibration(homography, intrinsics=K, distortion=DIST[:3])
    cam = CameraCalibration.from_homography(homography, (640, 480), K, DIST)
    with pytest.raises(CalibrationError, match="lens distortion"):
        stack_calibrations([CameraCalibration(homography), cam])
    with pytest.raises(CalibrationError, match="lens distortion"):
        cam.to_torch()
    # from_homography orients H by the (undistorted) image centre whatever sign the file has
    flipped = CameraCalibration.from_homography(-homography, (640, 480), K, DIST)
    np.testing.assert_allclose(flipped.homography, cam.homography)
    assert np.isfinite(flipped.image_to_ground(np.array([[320.0, 400.0]]))).all()
