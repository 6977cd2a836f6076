"""CMC / mAP under the Market-1501 protocol, k-reciprocal re-ranking, the torchmetrics Metric, the picture."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from citytrack.eval.reid_metrics import ReIDMetric, draw_ranking, evaluate_rank, re_ranking

Q_PIDS = np.array([1, 2, 9])
Q_CAMS = np.array([0, 0, 0])
G_PIDS = np.array([1, 1, 2, 3, 2, -1])
G_CAMS = np.array([0, 1, 1, 1, 0, 1])
DIST = np.array(
    [
        # g0 same id+cam (excluded), g3 wrong, g2 wrong, g1 true, g4 wrong, g5 junk
        [0.1, 0.5, 0.3, 0.2, 0.9, 0.05],
        # g4 same id+cam (excluded), g2 true first
        [0.4, 0.6, 0.2, 0.8, 0.1, 0.05],
        # pid 9 has no gallery match: skipped
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    ]
)


def test_cmc_map_with_same_camera_exclusion() -> None:
    cmc, mAP, valid = evaluate_rank(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=5)
    assert valid.tolist() == [True, True, False]
    # query 0: first true match at rank 3 (AP 1/3); query 1: rank 1 (AP 1)
    np.testing.assert_allclose(cmc, [0.5, 0.5, 1.0, 1.0, 1.0])
    assert mAP == pytest.approx((1 / 3 + 1) / 2)


def test_without_exclusion_the_same_camera_duplicate_would_win() -> None:
    cams = np.array([1, 1, 1, 1, 2, 1])  # g0 and g4 now seen by other cameras than the queries
    cmc, _, _ = evaluate_rank(DIST, Q_PIDS, G_PIDS, Q_CAMS, cams, max_rank=3)
    assert cmc[0] == pytest.approx(1.0)


def test_average_precision_two_matches() -> None:
    dist = np.array([[0.1, 0.2, 0.3, 0.4]])
    cmc, mAP, _ = evaluate_rank(dist, np.array([5]), np.array([5, 7, 5, 8]), np.array([0]), np.array([1, 1, 2, 1]))
    assert mAP == pytest.approx((1.0 + 2.0 / 3.0) / 2.0)
    assert cmc[0] == 1.0


def test_shape_mismatch_and_no_valid_query_raise() -> None:
    with pytest.raises(ValueError, match="does not match"):
        evaluate_rank(DIST, Q_PIDS[:2], G_PIDS, Q_CAMS, G_CAMS)
    with pytest.raises(ValueError, match="no query"):
        evaluate_rank(np.zeros((1, 2)), np.array([1]), np.array([1, 2]), np.array([0]), np.array([0, 0]))


def _toy_points() -> tuple[np.ndarray, np.ndarray]:
    q = np.array([[0.0, 0.0]])
    wrong = np.array([[0.5, 0.0], [0.9, 0.0], [0.9, 0.1], [0.9, -0.1]])  # b1 is the query's nearest point
    true = np.array([[-0.6, 0.0], [-0.65, 0.1], [-0.65, -0.1], [-0.7, 0.0]])  # a tight cluster the query belongs to
    return q, np.concatenate([wrong, true])


def test_re_ranking_recovers_true_match_in_toy_case() -> None:
    q, g = _toy_points()
    d = lambda a, b: np.linalg.norm(a[:, None] - b[None], axis=2)
    original = d(q, g)
    assert int(np.argmin(original[0])) == 0  # the wrong identity ranks first
    rr = re_ranking(original, d(q, q), d(g, g), k1=4, k2=1, lambda_value=0.3)
    assert rr.shape == original.shape
    assert int(np.argmin(rr[0])) == 4  # the query's own cluster now ranks first
    # lambda = 1 keeps the original order (normalised squared distances)
    same = re_ranking(original, d(q, q), d(g, g), k1=4, k2=1, lambda_value=1.0)
    assert np.argsort(same[0]).tolist() == np.argsort(original[0]).tolist()


def test_metric_accumulates_and_matches_function() -> None:
    torch.manual_seed(0)
    centers = torch.randn(4, 16)
    pids = torch.arange(4).repeat_interleave(3)
    cams = torch.tensor([0, 1, 2] * 4)
    feats = centers[pids] + 0.05 * torch.randn(12, 16)
    is_query = cams == 0
    metric = ReIDMetric(topk=3)
    metric.update(feats[:5], pids[:5], cams[:5], is_query[:5], torch.arange(5))
    metric.update(feats[5:], pids[5:], cams[5:], is_query[5:], torch.arange(5, 12))
    out = metric.compute()
    assert out["rank1"].item() == 1.0 and out["mAP"].item() == pytest.approx(1.0)
    r = metric.last_ranking
    assert r is not None and r.gallery_index.shape == (4, 3) and r.match[:, :2].all()
    # a wrong feature for one query changes the answer
    metric.reset()
    feats2 = feats.clone()
    feats2[0] = centers[1]
    metric.update(feats2, pids, cams, is_query, torch.arange(12))
    assert metric.compute()["rank1"].item() == pytest.approx(0.75)
    metric.reset()
    with pytest.raises(ValueError):
        metric.update(feats, pids[:3], cams, is_query)


def test_rerank_metric_runs() -> None:
    torch.manual_seed(1)
    pids = torch.arange(5).repeat_interleave(4)
    cams = torch.tensor([0, 1, 2, 3] * 5)
    feats = torch.randn(5, 8)[pids] + 0.1 * torch.randn(20, 8)
    metric = ReIDMetric(rerank=True, k1=3, k2=2)
    metric.update(feats, pids, cams, cams == 0)
    assert 0.0 <= metric.compute()["mAP"].item() <= 1.0


def test_draw_ranking_colours() -> None:
    q = np.full((30, 10, 3), 100, np.uint8)
    pic = draw_ranking([q], [[q, q]], np.array([[True, False]]), cell=(40, 20), border=3)
    assert pic.shape == (46, 26 * 3 + 8, 3)
    green_cell, red_cell = pic[:, 26 + 8 : 52 + 8], pic[:, 52 + 8 :]
    assert tuple(green_cell[0, 0]) == (0, 200, 0) and tuple(red_cell[0, 0]) == (220, 0, 0)
