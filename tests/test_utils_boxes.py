"""The one home of box conversions and of the singular-homography test."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from citytrack.utils.boxes import cxcywh_to_xyxy, xywh_to_xyxy, xyxy_to_xywh


def test_box_conversions_round_trip_and_keep_extra_columns() -> None:
    dets = np.array([[10.0, 20.0, 30.0, 40.0, 0.9], [0.0, 0.0, 1.0, 2.0, 0.1]])
    xyxy = xywh_to_xyxy(dets)
    np.testing.assert_array_equal(xyxy[:, :4], [[10, 20, 40, 60], [0, 0, 1, 2]])
    np.testing.assert_array_equal(xyxy[:, 4], dets[:, 4])
    np.testing.assert_array_equal(xyxy_to_xywh(xyxy), dets)
    assert dets[0, 2] == 30.0  # the input is not modified


def test_cxcywh_to_xyxy_numpy_and_torch_agree() -> None:
    boxes = np.array([[50.0, 40.0, 20.0, 10.0]])
    expected = [[40.0, 35.0, 60.0, 45.0]]
    np.testing.assert_array_equal(cxcywh_to_xyxy(boxes), expected)
    np.testing.assert_array_equal(cxcywh_to_xyxy(torch.from_numpy(boxes)).numpy(), expected)


@pytest.mark.parametrize("tiny", [1e-12, 1e-13])
def test_reader_and_camera_calibration_share_the_singular_homography_test(tiny: float, tmp_path) -> None:
    """A nearly singular H that `matrix_rank` used to accept is refused by both, with the same test."""
    from citytrack.data.formats.aicity import read_aic19_calibration
    from citytrack.data.formats.errors import FormatError
    from citytrack.multicam.calibration import CalibrationError, CameraCalibration, is_singular_homography

    H = np.array([[1.0, 2.0, 0.0], [2.0, 4.0 + tiny, 0.0], [0.0, 0.0, 1.0]])  # rows nearly dependent
    assert np.linalg.matrix_rank(H) == 3
    assert is_singular_homography(H)
    path = tmp_path / "calibration.txt"
    path.write_text("Homography matrix: " + ";".join(" ".join(repr(float(v)) for v in row) for row in H) + "\n")
    with pytest.raises(FormatError, match="singular"):
        read_aic19_calibration(path)
    with pytest.raises(CalibrationError, match="singular"):
        CameraCalibration.from_homography(H)
    assert not is_singular_homography(np.diag([1e-6, 1.0, 1e4]))  # units alone do not make H singular
