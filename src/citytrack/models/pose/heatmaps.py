"""Heatmap targets and decoding, and the crop geometry shared by training and the extractor.

Coordinates are continuous pixel coordinates (pixel i covers [i, i + 1)), as the boxes and the
synthetic ground truth use. Heatmap cell j (stride s) covers input pixels [s j, s (j + 1)), so an
input coordinate x is heatmap coordinate x / s - 0.5 in cell-centre units, and back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from kornia.filters import gaussian_blur2d

from citytrack.data.formats.coco import COCO_FLIP_INDEX, COCO_KEYPOINTS


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


PairedJoints = tuple[tuple[int, int], tuple[int, int]]
"""((left, right) joints that cannot share a point, (left, right) joints above them that tell which is which)."""

COCO_FEET: tuple[PairedJoints, ...] = (
    ((COCO_KEYPOINTS.index("left_ankle"), COCO_KEYPOINTS.index("right_ankle")),
     (COCO_KEYPOINTS.index("left_knee"), COCO_KEYPOINTS.index("right_knee"))),
)
"""The ankles, kept apart and told left from right by the knees and their maps (`decode_heatmaps(pairs=...)`)."""


def modulate(heatmaps: torch.Tensor, sigma: float) -> torch.Tensor:
    """DARK's distribution modulation (Zhang et al. 2020): each map blurred by a Gaussian of `sigma` cells
    (zero outside the map), then rescaled to its own maximum, so the sub-pixel step below sees a smooth,
    near-Gaussian peak instead of the network's ragged one. `sigma` 0: the maps unchanged."""
    if sigma <= 0:
        return heatmaps
    k = 2 * math.ceil(2 * sigma) + 1
    peak = heatmaps.amax(dim=(2, 3), keepdim=True)
    blurred = gaussian_blur2d(heatmaps, (k, k), (sigma, sigma), border_type="constant")
    return blurred * (peak / blurred.amax(dim=(2, 3), keepdim=True).clamp_min(1e-10))


def decode_heatmaps(heatmaps: torch.Tensor, stride: int, pairs: Sequence[PairedJoints] = (),
                    min_separation: float = 2.0, min_ratio: float = 0.3, blur_sigma: float = 0.0,
                    proximal_weight: float = 0.5) -> torch.Tensor:
    """`(B, J, h, w)` -> `(B, J, 3)` x, y (input pixels) and the peak value.

    Arg-max, refined to sub-pixel by one Newton step on the log heatmap (DARK, Zhang et al. 2020;
    its blur with `blur_sigma` > 0, `modulate`): the 3x3 stencil is centred on the peak, or moved one
    cell inwards at the border, so a Gaussian peak is found exactly anywhere in the map. Needs h, w >= 3.

    `pairs` (e.g. `COCO_FEET`): a network that cannot tell a walker's left foot from the right puts
    a peak on both feet in both ankle maps, and the two arg-maxes then fall on the same (the more
    visible) foot: on the synthetic held-out crops, for 45% of the people whose ankles are a stride
    apart. For each pair whose arg-maxes lie closer than `min_separation` cells, the pair of local
    maxima (top 3 per map, each at least `min_ratio` of its map's peak) at least that far apart with
    the highest summed value is taken instead, if there is one (feet that do overlap keep one peak);
    then the two joints are named left and right by the assignment with the higher score: the two
    maps' values at their points, less `proximal_weight` x the summed distance (cells) of each point to
    its own proximal joint (the knees, whose maps say left from right far more often). Distance alone
    decides when the knees are clearly apart, the maps when the legs cross (synthetic validation crops,
    flip, 5 scales x 4 offsets, blur 1: AP 0.720 by the knees alone, 0.723 with both at weight 0.5, 0.716 by the maps alone).
    """
    B, J, h, w = heatmaps.shape
    hm = modulate(heatmaps.float(), blur_sigma)
    peak, idx = hm.reshape(B, J, -1).max(dim=-1)
    for (a, b), _ in pairs:
        _separate(hm, idx, peak, a, b, min_separation, min_ratio)
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
    out = torch.stack([(x + 0.5) * stride, (y + 0.5) * stride, peak], dim=-1)
    for (a, b), (pa, pb) in pairs:
        kept = (out[:, a, :2] - out[:, pa, :2]).norm(dim=-1) + (out[:, b, :2] - out[:, pb, :2]).norm(dim=-1)
        swapped = (out[:, b, :2] - out[:, pa, :2]).norm(dim=-1) + (out[:, a, :2] - out[:, pb, :2]).norm(dim=-1)
        maps_kept = _value_at(hm[:, a], out[:, a, :2], stride) + _value_at(hm[:, b], out[:, b, :2], stride)
        maps_swapped = _value_at(hm[:, a], out[:, b, :2], stride) + _value_at(hm[:, b], out[:, a, :2], stride)
        swap = ((maps_swapped - maps_kept) + proximal_weight * (kept - swapped) / stride > 0)[:, None]
        out[:, a], out[:, b] = torch.where(swap, out[:, b], out[:, a]), torch.where(swap, out[:, a], out[:, b])
    return out


def _value_at(maps: torch.Tensor, points: torch.Tensor, stride: int) -> torch.Tensor:
    """`(B,)` bilinear values of maps `(B, h, w)` at input-pixel `points` `(B, 2)` (0 outside the map)."""
    B, h, w = maps.shape
    grid = torch.stack([points[:, 0] / (w * stride), points[:, 1] / (h * stride)], dim=-1) * 2 - 1
    return F.grid_sample(maps[:, None], grid.view(B, 1, 1, 2), mode="bilinear", padding_mode="zeros",
                         align_corners=False).view(B)


def _separate(hm: torch.Tensor, idx: torch.Tensor, peak: torch.Tensor, a: int, b: int, min_separation: float,
              min_ratio: float, candidates: int = 3) -> None:
    """Move joints `a` and `b`'s peak cells (`idx`, `peak`, in place) apart where they coincide (`decode_heatmaps`)."""
    B, _, h, w = hm.shape
    maps = hm[:, [a, b]]
    local_max = F.max_pool2d(maps, 3, stride=1, padding=1) == maps
    k = min(candidates, h * w)
    v, i = torch.where(local_max, maps, torch.full_like(maps, -1.0)).reshape(B, 2, -1).topk(k, dim=-1)
    x, y = (i % w).float(), (i // w).float()
    dist = torch.hypot(x[:, 0, :, None] - x[:, 1, None, :], y[:, 0, :, None] - y[:, 1, None, :])  # (B, k, k)
    va, vb = v[:, 0], v[:, 1]
    strong_a = (va > 0) & (va >= min_ratio * va[:, :1])
    strong_b = (vb > 0) & (vb >= min_ratio * vb[:, :1])
    ok = (dist >= min_separation) & strong_a[:, :, None] & strong_b[:, None, :]
    score = torch.where(ok, va[:, :, None] + vb[:, None, :], torch.full_like(dist, -torch.inf)).reshape(B, -1)
    best_score, best = score.max(dim=-1)
    use = (dist[:, 0, 0] < min_separation) & torch.isfinite(best_score)
    ia, ib = (best // k)[:, None], (best % k)[:, None]
    idx[:, a] = torch.where(use, i[:, 0].gather(1, ia)[:, 0], idx[:, a])
    idx[:, b] = torch.where(use, i[:, 1].gather(1, ib)[:, 0], idx[:, b])
    peak[:, a] = torch.where(use, va.gather(1, ia)[:, 0], peak[:, a])
    peak[:, b] = torch.where(use, vb.gather(1, ib)[:, 0], peak[:, b])


def flip_averaged(net: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
    """`net`'s heatmaps of `inputs` averaged with those of the mirrored inputs, mirrored back with left and
    right joints swapped (the flip test)."""
    hm = net(inputs).float()
    flipped = net(torch.flip(inputs, dims=[3])).float()
    return 0.5 * (hm + torch.flip(flipped, dims=[3])[:, list(COCO_FLIP_INDEX)])


Shift = tuple[float, float]
"""A test crop's offset (x, y) in heatmap cells of the plain crop (`CropCut`)."""


@dataclass(frozen=True)
class CropCut:
    """One test-time cut of a person's crop: the plain region `scale` times as large about its centre, moved by
    `shift` (x, y, heatmap cells of the plain crop) and turned by `angle` degrees (the input's axes turned as
    `augment.input_from_crop_matrices(angle=...)` turns them)."""

    scale: float = 1.0
    shift: Shift = (0.0, 0.0)
    angle: float = 0.0

    @property
    def plain(self) -> bool:
        return self.scale == 1.0 and self.shift == (0.0, 0.0) and self.angle == 0.0


PLAIN_CUT = CropCut()
"""The crop as `box_regions` cuts it."""


def crop_cuts(scales: Sequence[float], shifts: Sequence[Sequence[float]] = ((0.0, 0.0),),
              angles: Sequence[float] = (0.0,)) -> list[CropCut]:
    """The cuts of a multi-cut test: every scale at every offset, and every scale (not offset) at every nonzero
    angle. Raises on an empty list, a non-positive scale or an offset that is not (x, y)."""
    if not scales or min(scales) <= 0:
        raise ValueError(f"test scales must be positive region scales, got {list(scales)}")
    if not shifts or any(len(shift) != 2 for shift in shifts):
        raise ValueError(f"test shifts must be (x, y) offsets in heatmap cells, got {[list(sh) for sh in shifts]}")
    if not angles:
        raise ValueError("test angles must name at least one angle (0 = upright)")
    cuts = [CropCut(float(s), (float(sh[0]), float(sh[1]))) for s in scales for sh in shifts]
    cuts += [CropCut(float(s), (0.0, 0.0), float(a)) for s in scales for a in angles if a != 0]
    return cuts


def cut_to_plain(heatmaps: torch.Tensor, cut: CropCut) -> torch.Tensor:
    """Heatmaps of a crop cut as `cut` says, resampled onto the plain crop's heatmap grid. With `D` half the map's
    size, a point at `p` (cells from the centre) of the plain crop sits at `R(-angle) (p - shift) / scale` in the
    cut one, which in `grid_sample`'s normalised coordinates is `D^-1 R(-angle) D (u - D^-1 shift) / scale`.
    Outside the cut crop: 0."""
    if cut.plain:
        return heatmaps
    B, J, h, w = heatmaps.shape
    a = math.radians(cut.angle)
    cos, sin = math.cos(a), math.sin(a)
    rot = torch.tensor([[cos, sin * h / w], [-sin * w / h, cos]], dtype=torch.float32) / cut.scale
    offset = -rot @ torch.tensor([2.0 * cut.shift[0] / w, 2.0 * cut.shift[1] / h])
    theta = torch.cat([rot, offset[:, None]], dim=1).to(heatmaps.device).expand(B, 2, 3)
    grid = F.affine_grid(theta, [B, J, h, w], align_corners=False)
    return F.grid_sample(heatmaps.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def multi_cut_heatmaps(heatmaps_at: Callable[[CropCut], torch.Tensor], cuts: Sequence[CropCut]) -> torch.Tensor:
    """Mean over `cuts` of `heatmaps_at(cut)` (the heatmaps of the crops cut that way), each resampled onto the
    plain crop's grid (`cut_to_plain`): a multi-scale, multi-offset, multi-angle test. The small network's peaks
    move with how the person falls on its input grid; averaging several cuts cancels much of that (synthetic
    validation crops, flip test, DARK blur 1: AP 0.672 at scale 1, 0.716 over 0.8, 0.9, 1, 1.1, 1.2, 0.719 with
    each of those also cut half a cell down and right, +0.004 again with each scale also turned +-5 degrees)."""
    if not cuts:
        raise ValueError("multi_cut_heatmaps needs at least one cut")
    total = None
    for cut in cuts:
        hm = cut_to_plain(heatmaps_at(cut), cut)
        total = hm if total is None else total + hm
    return total if len(cuts) == 1 else total / len(cuts)


def cut_regions(regions: torch.Tensor, cut: CropCut, input_size: tuple[int, int], stride: int) -> torch.Tensor:
    """Axis-aligned crop regions `(N, 4)` of `cut` from the plain regions: enlarged `cut.scale` times about their
    centres and moved by `cut.shift` heatmap cells (the angle is the caller's: `input_from_crop_matrices`)."""
    px = (regions[:, 2] - regions[:, 0]) / input_size[1] * stride  # image pixels per plain heatmap cell
    centre = 0.5 * (regions[:, :2] + regions[:, 2:])
    centre = centre + torch.stack([cut.shift[0] * px, cut.shift[1] * px], dim=1)
    half = 0.5 * cut.scale * (regions[:, 2:] - regions[:, :2])
    return torch.cat([centre - half, centre + half], dim=1)


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
