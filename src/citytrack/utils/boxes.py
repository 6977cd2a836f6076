"""Box format conversions, the one home for them: `xywh` (top-left, size: MOT files and the
trackers), `xyxy` (corners: IoU, detector targets, drawing) and `cxcywh` (centre, size: the
detector head's raw output).

The numpy conversions return float64 copies and keep any columns after the fourth (a score,
a class) so a `(N, 5+)` detection table converts in one call. Imports numpy only, so the
trackers stay free of torch; `cxcywh_to_xyxy` also takes torch tensors (the detector).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """Top-left/size boxes `(..., 4+)` to corner boxes (extra columns kept)."""
    out = np.array(boxes, dtype=np.float64)
    out[..., 2:4] += out[..., 0:2]
    return out


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """Corner boxes `(..., 4+)` to top-left/size boxes (extra columns kept)."""
    out = np.array(boxes, dtype=np.float64)
    out[..., 2:4] -= out[..., 0:2]
    return out


def cxcywh_to_xyxy(boxes: Any) -> Any:
    """Centre/size boxes `(..., 4)` (numpy array or torch tensor, autograd kept) to corners."""
    cxcy, wh = boxes[..., :2], boxes[..., 2:4]
    if isinstance(boxes, np.ndarray):
        return np.concatenate([cxcy - wh / 2, cxcy + wh / 2], -1)
    import torch  # only tensors get here: numpy users need not import torch

    return torch.cat([cxcy - wh / 2, cxcy + wh / 2], -1)


def clip_xywh(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """xywh boxes clipped to a `(width, height)` image (zero size where wholly outside): what an
    annotator can draw and a detector can see."""
    boxes = np.asarray(boxes, dtype=np.float64)
    x0 = np.clip(boxes[:, 0], 0, size[0])
    y0 = np.clip(boxes[:, 1], 0, size[1])
    x1 = np.clip(boxes[:, 0] + boxes[:, 2], 0, size[0])
    y1 = np.clip(boxes[:, 1] + boxes[:, 3], 0, size[1])
    return np.c_[x0, y0, x1 - x0, y1 - y0]
