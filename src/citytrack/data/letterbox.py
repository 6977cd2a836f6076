"""Letterbox resizing: keep the aspect ratio, pad to a square network input.

A detector trained on square inputs sees people at their true proportions whatever the
camera's aspect ratio; boxes map to and from the letterboxed frame with one scale and
one offset, so the mapping is exact and invertible (`Letterbox.to_input` /
`Letterbox.to_image`). A numpy/OpenCV path serves the datasets; a torch path resizes
whole batches on the GPU for multi-camera inference.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

PAD_VALUE = 114


@dataclass(frozen=True)
class Letterbox:
    """Scale and padding that map original image pixels onto the network input."""

    scale: float
    pad_x: float
    pad_y: float
    width: int  # original image size
    height: int

    @classmethod
    def fit(cls, width: int, height: int, size: int | tuple[int, int]) -> Letterbox:
        """The letterbox of a `width x height` image into `size` (int or (h, w)), centred."""
        out_h, out_w = (size, size) if isinstance(size, int) else size
        if width <= 0 or height <= 0:
            raise ValueError(f"image size must be positive, got {width}x{height}")
        scale = min(out_w / width, out_h / height)
        new_w, new_h = round(width * scale), round(height * scale)
        return cls(scale, (out_w - new_w) // 2, (out_h - new_h) // 2, width, height)

    @property
    def resized(self) -> tuple[int, int]:
        """(w, h) of the image content inside the padded input."""
        return round(self.width * self.scale), round(self.height * self.scale)

    def to_input(self, boxes_xyxy: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Original-image xyxy boxes -> network-input xyxy boxes."""
        out = boxes_xyxy * self.scale
        out[..., 0::2] += self.pad_x
        out[..., 1::2] += self.pad_y
        return out

    def to_image(self, boxes_xyxy: np.ndarray | torch.Tensor, clip: bool = True) -> np.ndarray | torch.Tensor:
        """Network-input xyxy boxes -> original-image xyxy boxes (clipped to the image)."""
        out = boxes_xyxy.clone() if isinstance(boxes_xyxy, torch.Tensor) else boxes_xyxy.copy()
        out[..., 0::2] -= self.pad_x
        out[..., 1::2] -= self.pad_y
        out = out / self.scale
        if clip:
            if isinstance(out, torch.Tensor):
                out[..., 0::2] = out[..., 0::2].clamp(0, self.width)
                out[..., 1::2] = out[..., 1::2].clamp(0, self.height)
            else:
                out[..., 0::2] = np.clip(out[..., 0::2], 0, self.width)
                out[..., 1::2] = np.clip(out[..., 1::2], 0, self.height)
        return out


def rect_input_size(width: int, height: int, size: int, stride: int = 32) -> tuple[int, int]:
    """`(h, w)` of the smallest stride-aligned input holding the image scaled to `size` on its long side.

    Inference on a 16:9 camera then pads to e.g. 416x256 instead of 416x416 (YOLO's "rect"
    inference): 40% fewer pixels, the same scale as the square letterbox, so the same boxes.
    """
    scale = size / max(width, height)
    h, w = (int(np.ceil(round(v * scale) / stride) * stride) for v in (height, width))
    return min(h, size), min(w, size)


NATIVE_MAX_SIZE = 1280
"""Cap of `native_input_size`. Chosen on held-out synthetic frames only (`bench transfer --parts sizes`:
the detector's domain-randomised recipe, unseen seed, a 50 m street): at 1920x1080 a letterbox of 1280
gave mAP@.5 / mAP@[.5:.95] 0.813 / 0.405, 1536 gave 0.791 / 0.394, the checkpoint's 416 0.463 / 0.179.
On real frames the CPU checkpoint does worse at its native size (checkpoints/README.md)."""


def native_input_size(width: int, height: int, max_size: int = NATIVE_MAX_SIZE, stride: int = 32) -> int:
    """The letterbox size that keeps an image at its own resolution: its long side rounded up to
    the stride, at most `max_size` (`img_size="native"` of the detector).

    A detector trained at a small input loses people a few tens of pixels tall when a large camera
    frame is shrunk to it; at the frame's own pixels they stay as large as the camera saw them.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    return int(min(np.ceil(max(width, height) / stride) * stride, max_size))


def letterbox_image(image: np.ndarray, size: int | tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """Resize `image` (H, W, C uint8) into a padded `size` canvas; return it and the mapping."""
    if image is None or image.ndim != 3 or image.size == 0:
        raise ValueError(f"expected an HxWxC image, got {None if image is None else image.shape}")
    h, w = image.shape[:2]
    lb = Letterbox.fit(w, h, size)
    out_h, out_w = (size, size) if isinstance(size, int) else size
    new_w, new_h = lb.resized
    interp = cv2.INTER_AREA if lb.scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interp) if (new_w, new_h) != (w, h) else image
    canvas = np.full((out_h, out_w, image.shape[2]), PAD_VALUE, dtype=image.dtype)
    px, py = int(lb.pad_x), int(lb.pad_y)
    canvas[py : py + new_h, px : px + new_w] = resized
    return canvas, lb


def letterbox_batch(images: torch.Tensor, size: int | tuple[int, int]) -> tuple[torch.Tensor, Letterbox]:
    """Letterbox a batch of same-size images `(B, C, H, W)` (any float/uint8 dtype) on its device.

    Returns float images in the input's value range and the shared mapping.
    """
    _, _, h, w = images.shape
    lb = Letterbox.fit(w, h, size)
    out_h, out_w = (size, size) if isinstance(size, int) else size
    new_w, new_h = lb.resized
    x = images.float()
    if (new_w, new_h) != (w, h):
        x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=lb.scale < 1)
    px, py = int(lb.pad_x), int(lb.pad_y)
    pad_value = PAD_VALUE if images.dtype == torch.uint8 else PAD_VALUE / 255.0
    x = F.pad(x, (px, out_w - new_w - px, py, out_h - new_h - py), value=pad_value)
    return x, lb
