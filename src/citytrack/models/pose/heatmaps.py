"""Heatmap targets and decoding, and the crop geometry shared by training and the extractor.

Coordinates are continuous pixel coordinates (pixel i covers [i, i + 1)), as the boxes and the
synthetic ground truth use. Heatmap cell j (stride s) covers input pixels [s j, s (j + 1)), so an
input coordinate x is heatmap coordinate x / s - 0.5 in cell-centre units, and back.
"""

from __future__ import annotations

import torch


def gaussian_targets(keypoints: torch.Tensor, heatmap_size: tuple[int, int], stride: int, sigma: float,
                     amplitude: torch.Tensor) -> torch.Tensor:
    """`(B, J, h, w)` Gaussian heatmaps centred on `keypoints` `(B, J, 2)` (input pixels), scaled by
    `amplitude` `(B, J)` (0 gives an empty map: "not in view")."""
    h, w = heatmap_size
    c = keypoints / stride - 0.5
    xs = torch.arange(w, device=keypoints.device, dtype=keypoints.dtype)
    ys = torch.arange(h, device=keypoints.device, dtype=keypoints.dtype)
    gx = torch.exp(-((xs - c[..., 0:1]) ** 2) / (2 * sigma**2))  # (B, J, w)
    gy = torch.exp(-((ys - c[..., 1:2]) ** 2) / (2 * sigma**2))  # (B, J, h)
    return amplitude[..., None, None] * gy[..., :, None] * gx[..., None, :]


def decode_heatmaps(heatmaps: torch.Tensor, stride: int) -> torch.Tensor:
    """`(B, J, h, w)` -> `(B, J, 3)` x, y (input pixels) and the peak value.

    Arg-max, refined to sub-pixel by one Newton step on the log heatmap (DARK, Zhang et al. 2020,
    without the blur): the 3x3 stencil is centred on the peak, or moved one cell inwards at the
    border, so a Gaussian peak is found exactly anywhere in the map. Needs h, w >= 3.
    """
    B, J, h, w = heatmaps.shape
    hm = heatmaps.float()
    peak, idx = hm.reshape(B, J, -1).max(dim=-1)
    xc = (idx % w).clamp(1, w - 2)
    yc = (idx // w).clamp(1, h - 2)
    logh = hm.clamp_min(1e-10).log().reshape(B, J, -1)

    def at(dx: int, dy: int) -> torch.Tensor:
        return logh.gather(-1, ((yc + dy) * w + (xc + dx))[..., None])[..., 0]

    c = at(0, 0)
    dx = 0.5 * (at(1, 0) - at(-1, 0))
    dy = 0.5 * (at(0, 1) - at(0, -1))
    dxx = at(1, 0) - 2 * c + at(-1, 0)
    dyy = at(0, 1) - 2 * c + at(0, -1)
    dxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
    det = dxx * dyy - dxy**2
    ok = (det > 1e-12) & (dxx < 0) & (dyy < 0)  # a maximum: else keep the arg-max
    safe = torch.where(ok, det, torch.ones_like(det))
    zero = torch.zeros_like(det)
    ox = torch.where(ok, -(dyy * dx - dxy * dy) / safe, zero).clamp(-1.5, 1.5)
    oy = torch.where(ok, -(dxx * dy - dxy * dx) / safe, zero).clamp(-1.5, 1.5)
    x = torch.where(ok, xc.float() + ox, (idx % w).float()).clamp(-0.5, w - 0.5)
    y = torch.where(ok, yc.float() + oy, (idx // w).float()).clamp(-0.5, h - 0.5)
    return torch.stack([(x + 0.5) * stride, (y + 0.5) * stride, peak], dim=-1)


def box_regions(boxes: torch.Tensor, input_size: tuple[int, int], padding: float) -> torch.Tensor:
    """Crop regions `(N, 4)` x0, y0, x1, y1 of xywh `boxes`: each box widened or heightened to the
    network input's aspect ratio about its centre, then enlarged by `padding` (the top-down crop)."""
    h_in, w_in = input_size
    aspect = w_in / h_in
    cx = boxes[:, 0] + 0.5 * boxes[:, 2]
    cy = boxes[:, 1] + 0.5 * boxes[:, 3]
    w = torch.maximum(boxes[:, 2], boxes[:, 3] * aspect) * padding
    h = w / aspect
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=1)


def region_to_image(points: torch.Tensor, regions: torch.Tensor, input_size: tuple[int, int]) -> torch.Tensor:
    """Map `(N, J, 2)` input-pixel points of crops cut from `regions` `(N, 4)` back to image pixels."""
    h_in, w_in = input_size
    scale = torch.stack([(regions[:, 2] - regions[:, 0]) / w_in, (regions[:, 3] - regions[:, 1]) / h_in], dim=1)
    return regions[:, None, :2] + points * scale[:, None]
