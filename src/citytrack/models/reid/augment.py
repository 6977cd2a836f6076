"""Batch augmentation on the device with kornia (flip, pad-crop, colour jitter, random erasing).

Running augmentation on the GPU after the batch transfer keeps the data loader to JPEG
decode + resize, which is what limits ReID training throughput on few CPU cores.
Random erasing (Zhong et al. 2020) simulates occlusion, the common failure in crowds.
"""

from __future__ import annotations

import kornia.augmentation as K
import torch
from torch import nn


class ReIDAugment(nn.Module):
    """Training-time augmentation of RGB float batches in [0, 1], (B, 3, H, W); same shape out."""

    def __init__(
        self,
        flip_p: float = 0.5,
        pad: int = 10,
        jitter_p: float = 0.5,
        brightness: float = 0.2,
        contrast: float = 0.15,
        saturation: float = 0.1,
        hue: float = 0.0,
        erasing_p: float = 0.5,
        erasing_scale: tuple[float, float] = (0.02, 0.4),
        erasing_ratio: tuple[float, float] = (0.3, 3.3),
    ) -> None:
        super().__init__()
        self.pad = int(pad)
        self.flip = K.RandomHorizontalFlip(p=flip_p) if flip_p > 0 else None
        self.jitter = (
            K.ColorJitter(brightness, contrast, saturation, hue, p=jitter_p) if jitter_p > 0 else None
        )
        self.erasing = (
            K.RandomErasing(scale=tuple(erasing_scale), ratio=tuple(erasing_ratio), value=0.0, p=erasing_p)
            if erasing_p > 0
            else None
        )
        self._crops: dict[tuple[int, int], K.RandomCrop] = {}

    def _pad_crop(self, x: torch.Tensor) -> torch.Tensor:
        size = (int(x.shape[-2]), int(x.shape[-1]))
        crop = self._crops.get(size)
        if crop is None:
            crop = self._crops[size] = K.RandomCrop(size, padding=self.pad, padding_mode="constant", p=1.0)
        return crop(x)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"ReIDAugment expects (B, 3, H, W) images, got {tuple(x.shape)}")
        dtype = x.dtype
        x = x.float()
        if self.flip is not None:
            x = self.flip(x)
        if self.pad > 0:
            x = self._pad_crop(x)
        if self.jitter is not None:
            x = self.jitter(x).clamp(0.0, 1.0)
        if self.erasing is not None:
            x = self.erasing(x)
        return x.to(dtype).contiguous(memory_format=torch.channels_last) if x.is_cuda else x.to(dtype)
