"""`KeypointExtractor`: person boxes in full frames -> COCO-17 keypoints, for the scene runner.

All boxes of all frames are cut and resized on the device in one batched `roi_align` (as the
ReID `FeatureExtractor` does) and go through the network in chunks, bf16 + channels_last on
CUDA; heatmaps are decoded on the device and mapped back to each frame's pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.ops import roi_align

from citytrack.data.formats.coco import NUM_KEYPOINTS
from citytrack.models.ema import EMA_PREFIX
from citytrack.models.pose.augment import input_from_crop_matrices, warp_crops
from citytrack.models.pose.heatmaps import (
    COCO_FEET,
    CropCut,
    box_regions,
    crop_cuts,
    cut_regions,
    decode_heatmaps,
    flip_averaged,
    multi_cut_heatmaps,
    region_to_image,
)
from citytrack.models.pose.net import HEATMAP_STRIDE, PoseNet
from citytrack.utils.checkpoint import load_net_from_checkpoint
from citytrack.utils.device import resolve_device


def load_pose_net(path: str | Path) -> tuple[PoseNet, dict[str, Any]]:
    """The `PoseNet` of a `KeypointModule` checkpoint (fp32; its weight average where it kept one) and its
    `pose_net` entry (net config, input size, crop padding): what inference and a warm start need, without
    the training config."""
    net, meta = load_net_from_checkpoint(path, "pose_net", lambda config: PoseNet(**config), "KeypointModule",
                                         prefixes=(EMA_PREFIX, "net."))
    return net.float(), meta  # fp16 inference checkpoints come back as fp32


class KeypointExtractor:
    """Keypoints of boxes in BGR frames with a `PoseNet`.

    `extractor(images, boxes)`: `images` a uint8 `(B, 3, H, W)` BGR batch on any device, `boxes[i]`
    an `(N_i, 4)` xywh array in image i's pixels; returns per image an `(N_i, 17, 3)` float32 array
    of x, y (image pixels) and a confidence in [0, 1] per joint, COCO-17 order. The confidence is
    the heatmap peak: ~1 for a visible joint, ~0.5 for an occluded one, ~0 outside the frame
    (as trained, `KeypointModule`). `separate_feet` keeps the ankles apart (`heatmaps.COCO_FEET`);
    `flip`, `scales` (region scales), `shifts` (offsets in heatmap cells) and `angles` (degrees) add test-time
    passes (`heatmaps.crop_cuts`, `heatmaps.multi_cut_heatmaps`): more accurate joints for 2x and
    len(scales) x (len(shifts) + len(nonzero angles)) x the network's work.
    `blur_sigma`: DARK's blur of the heatmaps before decoding (`heatmaps.modulate`, cells; 0 = none).
    """

    def __init__(self, net: PoseNet, input_size: tuple[int, int] = (256, 128), padding: float = 1.25,
                 device: str | torch.device = "auto", batch_size: int = 256, flip: bool = False,
                 separate_feet: bool = True, scales: Sequence[float] = (1.0,),
                 shifts: Sequence[Sequence[float]] = ((0.0, 0.0),), angles: Sequence[float] = (0.0,),
                 blur_sigma: float = 1.0) -> None:
        self.device = resolve_device(device)
        self.net = net.to(self.device).eval()
        if self.device.type == "cuda":
            self.net.to(memory_format=torch.channels_last)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.padding, self.batch_size, self.flip = float(padding), int(batch_size), flip
        self.pairs = COCO_FEET if separate_feet else ()
        self.cuts = crop_cuts(scales, shifts, angles)  # raises on bad values
        self.blur_sigma = float(blur_sigma)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu", **kwargs: Any) -> KeypointExtractor:
        """Rebuild the net from a `KeypointModule` checkpoint (Lightning .ckpt) without the training config."""
        net, meta = load_pose_net(path)
        kwargs.setdefault("input_size", tuple(meta["input_size"]))
        kwargs.setdefault("padding", meta["padding"])
        return cls(net, device=device, **kwargs)

    def regions(self, boxes: Sequence[np.ndarray]) -> torch.Tensor:
        """`(sum N_i, 5)` roi rows `image index, x0, y0, x1, y1` of the crops of all boxes."""
        rows = []
        for i, b in enumerate(boxes):
            b = np.asarray(b, dtype=np.float32).reshape(-1, 4)
            if len(b) and (not np.isfinite(b).all() or (b[:, 2:] <= 0).any()):
                raise ValueError(f"image {i}: boxes must be finite xywh with positive width and height")
            reg = box_regions(torch.from_numpy(b), self.input_size, self.padding)
            rows.append(torch.cat([torch.full((len(b), 1), float(i)), reg], dim=1))
        return torch.cat(rows) if rows else torch.zeros((0, 5))

    def crops(self, frames: torch.Tensor, rois: torch.Tensor, angle: float = 0.0) -> torch.Tensor:
        """`(M, 3, h_in, w_in)` RGB network inputs of `rois` (`regions` rows) of BGR `frames`, their axes turned by
        `angle` degrees as `augment.input_from_crop_matrices` turns them: `roi_align` cuts the upright box
        around the turned region, then `augment.warp_crops` turns it (roi_align itself cannot)."""
        h_in, w_in = self.input_size
        if angle == 0.0:
            crops = roi_align(frames, rois, output_size=self.input_size, spatial_scale=1.0, sampling_ratio=-1, aligned=True)
            return crops.flip(1)
        a = math.radians(angle)
        cos, sin = abs(math.cos(a)), abs(math.sin(a))
        out_w, out_h = math.ceil(w_in * cos + h_in * sin), math.ceil(w_in * sin + h_in * cos)  # input px
        centre = 0.5 * (rois[:, 1:3] + rois[:, 3:5])
        px = (rois[:, 3] - rois[:, 1]) / w_in  # image pixels per input pixel
        half = 0.5 * torch.stack([out_w * px, out_h * px], dim=1)
        around = torch.cat([rois[:, :1], centre - half, centre + half], dim=1)
        upright = roi_align(frames, around, output_size=(out_h, out_w), spatial_scale=1.0, sampling_ratio=-1, aligned=True)
        # the turned region sits centred in the upright crop, one crop pixel per input pixel: the module's warp
        region = torch.tensor([[(out_w - w_in) / 2, (out_h - h_in) / 2, (out_w + w_in) / 2, (out_h + h_in) / 2]],
                              device=frames.device).expand(len(rois), 4)
        m = input_from_crop_matrices(region, self.input_size, angle=torch.full((len(rois),), a, device=frames.device))
        return warp_crops(upright, m, self.input_size).flip(1)

    @torch.inference_mode()
    def keypoints(self, images: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        """`(M, 17, 3)` keypoints in image pixels of the crops `rois` (`regions`) of `images`, on the device."""
        if len(rois) == 0:
            return torch.zeros((0, NUM_KEYPOINTS, 3), device=self.device)
        rois = rois.to(self.device)
        frames = images.to(self.device).float()  # roi_align is linear: divide the crops, not the frames
        use_bf16 = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        out = []
        for start in range(0, len(rois), self.batch_size):
            r = rois[start : start + self.batch_size]

            def heatmaps_at(cut: CropCut, r: torch.Tensor = r) -> torch.Tensor:
                moved = torch.cat([r[:, :1], cut_regions(r[:, 1:], cut, self.input_size, HEATMAP_STRIDE)], dim=1)
                x = self.crops(frames, moved, cut.angle).div_(255.0)  # RGB, [0, 1]
                if self.device.type == "cuda":
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=use_bf16):
                    return flip_averaged(self.net, x) if self.flip else self.net(x).float()

            heatmaps = multi_cut_heatmaps(heatmaps_at, self.cuts)
            dec = decode_heatmaps(heatmaps, HEATMAP_STRIDE, self.pairs, blur_sigma=self.blur_sigma)
            dec[..., :2] = region_to_image(dec[..., :2], r[:, 1:], self.input_size)
            dec[..., 2] = dec[..., 2].clamp(0, 1)
            out.append(dec)
        return torch.cat(out)

    def __call__(self, images: torch.Tensor, boxes: Sequence[np.ndarray]) -> list[np.ndarray]:
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be a (B, 3, H, W) uint8 BGR tensor, got {getattr(images, 'shape', type(images))}")
        if len(images) != len(boxes):
            raise ValueError(f"got {len(images)} images but {len(boxes)} box arrays")
        counts = [len(np.asarray(b).reshape(-1, 4)) for b in boxes]
        kps = self.keypoints(images, self.regions(boxes)).cpu().numpy().astype(np.float32)
        return list(np.split(kps, np.cumsum(counts)[:-1]))
