"""Image-ReID evaluation: CMC and mAP (Market-1501 protocol), k-reciprocal re-ranking, a torchmetrics
Metric that accumulates query/gallery features over a validation epoch, and a ranking picture.

Protocol: for each query, gallery images of the same identity seen by the same camera are
removed (they are near-duplicates from the same track and would make retrieval trivial),
and junk images (pid -1) are ignored. Queries with no valid true match are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics import Metric


def cosine_distance(q: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """1 - cos(q, g) for every pair, (Q, G), in float32."""
    q = F.normalize(q.float(), dim=1)
    g = F.normalize(g.float(), dim=1)
    return 1.0 - q @ g.t()


def evaluate_rank(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 50,
) -> tuple[np.ndarray, float, np.ndarray]:
    """Return (CMC curve of length max_rank, mAP, per-query valid flag) under the Market-1501 protocol."""
    distmat = np.asarray(distmat, dtype=np.float64)
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    num_q, num_g = distmat.shape
    if (num_q, num_g) != (len(q_pids), len(g_pids)) or len(q_camids) != num_q or len(g_camids) != num_g:
        raise ValueError(
            f"distance matrix {distmat.shape} does not match {len(q_pids)} query and {len(g_pids)} gallery labels"
        )
    order = np.argsort(distmat, axis=1, kind="stable")
    cmc_sum = np.zeros(max_rank, dtype=np.float64)
    aps: list[float] = []
    valid = np.zeros(num_q, dtype=bool)
    for i in range(num_q):
        idx = order[i]
        keep = ~((g_pids[idx] == q_pids[i]) & (g_camids[idx] == q_camids[i])) & (g_pids[idx] != -1)
        matches = (g_pids[idx][keep] == q_pids[i]).astype(np.float64)
        if matches.sum() == 0:
            continue
        valid[i] = True
        cmc = np.minimum(matches.cumsum(), 1.0)
        if len(cmc) < max_rank:
            cmc = np.concatenate([cmc, np.ones(max_rank - len(cmc))])
        cmc_sum += cmc[:max_rank]
        hits = matches.cumsum()
        precision = hits / np.arange(1, len(matches) + 1)
        aps.append(float((precision * matches).sum() / matches.sum()))
    if not aps:
        raise ValueError("no query has a valid gallery match (check camera ids and identities of query/gallery)")
    return cmc_sum / len(aps), float(np.mean(aps)), valid


def re_ranking(
    q_g_dist: np.ndarray, q_q_dist: np.ndarray, g_g_dist: np.ndarray, k1: int = 20, k2: int = 6, lambda_value: float = 0.3
) -> np.ndarray:
    """k-reciprocal re-ranking (Zhong et al. CVPR 2017): (1-lambda) * Jaccard + lambda * original, (Q, G).

    Two images are close if they are in each other's k-reciprocal neighbourhoods; the
    Jaccard distance between the expanded neighbourhoods recovers true matches that the
    original metric ranks low (another view seen through the neighbours of the query).
    """
    q_g_dist, q_q_dist, g_g_dist = (np.asarray(a, dtype=np.float32) for a in (q_g_dist, q_q_dist, g_g_dist))
    query_num = q_g_dist.shape[0]
    original = np.concatenate(
        [np.concatenate([q_q_dist, q_g_dist], axis=1), np.concatenate([q_g_dist.T, g_g_dist], axis=1)], axis=0
    )
    all_num = original.shape[0]
    original = np.power(np.maximum(original, 0.0), 2).astype(np.float32)
    original = np.transpose(original / np.maximum(np.max(original, axis=0), 1e-12))
    V = np.zeros_like(original, dtype=np.float32)
    initial_rank = np.argsort(original, axis=1, kind="stable").astype(np.int32)
    half = int(np.around(k1 / 2.0))
    for i in range(all_num):
        forward = initial_rank[i, : k1 + 1]
        backward = initial_rank[forward, : k1 + 1]
        k_reciprocal = forward[np.where(backward == i)[0]]
        expansion = k_reciprocal
        for candidate in k_reciprocal:
            c_forward = initial_rank[candidate, : half + 1]
            c_backward = initial_rank[c_forward, : half + 1]
            c_reciprocal = c_forward[np.where(c_backward == candidate)[0]]
            if len(np.intersect1d(c_reciprocal, k_reciprocal)) > 2.0 / 3.0 * len(c_reciprocal):
                expansion = np.append(expansion, c_reciprocal)
        expansion = np.unique(expansion)
        weight = np.exp(-original[i, expansion])
        V[i, expansion] = weight / np.sum(weight)
    original = original[:query_num]
    if k2 != 1:
        V = np.stack([V[initial_rank[i, :k2]].mean(axis=0) for i in range(all_num)]).astype(np.float32)
    inv_index = [np.where(V[:, i] != 0)[0] for i in range(all_num)]
    jaccard = np.zeros_like(original, dtype=np.float32)
    for i in range(query_num):
        temp_min = np.zeros(all_num, dtype=np.float32)
        nonzero = np.where(V[i] != 0)[0]
        for j in nonzero:
            rows = inv_index[j]
            temp_min[rows] += np.minimum(V[i, j], V[rows, j])
        jaccard[i] = 1.0 - temp_min / (2.0 - temp_min)
    final = jaccard * (1.0 - lambda_value) + original * lambda_value
    return final[:, query_num:]


@dataclass
class Ranking:
    """Top-k retrieval of the last `compute()`: dataset indices and whether each hit is a true match."""

    query_index: np.ndarray  # (Q,)
    gallery_index: np.ndarray  # (Q, k)
    match: np.ndarray  # (Q, k) bool
    valid: np.ndarray  # (Q,) query has a true match


class ReIDMetric(Metric):
    """Accumulate L2-normalised features with (pid, camid, is_query, dataset index); compute CMC/mAP.

    Works on any device; features are concatenated on compute (dist_reduce_fx="cat"),
    so it also gathers across processes under DDP.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(
        self, rerank: bool = False, k1: int = 20, k2: int = 6, lambda_value: float = 0.3, topk: int = 5, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.rerank, self.k1, self.k2, self.lambda_value, self.topk = rerank, k1, k2, lambda_value, topk
        for name in ("feats", "pids", "camids", "is_query", "indices"):
            self.add_state(name, default=[], dist_reduce_fx="cat")
        self.last_ranking: Ranking | None = None

    def update(
        self,
        feats: torch.Tensor,
        pids: torch.Tensor,
        camids: torch.Tensor,
        is_query: torch.Tensor,
        indices: torch.Tensor | None = None,
    ) -> None:
        n = feats.shape[0]
        if not (len(pids) == len(camids) == len(is_query) == n):
            raise ValueError(f"ReIDMetric.update: {n} features but {len(pids)} pids / {len(camids)} camids")
        self.feats.append(F.normalize(feats.detach().float(), dim=1))
        self.pids.append(pids.detach().long())
        self.camids.append(camids.detach().long())
        self.is_query.append(is_query.detach().bool())
        self.indices.append(
            (indices if indices is not None else torch.full((n,), -1, device=feats.device)).detach().long()
        )

    @staticmethod
    def _cat(x: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        return torch.cat(x) if isinstance(x, list) else x

    def compute(self) -> dict[str, torch.Tensor]:
        feats, pids = self._cat(self.feats), self._cat(self.pids).cpu().numpy()
        camids, is_query = self._cat(self.camids).cpu().numpy(), self._cat(self.is_query).cpu().numpy()
        indices = self._cat(self.indices).cpu().numpy()
        if feats.numel() == 0 or not is_query.any() or is_query.all():
            raise ValueError("ReIDMetric needs both query and gallery features before compute()")
        qmask = torch.as_tensor(is_query, device=feats.device)
        qf, gf = feats[qmask], feats[~qmask]
        dist = cosine_distance(qf, gf)
        if self.rerank:
            dist_np = re_ranking(
                dist.cpu().numpy(),
                cosine_distance(qf, qf).cpu().numpy(),
                cosine_distance(gf, gf).cpu().numpy(),
                self.k1,
                self.k2,
                self.lambda_value,
            )
        else:
            dist_np = dist.cpu().numpy()
        q_pids, g_pids = pids[is_query], pids[~is_query]
        q_cams, g_cams = camids[is_query], camids[~is_query]
        max_rank = max(10, self.topk)
        cmc, mAP, valid = evaluate_rank(dist_np, q_pids, g_pids, q_cams, g_cams, max_rank=max_rank)
        self.last_ranking = self._ranking(dist_np, q_pids, g_pids, q_cams, g_cams, indices, is_query, valid)
        dev = feats.device
        return {
            "rank1": torch.tensor(cmc[0], device=dev),
            "rank5": torch.tensor(cmc[4], device=dev),
            "rank10": torch.tensor(cmc[9], device=dev),
            "mAP": torch.tensor(mAP, device=dev),
        }

    def _ranking(self, dist, q_pids, g_pids, q_cams, g_cams, indices, is_query, valid) -> Ranking:
        k = min(self.topk, dist.shape[1])
        q_idx, g_idx = indices[is_query], indices[~is_query]
        tops, matches = [], []
        for i in range(dist.shape[0]):
            order = np.argsort(dist[i], kind="stable")
            keep = ~((g_pids[order] == q_pids[i]) & (g_cams[order] == q_cams[i])) & (g_pids[order] != -1)
            order = order[keep][:k]
            order = np.pad(order, (0, k - len(order)), constant_values=-1) if len(order) < k else order
            tops.append(order)
            matches.append((order >= 0) & (g_pids[np.maximum(order, 0)] == q_pids[i]))
        top = np.stack(tops)
        return Ranking(q_idx, np.where(top >= 0, g_idx[np.maximum(top, 0)], -1), np.stack(matches), valid)


def draw_ranking(
    query_images: list[np.ndarray],
    gallery_images: list[list[np.ndarray | None]],
    matches: np.ndarray,
    cell: tuple[int, int] = (128, 64),
    border: int = 4,
) -> np.ndarray:
    """One row per query: the query (grey border) then its top-k gallery images (green = same id, red = not).

    Images are RGB uint8 of any size; returns an RGB uint8 picture.
    """
    h, w = cell
    rows = []
    gap = np.full((h + 2 * border, 8, 3), 255, dtype=np.uint8)

    def framed(img: np.ndarray | None, colour: tuple[int, int, int]) -> np.ndarray:
        if img is None:
            img = np.zeros((h, w, 3), dtype=np.uint8)
        img = cv2.resize(np.ascontiguousarray(img), (w, h), interpolation=cv2.INTER_AREA)
        return cv2.copyMakeBorder(img, border, border, border, border, cv2.BORDER_CONSTANT, value=colour)

    for q, gallery, match in zip(query_images, gallery_images, matches, strict=True):
        cells = [framed(q, (128, 128, 128)), gap]
        cells += [framed(g, (0, 200, 0) if m else (220, 0, 0)) for g, m in zip(gallery, match, strict=True)]
        rows.append(np.concatenate(cells, axis=1))
    if not rows:
        raise ValueError("draw_ranking needs at least one query")
    sep = np.full((6, rows[0].shape[1], 3), 255, dtype=np.uint8)
    out = [rows[0]]
    for r in rows[1:]:
        out += [sep, r]
    return np.concatenate(out, axis=0)
