"""Backbone factory (timm or our OSNet) and `ReIDNet`: backbone -> pooling -> [reduction] -> BNNeck.

`ReIDNet` is what Hydra builds as `model.net` and what `FeatureExtractor` rebuilds from a
checkpoint: its constructor arguments are plain values (`config`), saved beside the
weights, so inference never needs the training config.
"""

from __future__ import annotations

from typing import Any

import timm
import torch
from torch import nn

from citytrack.models.reid.heads import BNNeck, make_pooling
from citytrack.models.reid.osnet import OSNET_ALIASES, OSNET_CONFIGS, build_osnet

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def is_osnet(name: str) -> bool:
    return name in OSNET_CONFIGS or name in OSNET_ALIASES


def build_backbone(name: str, pretrained: bool = False) -> tuple[nn.Module, int]:
    """Return (feature-map backbone, channels). OSNet names use ours, anything else goes to timm."""
    if is_osnet(name):
        if pretrained:
            raise ValueError(f"no pretrained weights are shipped for {name!r}; set pretrained: false")
        net = build_osnet(name)
        return net, net.num_features
    try:
        net = timm.create_model(name, pretrained=pretrained, num_classes=0, global_pool="", features_only=False)
    except RuntimeError as err:  # timm raises RuntimeError("Unknown model ...")
        raise ValueError(f"unknown backbone {name!r}: not an OSNet variant and timm says: {err}") from err
    return net, int(net.num_features)


class ReIDNet(nn.Module):
    """Appearance embedding network. Input: RGB float in [0, 1], (B, 3, H, W); normalisation is inside.

    `forward` returns the BNNeck feature used for retrieval (not L2-normalised);
    `forward_train` returns (pooled feature for triplet/center loss, BNNeck feature for CE).
    """

    def __init__(
        self,
        backbone: str = "osnet_x1_0",
        pretrained: bool = False,
        pooling: str = "gem",
        gem_p: float = 3.0,
        embed_dim: int | None = None,
        neck: str = "bnneck",
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        if neck not in {"bnneck", "none"}:
            raise ValueError(f"neck must be 'bnneck' or 'none', got {neck!r}")
        self.config: dict[str, Any] = {
            "backbone": backbone,
            "pretrained": False,  # weights come from the checkpoint when rebuilt
            "pooling": pooling,
            "gem_p": float(gem_p),
            "embed_dim": embed_dim,
            "neck": neck,
            "mean": tuple(float(m) for m in mean),
            "std": tuple(float(s) for s in std),
        }
        self.backbone, channels = build_backbone(backbone, pretrained=pretrained)
        self.pool = make_pooling(pooling, p=gem_p)
        if embed_dim is not None:
            self.reduce: nn.Module = nn.Sequential(nn.Linear(channels, embed_dim, bias=False), nn.BatchNorm1d(embed_dim))
            self.feat_dim = int(embed_dim)
        else:
            self.reduce = nn.Identity()
            self.feat_dim = channels
        self.neck: nn.Module = BNNeck(self.feat_dim) if neck == "bnneck" else nn.Identity()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (x - self.mean) / self.std
        fmap = self.backbone(x)
        if fmap.ndim != 4:
            raise RuntimeError(
                f"backbone {self.config['backbone']!r} returned shape {tuple(fmap.shape)}, expected a (B, C, H, W) map"
            )
        feat = self.reduce(self.pool(fmap))
        return feat, self.neck(feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_train(x)[1]
