"""`ModelEma`: an exponential moving average of a net's weights, shared by the LightningModules.

Small nets trained from scratch on CPU-sized runs end far from a flat minimum; the average of the
last few thousand steps' weights is smoother than any one of them (YOLOX, the detector here; the
keypoint network, whose output moves with sub-pixel shifts of its input).
"""

from __future__ import annotations

import copy
import math

import torch

EMA_PREFIX = "ema.module."  # state-dict keys of a LightningModule's `self.ema = ModelEma(...)`


class ModelEma(torch.nn.Module):
    """Exponential moving average of a net's weights and buffers (YOLOX `ModelEMA`).

    `decay_t = decay * (1 - exp(-t / tau))` after `t` updates: early on the average follows
    the net closely (its first weights are random), later it averages over ~`1 / (1 - decay)` steps.
    """

    def __init__(self, net: torch.nn.Module, decay: float = 0.9998, tau: float = 2000.0) -> None:
        super().__init__()
        if not 0.0 < decay < 1.0 or tau <= 0:
            raise ValueError(f"EMA needs 0 < decay < 1 and tau > 0, got decay={decay}, tau={tau}")
        self.module = copy.deepcopy(net).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay, self.tau = float(decay), float(tau)
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, net: torch.nn.Module) -> None:
        self.updates += 1
        d = self.decay * (1.0 - math.exp(-int(self.updates) / self.tau))
        for ema_v, v in zip(self.module.state_dict().values(), net.state_dict().values(), strict=True):
            if ema_v.dtype.is_floating_point:
                ema_v.mul_(d).add_(v.detach().to(ema_v.dtype), alpha=1.0 - d)
            else:
                ema_v.copy_(v)
