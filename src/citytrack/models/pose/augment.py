"""Crop warping (train and eval) and the training augmentation of top-down pose crops, on the device.

Every crop is warped into the network input by one affine map per sample (`grid_sample`): the
person's region (`heatmaps.box_regions`) scaled, shifted, rotated and mirrored by the sampled
jitter; the keypoints go through the inverse map, and mirrored samples swap left and right joints.
At evaluation the jitter is zero and the same code cuts the plain region.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from citytrack.data.formats.coco import COCO_FLIP_INDEX


def input_from_crop_matrices(regions: torch.Tensor, input_size: tuple[int, int], angle: torch.Tensor | None = None,
                             flip: torch.Tensor | None = None) -> torch.Tensor:
    """`(N, 3, 3)` maps from input pixels to crop pixels: the region's centre and size, rotated by
    `angle` (radians) and mirrored where `flip`."""
    n = len(regions)
    h_in, w_in = input_size
    dev, dt = regions.device, regions.dtype
    c = 0.5 * (regions[:, :2] + regions[:, 2:])
    sx = (regions[:, 2] - regions[:, 0]) / w_in
    sy = (regions[:, 3] - regions[:, 1]) / h_in
    if flip is not None:
        sx = torch.where(flip, -sx, sx)
    a = torch.zeros(n, device=dev, dtype=dt) if angle is None else angle.to(dt)
    cos, sin = torch.cos(a), torch.sin(a)
    m = torch.zeros(n, 3, 3, device=dev, dtype=dt)
    m[:, 0, 0], m[:, 0, 1] = cos * sx, -sin * sy
    m[:, 1, 0], m[:, 1, 1] = sin * sx, cos * sy
    centre_in = torch.tensor([w_in / 2, h_in / 2], device=dev, dtype=dt)
    m[:, :2, 2] = c - (m[:, :2, :2] @ centre_in)
    m[:, 2, 2] = 1
    return m


def warp_crops(images: torch.Tensor, matrices: torch.Tensor, input_size: tuple[int, int]) -> torch.Tensor:
    """Sample `(N, 3, H_in, W_in)` network inputs from crops `(N, 3, Hc, Wc)` through input->crop `matrices`."""
    h_in, w_in = input_size
    hc, wc = images.shape[-2:]
    dev, dt = matrices.device, matrices.dtype
    to_norm = torch.tensor([[2 / wc, 0, -1], [0, 2 / hc, -1], [0, 0, 1]], device=dev, dtype=dt)
    from_norm = torch.tensor([[w_in / 2, 0, w_in / 2], [0, h_in / 2, h_in / 2], [0, 0, 1]], device=dev, dtype=dt)
    theta = (to_norm @ matrices @ from_norm)[:, :2]
    grid = F.affine_grid(theta.float(), [len(images), 3, h_in, w_in], align_corners=False)
    return F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def apply_matrices(matrices: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """`(N, J, 2)` points through `(N, 3, 3)` affine maps."""
    return points @ matrices[:, :2, :2].transpose(1, 2) + matrices[:, None, :2, 2]


class PoseAugment:
    """Random scale (log-uniform, +-`scale`), shift (share of the region), rotation (degrees),
    horizontal flip with left/right swap, and brightness/contrast jitter, per sample."""

    def __init__(self, flip_p: float = 0.5, scale: float = 0.25, shift: float = 0.1, rotate: float = 20.0,
                 colour: float = 0.25) -> None:
        self.flip_p, self.scale, self.shift, self.rotate, self.colour = flip_p, scale, shift, rotate, colour

    def regions(self, regions: torch.Tensor) -> torch.Tensor:
        """Scale- and shift-jittered regions."""
        n, dev = len(regions), regions.device
        size = regions[:, 2:] - regions[:, :2]
        c = 0.5 * (regions[:, :2] + regions[:, 2:]) + (torch.rand(n, 2, device=dev) * 2 - 1) * self.shift * size
        s = torch.exp((torch.rand(n, 1, device=dev) * 2 - 1) * math.log1p(self.scale))
        return torch.cat([c - 0.5 * size * s, c + 0.5 * size * s], dim=1)

    def __call__(self, images: torch.Tensor, keypoints: torch.Tensor, regions: torch.Tensor,
                 input_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Crops `(N, 3, Hc, Wc)` in [0, 1] and keypoints `(N, J, 3)` in crop pixels -> jittered inputs and
        keypoints in input pixels (flipped samples with left and right joints swapped)."""
        n, dev = len(images), images.device
        angle = torch.deg2rad((torch.rand(n, device=dev) * 2 - 1) * self.rotate)
        flip = torch.rand(n, device=dev) < self.flip_p
        m = input_from_crop_matrices(self.regions(regions), input_size, angle, flip)
        x = warp_crops(images, m, input_size)
        kp = keypoints.clone()
        kp[..., :2] = apply_matrices(torch.linalg.inv(m), keypoints[..., :2])
        swap = torch.tensor(COCO_FLIP_INDEX, device=dev)
        kp = torch.where(flip[:, None, None], kp[:, swap], kp)
        if self.colour > 0:
            gain = 1 + (torch.rand(n, 1, 1, 1, device=dev) * 2 - 1) * self.colour
            bias = (torch.rand(n, 1, 1, 1, device=dev) * 2 - 1) * self.colour * 0.5
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = ((x - mean) * gain + mean + bias).clamp(0, 1)
        return x, kp
