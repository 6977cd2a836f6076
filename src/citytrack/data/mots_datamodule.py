"""Lightning datamodule of the MOTS segmenter (SpatialEmbedding), over `find_mots_sequences`.

Sources (`train`, `val`), each a mapping:
`{root: DIR, split: training|train|null, sequences: [names]|null, synth: {seed: 40, ...}|null}`.
With `synth`, the synthetic world is generated on first use with
`ensure_synthetic_dataset(root, layout=kitti_mots, **synth)` (train and val from different
seeds and roots); otherwise `root` is a KITTI MOTS (or MOTS20) folder a user has on disk.

- Training: crops of `crop_size` (h, w) around instances of the configured `classes`, as the
  reference trains on object-centred crops: an instance is drawn at random (`samples_per_epoch`
  draws per epoch), the crop is centred on its box, shifted by up to `crop_jitter` of the crop
  size, and kept inside the frame (frames smaller than the crop are padded with ignore).
- Validation: full frames of held-out sequences (every `val_stride`-th, at most `val_max_frames`),
  downscaled by `val_scale`; the collate pads a batch to its largest frame with ignore (`size`
  keeps each frame's own).

Batches are `{"image": (B, 3, H, W) uint8 RGB, "ids": (B, H, W) int32 KITTI MOTS ids}` (+ `size`,
`scale` in validation). `on_after_batch_transfer` turns the images into [0, 1] floats on the
device and, in training only, applies a random brightness factor and horizontal flips.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

from citytrack.data.formats.kitti_mots import IGNORE_ID, mask_areas, mask_boxes
from citytrack.data.mots_sequences import MotsSequence, find_mots_sequences
from citytrack.data.resumable import make_loader

log = logging.getLogger(__name__)


def mots_source_sequences(source: Mapping[str, Any], generate: bool = True) -> list[MotsSequence]:
    """The sequences of one source mapping (`root`, `split`, `sequences`, `synth`); synthetic ones are generated first."""
    root = Path(source["root"])
    synth = source.get("synth")
    split = source.get("split")
    if synth is not None:
        overrides = {"progress": False, **dict(synth), "layout": "kitti_mots"}
        split = overrides.setdefault("split", split or "train")
        if generate:
            from citytrack.data.synth import ensure_synthetic_dataset

            ensure_synthetic_dataset(root, **overrides)
    names = source.get("sequences")
    if names is not None:  # a command-line [0002,0006] arrives as ints: KITTI names have 4 digits
        names = [f"{n:04d}" if isinstance(n, int) else str(n) for n in names]
    return find_mots_sequences(root, split=split, names=names)


@dataclass(frozen=True)
class InstanceRef:
    """One ground-truth instance to crop around: sequence and frame index, box centre and size in pixels."""

    sequence: int
    frame: int
    cx: float
    cy: float
    w: float
    h: float


def index_instances(
    sequences: Sequence[MotsSequence], classes: Sequence[int], min_pixels: int = 0
) -> list[InstanceRef]:
    """Every labelled instance of `classes` with at least `min_pixels` pixels (from the RLEs, no decoding)."""
    wanted = {int(c) for c in classes}
    refs: list[InstanceRef] = []
    for s, seq in enumerate(sequences):
        for i in range(len(seq)):
            records = [r for r in seq.frame_records(i) if r.class_id in wanted and not r.is_ignore]
            if not records:
                continue
            areas, boxes = mask_areas(records), mask_boxes(records)
            for area, (x, y, w, h) in zip(areas, boxes, strict=True):
                if area >= max(min_pixels, 1):
                    refs.append(InstanceRef(s, i, float(x + w / 2), float(y + h / 2), float(w), float(h)))
    return refs


def _rgb_chw(image_bgr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image_bgr[..., ::-1].transpose(2, 0, 1)))


class MotsSegmentationCrops(Dataset):
    """Training crops around instances: item `k` crops `instances[k]` at a random shift (torch RNG)."""

    def __init__(
        self,
        sequences: Sequence[MotsSequence],
        instances: Sequence[InstanceRef],
        crop_size: Sequence[int],
        jitter: float = 0.25,
    ) -> None:
        if not instances:
            raise ValueError("no training instances: check data.classes and the training sequences' labels")
        self.sequences, self.instances = list(sequences), list(instances)
        self.crop_h, self.crop_w = (int(v) for v in crop_size)
        self.jitter = float(jitter)

    def __len__(self) -> int:
        return len(self.instances)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        ref = self.instances[k]
        seq = self.sequences[ref.sequence]
        image, ids = seq.image(ref.frame), seq.instance_map(ref.frame)
        h, w = ids.shape
        shift = (torch.rand(2) * 2 - 1).tolist()
        cx = ref.cx + shift[0] * self.jitter * self.crop_w
        cy = ref.cy + shift[1] * self.jitter * self.crop_h
        x0 = round(min(max(cx - self.crop_w / 2, 0), max(w - self.crop_w, 0)))
        y0 = round(min(max(cy - self.crop_h / 2, 0), max(h - self.crop_h, 0)))
        out_img = np.zeros((self.crop_h, self.crop_w, 3), dtype=np.uint8)
        out_ids = np.full((self.crop_h, self.crop_w), IGNORE_ID, dtype=np.int32)
        ch, cw = min(self.crop_h, h - y0), min(self.crop_w, w - x0)
        out_img[:ch, :cw] = image[y0 : y0 + ch, x0 : x0 + cw]
        out_ids[:ch, :cw] = ids[y0 : y0 + ch, x0 : x0 + cw]
        return {"image": _rgb_chw(out_img), "ids": torch.from_numpy(out_ids)}


class MotsSegmentationFrames(Dataset):
    """Full labelled frames for validation, optionally downscaled by `scale`."""

    def __init__(
        self,
        sequences: Sequence[MotsSequence],
        stride: int = 1,
        max_frames: int | None = None,
        scale: float = 1.0,
    ) -> None:
        self.sequences = list(sequences)
        items = [
            (s, i)
            for s, seq in enumerate(self.sequences)
            if seq.labelled
            for i in range(0, len(seq), max(int(stride), 1))
        ]
        if max_frames is not None and len(items) > max_frames:
            items = [items[j] for j in np.linspace(0, len(items) - 1, int(max_frames)).round().astype(int)]
        if not items:
            raise ValueError("no labelled validation frames: check the validation source")
        self.items = items
        self.scale = float(scale)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, k: int) -> dict[str, Any]:
        s, i = self.items[k]
        image, ids = self.sequences[s].image(i), self.sequences[s].instance_map(i).astype(np.int32)
        if self.scale != 1.0:
            size = (max(1, round(image.shape[1] * self.scale)), max(1, round(image.shape[0] * self.scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            ids = cv2.resize(ids, size, interpolation=cv2.INTER_NEAREST)
        return {"image": _rgb_chw(image), "ids": torch.from_numpy(ids), "scale": self.scale}


def collate_frames(items: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
    """Pad frames of different sizes to the largest (image 0, ids ignore); `size (B, 2)` keeps each frame's (h, w)."""
    h = max(int(it["ids"].shape[0]) for it in items)
    w = max(int(it["ids"].shape[1]) for it in items)
    images = torch.zeros(len(items), 3, h, w, dtype=torch.uint8)
    ids = torch.full((len(items), h, w), IGNORE_ID, dtype=torch.int32)
    for b, it in enumerate(items):
        ih, iw = it["ids"].shape
        images[b, :, :ih, :iw] = it["image"]
        ids[b, :ih, :iw] = it["ids"]
    return {
        "image": images,
        "ids": ids,
        "size": torch.tensor([list(it["ids"].shape) for it in items], dtype=torch.long),
        "scale": torch.tensor([float(it["scale"]) for it in items]),
    }


def augment_batch(
    images: torch.Tensor, ids: torch.Tensor, brightness: float, flip_prob: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample brightness factor in `[1 - brightness, 1 + brightness]` and horizontal flip.

    images `(B, 3, H, W)` floats in [0, 1]; ids `(B, H, W)` flip with their pixels.
    """
    b = images.shape[0]
    if brightness > 0:
        factor = 1.0 + (torch.rand(b, 1, 1, 1, device=images.device) * 2 - 1) * brightness
        images = (images * factor).clamp_(0.0, 1.0)
    if flip_prob > 0:
        flip = torch.rand(b, device=images.device) < flip_prob
        if bool(flip.any()):
            images = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
            ids = torch.where(flip.view(-1, 1, 1), ids.flip(-1), ids)
    return images, ids


class MotsSegmentationDataModule(pl.LightningDataModule):
    """Crops for training and full frames for validation of the MOTS segmenter.

    Args:
        train / val: source mappings (see the module docstring).
        classes: KITTI class ids to segment (1 car, 2 pedestrian); must match the net's.
        crop_size: training crop (h, w), multiples of 8.
        crop_jitter: largest shift of a crop from its instance's centre, as a share of the crop size.
        min_instance_pixels: smaller instances are not cropped around (they still appear in crops).
        samples_per_epoch: random instance crops per training epoch.
        val_stride / val_max_frames / val_scale: which validation frames, and their downscale.
        augment: `{brightness: 0.2, flip_prob: 0.5}`, applied on the device in training.
    """

    def __init__(
        self,
        train: Mapping[str, Any],
        val: Mapping[str, Any],
        classes: Sequence[int] = (2,),
        crop_size: Sequence[int] = (160, 320),
        crop_jitter: float = 0.25,
        min_instance_pixels: int = 64,
        samples_per_epoch: int = 1000,
        batch_size: int = 4,
        val_batch_size: int = 1,
        val_stride: int = 5,
        val_max_frames: int | None = None,
        val_scale: float = 1.0,
        augment: Mapping[str, float] | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if len(crop_size) != 2 or any(int(v) % 8 for v in crop_size):
            raise ValueError(f"crop_size must be (h, w) multiples of 8, got {list(crop_size)}")
        self.train_source, self.val_source = dict(train), dict(val)
        self.classes = [int(c) for c in classes]
        self.crop_size = (int(crop_size[0]), int(crop_size[1]))
        self.crop_jitter, self.min_instance_pixels = float(crop_jitter), int(min_instance_pixels)
        self.samples_per_epoch = int(samples_per_epoch)
        self.batch_size, self.val_batch_size = int(batch_size), int(val_batch_size)
        self.val_stride, self.val_max_frames, self.val_scale = (
            int(val_stride),
            val_max_frames,
            float(val_scale),
        )
        self.augment = {"brightness": 0.0, "flip_prob": 0.0, **dict(augment or {})}
        self.num_workers, self.pin_memory, self.seed = int(num_workers), bool(pin_memory), int(seed)
        self.train_set: MotsSegmentationCrops | None = None
        self.val_set: MotsSegmentationFrames | None = None

    def prepare_data(self) -> None:
        for source in (self.train_source, self.val_source):
            if source.get("synth") is not None:
                mots_source_sequences(source)

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and self.train_set is None:
            sequences = mots_source_sequences(self.train_source, generate=False)
            instances = index_instances(sequences, self.classes, self.min_instance_pixels)
            self.train_set = MotsSegmentationCrops(sequences, instances, self.crop_size, self.crop_jitter)
            log.info(
                "MOTS segmentation train: %d sequences, %d instances of classes %s",
                len(sequences),
                len(instances),
                self.classes,
            )
        if stage in (None, "fit", "validate") and self.val_set is None:
            sequences = mots_source_sequences(self.val_source, generate=False)
            self.val_set = MotsSegmentationFrames(
                sequences, self.val_stride, self.val_max_frames, self.val_scale
            )
            log.info("MOTS segmentation val: %d sequences, %d frames", len(sequences), len(self.val_set))

    def _loader(self, dataset: Dataset, **kwargs: Any) -> DataLoader:
        return make_loader(dataset, self.num_workers, self.pin_memory, **kwargs)

    def train_dataloader(self) -> DataLoader:
        assert self.train_set is not None, "call setup('fit') first"
        generator = torch.Generator().manual_seed(self.seed)
        sampler = RandomSampler(
            self.train_set, replacement=True, num_samples=self.samples_per_epoch, generator=generator
        )
        return self._loader(self.train_set, batch_size=self.batch_size, sampler=sampler, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        assert self.val_set is not None, "call setup('fit') or setup('validate') first"
        return self._loader(
            self.val_set, batch_size=self.val_batch_size, shuffle=False, collate_fn=collate_frames
        )

    def on_after_batch_transfer(
        self, batch: dict[str, torch.Tensor], dataloader_idx: int
    ) -> dict[str, torch.Tensor]:
        batch = dict(batch)
        images = batch["image"]
        if images.dtype == torch.uint8:
            images = images.float().div_(255.0)
        if self.trainer is not None and self.trainer.training:
            images, batch["ids"] = augment_batch(
                images, batch["ids"], self.augment["brightness"], self.augment["flip_prob"]
            )
        batch["image"] = images
        return batch
