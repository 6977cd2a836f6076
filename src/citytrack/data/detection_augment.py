"""Detection augmentation on the GPU, batched (kornia): geometry that moves the boxes with the pixels
and appearance randomisation, applied by `DetectionDataModule.on_after_batch_transfer` in training.

`augment_batch` (options under the datamodule's `augment`): random crop-resize or 4-image mosaic
onto an `out_size` canvas (smaller than `img_size` on CPU: same object sizes, a fraction of the
pixels), horizontal flip, log-uniform scale jitter, HSV jitter, synthetic distractors
(`paint_distractors`) and the appearance randomisation of `photometric_augment` (contrast,
grayscale, blur, low-resolution resampling, noise). Boxes pushed mostly out of view become
ignore regions, those gone entirely are dropped. Targets are `(B, M, 5)` `[cls, x1, y1, x2, y2]`
with `PAD` rows and `IGNORE` classes as in `detection_datasets`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import kornia
import torch
import torch.nn.functional as F

from citytrack.data.detection_datasets import IGNORE, PAD
from citytrack.data.letterbox import PAD_VALUE


def _uniform(lo: float, hi: float, n: int, rand: Callable[..., torch.Tensor]) -> torch.Tensor:
    return lo + (hi - lo) * rand(n)


def _transform_targets(
    targets: torch.Tensor,
    sx: torch.Tensor,
    s: torch.Tensor,
    tx: torch.Tensor,
    ty: torch.Tensor,
    region: torch.Tensor,
    min_visible: float,
    min_size: float,
    min_box: float = 0.0,
) -> torch.Tensor:
    """Boxes `(B, M, 5)` through `x' = sx * x + tx, y' = s * y + ty`, clipped to `region (B, 4) x0, y0, x1, y1`.

    A box is dropped (padding) when less than `min_size` of it stays inside its region in either
    direction, and becomes an ignore region when less than `min_visible` of its area does or
    when it shrank below `min_box` pixels in width or height (too small to learn from).
    """
    cls, boxes = targets[..., 0], targets[..., 1:5]
    x1 = sx[:, None] * boxes[..., 0] + tx[:, None]
    x2 = sx[:, None] * boxes[..., 2] + tx[:, None]
    y1 = s[:, None] * boxes[..., 1] + ty[:, None]
    y2 = s[:, None] * boxes[..., 3] + ty[:, None]
    nx1, nx2 = torch.minimum(x1, x2), torch.maximum(x1, x2)
    full_area = ((nx2 - nx1) * (y2 - y1)).clamp(min=1e-6)
    rx0, ry0, rx1, ry1 = (region[:, i : i + 1] for i in range(4))
    cx1, cx2 = torch.maximum(nx1, rx0), torch.minimum(nx2, rx1)
    cy1, cy2 = torch.maximum(y1, ry0), torch.minimum(y2, ry1)
    cw, ch = (cx2 - cx1).clamp(min=0), (cy2 - cy1).clamp(min=0)
    visible = cw * ch / full_area
    real = cls != PAD
    gone = real & ((cw < min_size) | (ch < min_size))
    tiny = ((nx2 - nx1) < min_box) | ((y2 - y1) < min_box)
    mostly_out = real & ~gone & ((visible < min_visible) | tiny) & (cls >= 0)
    cls = torch.where(mostly_out, torch.full_like(cls, IGNORE), cls)
    cls = torch.where(gone | ~real, torch.full_like(cls, PAD), cls)
    out = torch.stack([cls, cx1, cy1, cx2, cy2], -1)
    return torch.where((cls == PAD)[..., None], torch.tensor([float(PAD), 0, 0, 0, 0], device=out.device), out)


def _compact_targets(targets: torch.Tensor) -> torch.Tensor:
    """Move padding rows (class -1) to the end and drop columns that are padding in every image."""
    order = torch.argsort((targets[..., 0] == PAD).to(torch.int8), dim=1, stable=True)
    t = torch.gather(targets, 1, order[..., None].expand_as(targets))
    m = max(1, int((t[..., 0] != PAD).sum(1).max()))
    return t[:, :m].contiguous()


def paint_distractors(
    images: torch.Tensor,
    targets: torch.Tensor,
    count: int = 4,
    prob: float = 0.5,
    width: tuple[float, float] = (2.0, 10.0),
    height: tuple[float, float] = (15.0, 90.0),
    rand: Callable[..., torch.Tensor] | None = None,
) -> torch.Tensor:
    """Paint up to `count` random person-sized vertical bars (poles, posts, sign stands) per image.

    The rendered worlds hold people, boxes and pillars only, so a detector trained on them
    takes every upright thin shape of a real scene for a person. The bars are solid, randomly
    coloured (mostly dark to mid grey, like real street furniture) and only painted where
    they do not touch a gt box or ignore region, so they are pure negatives; each bar is drawn
    with probability `prob`.
    """
    b, _, h, w = images.shape
    dev = images.device
    rand = rand or (lambda *shape: torch.rand(*shape, device=dev))
    bw = _uniform(*width, b * count, rand).view(b, count)
    bh = _uniform(*height, b * count, rand).view(b, count)
    x0 = rand(b, count) * (w - bw)
    y0 = rand(b, count) * (h - bh)
    bars = torch.stack([x0, y0, x0 + bw, y0 + bh], -1)  # (B, K, 4)
    gt = targets[..., 1:5]
    real = (targets[..., 0] != PAD)[:, None, :]  # (B, 1, M)
    overlap = (
        (bars[:, :, None, 0] < gt[:, None, :, 2]) & (bars[:, :, None, 2] > gt[:, None, :, 0])
        & (bars[:, :, None, 1] < gt[:, None, :, 3]) & (bars[:, :, None, 3] > gt[:, None, :, 1]) & real
    ).any(-1)
    draw = ~overlap & (rand(b, count) < prob)
    grey = rand(b, count, 1) * 0.6
    tint = (rand(b, count, 3) - 0.5) * 0.2
    colour = (grey + tint).clamp(0, 1)  # (B, K, 3)
    ys = torch.arange(h, device=dev, dtype=torch.float32).view(1, 1, -1, 1) + 0.5
    xs = torch.arange(w, device=dev, dtype=torch.float32).view(1, 1, 1, -1) + 0.5
    inside = (
        (xs >= bars[..., 0, None, None]) & (xs < bars[..., 2, None, None])
        & (ys >= bars[..., 1, None, None]) & (ys < bars[..., 3, None, None]) & draw[..., None, None]
    )  # (B, K, H, W)
    out = images
    for k in range(count):
        out = torch.where(inside[:, k, None], colour[:, k, :, None, None], out)
    return out


_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_LUMA = (0.299, 0.587, 0.114)


def _hue_saturation_matrices(hue: torch.Tensor, sat: torch.Tensor) -> torch.Tensor:
    """Per-sample 3x3 RGB matrices: rotate the chroma (YIQ I/Q plane) by `hue` radians, scale it by `sat`."""
    yiq = _RGB_TO_YIQ.to(hue.device)
    c, s = torch.cos(hue) * sat, torch.sin(hue) * sat
    rot = torch.zeros(len(hue), 3, 3, device=hue.device)
    rot[:, 0, 0] = 1.0
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = c, -s, s, c
    return torch.linalg.inv(yiq) @ rot @ yiq


def _where_some(pick: torch.Tensor, images: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """`fn` applied to the picked samples only (the cost of an effect scales with its probability)."""
    idx = torch.nonzero(pick, as_tuple=True)[0]
    if idx.numel() == 0:
        return images
    out = images.clone()
    out[idx] = fn(images[idx])
    return out


def photometric_augment(
    images: torch.Tensor,
    hsv: tuple[float, float, float] | None = (0.015, 0.7, 0.4),
    contrast: float = 0.0,
    gray_prob: float = 0.0,
    blur_prob: float = 0.0,
    blur_sigma: tuple[float, float] = (0.3, 1.5),
    lowres_prob: float = 0.0,
    lowres_scale: tuple[float, float] = (0.4, 0.8),
    noise_prob: float = 0.0,
    noise_std: tuple[float, float] = (0.005, 0.04),
    rand: Callable[..., torch.Tensor] | None = None,
) -> torch.Tensor:
    """Appearance randomisation of `(B, 3, H, W)` [0, 1] images, each effect drawn per sample.

    The renders are flat-shaded, sharp and noise-free compared with real video, so besides YOLOX's
    HSV jitter (hue rotation and saturation scaling of the chroma as one 3x3 colour matrix per
    image, value gain): contrast, grayscale, Gaussian blur, a down-and-up resize (the softness and
    aliasing of a low-resolution, interlaced or compressed camera) and sensor noise.
    """
    b, _, h, w = images.shape
    dev = images.device
    rand = rand or (lambda *shape: torch.rand(*shape, device=dev))
    out = images
    if hsv is not None and any(hsv):
        hg, sg, vg = hsv
        hue = (rand(b) * 2 - 1) * hg * 2 * math.pi
        sat = 1 + (rand(b) * 2 - 1) * sg
        val = 1 + (rand(b) * 2 - 1) * vg
        mats = _hue_saturation_matrices(hue, sat) * val.view(-1, 1, 1)
        out = torch.einsum("bij,bjhw->bihw", mats, out).clamp(0, 1)
    if contrast > 0:
        c = (1 + (rand(b) * 2 - 1) * contrast).view(-1, 1, 1, 1)
        mean = out.mean((1, 2, 3), keepdim=True)
        out = ((out - mean) * c + mean).clamp(0, 1)
    if gray_prob > 0:
        luma = torch.tensor(_LUMA, device=dev).view(1, 3, 1, 1)
        out = _where_some(rand(b) < gray_prob, out, lambda x: (x * luma).sum(1, keepdim=True).expand_as(x))
    if lowres_prob > 0:
        f = _uniform(*lowres_scale, 1, rand).item()  # one factor per batch: one resize pair

        def lowres(x: torch.Tensor) -> torch.Tensor:
            small = torch.nn.functional.interpolate(x, scale_factor=f, mode="bilinear", antialias=True, align_corners=False)
            return torch.nn.functional.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)

        out = _where_some(rand(b) < lowres_prob, out, lowres)
    if blur_prob > 0:
        sigma = _uniform(*blur_sigma, b, rand)
        k = 2 * math.ceil(2 * blur_sigma[1]) + 1
        pick = rand(b) < blur_prob
        sig = sigma[pick]
        out = _where_some(pick, out, lambda x: kornia.filters.gaussian_blur2d(x, (k, k), torch.stack([sig, sig], 1)))
    if noise_prob > 0:
        std = _uniform(*noise_std, b, rand)
        pick = rand(b) < noise_prob
        sd = std[pick].view(-1, 1, 1, 1)
        out = _where_some(pick, out, lambda x: (x + torch.randn_like(x) * sd).clamp(0, 1))
    return out


def augment_batch(
    images: torch.Tensor,
    targets: torch.Tensor,
    out_size: int | None = None,
    scale: tuple[float, float] = (0.5, 1.5),
    translate: float = 0.2,
    flip_prob: float = 0.5,
    mosaic_prob: float = 0.0,
    box_centre_prob: float = 0.0,
    hsv: tuple[float, float, float] | None = (0.015, 0.7, 0.4),
    photometric: Mapping[str, Any] | None = None,
    distractors: Mapping[str, Any] | None = None,
    min_visible: float = 0.4,
    min_size: float = 2.0,
    min_box: float = 4.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random crop-resize or 4-image mosaic, flip and appearance jitter on `(B, 3, S, S)` [0, 1] images.

    Geometry (one axis-aligned affine `grid_sample` per sample and mosaic tile): every output tile is a crop of
    a source image scaled by `s` (log-uniform in `scale`), flipped with `flip_prob`. Without
    mosaic the tile is the whole `out_size` canvas (default: the input size) and the crop is
    centred on the source centre shifted by up to `translate` of its size, or, with
    `box_centre_prob`, on a random gt box (so small crops still see people). A mosaic sample
    (probability `mosaic_prob`) splits the canvas at a random point into four tiles, each a
    crop of a different image of the batch. Training on crops smaller than the inference
    input keeps the objects' pixel sizes and costs a fraction of the compute. `distractors`
    (options of `paint_distractors`) paints pole-like negatives; `photometric` (options of
    `photometric_augment`) randomises the appearance.

    Targets `(B, M, 5)` move with the pixels: boxes are clipped to their tile, become ignore
    regions when less than `min_visible` of them stays inside or when they shrink below `min_box`
    px, padding when nothing (less than `min_size` px) does. Returns the images `(B, 3, out, out)` and targets `(B, M', 5)`.
    """
    b, _, h, w = images.shape
    size = int(out_size or h)
    dev = images.device
    images = images.float()

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, device="cpu", generator=generator).to(dev)

    mosaic = rand(b) < mosaic_prob
    # mosaic split point, and the four tiles x0, y0, x1, y1 (a plain sample: tile 0 = whole canvas)
    mx = torch.where(mosaic, _uniform(0.3, 0.7, b, rand) * size, torch.full((b,), float(size), device=dev))
    my = torch.where(mosaic, _uniform(0.3, 0.7, b, rand) * size, torch.full((b,), float(size), device=dev))
    zero, full = torch.zeros(b, device=dev), torch.full((b,), float(size), device=dev)
    tiles = [
        torch.stack([zero, zero, mx, my], 1),
        torch.stack([mx, zero, full, my], 1),
        torch.stack([zero, my, mx, full], 1),
        torch.stack([mx, my, full, full], 1),
    ]
    fill_value = PAD_VALUE / 255.0
    canvas = torch.full((b, 3, size, size), fill_value, device=dev)
    centred = images - fill_value
    ys = torch.arange(size, device=dev, dtype=torch.float32).view(1, -1, 1) + 0.5
    xs = torch.arange(size, device=dev, dtype=torch.float32).view(1, 1, -1) + 0.5
    gt_real = targets[..., 0] >= 0
    out_targets = []
    log_lo, log_hi = math.log(scale[0]), math.log(scale[1])
    for q, tile in enumerate(tiles):
        active = torch.ones(b, dtype=torch.bool, device=dev) if q == 0 else mosaic
        if not bool(active.any()):
            continue
        src = torch.arange(b, device=dev) if q == 0 else torch.randperm(b, generator=generator).to(dev)
        s = torch.exp(_uniform(log_lo, log_hi, b, rand))
        flip = rand(b) < flip_prob
        sx = torch.where(flip, -s, s)
        # the source point that lands on the tile centre
        px = w / 2 + (rand(b) * 2 - 1) * translate * w
        py = h / 2 + (rand(b) * 2 - 1) * translate * h
        src_t = targets[src]
        real = gt_real[src]
        if box_centre_prob > 0 and bool(real.any()):
            # a random real box of each source image (uniform over its real boxes)
            weights = real.float() + 1e-9
            pick = torch.multinomial(weights.cpu(), 1, generator=generator).to(dev).squeeze(1)
            box = src_t[torch.arange(b, device=dev), pick, 1:5]
            jitter = (rand(b, 2) - 0.5) * (box[:, 2:4] - box[:, 0:2])
            use = (rand(b) < box_centre_prob) & real.any(1)
            px = torch.where(use, (box[:, 0] + box[:, 2]) / 2 + jitter[:, 0], px)
            py = torch.where(use, (box[:, 1] + box[:, 3]) / 2 + jitter[:, 1], py)
        tcx, tcy = (tile[:, 0] + tile[:, 2]) / 2, (tile[:, 1] + tile[:, 3]) / 2
        tx, ty = tcx - sx * px, tcy - s * py  # x' = sx * x + tx in continuous pixel coordinates
        idx = torch.nonzero(active, as_tuple=True)[0]
        # inverse map of every output pixel centre, normalised for grid_sample (align_corners=False);
        # the map is axis-aligned, so x depends on the column only and y on the row only
        gx = ((xs.view(1, 1, -1) - tx[idx].view(-1, 1, 1)) / sx[idx].view(-1, 1, 1)) * (2.0 / w) - 1.0
        gy = ((ys.view(1, -1, 1) - ty[idx].view(-1, 1, 1)) / s[idx].view(-1, 1, 1)) * (2.0 / h) - 1.0
        grid = torch.stack(torch.broadcast_tensors(gx, gy), -1)  # (n, S, S, 2)
        # zeros padding around (image - fill) + fill: the letterbox grey outside the source
        warped = F.grid_sample(centred[src[idx]], grid, mode="bilinear", padding_mode="zeros",
                               align_corners=False) + fill_value
        x0, y0, x1, y1 = (tile[idx, i].view(-1, 1, 1) for i in range(4))
        inside = (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
        canvas[idx] = torch.where(inside[:, None], warped, canvas[idx])
        region = torch.where(active[:, None], tile, torch.zeros_like(tile))
        t = _transform_targets(src_t, sx, s, tx, ty, region, min_visible, min_size, min_box)
        t[~active] = torch.tensor([float(PAD), 0, 0, 0, 0], device=dev)
        out_targets.append(t)
    out_t = _compact_targets(torch.cat(out_targets, 1))
    if distractors:
        canvas = paint_distractors(canvas, out_t, rand=rand, **dict(distractors))
    out = photometric_augment(canvas, hsv=hsv, rand=rand, **dict(photometric or {}))
    return out, out_t
