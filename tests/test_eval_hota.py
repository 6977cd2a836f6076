"""HOTA on hand-built cases with known answers, and against TrackEval's own HOTA class."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from citytrack.eval.hota import ALPHAS, combine_hota, hota_sequence

HAS_TRACKEVAL = importlib.util.find_spec("trackeval") is not None


def _frames(n: int, ids: list[int], sim: float = 1.0) -> tuple[list, list, list]:
    """One gt object over n frames, predicted id ids[t] with similarity `sim`."""
    g = [np.array([7]) for _ in range(n)]
    p = [np.array([i]) for i in ids]
    s = [np.array([[sim]]) for _ in range(n)]
    return g, p, s


def test_alphas_are_trackevals() -> None:
    assert len(ALPHAS) == 19
    np.testing.assert_allclose(ALPHAS[[0, -1]], [0.05, 0.95])


def test_perfect_tracking_is_100() -> None:
    g = [np.array([1, 2]), np.array([1, 2]), np.array([2])]
    s = [np.eye(2), np.eye(2), np.ones((1, 1))]
    res = hota_sequence(g, g, s).summary()
    for key in ("HOTA", "DetA", "AssA", "LocA", "DetRe", "DetPr", "AssRe", "AssPr"):
        assert res[key] == pytest.approx(1.0), key


def test_one_id_switch_halfway() -> None:
    # 10 frames, prediction id 1 for frames 1-5 then id 2: every detection is a TP (DetA 1).
    # A(g,1) = 5 / (10 + 5 - 5) = 0.5, same for (g,2) -> AssA = (5*0.5 + 5*0.5) / 10 = 0.5.
    g, p, s = _frames(10, [1] * 5 + [2] * 5)
    res = hota_sequence(g, p, s).summary()
    assert res["DetA"] == pytest.approx(1.0)
    assert res["AssA"] == pytest.approx(0.5)
    assert res["AssRe"] == pytest.approx(0.5)  # 5/10 for each pair
    assert res["AssPr"] == pytest.approx(1.0)  # each predicted id only ever on this object
    assert res["HOTA"] == pytest.approx(np.sqrt(0.5))


def test_switch_after_two_of_ten_frames() -> None:
    # pairs (g,1): 2 matches, A = 2/(10+2-2) = 0.2; (g,2): 8 matches, A = 8/10 = 0.8.
    # AssA = (2*0.2 + 8*0.8) / 10 = 0.68
    g, p, s = _frames(10, [1] * 2 + [2] * 8)
    assert hota_sequence(g, p, s).summary()["AssA"] == pytest.approx(0.68)


def test_localisation_threshold_and_loca_convention() -> None:
    # IoU 0.52 is a TP for alpha 0.05..0.50 (10 of 19 thresholds) only.
    g, p, s = _frames(4, [3] * 4, sim=0.52)
    res = hota_sequence(g, p, s)
    assert res.tp.tolist() == [4] * 10 + [0] * 9
    summary = res.summary()
    assert summary["DetA"] == pytest.approx(10 / 19)
    assert summary["HOTA"] == pytest.approx(10 / 19)
    # TrackEval defines LocA as 1 at thresholds without any TP.
    assert summary["LocA"] == pytest.approx((10 * 0.52 + 9 * 1.0) / 19)


def test_false_positives_and_misses() -> None:
    # frame 1: gt 1 matched; frame 2: gt 1 missed, prediction 5 elsewhere (similarity 0).
    g = [np.array([1]), np.array([1])]
    p = [np.array([5]), np.array([5])]
    s = [np.array([[1.0]]), np.array([[0.0]])]
    res = hota_sequence(g, p, s)
    assert res.tp[0] == 1 and res.fn[0] == 1 and res.fp[0] == 1
    # DetA = 1/3; pair (1,5): 1 match, A = 1/(2+2-1) = 1/3
    assert res.summary()["DetA"] == pytest.approx(1 / 3)
    assert res.summary()["AssA"] == pytest.approx(1 / 3)


def test_empty_prediction_and_empty_gt() -> None:
    g, _, _ = _frames(3, [1, 1, 1])
    empty = [np.zeros(0, dtype=int)] * 3
    res = hota_sequence(g, empty, [np.zeros((1, 0))] * 3)
    assert res.fn[0] == 3 and res.summary()["HOTA"] == 0.0
    res = hota_sequence(empty, g, [np.zeros((0, 1))] * 3)
    assert res.fp[0] == 3 and res.summary()["HOTA"] == 0.0


def test_bad_shapes_raise() -> None:
    with pytest.raises(ValueError, match="similarity has shape"):
        hota_sequence([np.array([1])], [np.array([1, 2])], [np.ones((1, 1))])
    with pytest.raises(ValueError, match="one entry per frame"):
        hota_sequence([np.array([1])], [], [])


def test_combine_weights_by_true_positives() -> None:
    a = hota_sequence(*_frames(10, [1] * 5 + [2] * 5))  # AssA 0.5, TP 10
    b = hota_sequence(*_frames(30, [1] * 30))  # AssA 1.0, TP 30
    combined = combine_hota([a, b]).summary()
    assert combined["AssA"] == pytest.approx((10 * 0.5 + 30 * 1.0) / 40)
    assert combined["DetA"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        combine_hota([])


def _random_sequence(rng: np.random.Generator, frames: int = 30) -> tuple[list, list, list]:
    gts, preds, sims = [], [], []
    for _ in range(frames):
        g = rng.choice(8, size=rng.integers(0, 6), replace=False)
        p = rng.choice(10, size=rng.integers(0, 7), replace=False)
        s = rng.uniform(0, 1, size=(len(g), len(p))) * (rng.uniform(size=(len(g), len(p))) < 0.4)
        gts.append(g)
        preds.append(p)
        sims.append(s)
    return gts, preds, sims


@pytest.mark.skipif(not HAS_TRACKEVAL, reason="trackeval (dev extra) is not installed")
def test_matches_trackeval_hota_class_on_random_sequences() -> None:
    from trackeval.metrics import HOTA

    metric = HOTA({"PRINT_CONFIG": False})
    rng = np.random.default_rng(0)
    ours, theirs = [], []
    for _ in range(5):
        g, p, s = _random_sequence(rng)
        ug = np.unique(np.concatenate(g))
        up = np.unique(np.concatenate(p))
        data = {
            "num_tracker_dets": sum(map(len, p)),
            "num_gt_dets": sum(map(len, g)),
            "num_gt_ids": len(ug),
            "num_tracker_ids": len(up),
            "gt_ids": [np.searchsorted(ug, x) for x in g],
            "tracker_ids": [np.searchsorted(up, x) for x in p],
            "similarity_scores": s,
        }
        ref = metric.eval_sequence(data)
        res = hota_sequence(g, p, s)
        for name, values in res.arrays().items():
            np.testing.assert_allclose(values, ref[name], rtol=0, atol=1e-12, err_msg=name)
        ours.append(res)
        theirs.append(ref)
    combined = combine_hota(ours).arrays()
    ref = metric.combine_sequences({str(i): r for i, r in enumerate(theirs)})
    for name, values in combined.items():
        np.testing.assert_allclose(values, ref[name], rtol=0, atol=1e-12, err_msg=name)
