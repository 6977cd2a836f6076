"""ReID losses: label-smoothed identity CE, batch-hard triplet (hard or soft margin), center loss.

These are the three losses of the strong ReID baseline (Luo et al. 2019) that FastReID
SBS and the AI City systems build on: CE separates identities, the triplet loss shapes
the metric space used at retrieval time, center loss tightens each identity's cluster.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CrossEntropyLabelSmooth(nn.Module):
    """CE against (1 - eps) * one_hot + eps / C: stops the ID classifier over-fitting the training identities."""

    def __init__(self, epsilon: float = 0.1) -> None:
        super().__init__()
        if not 0.0 <= epsilon < 1.0:
            raise ValueError(f"label smoothing epsilon must be in [0, 1), got {epsilon}")
        self.epsilon = epsilon

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_probs = F.log_softmax(logits.float(), dim=1)
        num_classes = logits.shape[1]
        smooth = torch.full_like(log_probs, self.epsilon / num_classes)
        smooth.scatter_(1, targets.unsqueeze(1), 1.0 - self.epsilon + self.epsilon / num_classes)
        return -(smooth * log_probs).sum(dim=1).mean()


def euclidean_dist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pairwise Euclidean distance (float32, clamped so the sqrt gradient stays finite)."""
    x, y = x.float(), y.float()
    d2 = x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1).unsqueeze(0) - 2.0 * x @ y.t()
    return d2.clamp(min=1e-12).sqrt()


def hard_example_mining(dist: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each anchor: the farthest positive and the nearest negative distance in the batch."""
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos_mask = same & ~eye
    neg_mask = ~same
    if not bool(pos_mask.any(1).all()) or not bool(neg_mask.any(1).all()):
        raise ValueError(
            "batch-hard triplet needs every identity at least twice and at least two identities per batch; "
            "use the PK sampler (K >= 2, P >= 2)"
        )
    dist_ap = dist.masked_fill(~pos_mask, float("-inf")).amax(dim=1)
    dist_an = dist.masked_fill(~neg_mask, float("inf")).amin(dim=1)
    return dist_ap, dist_an


class TripletLoss(nn.Module):
    """Batch-hard triplet loss (Hermans et al. 2017); `margin=None` uses the soft margin log(1 + exp(ap - an))."""

    def __init__(self, margin: float | None = 0.3, normalize: bool = False) -> None:
        super().__init__()
        self.margin = margin
        self.normalize = normalize

    def forward(self, feats: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            feats = F.normalize(feats.float(), dim=1)
        dist = euclidean_dist(feats, feats)
        dist_ap, dist_an = hard_example_mining(dist, labels)
        if self.margin is None:
            return F.softplus(dist_ap - dist_an).mean()
        return F.relu(dist_ap - dist_an + self.margin).mean()


class CenterLoss(nn.Module):
    """0.5 * ||f - c_y||^2 averaged over the batch (Wen et al. 2016); the centres are learned parameters."""

    def __init__(self, num_classes: int, feat_dim: int) -> None:
        super().__init__()
        self.centers = nn.Parameter(torch.randn(num_classes, feat_dim) * 0.01)

    def forward(self, feats: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        diff = feats.float() - self.centers[labels]
        return 0.5 * diff.pow(2).sum(dim=1).mean()
