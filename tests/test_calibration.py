"""Camera model: round trips (numpy, torch float32/float64), a hand-computed projection, degenerate input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from citytrack.multicam.calibration import (
    CalibrationError,
    CameraCalibration,
    ground_to_image_batched,
    image_to_ground_batched,
    intrinsics_from_fov,
    invert_homographies,
    look_at_rotation,
    project_batched,
    stack_calibrations,
)


def _camera(center=(-6.0, -4.0, 5.0), target=(1.0, 0.5, 0.0), hfov=70.0, size=(640, 360)) -> CameraCalibration:
    K = intrinsics_from_fov(size[0], size[1], hfov)
    R = look_at_rotation(center, target)
    t = -R @ np.asarray(center)
    return CameraCalibration.from_intrinsics_extrinsics(K, R, t, image_size=size)


def test_hand_computed_projection() -> None:
    # Camera at (0, 0, 10) looking straight down with up=y: x right maps to +x, y down maps to -y.
    K = np.array([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]])
    R = np.array([[1.0, 0, 0], [0, -1.0, 0], [0, 0, -1.0]])
    t = -R @ np.array([0.0, 0.0, 10.0])
    cam = CameraCalibration.from_intrinsics_extrinsics(K, R, t)
    # (2, 3, 0): camera coords (2, -3, 10) -> u = 50 + 100*2/10 = 70, v = 40 - 100*3/10 = 10
    np.testing.assert_allclose(cam.project([[2.0, 3.0, 0.0]]), [[70.0, 10.0]])
    np.testing.assert_allclose(cam.ground_to_image([[2.0, 3.0]]), [[70.0, 10.0]])
    # (1, 1, 5): camera coords (1, -1, 5) -> (70, 20)
    np.testing.assert_allclose(cam.project([[1.0, 1.0, 5.0]]), [[70.0, 20.0]])
    np.testing.assert_allclose(cam.camera_center, [0, 0, 10], atol=1e-12)
    np.testing.assert_allclose(cam.depth([[1.0, 1.0, 5.0]]), [5.0])
    np.testing.assert_allclose(cam.image_to_ground([[70.0, 10.0]]), [[2.0, 3.0]], atol=1e-12)


def test_numpy_round_trip_and_decompose() -> None:
    cam = _camera()
    rng = np.random.default_rng(0)
    xy = rng.uniform(-5, 5, size=(200, 2))
    uv = cam.ground_to_image(xy)
    assert np.all(np.isfinite(uv))
    np.testing.assert_allclose(cam.image_to_ground(uv), xy, atol=1e-9)
    np.testing.assert_allclose(cam.project(np.c_[xy, np.zeros(len(xy))]), uv, atol=1e-9)
    np.testing.assert_allclose(cam.camera_center, [-6, -4, 5], atol=1e-9)
    K, R, t = cam.decompose()
    np.testing.assert_allclose(K, intrinsics_from_fov(640, 360, 70.0), atol=1e-9)
    rebuilt = CameraCalibration.from_intrinsics_extrinsics(K, R, t)
    np.testing.assert_allclose(rebuilt.project([[1.0, 2.0, 1.7]]), cam.project([[1.0, 2.0, 1.7]]), atol=1e-9)
    # A homography-only camera agrees on the ground, even when the file's H has the other sign.
    h_only = CameraCalibration.from_homography(-cam.homography, image_size=(640, 360))
    np.testing.assert_allclose(h_only.image_to_ground(uv), xy, atol=1e-9)
    np.testing.assert_allclose(h_only.ground_to_image(xy), uv, atol=1e-9)
    with pytest.raises(CalibrationError, match="projection"):
        h_only.project([[0.0, 0.0, 0.0]])


def test_projection_sign_is_normalised() -> None:
    cam = _camera()
    flipped = CameraCalibration.from_projection(-cam.projection)
    assert flipped.in_front([[0.0, 0.0, 0.0]]).all()
    np.testing.assert_allclose(flipped.project([[0.5, 0.5, 1.0]]), cam.project([[0.5, 0.5, 1.0]]))


def test_visibility_and_horizon() -> None:
    cam = _camera()
    behind = np.array([[-12.0, -8.0, 0.0]])  # the far side of the camera centre
    assert not cam.in_front(behind)[0]
    assert np.isnan(cam.project(behind)).all()
    assert np.isnan(cam.ground_to_image(behind[:, :2])).all()
    # The horizon: image points with H_inv[2] . (u, v, 1) <= 0 are not on the ground in front.
    Hinv = cam.homography_inv
    u = 320.0
    v_horizon = -(Hinv[2, 0] * u + Hinv[2, 2]) / Hinv[2, 1]
    above = cam.image_to_ground([[u, v_horizon - 5.0], [u, v_horizon]])
    assert np.isnan(above).all()
    below = cam.image_to_ground([[u, v_horizon + 5.0]])
    assert np.isfinite(below).all()
    assert cam.in_image([[10.0, 10.0], [700.0, 10.0]]).tolist() == [True, False]


def test_degenerate_input_raises() -> None:
    with pytest.raises(CalibrationError, match="singular"):
        CameraCalibration.from_homography(np.array([[1.0, 2, 3], [2, 4, 6], [0, 0, 1]]))
    # Camera centre on the ground plane: P[:, [0,1,3]] is singular.
    K = intrinsics_from_fov(100, 100, 60)
    R = look_at_rotation((0, 0, 0), (1, 0, 0))
    with pytest.raises(CalibrationError, match="singular"):
        CameraCalibration.from_intrinsics_extrinsics(K, R, np.zeros(3))
    with pytest.raises(CalibrationError, match="shape"):
        CameraCalibration.from_projection(np.eye(3))
    with pytest.raises(CalibrationError, match="non-finite"):
        CameraCalibration.from_homography(np.full((3, 3), np.nan))
    with pytest.raises(CalibrationError, match="rotation"):
        CameraCalibration.from_intrinsics_extrinsics(K, 2 * np.eye(3), np.ones(3))


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 2e-3)])
def test_batched_torch_round_trip(dtype: torch.dtype, tol: float) -> None:
    cams = [_camera(center=(-6.0, -4.0, 5.0)), _camera(center=(7.0, -3.0, 3.5)), _camera(center=(0.0, 9.0, 8.0))]
    st = stack_calibrations(cams, dtype=dtype)
    rng = np.random.default_rng(1)
    xy = torch.as_tensor(rng.uniform(-3, 3, size=(3, 50, 2)), dtype=dtype)
    uv = ground_to_image_batched(st["H"], xy)
    assert uv.shape == (3, 50, 2) and uv.dtype == dtype
    for c, cam in enumerate(cams):
        np.testing.assert_allclose(uv[c].double().numpy(), cam.ground_to_image(xy[c].double().numpy()), rtol=1e-5, atol=tol * 50)
    back = image_to_ground_batched(st["H_inv"], uv)
    np.testing.assert_allclose(back.double().numpy(), xy.double().numpy(), atol=tol)
    # (N, 3) world points broadcast to every camera.
    xyz = torch.as_tensor(np.c_[xy[0].numpy(), np.full(50, 1.0)], dtype=dtype)
    proj = project_batched(st["P"], xyz)
    assert proj.shape == (3, 50, 2)
    np.testing.assert_allclose(proj[1].double().numpy(), cams[1].project(xyz.double().numpy()), rtol=1e-4, atol=tol * 50)
    np.testing.assert_allclose(invert_homographies(st["H"]).double().numpy(), st["H_inv"].double().numpy(), rtol=1e-4, atol=1e-6)


def test_batched_nan_above_horizon_and_errors() -> None:
    cam = _camera()
    st = stack_calibrations([cam], dtype=torch.float64)
    Hinv = cam.homography_inv
    v_horizon = -(Hinv[2, 0] * 320 + Hinv[2, 2]) / Hinv[2, 1]
    out = image_to_ground_batched(st["H_inv"], torch.tensor([[320.0, v_horizon - 3], [320.0, v_horizon + 40]], dtype=torch.float64))
    assert torch.isnan(out[0, 0]).all() and torch.isfinite(out[0, 1]).all()
    with pytest.raises(ValueError, match="points"):
        image_to_ground_batched(st["H_inv"], torch.zeros(2, 5, 2))
    with pytest.raises(CalibrationError, match="singular"):
        invert_homographies(torch.zeros(2, 3, 3))


def _gps_camera() -> tuple[CameraCalibration, CameraCalibration, np.ndarray]:
    """An 8 m high 1920x1080 camera, and the same camera with H in GPS-like ground coordinates.

    AI City 2019 ships H with lat/lon * 111000 as ground coordinates: `H_gps = H_metric @ A` with
    `A` the affine map GPS-scaled -> metric, so max|H_gps| ~ 1e10 while w is still the depth in metres.
    """
    metric = _camera(center=(0.0, 0.0, 8.0), target=(0.0, 8.0, 0.0), hfov=50.0, size=(1920, 1080))
    origin = np.array([37.3382 * 111000.0, -121.8863 * 111000.0])
    A = np.array([[1.0, 0.0, -origin[0]], [0.0, 1.0, -origin[1]], [0.0, 0.0, 1.0]])
    Hg = metric.homography @ A
    assert np.abs(Hg).max() > 1e10
    return metric, CameraCalibration.from_homography(Hg), origin


def test_gps_scaled_homography_keeps_valid_points() -> None:
    metric, gps, origin = _gps_camera()
    uv = np.array([[960.0, 1079.0], [100.0, 900.0], [1800.0, 700.0]])
    ground = gps.image_to_ground(uv)
    assert np.all(np.isfinite(ground))
    np.testing.assert_allclose(ground - origin, metric.image_to_ground(uv), atol=1e-6)
    # The bottom-centre pixel is ~9 m deep: far below the old `1e-9 * max|H|` (~15) cut-off.
    assert metric.depth(np.c_[ground[:1] - origin, [0.0]])[0] < 1e-9 * np.abs(gps.homography).max()
    back = gps.ground_to_image(ground)
    assert np.all(np.isfinite(back))
    np.testing.assert_allclose(back, uv, atol=1e-3)
    # The documented NaN rule still holds: behind the camera and above the horizon.
    assert np.isnan(gps.ground_to_image(origin + np.array([[0.0, -20.0]]))).all()
    Hinv = gps.homography_inv
    v_horizon = -(Hinv[2, 0] * 960.0 + Hinv[2, 2]) / Hinv[2, 1]
    assert np.isnan(gps.image_to_ground([[960.0, v_horizon], [960.0, v_horizon - 5.0]])).all()
    assert np.isfinite(gps.image_to_ground([[960.0, v_horizon + 5.0]])).all()


def test_gps_scaled_homography_batched() -> None:
    _metric, gps, origin = _gps_camera()
    st = stack_calibrations([gps], dtype=torch.float64)
    uv = torch.tensor([[960.0, 1079.0], [100.0, 900.0]], dtype=torch.float64)
    ground = image_to_ground_batched(st["H_inv"], uv)
    assert torch.isfinite(ground).all()
    back = ground_to_image_batched(st["H"], ground)
    assert torch.isfinite(back).all()
    np.testing.assert_allclose(back[0].numpy(), uv.numpy(), atol=1e-3)
    behind = torch.as_tensor(origin + np.array([[0.0, -20.0]]), dtype=torch.float64)
    assert torch.isnan(ground_to_image_batched(st["H"], behind)).all()
    np.testing.assert_allclose(invert_homographies(st["H"])[0].numpy(), gps.homography_inv, rtol=1e-6)
