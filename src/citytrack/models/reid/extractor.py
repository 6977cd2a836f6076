"""`FeatureExtractor`: boxes in full frames -> L2-normalised appearance embeddings, for the trackers.

Crops are cut and resized on the device in one batched `roi_align` (no per-box Python
crop/resize on the CPU), then embedded in chunks under bf16 autocast on CUDA.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

from citytrack.models.reid.backbones import ReIDNet
from citytrack.utils.boxes import xywh_to_xyxy
from citytrack.utils.checkpoint import load_net_from_checkpoint
from citytrack.utils.device import resolve_device


class FeatureExtractor:
    """Embed boxes of BGR frames with a `ReIDNet`.

    `extractor(frames, boxes)` takes a list of HxWx3 uint8 BGR frames (or a (B, 3, H, W)
    RGB float tensor in [0, 1]) and a list of (N_i, 4) xywh box arrays; it returns a list
    of (N_i, D) float32 arrays with unit L2 norm. `extractor.embed(image, boxes)` is the
    per-frame form DeepSORT / BoT-SORT take as `embedder=`.
    """

    def __init__(
        self,
        net: ReIDNet,
        input_size: tuple[int, int] = (256, 128),
        device: str | torch.device = "auto",
        batch_size: int = 256,
        flip: bool = False,
    ) -> None:
        self.device = resolve_device(device)
        self.net = net.to(self.device).eval()
        if self.device.type == "cuda":
            self.net.to(memory_format=torch.channels_last)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.batch_size = int(batch_size)
        self.flip = flip
        self.dim = int(net.feat_dim)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "auto", **kwargs: Any) -> FeatureExtractor:
        """Rebuild the net from a `ReIDModule` checkpoint (Lightning .ckpt) without the training config."""
        # a run with torch.compile saves the weights under net._orig_mod.
        net, meta = load_net_from_checkpoint(path, "reid_net", lambda config: ReIDNet(**config), "ReIDModule",
                                             prefixes=("net._orig_mod.", "net."))
        kwargs.setdefault("input_size", tuple(meta.get("input_size", (256, 128))))
        return cls(net, device=device, **kwargs)

    # ------------------------------------------------------------------ crops
    def _frame_tensor(self, frame: np.ndarray) -> torch.Tensor:
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frames must be HxWx3 BGR arrays, got {getattr(frame, 'shape', type(frame))}")
        t = torch.from_numpy(np.ascontiguousarray(frame)).to(self.device, non_blocking=True)
        t = t.permute(2, 0, 1).flip(0).unsqueeze(0)  # BGR -> RGB, (1, 3, H, W)
        return t.float().div_(255.0) if t.dtype == torch.uint8 else t.float()

    def crops(self, frames: Sequence[np.ndarray] | torch.Tensor, boxes: Sequence[np.ndarray]) -> torch.Tensor:
        """All boxes of all frames as one (sum N_i, 3, h, w) RGB batch in [0, 1] on the device."""
        if len(frames) != len(boxes):
            raise ValueError(f"got {len(frames)} frames but {len(boxes)} box arrays")
        if isinstance(frames, torch.Tensor) and frames.ndim == 4:
            return self._crops_from_batch(frames, boxes)
        out = []
        for i, (frame, b) in enumerate(zip(frames, boxes, strict=True)):
            b = np.asarray(b, dtype=np.float32).reshape(-1, 4) if len(b) else np.zeros((0, 4), np.float32)
            if len(b) == 0:
                continue
            if not np.isfinite(b).all() or (b[:, 2:] <= 0).any():
                raise ValueError(f"frame {i}: boxes must be finite xywh with positive width and height")
            img = frame.unsqueeze(0).to(self.device).float() if isinstance(frame, torch.Tensor) else self._frame_tensor(frame)
            xyxy = torch.from_numpy(xywh_to_xyxy(b).astype(np.float32)).to(self.device)
            # adaptive sampling ratio averages several samples per bin: anti-aliased downscaling
            out.append(roi_align(img, [xyxy], output_size=self.input_size, spatial_scale=1.0, sampling_ratio=-1, aligned=True))
        if not out:
            return torch.zeros((0, 3, *self.input_size), device=self.device)
        return torch.cat(out)

    def _crops_from_batch(self, frames: torch.Tensor, boxes: Sequence[np.ndarray]) -> torch.Tensor:
        """One `roi_align` over a same-size batch `(B, 3, H, W)` (RGB float in [0, 1], or uint8)."""
        rois = []
        for i, b in enumerate(boxes):
            b = np.asarray(b, dtype=np.float32).reshape(-1, 4)
            if len(b) and (not np.isfinite(b).all() or (b[:, 2:] <= 0).any()):
                raise ValueError(f"frame {i}: boxes must be finite xywh with positive width and height")
            rois.append(np.c_[np.full(len(b), i, np.float32), xywh_to_xyxy(b).astype(np.float32)])
        rois_t = torch.from_numpy(np.concatenate(rois) if rois else np.zeros((0, 5), np.float32)).to(self.device)
        if len(rois_t) == 0:
            return torch.zeros((0, 3, *self.input_size), device=self.device)
        images = frames.to(self.device)
        images = images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()
        return roi_align(images, rois_t, output_size=self.input_size, spatial_scale=1.0, sampling_ratio=-1, aligned=True)

    # ------------------------------------------------------------------ embedding
    @torch.inference_mode()
    def embed_crops(self, crops: torch.Tensor) -> torch.Tensor:
        """(M, 3, h, w) RGB [0, 1] -> (M, D) unit-norm float32 features."""
        feats = []
        use_bf16 = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        for start in range(0, len(crops), self.batch_size):
            x = crops[start : start + self.batch_size]
            if self.device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=use_bf16):
                f = self.net(x).float()
                if self.flip:
                    f = f + self.net(torch.flip(x, dims=[3])).float()
            feats.append(F.normalize(f, dim=1))
        if not feats:
            return torch.zeros((0, self.dim), device=self.device)
        return torch.cat(feats)

    def __call__(self, frames: Sequence[np.ndarray] | torch.Tensor, boxes: Sequence[np.ndarray]) -> list[np.ndarray]:
        counts = [len(np.asarray(b).reshape(-1, 4)) if len(b) else 0 for b in boxes]
        feats = self.embed_crops(self.crops(frames, boxes)).cpu().numpy().astype(np.float32)
        return list(np.split(feats, np.cumsum(counts)[:-1])) if counts else []

    def embed(self, image: np.ndarray, boxes_xywh: np.ndarray) -> np.ndarray:
        """Per-frame embedder for trackers: (N, 4) xywh boxes of one BGR image -> (N, D)."""
        return self([image], [np.asarray(boxes_xywh, dtype=np.float32).reshape(-1, 4)])[0]
