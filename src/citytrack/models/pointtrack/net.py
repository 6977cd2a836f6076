"""The PointTrack embedding network (`PoseNetFeatOffsetEmb` + `PointFeatFuse3P` + `LocationEmbedding`).

Foreground branch, per point (1x1 convolutions with BatchNorm and LeakyReLU):
offset 2 -> 64 -> 128 -> 256 and colour 3 -> 64 -> 128 -> 256, concatenated to F (512).
Two heads on F, 512 -> 256 -> 512 -> 64: head A is average-pooled, head B max-pooled; the
attention `w = softmax_N(conv(128 -> 1)([A; B]))` pools F itself to `sum_i w_i F_i` (512).

Environment branch (no BatchNorm): offset 2 -> 64 -> 128 -> 128, colour 3 -> 64 -> 128 -> 256,
category 3 -> 64 -> 128 -> 128, concatenated (512) -> 256 -> 512 -> 256, max-pooled.

Location: the normalised box as `(cx, cy, w + 1, h + 1) * 100` at 8 frequencies `1000^(-k/8)`,
sin and cos: 64-d. The 960-d concatenation [avg 64 | max 64 | attention 512 | env 256 | loc 64]
goes through Linear(960 -> 256), LeakyReLU, Linear(256 -> 32).

`width` scales every hidden channel count (not the inputs, the location embedding or the
output): 1.0 is the paper's network, 0.25 a CPU-sized one.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import nn

from citytrack.models.pointtrack.points import ENV_CHANNELS, FG_CHANNELS


def location_embedding(box: torch.Tensor, dim: int = 64, wave_len: float = 1000.0) -> torch.Tensor:
    """Sinusoidal embedding `(B, dim)` of boxes `(B, 4)` x0, y0, x1, y1 normalised by the image size."""
    if dim % 8:
        raise ValueError(f"location embedding size must be a multiple of 8, got {dim}")
    x0, y0, x1, y1 = box.float().unbind(dim=1)
    position = torch.stack([(x0 + x1) * 0.5, (y0 + y1) * 0.5, x1 - x0 + 1.0, y1 - y0 + 1.0], dim=1) * 100.0
    freqs = dim // 8
    inv = 1.0 / torch.pow(
        torch.tensor(wave_len, device=box.device), torch.arange(freqs, device=box.device) / freqs
    )
    angles = (position[:, :, None] * inv[None, None, :]).reshape(len(box), -1)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def point_mlp(channels: list[int], batch_norm: bool, slope: float, norm_last: bool = False) -> nn.Sequential:
    """Shared per-point layers: 1x1 Conv1d (+ BatchNorm) + LeakyReLU between consecutive sizes.

    With `batch_norm`, every conv but the last is normalised (the reference's heads); `norm_last`
    normalises the last one too (its offset and colour paths).
    """
    layers: list[nn.Module] = []
    for i, (cin, cout) in enumerate(itertools.pairwise(channels)):
        last = i == len(channels) - 2
        layers.append(nn.Conv1d(cin, cout, 1))
        if batch_norm and (norm_last or not last):
            layers.append(nn.BatchNorm1d(cout))
        layers.append(nn.LeakyReLU(slope))
    return nn.Sequential(*layers)


class PointTrackNet(nn.Module):
    """Embed instances from their foreground points, environment points and box.

    Args:
        width: multiplier of the hidden channel counts (1.0 = the paper).
        out_dim: embedding size (32 in the reference `outputD`).
        location_dim: size of the box embedding (64).
        negative_slope: of every LeakyReLU (PyTorch's default 0.01, as `F.leaky_relu` in the reference).
    """

    def __init__(
        self, width: float = 1.0, out_dim: int = 32, location_dim: int = 64, negative_slope: float = 0.01
    ) -> None:
        super().__init__()
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
        self._config = {
            "width": float(width),
            "out_dim": int(out_dim),
            "location_dim": int(location_dim),
            "negative_slope": float(negative_slope),
        }

        def c(n: int) -> int:
            return max(1, round(n * width))

        s = negative_slope
        # foreground: offsets and colour (BatchNorm after every conv, as PoseNetFeatOffsetEmb)
        self.fg_offset = point_mlp([2, c(64), c(128), c(256)], batch_norm=True, slope=s, norm_last=True)
        self.fg_colour = point_mlp([3, c(64), c(128), c(256)], batch_norm=True, slope=s, norm_last=True)
        feat = 2 * c(256)
        self.head_avg = point_mlp([feat, c(256), c(512), c(64)], batch_norm=True, slope=s)
        self.head_max = point_mlp([feat, c(256), c(512), c(64)], batch_norm=True, slope=s)
        self.attention = nn.Conv1d(2 * c(64), 1, 1)
        # environment: offsets, colour, category (no BatchNorm, as PointFeatFuse3P)
        self.env_offset = point_mlp([2, c(64), c(128), c(128)], batch_norm=False, slope=s)
        self.env_colour = point_mlp([3, c(64), c(128), c(256)], batch_norm=False, slope=s)
        self.env_category = point_mlp([3, c(64), c(128), c(128)], batch_norm=False, slope=s)
        env_feat = 2 * c(128) + c(256)
        self.env_fuse = point_mlp([env_feat, c(256), c(512), c(256)], batch_norm=False, slope=s)
        self.location_dim = int(location_dim)
        self.feat_dim = c(64) + c(64) + feat + c(256) + self.location_dim
        self.last = nn.Sequential(
            nn.Linear(self.feat_dim, c(256)), nn.LeakyReLU(s), nn.Linear(c(256), out_dim)
        )
        self.out_dim = int(out_dim)

    @property
    def config(self) -> dict[str, Any]:
        """Constructor arguments, stored in checkpoints to rebuild the network without the Hydra config."""
        return dict(self._config)

    def forward(
        self, fg: torch.Tensor, env: torch.Tensor, box: torch.Tensor, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Embeddings `(B, out_dim)` of points `fg (B, Nf, 5)`, `env (B, Ne, 8)` and boxes `(B, 4)`.

        The point layout is `points.sample_points`': colour (3), offset v, u (2)[, category (3)].
        `return_weights=True` also returns the foreground attention `(B, Nf)` (rows sum to 1).
        """
        if fg.ndim != 3 or fg.shape[-1] != FG_CHANNELS or env.ndim != 3 or env.shape[-1] != ENV_CHANNELS:
            raise ValueError(
                f"expected fg (B, N, {FG_CHANNELS}) and env (B, M, {ENV_CHANNELS}), got {tuple(fg.shape)}, {tuple(env.shape)}"
            )
        fg = fg.float().transpose(1, 2)  # (B, 5, Nf)
        env = env.float().transpose(1, 2)  # (B, 8, Ne)
        feat = torch.cat([self.fg_offset(fg[:, 3:5]), self.fg_colour(fg[:, :3])], dim=1)  # (B, 512, Nf)
        a = self.head_avg(feat)
        b = self.head_max(feat)
        weights = torch.softmax(self.attention(torch.cat([a, b], dim=1)), dim=2)  # (B, 1, Nf)
        attended = (weights * feat).sum(dim=2)
        env_feat = torch.cat(
            [self.env_offset(env[:, 3:5]), self.env_colour(env[:, :3]), self.env_category(env[:, 5:8])], dim=1
        )
        env_pooled = self.env_fuse(env_feat).amax(dim=2)
        x = torch.cat(
            [a.mean(dim=2), b.amax(dim=2), attended, env_pooled, location_embedding(box, self.location_dim)],
            dim=1,
        )
        out = self.last(x)
        if return_weights:
            return out, weights.squeeze(1)
        return out
