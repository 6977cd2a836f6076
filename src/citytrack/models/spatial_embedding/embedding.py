"""The pixel embedding shared by the SpatialEmbedding loss and its clustering.

A pixel `i` at column `u`, row `v` has the coordinate `xy_i = (2u / 2047, v / 1023)`: the
published grid `x = linspace(0, 2, 2048)`, `y = linspace(0, 1, 1024)` (about 1/1023 per
pixel on both axes), extended by the same step beyond 2048 x 1024. Its embedding is
`e_i = tanh(o_i) + xy_i`, where `o_i` are the two offset channels of the net's output.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import torch

X_STEP = 2.0 / 2047.0
Y_STEP = 1.0 / 1023.0


@lru_cache(maxsize=16)
def pixel_coordinates(height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """`(2, H, W)` float32 x/y coordinates of the published grid, built once per size and device."""
    device = torch.device(device)
    x = torch.arange(width, dtype=torch.float64, device=device) * X_STEP
    y = torch.arange(height, dtype=torch.float64, device=device) * Y_STEP
    return torch.stack([x.view(1, -1).expand(height, width), y.view(-1, 1).expand(height, width)]).float()


class Embedding(NamedTuple):
    """The decoded output of one image, flattened over its `N = H * W` pixels."""

    emb: torch.Tensor  # (2, N) spatial embedding e_i
    sigma: torch.Tensor  # (n_sigma, N) raw sigma (before exp(10 sigma))
    seed: torch.Tensor  # (C, N) seed probabilities, one row per class


def decode(prediction: torch.Tensor, n_sigma: int) -> Embedding:
    """Split one image's `(2 + n_sigma + C, H, W)` output into embedding, sigma and seed maps (float32)."""
    pred = prediction.float()
    h, w = pred.shape[-2:]
    xym = pixel_coordinates(h, w, pred.device)
    emb = torch.tanh(pred[0:2]) + xym
    return Embedding(
        emb.reshape(2, -1),
        pred[2 : 2 + n_sigma].reshape(n_sigma, -1),
        torch.sigmoid(pred[2 + n_sigma :]).reshape(pred.shape[0] - 2 - n_sigma, -1),
    )


def gaussian(emb: torch.Tensor, centres: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """`phi_k(i) = exp(-sum_axis exp(10 sigma_k) (e_i - C_k)^2)` for `K` centres: `(K, N)`.

    emb `(2, N)`; centres `(K, 2)`; sigmas `(K, n_sigma)` raw (one sigma is shared by both axes).
    """
    s = torch.exp(10.0 * sigmas).expand(-1, 2)  # (K, 2)
    d2 = (emb.unsqueeze(0) - centres.unsqueeze(-1)).pow(2)  # (K, 2, N)
    return torch.exp(-(d2 * s.unsqueeze(-1)).sum(1))
