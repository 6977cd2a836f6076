"""Pose datamodule: top-down crops of the synthetic world with COCO keypoints, generated on first use.

Two synthetic datasets from different seeds (different worlds, different identities): `train_seed`
for training (its `person_keypoints_train.json`; `train_splits=[train, test]` takes its test-identity
crops too, twice the people: nothing else reads the training world), `eval_seed` held out
entirely, its test-identity crops for validation and its train-identity crops for the test split
(disjoint people). Items are
uint8 RGB crops as written (`synth.pose.size`) with keypoints and the person's box in crop pixels;
the crop-to-input warp, jitter and flip run on the device in `KeypointModule`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from citytrack.data.formats.coco import coco_to_image_keypoints, load_coco_keypoints
from citytrack.data.formats.errors import FormatError
from citytrack.data.resumable import ResumableDataLoader
from citytrack.data.synth.config import merge_overrides

log = logging.getLogger(__name__)


class PoseCropDataset(Dataset):
    """One person per crop from a person_keypoints json whose `file_name`s are relative to `image_dir`."""

    def __init__(self, json_path: str | Path, image_dir: str | Path) -> None:
        self.json_path, self.image_dir = Path(json_path), Path(image_dir)
        self.coco = load_coco_keypoints(self.json_path)
        self.items = []
        for image_id, people in coco_to_image_keypoints(self.coco).items():
            for k in range(len(people.boxes)):
                if people.keypoints[k, :, 2].any():
                    self.items.append((image_id, people.boxes[k], people.keypoints[k]))
        if not self.items:
            raise FormatError(self.json_path, "no annotated person to train or evaluate on")

    def __len__(self) -> int:
        return len(self.items)

    def load_rgb(self, index: int) -> np.ndarray:
        image_id = self.items[index][0]
        path = self.image_dir / self.coco.imgs[image_id]["file_name"]
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise FormatError(path, "cannot be read or decoded as an image")
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image_id, box, kp = self.items[index]
        return {
            "image": torch.from_numpy(np.ascontiguousarray(self.load_rgb(index).transpose(2, 0, 1))),
            "keypoints": torch.from_numpy(kp.astype(np.float32)),
            "bbox": torch.from_numpy(box.astype(np.float32)),
            "image_id": torch.tensor(image_id, dtype=torch.long),
        }


class SyntheticPoseDataModule(pl.LightningDataModule):
    """Pose crops of the synthetic world (`DIR/pose`, see `citytrack.data.synth.pose_crops`).

    `synth` sizes both worlds; `train_synth` is merged over it for the training world only (more,
    shorter scenes: more people and views for the same number of crops), so validation stays comparable,
    and `eval_synth` for the evaluation world only (e.g. a held-out world at another camera resolution).
    `extra_train` adds training worlds, each `{name, seed, synth}` with its `synth` merged over the
    training world's (e.g. cameras at 1920x1080 beside the 640x360 ones: people 3x taller in pixels).
    Every training seed must differ from `eval_seed`: the evaluation world stays held out.
    """

    def __init__(
        self,
        data_dir: str = "data",
        train_name: str = "synth/pose_train",
        eval_name: str = "synth/pose_eval",
        train_seed: int = 1,
        eval_seed: int = 2,
        synth: dict[str, Any] | None = None,
        batch_size: int = 32,
        eval_batch_size: int = 64,
        num_workers: int = 2,
        pin_memory: bool = True,
        train_splits: tuple[str, ...] | list[str] = ("train",),
        train_synth: dict[str, Any] | None = None,
        eval_synth: dict[str, Any] | None = None,
        extra_train: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        self.train_splits = tuple(train_splits)
        if not self.train_splits or not set(self.train_splits) <= {"train", "test"}:
            raise ValueError(f"train_splits must name some of train, test; got {list(self.train_splits)}")
        self.data_dir = Path(data_dir)
        self.train_dir, self.eval_dir = self.data_dir / train_name, self.data_dir / eval_name
        self.train_seed, self.eval_seed = int(train_seed), int(eval_seed)
        self.synth = dict(synth or {})
        self.train_synth = merge_overrides(self.synth, train_synth)
        self.eval_synth = merge_overrides(self.synth, eval_synth)
        # (folder, seed, world overrides) of every training world, the main one first
        self.train_worlds: list[tuple[Path, int, dict[str, Any]]] = [(self.train_dir, self.train_seed, self.train_synth)]
        for k, world in enumerate(extra_train or []):
            if not {"name", "seed"} <= set(world):
                raise ValueError(f"extra_train[{k}] needs a name and a seed, got {dict(world)}")
            self.train_worlds.append((self.data_dir / str(world["name"]), int(world["seed"]),
                                      merge_overrides(self.train_synth, world.get("synth"))))
        if self.eval_seed in {seed for _, seed, _ in self.train_worlds}:
            raise ValueError(f"eval_seed {self.eval_seed} is also a training world's seed: the evaluation world must be held out")
        self.batch_size, self.eval_batch_size = int(batch_size), int(eval_batch_size)
        self.num_workers, self.pin_memory = int(num_workers), pin_memory
        self.train_set: Dataset | None = None
        self.val_set: PoseCropDataset | None = None
        self.test_set: PoseCropDataset | None = None

    def prepare_data(self) -> None:
        from citytrack.data.synth import ensure_synthetic_dataset

        for folder, seed, synth in self.train_worlds:
            ensure_synthetic_dataset(folder, seed=seed, **synth)
        ensure_synthetic_dataset(self.eval_dir, seed=self.eval_seed, **self.eval_synth)

    def _set(self, folder: Path, split: str) -> PoseCropDataset:
        path = folder / "pose" / f"person_keypoints_{split}.json"
        if not path.is_file():
            self.prepare_data()
        return PoseCropDataset(path, folder / "pose" / "images")

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and self.train_set is None:
            parts = [self._set(folder, split) for folder, _, _ in self.train_worlds for split in self.train_splits]
            self.train_set = parts[0] if len(parts) == 1 else ConcatDataset(parts)
            log.info("pose train set %s (%s): %d people", " + ".join(str(f) for f, _, _ in self.train_worlds),
                     "+".join(self.train_splits), len(self.train_set))
        if stage in (None, "fit", "validate") and self.val_set is None:
            self.val_set = self._set(self.eval_dir, "test")
        if stage in (None, "test") and self.test_set is None:
            self.test_set = self._set(self.eval_dir, "train")

    def _loader(self, dataset: Dataset, **kwargs: Any) -> DataLoader:
        return ResumableDataLoader(  # mid-epoch checkpoints resume exactly (citytrack.data.resumable)
            dataset, num_workers=self.num_workers, pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0, **kwargs,
        )

    def train_dataloader(self) -> DataLoader:
        assert self.train_set is not None, "call setup('fit') first"
        return self._loader(self.train_set, batch_size=self.batch_size, shuffle=True, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        assert self.val_set is not None, "call setup('fit') or setup('validate') first"
        return self._loader(self.val_set, batch_size=self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        assert self.test_set is not None, "call setup('test') first"
        return self._loader(self.test_set, batch_size=self.eval_batch_size, shuffle=False)
