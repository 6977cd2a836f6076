"""YOLOX-style network: timm backbone (features_only) -> PAN/FPN neck -> decoupled heads.

The forward pass returns one tensor `(B, A, 5 + C)` over all anchor points of all levels:
`cx, cy, w, h` already decoded to input pixels, then the objectness logit and the class
logits. Decoding inside the net keeps training (IoU loss on decoded boxes), inference and
the ONNX graph identical. Inputs are RGB floats in [0, 1]; ImageNet normalisation happens
here so every caller (datamodule, multi-camera runner, ONNX runtime) feeds the same thing.
"""

from __future__ import annotations

import math
from typing import Any

import timm
import torch
from torch import nn
from torch.nn import functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PRIOR_PROB = 0.01


class ConvBnAct(nn.Module):
    """Conv -> BatchNorm -> SiLU, the YOLOX building block."""

    def __init__(self, c_in: int, c_out: int, k: int = 3, s: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class PanNeck(nn.Module):
    """FPN top-down then PAN bottom-up path over the backbone levels (any count >= 1)."""

    def __init__(self, in_channels: list[int], channels: int) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(ConvBnAct(c, channels, 1) for c in in_channels)
        n = len(in_channels)
        self.top_down = nn.ModuleList(ConvBnAct(2 * channels, channels, 3) for _ in range(n - 1))
        self.down = nn.ModuleList(ConvBnAct(channels, channels, 3, 2) for _ in range(n - 1))
        self.bottom_up = nn.ModuleList(ConvBnAct(2 * channels, channels, 3) for _ in range(n - 1))

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        lat = [m(f) for m, f in zip(self.lateral, feats, strict=True)]
        # top-down: fine levels receive coarse context
        td = [lat[-1]]
        for i in range(len(lat) - 2, -1, -1):
            up = F.interpolate(td[0], size=lat[i].shape[-2:], mode="nearest")
            td.insert(0, self.top_down[i](torch.cat([lat[i], up], 1)))
        # bottom-up: coarse levels receive fine localisation
        out = [td[0]]
        for i in range(1, len(td)):
            down = self.down[i - 1](out[-1])
            if down.shape[-2:] != td[i].shape[-2:]:
                down = F.interpolate(down, size=td[i].shape[-2:], mode="nearest")
            out.append(self.bottom_up[i - 1](torch.cat([td[i], down], 1)))
        return out


class DecoupledHead(nn.Module):
    """YOLOX head for one level: a stem, then separate cls and (box, obj) branches."""

    def __init__(self, channels: int, num_classes: int, depth: int = 2) -> None:
        super().__init__()
        self.stem = ConvBnAct(channels, channels, 1)
        self.cls_convs = nn.Sequential(*[ConvBnAct(channels, channels, 3) for _ in range(depth)])
        self.reg_convs = nn.Sequential(*[ConvBnAct(channels, channels, 3) for _ in range(depth)])
        self.cls_pred = nn.Conv2d(channels, num_classes, 1)
        self.reg_pred = nn.Conv2d(channels, 4, 1)
        self.obj_pred = nn.Conv2d(channels, 1, 1)
        bias = -math.log((1 - PRIOR_PROB) / PRIOR_PROB)
        nn.init.constant_(self.cls_pred.bias, bias)
        nn.init.constant_(self.obj_pred.bias, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        c = self.cls_convs(x)
        r = self.reg_convs(x)
        return torch.cat([self.reg_pred(r), self.obj_pred(r), self.cls_pred(c)], 1)


class YoloxNet(nn.Module):
    """Anchor-free one-stage detector (YOLOX family) over a timm feature pyramid.

    Args:
        backbone: any timm model name that supports `features_only`.
        num_classes: detection classes (1 = person; 4 = person, car, bus, truck for the city detector).
        out_indices: backbone stages fed to the neck (default: the last three, strides 8/16/32).
        neck_channels: width of neck and heads.
        head_depth: 3x3 convs per head branch.
        pretrained: timm weights (off by default: no downloads in this project).
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        num_classes: int = 1,
        out_indices: tuple[int, ...] | list[int] = (-3, -2, -1),
        neck_channels: int = 96,
        head_depth: int = 2,
        pretrained: bool = False,
        backbone_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.config = {
            "backbone": backbone,
            "num_classes": int(num_classes),
            "out_indices": [int(i) for i in out_indices],
            "neck_channels": int(neck_channels),
            "head_depth": int(head_depth),
            "pretrained": False,
            "backbone_kwargs": dict(backbone_kwargs or {}),
        }
        self.num_classes = int(num_classes)
        self.backbone = timm.create_model(
            backbone, features_only=True, pretrained=pretrained, out_indices=tuple(out_indices), **(backbone_kwargs or {})
        )
        channels = self.backbone.feature_info.channels()
        self.strides: list[int] = [int(s) for s in self.backbone.feature_info.reduction()]
        self.neck = PanNeck(channels, neck_channels)
        self.heads = nn.ModuleList(DecoupledHead(neck_channels, num_classes, head_depth) for _ in self.strides)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def anchor_points(self, shapes: list[tuple[int, int]], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Grid cell centres `(A, 2)` in input pixels and their strides `(A,)` for feature shapes."""
        centres, strides = [], []
        for (h, w), s in zip(shapes, self.strides, strict=True):
            ys, xs = torch.meshgrid(
                torch.arange(h, device=device, dtype=torch.float32),
                torch.arange(w, device=device, dtype=torch.float32),
                indexing="ij",
            )
            centres.append((torch.stack([xs, ys], -1).reshape(-1, 2) + 0.5) * s)
            strides.append(torch.full((h * w,), float(s), device=device))
        return torch.cat(centres), torch.cat(strides)

    def forward_levels(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Raw head maps `(B, 5 + C, h, w)` per level."""
        x = (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)
        feats = self.neck(self.backbone(x))
        return [head(f) for head, f in zip(self.heads, feats, strict=True)]

    def decode(self, levels: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Head maps -> (`(B, A, 5 + C)` decoded outputs, anchor centres `(A, 2)`, strides `(A,)`)."""
        centres, strides = self.anchor_points([tuple(o.shape[-2:]) for o in levels], levels[0].device)
        raw = torch.cat([o.flatten(2) for o in levels], 2).transpose(1, 2).float()
        s = strides.view(1, -1, 1)
        # cell-centre offsets for the box centre, log-space sizes (clamped against overflow)
        xy = raw[..., 0:2] * s + centres.unsqueeze(0)
        wh = torch.exp(raw[..., 2:4].clamp(max=10.0)) * s
        return torch.cat([xy, wh, raw[..., 4:]], -1), centres, strides

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """`(B, 3, H, W)` RGB in [0, 1] -> `(B, A, 5 + C)`: decoded cx, cy, w, h, obj logit, cls logits."""
        return self.decode(self.forward_levels(images))[0]
