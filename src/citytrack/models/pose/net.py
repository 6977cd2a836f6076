"""`PoseNet`: SimpleBaseline-style top-down keypoint network (Xiao et al., 2018).

A timm backbone (`features_only`) gives one feature map; 2-3 stride-2 deconvolutions (4x4,
BN, ReLU) bring it to stride 4, and a 1x1 convolution gives one heatmap per joint. The
number of deconvolutions follows from the chosen feature level's stride (32 -> 3, 16 -> 2),
so a backbone cut at stride 16 (`feature_index=-2`) is cheaper and needs one layer less.
With `skip=True` each upsampled map also receives the backbone's own map of that stride through a
1x1 convolution (U-Net / FPN style lateral connections): the deconvolutions alone must rebuild
fine position from coarse features, which small backbones do poorly (their AP75 lags their AP50).
Input: RGB in [0, 1]; the ImageNet normalisation is inside, so every caller feeds the same thing.
"""

from __future__ import annotations

import math
from typing import Any

import timm
import torch
from torch import nn

from citytrack.data.formats.coco import NUM_KEYPOINTS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HEATMAP_STRIDE = 4


class PoseNet(nn.Module):
    """Backbone + deconvolution head -> `(B, joints, H / 4, W / 4)` heatmaps.

    Args:
        backbone: any timm model name with `features_only` support (resnet18, regnetx_002, ...).
        pretrained: timm weights (off by default: nothing is downloaded).
        feature_index: which of the backbone's feature levels feeds the head (-1 = the deepest).
        width: channels of every deconvolution layer.
        num_joints: heatmaps (17 for COCO).
        skip: lateral connections into the head from the backbone's maps at the strides the head
            upsamples through (8 and 4 below a stride-16 cut; 16, 8 and 4 below a stride-32 cut).
    """

    def __init__(self, backbone: str = "resnet18", pretrained: bool = False, feature_index: int = -1,
                 width: int = 256, num_joints: int = NUM_KEYPOINTS, skip: bool = False) -> None:
        super().__init__()
        self.config: dict[str, Any] = {"backbone": backbone, "pretrained": False, "feature_index": int(feature_index),
                                       "width": int(width), "num_joints": int(num_joints), "skip": bool(skip)}
        probe = timm.create_model(backbone, features_only=True, pretrained=False)
        strides = probe.feature_info.reduction()
        level = list(range(len(strides)))[feature_index]
        stride = strides[level]
        n_deconv = round(math.log2(stride / HEATMAP_STRIDE))
        if n_deconv < 1 or 2 ** n_deconv * HEATMAP_STRIDE != stride:
            raise ValueError(f"{backbone} feature level {feature_index} has stride {stride}: need 8, 16 or 32")
        # with skips, also the levels at the strides the head passes through on its way to stride 4
        wanted = {stride // 2 ** (k + 1) for k in range(n_deconv)} if skip else set()
        lateral_levels = [i for i in range(level) if strides[i] in wanted]
        if len(lateral_levels) != len(wanted):
            raise ValueError(f"{backbone} has no feature level at each of the strides {sorted(wanted)} for skip connections")
        del probe
        self.backbone = timm.create_model(backbone, features_only=True, pretrained=pretrained,
                                          out_indices=(*lateral_levels, level))
        channels = self.backbone.feature_info.channels()
        in_ch = channels[-1]
        layers: list[nn.Module] = []
        for _ in range(n_deconv):
            layers += [nn.ConvTranspose2d(in_ch, width, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            in_ch = width
        self.head = nn.Sequential(*layers)
        # lateral k joins after deconvolution k (deepest first), before its ReLU
        self.lateral = nn.ModuleList(
            nn.Sequential(nn.Conv2d(ch, width, 1, bias=False), nn.BatchNorm2d(width)) for ch in reversed(channels[:-1])
        )
        for lateral in self.lateral:  # zero scale: a new skip starts silent, so a net without skips warm-starts one exactly
            nn.init.zeros_(lateral[1].weight)
        self.final = nn.Conv2d(width, num_joints, 1)
        nn.init.normal_(self.final.weight, std=0.001)
        nn.init.zeros_(self.final.bias)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.num_joints = int(num_joints)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """`(B, 3, H, W)` RGB in [0, 1] (H, W multiples of the backbone stride) -> `(B, J, H / 4, W / 4)`."""
        x = (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)
        features = self.backbone(x)
        if not len(self.lateral):
            return self.final(self.head(features[-1]))
        x = features[-1]
        for k, lateral in enumerate(self.lateral):
            deconv, bn, relu = self.head[3 * k : 3 * k + 3]
            x = relu(bn(deconv(x)) + lateral(features[-2 - k]))
        return self.final(x)
