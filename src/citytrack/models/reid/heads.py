"""Pooling and neck shared by every ReID backbone.

GeM (Radenovic et al. 2018) interpolates between average pooling (p=1) and max pooling
(p -> inf) with a learnable p, which keeps the discriminative peaks of a person's map.
BNNeck (Luo et al. 2019, "Bag of Tricks") separates the two losses: the triplet loss sees
the pooled feature, the ID classifier and the retrieval use the batch-normalised one,
whose near-spherical distribution suits cosine distances.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GeM(nn.Module):
    """Generalised-mean pooling over H, W: (mean(x^p))^(1/p), p learnable unless `learnable=False`."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6, learnable: bool = True) -> None:
        super().__init__()
        if p <= 0:
            raise ValueError(f"GeM needs p > 0, got {p}")
        self.p = nn.Parameter(torch.tensor(float(p)), requires_grad=learnable)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.p.clamp(min=1e-3)
        # pool in float32: x^p overflows bf16 for large p
        pooled = x.float().clamp(min=self.eps).pow(p).mean(dim=(-2, -1))
        return pooled.pow(1.0 / p).to(x.dtype)

    def extra_repr(self) -> str:
        return f"p={self.p.item():.3f}, eps={self.eps}"


def make_pooling(kind: str, p: float = 3.0) -> nn.Module:
    """`gem`, `avg` or `max` pooling returning (B, C)."""
    if kind == "gem":
        return GeM(p=p)
    if kind == "avg":
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    if kind == "max":
        return nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(1))
    raise ValueError(f"unknown pooling {kind!r}; use gem, avg or max")


class BNNeck(nn.Module):
    """BatchNorm1d without bias shift (bias frozen at 0), as in the Bag-of-Tricks baseline."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(dim)
        self.bn.bias.requires_grad_(False)
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x)


class Classifier(nn.Module):
    """Bias-free linear ID (or attribute) classifier on the BNNeck feature."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"a classifier needs at least one class, got {num_classes}")
        self.fc = nn.Linear(dim, num_classes, bias=False)
        nn.init.normal_(self.fc.weight, std=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x.float(), dim=1)
