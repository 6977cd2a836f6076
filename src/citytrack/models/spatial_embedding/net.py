"""Branched ERFNet of SpatialEmbedding (Neven et al. 2019; PointTrack's `BranchedERFNet`).

One ERFNet encoder (stride 8) feeds two decoders: the first predicts `2 + n_sigma`
channels (x/y offsets, then the per-axis sigmas), the second one seed logit per class.
`forward` concatenates them: `(B, 2 + n_sigma + len(classes), H, W)` for an input whose
sides are multiples of 8 (see `pad_to_stride`). Inputs are RGB floats in [0, 1], as the
reference feeds them (no mean/std normalisation).

`width` scales the published channel counts 16/64/128 (1.0 = the published net); a
smaller width is the CPU-sized variant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

STRIDE = 8
BN_EPS = 1e-3
ENCODER_DILATIONS = (2, 4, 8, 16)


class Downsampler(nn.Module):
    """Stride-2 3x3 conv to `c_out - c_in` channels, concatenated with a 2x2 max-pool of the input."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        if c_out <= c_in:
            raise ValueError(f"Downsampler needs more output than input channels, got {c_in} -> {c_out}")
        self.conv = nn.Conv2d(c_in, c_out - c_in, 3, stride=2, padding=1, bias=True)
        self.pool = nn.MaxPool2d(2, stride=2)
        self.bn = nn.BatchNorm2d(c_out, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(torch.cat([self.conv(x), self.pool(x)], 1)))


class NonBottleneck1d(nn.Module):
    """ERFNet's residual block: two factorised 3x1/1x3 conv pairs, the second pair dilated."""

    def __init__(self, channels: int, dropout: float, dilation: int) -> None:
        super().__init__()
        c, d = channels, dilation
        self.conv3x1_1 = nn.Conv2d(c, c, (3, 1), padding=(1, 0), bias=True)
        self.conv1x3_1 = nn.Conv2d(c, c, (1, 3), padding=(0, 1), bias=True)
        self.bn1 = nn.BatchNorm2d(c, eps=BN_EPS)
        self.conv3x1_2 = nn.Conv2d(c, c, (3, 1), padding=(d, 0), dilation=(d, 1), bias=True)
        self.conv1x3_2 = nn.Conv2d(c, c, (1, 3), padding=(0, d), dilation=(1, d), bias=True)
        self.bn2 = nn.BatchNorm2d(c, eps=BN_EPS)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv3x1_1(x))
        out = F.relu(self.bn1(self.conv1x3_1(out)))
        out = F.relu(self.conv3x1_2(out))
        out = self.dropout(self.bn2(self.conv1x3_2(out)))
        return F.relu(out + x)


class Upsampler(nn.Module):
    """3x3 stride-2 transposed conv + BatchNorm + ReLU."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1, bias=True)
        self.bn = nn.BatchNorm2d(c_out, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class Encoder(nn.Module):
    """ERFNet encoder: 3 -> c1 -> c2 (5 blocks, dropout 0.03) -> c3 (2 x dilations 2/4/8/16, dropout 0.3); stride 8."""

    def __init__(self, c1: int = 16, c2: int = 64, c3: int = 128) -> None:
        super().__init__()
        layers: list[nn.Module] = [Downsampler(3, c1), Downsampler(c1, c2)]
        layers += [NonBottleneck1d(c2, 0.03, 1) for _ in range(5)]
        layers.append(Downsampler(c2, c3))
        layers += [NonBottleneck1d(c3, 0.3, d) for _ in range(2) for d in ENCODER_DILATIONS]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Decoder(nn.Module):
    """Upsample c3 -> c2 (+2 blocks) -> c1 (+2 blocks), then a 2x2 stride-2 transposed conv to `c_out`."""

    def __init__(self, c_out: int, c1: int = 16, c2: int = 64, c3: int = 128) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            Upsampler(c3, c2),
            NonBottleneck1d(c2, 0.0, 1),
            NonBottleneck1d(c2, 0.0, 1),
            Upsampler(c2, c1),
            NonBottleneck1d(c1, 0.0, 1),
            NonBottleneck1d(c1, 0.0, 1),
        )
        self.output_conv = nn.ConvTranspose2d(c1, c_out, 2, stride=2, padding=0, output_padding=0, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_conv(self.layers(x))


class BranchedERFNet(nn.Module):
    """SpatialEmbedding's net: shared ERFNet encoder, an offset+sigma decoder and a seed decoder.

    Args:
        classes: KITTI class ids (1 car, 2 pedestrian) of the seed channels, in order.
        n_sigma: sigma channels (2: one per axis, as published for KITTI MOTS).
        width: multiplier of the published channel counts 16/64/128 (>= 0.25).
    """

    def __init__(self, classes: Sequence[int] = (2,), n_sigma: int = 2, width: float = 1.0) -> None:
        super().__init__()
        if not classes:
            raise ValueError("BranchedERFNet needs at least one class")
        if n_sigma not in (1, 2):
            raise ValueError(f"n_sigma must be 1 or 2, got {n_sigma}")
        c1, c2, c3 = (max(1, round(c * width)) for c in (16, 64, 128))
        if c1 <= 3:
            raise ValueError(
                f"width {width} leaves {c1} channels after the first downsampler; use width >= 0.25"
            )
        self.classes = [int(c) for c in classes]
        self.n_sigma = int(n_sigma)
        self.config: dict[str, Any] = {
            "classes": list(self.classes),
            "n_sigma": self.n_sigma,
            "width": float(width),
        }
        self.encoder = Encoder(c1, c2, c3)
        self.decoders = nn.ModuleList(
            [Decoder(2 + n_sigma, c1, c2, c3), Decoder(len(self.classes), c1, c2, c3)]
        )
        self.init_output()

    @property
    def out_channels(self) -> int:
        return 2 + self.n_sigma + len(self.classes)

    def init_output(self) -> None:
        """Offsets start at 0 (every pixel embeds at its own position), sigmas at a bias of 1."""
        conv = self.decoders[0].output_conv
        with torch.no_grad():
            conv.weight[:, 0:2].zero_()  # ConvTranspose2d weights are (in, out, kh, kw)
            conv.bias[0:2].zero_()
            conv.weight[:, 2 : 2 + self.n_sigma].zero_()
            conv.bias[2 : 2 + self.n_sigma].fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % STRIDE or x.shape[-1] % STRIDE:
            raise ValueError(
                f"input sides must be multiples of {STRIDE} (see pad_to_stride), got {tuple(x.shape[-2:])}"
            )
        feats = self.encoder(x)
        return torch.cat([decoder(feats) for decoder in self.decoders], 1)


def pad_to_stride(x: torch.Tensor, value: float = 0.0, stride: int = STRIDE) -> torch.Tensor:
    """Pad `(..., H, W)` on the right and bottom to multiples of `stride`.

    Right/bottom keeps every image pixel at its own coordinate, so the embedding of a pixel
    does not depend on the padding; crop back with `out[..., :H, :W]`.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % stride, (-w) % stride
    if not ph and not pw:
        return x
    return F.pad(x, (0, pw, 0, ph), value=value)
