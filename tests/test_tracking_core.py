"""Kalman filters, matching functions and post-processing against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from citytrack.tracking.base import drop_crowded_appearance
from citytrack.tracking.kalman import SortKalman, XyahKalman, XywhKalman
from citytrack.tracking.matching import (
    CHI2INV95,
    INFTY_COST,
    covered_fraction,
    embedding_distance,
    fuse_score,
    gallery_distance,
    gate_cost_matrix,
    giou,
    height_iou,
    iou_distance,
    iou_matrix,
    linear_assignment,
    min_cost_matching,
)
from citytrack.tracking.postprocess import (
    filter_short_tracks,
    gaussian_smoothed_interpolation,
    linear_interpolation,
    remove_border_boxes,
)
from citytrack.tracking.track import TrackSet


def _reference_step(kf, mean, cov, z):
    """Textbook single-track predict + update with explicit F, H, Q, R matrices."""
    n, m = kf.ndim_x, kf.ndim_z
    F = np.eye(n)
    for i in range(n - m):
        F[i, m + i] = 1
    if isinstance(kf, SortKalman) and mean[6] + mean[2] <= 0:
        mean = mean.copy()
        mean[6] = 0
    Q = np.diag(np.square(kf._process_std(mean[None])[0]))
    mean, cov = F @ mean, F @ cov @ F.T + Q
    H = np.eye(m, n)
    R = np.diag(np.square(kf._measurement_std(mean[None])[0]))
    S = H @ cov @ H.T + R
    K = cov @ H.T @ np.linalg.inv(S)
    return mean + K @ (z - H @ mean), (np.eye(n) - K @ H) @ cov


@pytest.mark.parametrize("kf", [XyahKalman(), XywhKalman(), SortKalman()])
def test_batched_kalman_equals_per_track_reference(kf) -> None:
    rng = np.random.default_rng(0)
    boxes = np.c_[rng.uniform(0, 500, (6, 2)), rng.uniform(20, 80, (6, 1)), rng.uniform(60, 200, (6, 1))]
    mean, cov = kf.initiate(kf.boxes_to_measurements(boxes))
    mean[:, kf.ndim_z :] = rng.normal(0, 2, (6, kf.ndim_x - kf.ndim_z))
    z = kf.boxes_to_measurements(boxes + rng.normal(0, 3, boxes.shape))
    pm, pc = kf.predict(mean, cov)
    bm, bc = kf.update(pm, pc, z)
    for i in range(6):
        rm, rc = _reference_step(kf, mean[i], cov[i], z[i])
        np.testing.assert_allclose(bm[i], rm, rtol=1e-9, atol=1e-8)
        np.testing.assert_allclose(bc[i], rc, rtol=1e-7, atol=1e-7)


def test_box_roundtrip_and_gating_distance() -> None:
    kf = XyahKalman()
    boxes = np.array([[10.0, 20.0, 30.0, 60.0], [100.0, 50.0, 40.0, 100.0]])
    np.testing.assert_allclose(kf.states_to_boxes(kf.initiate(kf.boxes_to_measurements(boxes))[0]), boxes)
    mean, cov = kf.initiate(kf.boxes_to_measurements(boxes))
    z = kf.boxes_to_measurements(boxes)
    d = kf.gating_distance(mean, cov, z)
    zm, s = kf.project(mean, cov)
    diff = z[1] - zm[0]
    assert d[0, 1] == pytest.approx(diff @ np.linalg.inv(s[0]) @ diff)
    assert d[0, 0] == pytest.approx(0.0) and d[0, 1] > CHI2INV95[4]


def test_iou_family_hand_computed() -> None:
    a = np.array([[0.0, 0.0, 10.0, 10.0]])
    b = np.array([[5.0, 0.0, 10.0, 10.0], [20.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]])
    np.testing.assert_allclose(iou_matrix(a, b), [[50 / 150, 0.0, 1.0]])
    np.testing.assert_allclose(iou_distance(a, b), [[1 - 50 / 150, 1.0, 0.0]])
    # enclosing box of a and b[1] is 30x10 = 300, union 200 -> giou = 0 - 100/300
    np.testing.assert_allclose(giou(a, b)[0, 1], -100 / 300)
    # same row, vertical overlap 1 -> height IoU equals IoU; shifted down by 5 halves it
    c = np.array([[0.0, 5.0, 10.0, 10.0]])
    np.testing.assert_allclose(height_iou(a, c), iou_matrix(a, c) * (5 / 15))
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_embedding_and_gallery_distance() -> None:
    t = np.array([[1.0, 0.0], [0.0, 2.0]])
    d = np.array([[3.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(embedding_distance(t, d), [[0, 1 - 2**-0.5], [1, 1 - 2**-0.5]], atol=1e-12)
    gallery = np.zeros((2, 3, 2))
    gallery[0, :2] = [[1, 0], [0, 1]]
    np.testing.assert_allclose(gallery_distance(gallery, np.array([2, 0]), d), [[0, 1 - 2**-0.5], [1, 1]])


def test_covered_fraction_is_intersection_over_own_area() -> None:
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [2, 2, 4, 4], [100, 100, 100, 120]], dtype=float)
    # A half inside B (and C inside A covers 4%), B half inside A, C wholly inside A, D zero-area
    np.testing.assert_allclose(covered_fraction(boxes), [0.5, 0.5, 1.0, 0.0])
    assert covered_fraction(boxes[:1]).tolist() == [0.0]


def test_drop_crowded_appearance_zeroes_only_crowded_rows_among_the_candidates() -> None:
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [40, 0, 50, 10]], dtype=float)
    feats = np.ones((3, 2))
    assert drop_crowded_appearance(feats, boxes, np.arange(3), None) is feats
    out = drop_crowded_appearance(feats, boxes, np.arange(3), 0.4)
    np.testing.assert_array_equal(out, [[0, 0], [0, 0], [1, 1]])
    assert feats.sum() == 6  # the input is not modified
    # box 1 is not a candidate (a low-score box): box 0 is then alone
    np.testing.assert_array_equal(drop_crowded_appearance(feats, boxes, np.array([0, 2]), 0.4), feats)


def test_zero_embedding_leaves_the_track_appearance_unchanged() -> None:
    tracks = TrackSet(ndim_x=8, gallery_budget=3)
    tracks.add(np.zeros((2, 8)), np.tile(np.eye(8), (2, 1, 1)), np.array([1, 2]), 1, np.ones(2), np.arange(2),
               features=np.array([[1.0, 0.0], [0.0, 0.0]]))
    assert tracks.gallery_count.tolist() == [1, 0]
    tracks.set_features(np.array([0, 1]), np.array([[0.0, 0.0], [0.0, 3.0]]), alpha=0.9)
    np.testing.assert_allclose(tracks.feature, [[1, 0], [0, 1]])
    assert tracks.gallery_count.tolist() == [1, 1]


def test_fuse_and_gate() -> None:
    cost = np.array([[0.2, 0.6]])
    np.testing.assert_allclose(fuse_score(cost, np.array([0.5, 1.0])), [[1 - 0.8 * 0.5, 0.6]])
    gated = gate_cost_matrix(cost, np.array([[1.0, 10.0]]))
    np.testing.assert_allclose(gated, [[0.2, INFTY_COST]])


def test_linear_assignment_respects_threshold() -> None:
    cost = np.array([[0.1, 0.9, 0.9], [0.9, 0.95, 0.2]])
    matches, ur, uc = linear_assignment(cost, thresh=0.5)
    assert matches.tolist() == [[0, 0], [1, 2]] and ur.tolist() == [] and uc.tolist() == [1]
    matches, ur, uc = linear_assignment(cost, thresh=0.15)
    assert matches.tolist() == [[0, 0]] and ur.tolist() == [1] and uc.tolist() == [1, 2]
    m, ur, uc = linear_assignment(np.zeros((0, 3)), 0.5)
    assert len(m) == 0 and uc.tolist() == [0, 1, 2]
    matches, ur, uc = min_cost_matching(cost, 0.5)
    assert matches.tolist() == [[0, 0], [1, 2]]


def _mot(rows):
    t = np.full((len(rows), 10), -1.0)
    t[:, :6] = rows
    t[:, 6] = 1
    return t


def test_linear_interpolation_fills_gaps_up_to_max_gap() -> None:
    table = _mot([[1, 1, 0, 0, 10, 10], [4, 1, 30, 0, 10, 10], [20, 1, 0, 0, 10, 10], [1, 2, 5, 5, 5, 5]])
    out = linear_interpolation(table, max_gap=5)
    track1 = out[out[:, 1] == 1]
    assert track1[:, 0].tolist() == [1, 2, 3, 4, 20]  # the 15-frame gap is too long
    np.testing.assert_allclose(track1[1:3, 2], [10, 20])
    smooth = gaussian_smoothed_interpolation(table, max_gap=5)
    assert len(smooth) == len(out)


def test_border_and_short_track_filters() -> None:
    table = _mot([[1, 1, 0, 10, 10, 10], [1, 2, 50, 50, 10, 10], [2, 2, 50, 50, 10, 10], [1, 3, 90, 50, 10, 10]])
    assert remove_border_boxes(table, 100, 100)[:, 1].tolist() == [2, 2]
    assert filter_short_tracks(table, 2)[:, 1].tolist() == [2, 2]


@pytest.mark.parametrize("name", ["sort", "deepsort", "bytetrack", "botsort"])
def test_trackers_drop_non_finite_and_empty_boxes(name: str, config_dir) -> None:
    """A NaN or zero-size detection must not poison the Kalman state (NaN output, singular S)."""
    import hydra
    from omegaconf import OmegaConf

    tracker = hydra.utils.instantiate(OmegaConf.load(config_dir / "tracker" / f"{name}.yaml"))
    tracker.reset(frame_rate=30)
    good = np.array([[100.0, 100.0, 40.0, 100.0, 0.9], [300.0, 120.0, 40.0, 100.0, 0.9]])
    bad = np.array([[np.nan, 10.0, 40.0, 100.0, 0.9], [50.0, 50.0, 0.0, 100.0, 0.9], [60.0, 60.0, 30.0, 0.0, 0.9]])
    out = None
    for f in range(1, 8):
        step = good + [f * 2.0, 0, 0, 0, 0]
        out = tracker.update(np.vstack([bad, step]), frame=f)
        assert np.isfinite(out[:, :6]).all(), f"{name} frame {f}"
    assert len(out) == 2
    # det_index names rows of the input (the two good rows come after the three bad ones)
    assert sorted(out[:, 6].astype(int).tolist()) == [3, 4]


def test_border_removal_refuses_an_unknown_image_size() -> None:
    from citytrack.tracking.postprocess import remove_border_boxes

    table = np.array([[1, 1, 10, 10, 20, 40, 1, -1, -1, -1]], dtype=float)
    assert len(remove_border_boxes(table, 100, 100, margin=5)) == 1
    with pytest.raises(ValueError, match="image size"):
        remove_border_boxes(table, 0, 0, margin=5)
