"""HOTA: Higher Order Tracking Accuracy (Luiten et al., IJCV 2021), as TrackEval computes it.

For a localisation threshold ``alpha`` (IoU), detections are matched one-to-one per frame
by the Hungarian algorithm on the score ``A_max(g, p) * S(g, p)`` (``S`` = IoU, ``A_max`` =
the global alignment between the two ids, see below); a pair counts as a true positive
only when ``S >= alpha``. Then

- ``DetA_alpha = |TP| / (|TP| + |FN| + |FP|)`` (detection accuracy),
- ``AssA_alpha = 1/|TP| * sum_{c in TP} A(c)``, with the association IoU of the pair of
  ids of a TP ``c``: ``A(c) = |TPA(c)| / (|TPA(c)| + |FNA(c)| + |FPA(c)|)``
  (``TPA``: TPs with the same gt id and predicted id; ``FNA``: other detections of the gt
  id; ``FPA``: other detections of the predicted id),
- ``HOTA_alpha = sqrt(DetA_alpha * AssA_alpha)``,
- ``LocA_alpha`` = mean IoU of the TPs,
- ``DetRe = TP / (TP + FN)``, ``DetPr = TP / (TP + FP)``,
  ``AssRe`` / ``AssPr`` as ``AssA`` with only ``FNA`` / ``FPA`` in the denominator.

The reported values are the means over ``alpha in {0.05, 0.10, ..., 0.95}`` (19 values).
``A_max``, which makes the matching prefer pairs of ids that are often together, is the
"soft" association IoU computed before any matching:
``potential(g, p) = sum_t S_t(g, p) / (sum_p' S_t(g, p') + sum_g' S_t(g', p) - S_t(g, p))`` and
``A_max = potential / (n_g + n_p - potential)`` (``n_g``, ``n_p``: detections of each id).

Sequences are combined as TrackEval's ``combine_sequences`` does: TP/FN/FP are summed,
AssA/AssRe/AssPr and LocA are averaged weighted by each sequence's TP (per alpha), and the
derived fields are recomputed.

The code follows ``trackeval/metrics/hota.py`` (TrackEval 1.3.0) step by step; the tests
pin it to TrackEval's numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

ALPHAS: np.ndarray = np.arange(0.05, 0.99, 0.05)
"""The 19 localisation thresholds 0.05, 0.10, ..., 0.95 of TrackEval."""

_EPS = np.finfo("float").eps

HOTA_FIELDS: tuple[str, ...] = ("HOTA", "DetA", "AssA", "DetRe", "DetPr", "AssRe", "AssPr", "LocA")


@dataclass
class HotaResult:
    """Per-alpha HOTA counts and scores of one sequence (or of several combined).

    All arrays have shape ``(len(ALPHAS),)``. Scores are fractions in ``[0, 1]``.
    """

    tp: np.ndarray
    fn: np.ndarray
    fp: np.ndarray
    ass_a: np.ndarray
    ass_re: np.ndarray
    ass_pr: np.ndarray
    loc_a: np.ndarray

    @property
    def det_re(self) -> np.ndarray:
        return self.tp / np.maximum(1, self.tp + self.fn)

    @property
    def det_pr(self) -> np.ndarray:
        return self.tp / np.maximum(1, self.tp + self.fp)

    @property
    def det_a(self) -> np.ndarray:
        return self.tp / np.maximum(1, self.tp + self.fn + self.fp)

    @property
    def hota(self) -> np.ndarray:
        return np.sqrt(self.det_a * self.ass_a)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every per-alpha field by its TrackEval name."""
        return {
            "HOTA": self.hota,
            "DetA": self.det_a,
            "AssA": self.ass_a,
            "DetRe": self.det_re,
            "DetPr": self.det_pr,
            "AssRe": self.ass_re,
            "AssPr": self.ass_pr,
            "LocA": self.loc_a,
        }

    def summary(self) -> dict[str, float]:
        """The means over alpha (TrackEval's summary row) as fractions, plus HOTA(0)/LocA(0)."""
        out = {name: float(np.mean(values)) for name, values in self.arrays().items()}
        out["HOTA(0)"] = float(self.hota[0])
        out["LocA(0)"] = float(self.loc_a[0])
        out["HOTA_TP"] = float(np.mean(self.tp))
        return out


def _empty(num_alphas: int) -> HotaResult:
    z = np.zeros(num_alphas)
    return HotaResult(z.copy(), z.copy(), z.copy(), z.copy(), z.copy(), z.copy(), np.ones(num_alphas))


def _relabel(ids_per_frame: Sequence[np.ndarray]) -> tuple[list[np.ndarray], int]:
    """Map arbitrary ids to 0..K-1 over the sequence."""
    non_empty = [np.asarray(i) for i in ids_per_frame if len(i)]
    if not non_empty:
        return [np.zeros(0, dtype=np.int64) for _ in ids_per_frame], 0
    unique = np.unique(np.concatenate(non_empty))
    return [np.searchsorted(unique, np.asarray(i)).astype(np.int64) for i in ids_per_frame], len(unique)


def hota_sequence(
    gt_ids: Sequence[np.ndarray],
    pred_ids: Sequence[np.ndarray],
    similarity: Sequence[np.ndarray],
    alphas: np.ndarray = ALPHAS,
) -> HotaResult:
    """HOTA of one sequence from per-frame ids and gt x prediction similarity (IoU) matrices.

    ``gt_ids[t]`` (G_t,), ``pred_ids[t]`` (P_t,) and ``similarity[t]`` (G_t, P_t) are the
    already preprocessed frame data (ids unique within a frame, any integers).
    """
    if not (len(gt_ids) == len(pred_ids) == len(similarity)):
        raise ValueError("gt_ids, pred_ids and similarity must have one entry per frame")
    alphas = np.asarray(alphas, dtype=float)
    num_alphas = len(alphas)
    gt_ids, num_gt_ids = _relabel(gt_ids)
    pred_ids, num_pred_ids = _relabel(pred_ids)
    num_gt_dets = sum(len(g) for g in gt_ids)
    num_pred_dets = sum(len(p) for p in pred_ids)
    for t, (g, p, s) in enumerate(zip(gt_ids, pred_ids, similarity, strict=True)):
        if np.shape(s) != (len(g), len(p)):
            raise ValueError(f"frame index {t}: similarity has shape {np.shape(s)}, expected {(len(g), len(p))}")

    res = _empty(num_alphas)
    if num_pred_dets == 0:  # as TrackEval: everything is a miss, LocA defined as 1
        res.fn = num_gt_dets * np.ones(num_alphas)
        return res
    if num_gt_dets == 0:
        res.fp = num_pred_dets * np.ones(num_alphas)
        return res

    # Global association: soft (similarity-weighted) co-occurrence of every pair of ids.
    potential = np.zeros((num_gt_ids, num_pred_ids))
    gt_count = np.zeros((num_gt_ids, 1))
    pred_count = np.zeros((1, num_pred_ids))
    for g, p, s in zip(gt_ids, pred_ids, similarity, strict=True):
        s = np.asarray(s, dtype=float)
        denom = s.sum(0)[np.newaxis, :] + s.sum(1)[:, np.newaxis] - s
        sim_iou = np.zeros_like(s)
        mask = denom > 0 + _EPS
        sim_iou[mask] = s[mask] / denom[mask]
        potential[g[:, np.newaxis], p[np.newaxis, :]] += sim_iou
        gt_count[g] += 1
        pred_count[0, p] += 1
    global_alignment = potential / (gt_count + pred_count - potential)

    # Per-frame matching on A_max * S; keep every matched pair and its similarity.
    tp = np.zeros(num_alphas)
    fn = np.zeros(num_alphas)
    fp = np.zeros(num_alphas)
    loc_sum = np.zeros(num_alphas)
    pair_gt: list[np.ndarray] = []
    pair_pred: list[np.ndarray] = []
    pair_sim: list[np.ndarray] = []
    for g, p, s in zip(gt_ids, pred_ids, similarity, strict=True):
        if len(g) == 0:
            fp += len(p)
            continue
        if len(p) == 0:
            fn += len(g)
            continue
        s = np.asarray(s, dtype=float)
        score = global_alignment[g[:, np.newaxis], p[np.newaxis, :]] * s
        rows, cols = linear_sum_assignment(-score)
        sims = s[rows, cols]
        matched = sims[np.newaxis, :] >= alphas[:, np.newaxis] - _EPS  # (A, K)
        n = matched.sum(1)
        tp += n
        fn += len(g) - n
        fp += len(p) - n
        loc_sum += np.where(matched, sims[np.newaxis, :], 0.0).sum(1)
        pair_gt.append(g[rows])
        pair_pred.append(p[cols])
        pair_sim.append(sims)

    # Association scores per alpha from the matched-pair counts of every id pair.
    flat = np.concatenate(pair_gt) * num_pred_ids + np.concatenate(pair_pred)
    sims_all = np.concatenate(pair_sim)
    for a, alpha in enumerate(alphas):
        keep = sims_all >= alpha - _EPS
        matches = np.bincount(flat[keep], minlength=num_gt_ids * num_pred_ids).reshape(
            num_gt_ids, num_pred_ids
        ).astype(float)
        denom_tp = np.maximum(1, tp[a])
        res.ass_a[a] = np.sum(matches * (matches / np.maximum(1, gt_count + pred_count - matches))) / denom_tp
        res.ass_re[a] = np.sum(matches * (matches / np.maximum(1, gt_count))) / denom_tp
        res.ass_pr[a] = np.sum(matches * (matches / np.maximum(1, pred_count))) / denom_tp
    res.tp, res.fn, res.fp = tp, fn, fp
    res.loc_a = np.maximum(1e-10, loc_sum) / np.maximum(1e-10, tp)
    return res


def combine_hota(results: Sequence[HotaResult]) -> HotaResult:
    """Combine sequences as TrackEval's ``HOTA.combine_sequences``.

    TP/FN/FP are summed; AssA, AssRe, AssPr and LocA are TP-weighted means per alpha.
    """
    if not results:
        raise ValueError("combine_hota needs at least one sequence result")
    tp = sum(r.tp for r in results)
    fn = sum(r.fn for r in results)
    fp = sum(r.fp for r in results)

    def weighted(field: str) -> np.ndarray:
        return sum(getattr(r, field) * r.tp for r in results) / np.maximum(1.0, tp)

    loc_weighted = sum(r.loc_a * r.tp for r in results)
    return HotaResult(
        tp=np.asarray(tp, dtype=float),
        fn=np.asarray(fn, dtype=float),
        fp=np.asarray(fp, dtype=float),
        ass_a=weighted("ass_a"),
        ass_re=weighted("ass_re"),
        ass_pr=weighted("ass_pr"),
        loc_a=np.maximum(1e-10, loc_weighted) / np.maximum(1e-10, tp),
    )
