"""Lightning datamodule for the detector (person, or person and vehicles); its GPU augmentation is `detection_augment.py`.

Sources (lists under `train`, `val`, `test`), each a mapping with a `kind`:
- `synth`: `{kind: synth, root: DIR, overrides: {seed: 1, scenes: 2, ...}, stride: 5}`: generated
  on first use with `citytrack.data.synth.ensure_synthetic_dataset(root, **overrides)`, then read
  as AI City 2024 scenes (train and val use different roots and seeds), or, with
  `overrides.layout: mot`, as MOTChallenge sequences, whose gt carries each person's
  visibility: people hidden below `min_visibility` (behind a pillar, say) become ignore
  regions instead of teaching the detector that a pillar is a person (AI City gt keeps every
  full box with at least a few visible pixels); with `overrides.layout: aic19` the synthetic
  vehicle city, read as below;
- `aic19`: `{kind: aic19, root: DIR, split: train|null, stride: 10, min_visibility: 0.25}`: AI City
  2019 `SXX` scenarios of the synthetic city, every drawn vehicle (`SXX/gt_world.txt`) with its class
  from `SXX/vehicles.json` (`detection_datasets.aic19_scene_records`);
- `aic24`: `{kind: aic24, root: DIR, split: train|null, stride: 10, max_frames: null}`;
- `mot`: `{kind: mot, root: SEQ_OR_FOLDER, stride: 1, min_visibility: 0.25}`;
- `coco`: `{kind: coco, json: FILE, images: DIR}`.
People of the person sources get the index of `person` in `class_names`, so person and vehicle
sources mix in one list (`conf/data/detection_city.yaml`).

The loaders give uint8 letterboxed images (`img_size`, the inference input); in training the
dataset may re-encode them as JPEG at a random quality (`jpeg_quality`, real video is
compressed, the renders are not), drawn per item from `seed` (see `DetectionDataset`). `on_after_batch_transfer` converts them to [0, 1] floats on
the device and, in training only, applies `augment_batch` (options under `augment`): random
crop-resize or 4-image mosaic onto an `out_size` canvas (smaller than `img_size` on CPU: same
object sizes, a fraction of the pixels), horizontal flip, log-uniform scale jitter, HSV jitter
and the appearance randomisation of `photometric_augment` (contrast, grayscale, blur,
low-resolution resampling, noise), moving the boxes with the pixels (boxes pushed mostly out of
view become ignore regions, those gone entirely are dropped).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from citytrack.data.detection_augment import augment_batch
from citytrack.data.detection_datasets import (
    DetectionDataset,
    FrameRecord,
    aic19_scene_records,
    aic24_scene_records,
    coco_records,
    collate_detection,
    mot_sequence_records,
)
from citytrack.data.resumable import ResumableDataLoader

log = logging.getLogger(__name__)


def _person_index(class_names: Sequence[str], source: Mapping[str, Any]) -> int:
    if "person" not in class_names:
        raise ValueError(f"detection source {dict(source)} holds people but class_names {list(class_names)} has no 'person'")
    return list(class_names).index("person")


def _records_from_source(source: Mapping[str, Any], class_names: Sequence[str]) -> list[FrameRecord]:
    kind = source.get("kind")
    stride = int(source.get("stride", 1))
    max_frames = source.get("max_frames")
    if kind == "synth":
        from citytrack.data.synth import ensure_synthetic_dataset

        overrides = dict(source.get("overrides") or {})
        root = ensure_synthetic_dataset(Path(source["root"]), **overrides)
        layout = overrides.get("layout", "aic24")
        if layout == "mot":  # MOT gt has visibilities: hidden people become ignore regions
            return _records_from_source({**source, "kind": "mot", "root": root / overrides.get("split", "train")}, class_names)
        if layout == "aic19":  # the vehicle city: every drawn vehicle, classed by vehicles.json
            return _records_from_source({**source, "kind": "aic19", "root": root, "split": overrides.get("split", "train")},
                                        class_names)
        return _records_from_source({**source, "kind": "aic24", "root": root}, class_names)
    if kind == "aic19":
        from citytrack.data.formats.aicity import list_aic19_scenes

        scenes = list_aic19_scenes(source["root"], source.get("split"))
        if source.get("scenes") is not None:
            scenes = scenes[: int(source["scenes"])]
        if not scenes:
            raise FileNotFoundError(f"{source['root']}: no AI City 2019 SXX scenario folders found")
        records = []
        for scene in scenes:
            records += aic19_scene_records(
                scene, class_names, stride, max_frames, float(source.get("min_visibility", 0.25)),
                float(source.get("min_inside", 0.5)),
            )
        return records
    if kind == "aic24":
        from citytrack.data.formats.aicity import list_aic24_scenes

        person = _person_index(class_names, source)

        scenes = list_aic24_scenes(source["root"], source.get("split"))
        if source.get("scenes") is not None:
            scenes = scenes[: int(source["scenes"])]
        if not scenes:
            raise FileNotFoundError(f"{source['root']}: no AI City 2024 scene_XXX folders found")
        records: list[FrameRecord] = []
        for scene in scenes:
            records += aic24_scene_records(scene, stride, max_frames, class_index=person,
                                           min_inside=float(source.get("min_inside", 0.5)))
        return records
    if kind == "mot":
        from citytrack.data.formats.mot import list_sequences

        person = _person_index(class_names, source)  # before reading: a vehicle-only model cannot take people
        root = Path(source["root"])
        seqs = [root] if (root / "seqinfo.ini").is_file() or (root / "gt").is_dir() else list_sequences(root)
        records = []
        for seq in seqs:
            records += mot_sequence_records(seq, stride, max_frames, float(source.get("min_visibility", 0.25)),
                                            class_index=person)
        return records
    if kind == "coco":
        return coco_records(source["json"], source.get("images"), class_names)
    raise ValueError(f"unknown detection source kind {kind!r} (synth, aic24, aic19, mot, coco)")


def _tuples(value: Any) -> Any:
    """Config lists (OmegaConf ListConfig included) -> tuples, recursively through mappings."""
    if isinstance(value, Mapping):
        return {k: _tuples(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ListConfig":
        return tuple(value)
    return value


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
        jpeg_quality: Sequence[int] | None = None,
        seed: int | None = 0,
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
        jpeg = self.hparams.jpeg_quality if stage == "train" and self.augment.get("enabled", True) else None
        seed = self.hparams.seed
        self.datasets[stage] = DetectionDataset(
            records, self.hparams.img_size, self.hparams.min_size, jpeg_quality=jpeg, seed=seed
        )
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
        return ResumableDataLoader(  # mid-epoch checkpoints resume exactly (citytrack.data.resumable)
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
            kw = _tuples({k: v for k, v in self.augment.items() if k != "enabled"})
            images, targets = augment_batch(images, targets, **kw)
        return {**batch, "images": images, "targets": targets}
