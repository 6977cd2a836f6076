"""Omni-Scale Network (OSNet, Zhou et al. ICCV 2019) as a feature-map backbone.

OSNet is the ReID backbone of the AI City 2023 winner: small (2.2M parameters at x1.0),
trained from scratch it still learns multi-scale appearance because each residual
block mixes 1..4 stacked lite 3x3 convolutions (receptive fields 3, 5, 7, 9) through a
shared channel gate (the "unified aggregation gate"). The IBN variant puts instance
normalisation in the stem and the first two stages, which removes per-camera colour
statistics and helps cross-camera matching.

The network here stops at `conv5` and returns the feature map; pooling and the
BNNeck live in `heads.py` so every backbone shares them.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvLayer(nn.Module):
    """Convolution + (batch or instance) norm + ReLU."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0, groups: int = 1, IN: bool = False
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False, groups=groups)
        self.bn: nn.Module = nn.InstanceNorm2d(cout, affine=True) if IN else nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class Conv1x1(nn.Module):
    """1x1 convolution + BN + ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, stride=stride, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class Conv1x1Linear(nn.Module):
    """1x1 convolution + BN without non-linearity (the block's output projection)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, stride=stride, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class LightConv3x3(nn.Module):
    """Lite 3x3: pointwise linear 1x1 then depthwise 3x3 (+BN+ReLU); ~9x cheaper than a dense 3x3."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False, groups=cout)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv2(self.conv1(x))))


class ChannelGate(nn.Module):
    """Unified aggregation gate: one small MLP, shared by all streams, weights channels per input."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=True)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.sigmoid(self.fc2(self.relu(self.fc1(self.pool(x)))))
        return x * w


class OSBlock(nn.Module):
    """Omni-scale residual bottleneck: T=4 streams of 1..4 lite 3x3 convs fused by the shared gate."""

    def __init__(self, cin: int, cout: int, IN: bool = False, bottleneck_reduction: int = 4) -> None:
        super().__init__()
        mid = cout // bottleneck_reduction
        self.conv1 = Conv1x1(cin, mid)
        self.streams = nn.ModuleList(
            nn.Sequential(*[LightConv3x3(mid, mid) for _ in range(depth)]) for depth in range(1, 5)
        )
        self.gate = ChannelGate(mid)
        self.conv3 = Conv1x1Linear(mid, cout)
        self.downsample = Conv1x1Linear(cin, cout) if cin != cout else None
        self.IN = nn.InstanceNorm2d(cout, affine=True) if IN else None
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        x1 = self.conv1(x)
        x2 = sum(self.gate(stream(x1)) for stream in self.streams)
        out = self.conv3(x2) + identity  # type: ignore[arg-type]
        if self.IN is not None:
            out = self.IN(out)
        return self.relu(out)


class OSNet(nn.Module):
    """OSNet trunk: stem, three OS stages (two with 2x downsampling), final 1x1; returns (B, C, H/16, W/16)."""

    def __init__(self, channels: tuple[int, int, int, int], layers: tuple[int, int, int] = (2, 2, 2), IN: bool = False):
        super().__init__()
        if len(channels) != 4 or len(layers) != 3:
            raise ValueError(f"OSNet needs 4 channel widths and 3 stage depths, got {channels}, {layers}")
        self.conv1 = ConvLayer(3, channels[0], 7, stride=2, padding=3, IN=IN)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = self._stage(layers[0], channels[0], channels[1], reduce=True, IN=IN)
        self.conv3 = self._stage(layers[1], channels[1], channels[2], reduce=True, IN=IN)
        self.conv4 = self._stage(layers[2], channels[2], channels[3], reduce=False)
        self.conv5 = Conv1x1(channels[3], channels[3])
        self.num_features = channels[3]
        self._init_weights()

    @staticmethod
    def _stage(depth: int, cin: int, cout: int, reduce: bool, IN: bool = False) -> nn.Sequential:
        blocks: list[nn.Module] = [OSBlock(cin, cout, IN=IN)]
        blocks += [OSBlock(cout, cout, IN=IN) for _ in range(depth - 1)]
        if reduce:
            blocks.append(nn.Sequential(Conv1x1(cout, cout), nn.AvgPool2d(2, stride=2)))
        return nn.Sequential(*blocks)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        return self.conv5(self.conv4(self.conv3(self.conv2(x))))


OSNET_CONFIGS: dict[str, dict] = {
    "osnet_x1_0": {"channels": (64, 256, 384, 512)},
    "osnet_x0_75": {"channels": (48, 192, 288, 384)},
    "osnet_x0_5": {"channels": (32, 128, 192, 256)},
    "osnet_x0_25": {"channels": (16, 64, 96, 128)},
    "osnet_ibn_x1_0": {"channels": (64, 256, 384, 512), "IN": True},
    "osnet_ibn_x0_25": {"channels": (16, 64, 96, 128), "IN": True},
}
OSNET_ALIASES = {"osnet": "osnet_x1_0", "osnet_ibn": "osnet_ibn_x1_0"}


def build_osnet(name: str) -> OSNet:
    """Build an OSNet by name (`osnet_x1_0`, `osnet_x0_25`, `osnet_ibn_x1_0`, ...); randomly initialised."""
    key = OSNET_ALIASES.get(name, name)
    if key not in OSNET_CONFIGS:
        raise ValueError(f"unknown OSNet variant {name!r}; known: {sorted(OSNET_CONFIGS) + sorted(OSNET_ALIASES)}")
    return OSNet(**OSNET_CONFIGS[key])
