"""Lightning datamodule for the person detector, with kornia augmentation on the GPU.

Sources (lists under `train`, `val`, `test`), each a mapping with a `kind`:
- `synth`: `{kind: synth, root: DIR, overrides: {seed: 1, scenes: 2, ...}, stride: 5}`: generated
  on first use with `citytrack.data.synth.ensure_synthetic_dataset(root, **overrides)`, then read
  as AI City 2024 scenes (train and val use different roots and seeds);
- `aic24`: `{kind: aic24, root: DIR, split: train|null, stride: 10, max_frames: null}`;
- `mot`: `{kind: mot, root: SEQ_OR_FOLDER, stride: 1, min_visibility: 0.25}`;
- `coco`: `{kind: coco, json: FILE, images: DIR}`.

The loaders give uint8 letterboxed images; `on_after_batch_transfer` converts them to
[0, 1] floats on the device and, in training only, applies a per-sample random
scale/translate (crop-resize) with horizontal flip via one `kornia` affine warp, and HSV
jitter, moving the boxes with the images (boxes pushed mostly out of view become ignore
regions, those gone entirely are dropped).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import kornia
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from citytrack.data.detection_datasets import (
    IGNORE,
    PAD,
    DetectionDataset,
    FrameRecord,
    aic24_scene_records,
    coco_records,
    collate_detection,
    mot_sequence_records,
)
from citytrack.data.letterbox import PAD_VALUE

log = logging.getLogger(__name__)


def _records_from_source(source: Mapping[str, Any], class_names: Sequence[str]) -> list[FrameRecord]:
    kind = source.get("kind")
    stride = int(source.get("stride", 1))
    max_frames = source.get("max_frames")
    if kind == "synth":
        from citytrack.data.synth import ensure_synthetic_dataset

        root = ensure_synthetic_dataset(Path(source["root"]), **dict(source.get("overrides") or {}))
        return _records_from_source({**source, "kind": "aic24", "root": root}, class_names)
    if kind == "aic24":
        from citytrack.data.formats.aicity import list_aic24_scenes

        scenes = list_aic24_scenes(source["root"], source.get("split"))
        if source.get("scenes") is not None:
            scenes = scenes[: int(source["scenes"])]
        if not scenes:
            raise FileNotFoundError(f"{source['root']}: no AI City 2024 scene_XXX folders found")
        records: list[FrameRecord] = []
        for scene in scenes:
            records += aic24_scene_records(scene, stride, max_frames, min_inside=float(source.get("min_inside", 0.5)))
        return records
    if kind == "mot":
        from citytrack.data.formats.mot import list_sequences

        root = Path(source["root"])
        seqs = [root] if (root / "seqinfo.ini").is_file() or (root / "gt").is_dir() else list_sequences(root)
        records = []
        for seq in seqs:
            records += mot_sequence_records(seq, stride, max_frames, float(source.get("min_visibility", 0.25)))
        return records
    if kind == "coco":
        return coco_records(source["json"], source.get("images"), class_names)
    raise ValueError(f"unknown detection source kind {kind!r} (synth, aic24, mot, coco)")


def augment_batch(
    images: torch.Tensor,
    targets: torch.Tensor,
    scale: tuple[float, float] = (0.5, 1.5),
    translate: float = 0.2,
    flip_prob: float = 0.5,
    hsv: tuple[float, float, float] = (0.015, 0.7, 0.4),
    min_visible: float = 0.4,
    min_size: float = 2.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random scale/translate/flip (one affine warp per sample) and HSV jitter on `(B, 3, S, S)` [0, 1] images.

    Targets `(B, M, 5)` move with the images: boxes are mapped, clipped to the canvas, become
    ignore regions when less than `min_visible` of them stays inside, and padding when nothing does.
    """
    b, _, h, w = images.shape
    dev = images.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, device="cpu", generator=generator).to(dev)

    s = scale[0] + (scale[1] - scale[0]) * rand(b)
    flip = rand(b) < flip_prob
    sx = torch.where(flip, -s, s)
    tx = (rand(b) * 2 - 1) * translate * w
    ty = (rand(b) * 2 - 1) * translate * h
    cx, cy = w / 2, h / 2
    # x' = sx * (x - cx) + cx + tx (scale/flip about the centre, then shift)
    mat = torch.zeros(b, 2, 3, device=dev)
    mat[:, 0, 0], mat[:, 0, 2] = sx, cx - sx * cx + tx
    mat[:, 1, 1], mat[:, 1, 2] = s, cy - s * cy + ty
    fill = torch.full((3,), PAD_VALUE / 255.0, device=dev)
    out = kornia.geometry.transform.warp_affine(
        images.float(), mat, dsize=(h, w), mode="bilinear", padding_mode="fill", fill_value=fill
    )
    # HSV jitter (YOLOX gains): hue shift, saturation and value scales
    if hsv is not None and any(hsv):
        hg, sg, vg = hsv
        hue = (rand(b) * 2 - 1) * hg * 2 * math.pi
        sat = 1 + (rand(b) * 2 - 1) * sg
        val = 1 + (rand(b) * 2 - 1) * vg
        out = kornia.enhance.adjust_hue(out, hue)
        out = kornia.enhance.adjust_saturation(out, sat)
        out = (out * val.view(-1, 1, 1, 1)).clamp(0, 1)

    t = targets.clone()
    cls, boxes = t[..., 0], t[..., 1:5]
    x1 = sx[:, None] * boxes[..., 0] + mat[:, 0, 2][:, None]
    x2 = sx[:, None] * boxes[..., 2] + mat[:, 0, 2][:, None]
    y1 = s[:, None] * boxes[..., 1] + mat[:, 1, 2][:, None]
    y2 = s[:, None] * boxes[..., 3] + mat[:, 1, 2][:, None]
    nx1, nx2 = torch.minimum(x1, x2), torch.maximum(x1, x2)
    full_area = ((nx2 - nx1) * (y2 - y1)).clamp(min=1e-6)
    cx1, cx2 = nx1.clamp(0, w), nx2.clamp(0, w)
    cy1, cy2 = y1.clamp(0, h), y2.clamp(0, h)
    cw, ch = (cx2 - cx1).clamp(min=0), (cy2 - cy1).clamp(min=0)
    visible = cw * ch / full_area
    real = cls != PAD
    gone = real & ((cw < min_size) | (ch < min_size))
    mostly_out = real & ~gone & (visible < min_visible) & (cls >= 0)
    cls = torch.where(mostly_out, torch.full_like(cls, IGNORE), cls)
    cls = torch.where(gone, torch.full_like(cls, PAD), cls)
    t = torch.stack([cls, cx1, cy1, cx2, cy2], -1)
    t[cls == PAD] = torch.tensor([float(PAD), 0, 0, 0, 0], device=dev)
    return out, t


class DetectionDataModule(pl.LightningDataModule):
    """Train/val/test detection frames from synthetic scenes, AI City, MOTChallenge or COCO sources."""

    def __init__(
        self,
        train: Sequence[Mapping[str, Any]] = (),
        val: Sequence[Mapping[str, Any]] = (),
        test: Sequence[Mapping[str, Any]] | None = None,
        class_names: Sequence[str] = ("person",),
        img_size: int = 640,
        batch_size: int = 8,
        val_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        augment: Mapping[str, Any] | None = None,
        min_size: float = 4.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.augment = dict(augment) if augment is not None else {}
        self.datasets: dict[str, DetectionDataset] = {}

    def _build(self, stage: str, sources: Sequence[Mapping[str, Any]] | None) -> None:
        if stage in self.datasets or not sources:
            return
        records: list[FrameRecord] = []
        for src in sources:
            records += _records_from_source(src, self.hparams.class_names)
        self.datasets[stage] = DetectionDataset(records, self.hparams.img_size, self.hparams.min_size)
        log.info("detection %s: %d frames, %d boxes", stage, len(records), sum(len(r.boxes) for r in records))

    def prepare_data(self) -> None:
        """Generate the synthetic scenes once (main process), so `setup` only reads."""
        from citytrack.data.synth import ensure_synthetic_dataset

        for sources in (self.hparams.train, self.hparams.val, self.hparams.test or ()):
            for src in sources:
                if src.get("kind") == "synth":
                    ensure_synthetic_dataset(Path(src["root"]), **dict(src.get("overrides") or {}))

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit"):
            self._build("train", self.hparams.train)
        if stage in (None, "fit", "validate"):
            self._build("val", self.hparams.val)
        if stage in (None, "test"):
            self._build("test", self.hparams.test)

    def _loader(self, split: str, shuffle: bool, batch_size: int) -> DataLoader:
        if split not in self.datasets:
            raise RuntimeError(f"no {split} sources configured for the detection datamodule")
        return DataLoader(
            self.datasets[split],
            batch_size=batch_size,
            shuffle=shuffle,
            num_workers=self.hparams.num_workers,
            pin_memory=self.hparams.pin_memory,
            collate_fn=collate_detection,
            drop_last=shuffle and len(self.datasets[split]) > batch_size,
            persistent_workers=self.hparams.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True, self.hparams.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False, self.hparams.val_batch_size or self.hparams.batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False, self.hparams.val_batch_size or self.hparams.batch_size)

    def on_after_batch_transfer(self, batch: dict[str, torch.Tensor], dataloader_idx: int) -> dict[str, torch.Tensor]:
        """uint8 -> [0, 1] float on the device; augmentation only while training."""
        images = batch["images"].float() / 255.0
        targets = batch["targets"]
        trainer = getattr(self, "trainer", None)
        if trainer is not None and trainer.training and self.augment.get("enabled", True):
            kw = {k: v for k, v in self.augment.items() if k != "enabled"}
            for k in ("scale", "hsv"):
                if k in kw and kw[k] is not None:
                    kw[k] = tuple(kw[k])
            images, targets = augment_batch(images, targets, **kw)
        return {**batch, "images": images, "targets": targets}
