"""PointTrack training data: an instance database of ground-truth crops, P x 3 triplet batches.

The database (`InstanceDatabase`, the reference's `MOTSInstanceMaskPool`) is built once in
`setup`: for every frame of every sequence, each ground-truth instance of the chosen classes
(ignore regions left out) is cut to its enlarged box with its category map. A *track* is one
`(sequence, obj_id)`; its appearances are kept in frame order.

Training batch (the reference's `MOTSTrackCarsTrain`): P identities drawn without
replacement among tracks with at least two appearances; for each, a middle appearance
`mid` (not the first or last when there are three or more), a gap `d` in [1, nearby] and the
appearances `mid - d`, `mid`, `mid + d` (indices into the track, clipped to its ends); the
points of all 3P crops are drawn in one call with the training jitter. Batches are seeded
from torch's generator, so `seed_everything` makes a run reproducible, and differ per epoch.

Validation: every instance of the held-out sequences once, points drawn with a per-instance
fixed seed (no jitter), with `sequence`, `frame` and `identity` for the association metrics.

`SyntheticPointTrackDataModule` generates the synthetic world in the KITTI MOTS layout on
first use: training sequences from one seed, validation sequences from another.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from citytrack.data.formats.kitti_mots import IGNORE_CLASS, decode_masks
from citytrack.data.mots_sequences import MotsSequence, find_mots_sequences
from citytrack.data.resumable import make_loader
from citytrack.models.pointtrack.points import InstanceCrop, PointSampler

log = logging.getLogger(__name__)

#: KITTI MOTS sequences of the training split used for validation (TrackR-CNN / PointTrack `SEQ_IDS_VAL`)
KITTI_MOTS_VAL = ["0002", "0006", "0007", "0008", "0010", "0013", "0014", "0016", "0018"]
KITTI_MOTS_TRAIN = [
    "0000",
    "0001",
    "0003",
    "0004",
    "0005",
    "0009",
    "0011",
    "0012",
    "0015",
    "0017",
    "0019",
    "0020",
]


@dataclass
class InstanceDatabase:
    """Crops of every ground-truth instance with its sequence index, frame and obj_id."""

    crops: list[InstanceCrop] = field(default_factory=list)
    sequence: list[int] = field(default_factory=list)
    frame: list[int] = field(default_factory=list)
    obj_id: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # sequence names by index

    def __len__(self) -> int:
        return len(self.crops)

    def tracks(self) -> dict[tuple[int, int], np.ndarray]:
        """`{(sequence, obj_id): crop indices in frame order}`."""
        seq, frame, obj = (np.asarray(a, dtype=np.int64) for a in (self.sequence, self.frame, self.obj_id))
        order = np.lexsort((frame, obj, seq))
        out: dict[tuple[int, int], list[int]] = {}
        for i in order.tolist():
            out.setdefault((int(seq[i]), int(obj[i])), []).append(i)
        return {k: np.asarray(v, dtype=np.int64) for k, v in out.items()}


def build_instance_database(
    sequences: Sequence[MotsSequence], sampler: PointSampler, classes: Sequence[int], frame_stride: int = 1
) -> InstanceDatabase:
    """Crop every ground-truth instance of `classes` in every `frame_stride`-th frame."""
    wanted = {int(c) for c in classes}
    if IGNORE_CLASS in wanted:
        raise ValueError("the ignore class (10) cannot be tracked")
    db = InstanceDatabase(names=[s.name for s in sequences])
    for si, seq in enumerate(sequences):
        for i in range(0, len(seq), max(1, int(frame_stride))):
            records = [r for r in seq.frame_records(i) if r.class_id in wanted and not r.is_ignore]
            if not records:
                continue
            masks = decode_masks(records, where=f"{seq.labels}")
            keep = masks.any(axis=(1, 2))
            records = [r for r, k in zip(records, keep.tolist(), strict=True) if k]
            masks = masks[keep]
            crops = sampler.crops(seq.image(i), masks, [r.class_id for r in records])
            db.crops += crops
            db.sequence += [si] * len(crops)
            db.frame += [seq.frames[i]] * len(crops)
            db.obj_id += [r.obj_id for r in records]
    return db


class TripletBatches(Dataset):
    """Item `seed` -> one whole training batch of P identities x 3 crops (see the module docstring)."""

    def __init__(
        self,
        db: InstanceDatabase,
        sampler: PointSampler,
        instances_per_batch: int = 24,
        nearby: int = 10,
        ids_shared_across_sequences: bool = False,
    ) -> None:
        self.db, self.sampler = db, sampler
        self.p, self.nearby = int(instances_per_batch), int(nearby)
        # identity -> its tracks; with shared ids one person's tracks in several cameras are one identity
        groups: dict[Any, list[np.ndarray]] = {}
        for (seq, obj), idx in db.tracks().items():
            if len(idx) >= 2:
                groups.setdefault(obj if ids_shared_across_sequences else (seq, obj), []).append(idx)
        self.identities = list(groups.values())
        if len(self.identities) < self.p:
            raise ValueError(
                f"{len(self.identities)} identities appear at least twice, fewer than instances_per_batch={self.p}: "
                "use more sequences (a larger synthetic world) or lower data.instances_per_batch"
            )

    def __len__(self) -> int:  # items are seeds, drawn by SeedSampler
        return 2**62

    def pick(self, track: np.ndarray, rng: np.random.Generator) -> list[int]:
        """Appearances mid - d, mid, mid + d of one track (indices into the track, clipped)."""
        n = len(track)
        if n == 2:
            return (
                [int(track[0]), int(track[0]), int(track[1])]
                if rng.random() < 0.5
                else [int(track[0]), int(track[1]), int(track[1])]
            )
        mid = int(rng.integers(1, n - 1))
        d = int(rng.integers(1, self.nearby + 1))
        return [int(track[max(0, mid - d)]), int(track[mid]), int(track[min(n - 1, mid + d)])]

    def __getitem__(self, seed: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng(int(seed))
        chosen = rng.choice(len(self.identities), size=self.p, replace=False)
        indices: list[int] = []
        for ident in chosen.tolist():
            tracks = self.identities[ident]
            indices += self.pick(tracks[int(rng.integers(len(tracks)))], rng)
        points = self.sampler.sample([self.db.crops[i] for i in indices], rng, train=True)
        batch = points.tensors()
        batch["label"] = torch.arange(self.p).repeat_interleave(3)
        return batch


class SeedSampler(Sampler[int]):
    """`length` random 62-bit seeds per epoch from torch's global generator (seeded by `seed_everything`)."""

    def __init__(self, length: int) -> None:
        self.length = int(length)

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[int]:
        seeds = torch.randint(0, 2**62, (self.length,), dtype=torch.int64)
        return iter(seeds.tolist())


class InstancePoints(Dataset):
    """Each database instance once, points drawn with seed `seed + index` (deterministic), no jitter."""

    def __init__(self, db: InstanceDatabase, sampler: PointSampler, seed: int = 0) -> None:
        self.db, self.sampler, self.seed = db, sampler, int(seed)

    def __len__(self) -> int:
        return len(self.db)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        points = self.sampler.sample([self.db.crops[i]], np.random.default_rng(self.seed + i), train=False)
        item = {k: v[0] for k, v in points.tensors().items()}
        item["sequence"] = torch.tensor(self.db.sequence[i])
        item["frame"] = torch.tensor(self.db.frame[i])
        item["identity"] = torch.tensor(self.db.obj_id[i])
        return item


class PointTrackDataModule(pl.LightningDataModule):
    """Ground-truth MOTS sequences (any layout `find_mots_sequences` reads) -> PointTrack batches.

    Args:
        root: the training sequences' root (a KITTI MOTS split folder, a dataset root with `split`, ...).
        sampler: crop and point settings (the model's, see `conf/data/mots_points_*.yaml`).
        split / train_sequences: `find_mots_sequences(root, split, names)` of the training set.
        val_root / val_split / val_sequences: the held-out sequences (`val_root` None = `root`).
        classes: class ids tracked (1 car, 2 pedestrian); "other instance" = another of the same class.
        ids_shared_across_sequences: obj_ids name the same object in every sequence (the synthetic
            world's cameras), so a batch never holds one person twice as two identities.
        instances_per_batch: P (24); each identity brings 3 crops.
        nearby: the largest gap d, in appearances, between the anchor crop and the other two.
        iterations_per_epoch: batches per training epoch (500).
        val_frame_stride: use every n-th validation frame (1 = all, as the metric's "next frame").
        val_seed: base seed of the validation points.
    """

    def __init__(
        self,
        root: str | Path,
        sampler: PointSampler,
        split: str | None = None,
        train_sequences: Sequence[str] | None = None,
        val_root: str | Path | None = None,
        val_split: str | None = None,
        val_sequences: Sequence[str] | None = None,
        classes: Sequence[int] = (2,),
        ids_shared_across_sequences: bool = False,
        instances_per_batch: int = 24,
        nearby: int = 10,
        iterations_per_epoch: int = 500,
        val_frame_stride: int = 1,
        val_batch_size: int = 64,
        val_seed: int = 0,
        num_workers: int = 2,
    ) -> None:
        super().__init__()
        self.root, self.val_root = Path(root), Path(val_root) if val_root is not None else None
        self.sampler = sampler
        self.split, self.val_split = split, val_split
        self.train_sequences = list(train_sequences) if train_sequences is not None else None
        self.val_sequences = list(val_sequences) if val_sequences is not None else None
        self.classes = [int(c) for c in classes]
        self.ids_shared_across_sequences = bool(ids_shared_across_sequences)
        self.instances_per_batch, self.nearby = int(instances_per_batch), int(nearby)
        self.iterations_per_epoch = int(iterations_per_epoch)
        self.val_frame_stride, self.val_batch_size, self.val_seed = (
            int(val_frame_stride),
            int(val_batch_size),
            int(val_seed),
        )
        self.num_workers = int(num_workers)
        self.train_set: TripletBatches | None = None
        self.val_set: InstancePoints | None = None

    def _sequences(self, root: Path, split: str | None, names: Sequence[str] | None) -> list[MotsSequence]:
        sequences = find_mots_sequences(root, split=split, names=names)
        unlabelled = [s.name for s in sequences if not s.labelled]
        if unlabelled:
            raise FileNotFoundError(
                f"PointTrack trains on ground truth; sequences {unlabelled} under {root} have none"
            )
        return sequences

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None and stage in (None, "fit"):
            seqs = self._sequences(self.root, self.split, self.train_sequences)
            db = build_instance_database(seqs, self.sampler, self.classes)
            log.info("PointTrack training database: %d instances in %d sequences", len(db), len(seqs))
            self.train_set = TripletBatches(
                db, self.sampler, self.instances_per_batch, self.nearby, self.ids_shared_across_sequences
            )
        if self.val_set is None and stage in (None, "fit", "validate"):
            seqs = self._sequences(self.val_root or self.root, self.val_split, self.val_sequences)
            db = build_instance_database(seqs, self.sampler, self.classes, self.val_frame_stride)
            log.info("PointTrack validation database: %d instances in %d sequences", len(db), len(seqs))
            self.val_set = InstancePoints(db, self.sampler, self.val_seed)

    def train_dataloader(self) -> DataLoader:
        assert self.train_set is not None, "setup('fit') first"
        return make_loader(self.train_set, self.num_workers, batch_size=None, sampler=SeedSampler(self.iterations_per_epoch))

    def val_dataloader(self) -> DataLoader:
        assert self.val_set is not None, "setup('fit') first"
        return make_loader(self.val_set, self.num_workers, batch_size=self.val_batch_size, shuffle=False)


class SyntheticPointTrackDataModule(PointTrackDataModule):
    """The synthetic world in the KITTI MOTS layout, generated on first use.

    Two worlds from different seeds: `train_seed` for training, `eval_seed` for validation
    (unseen people, scenes and cameras). `synth` holds the generator's overrides (world size,
    image size; `layout: kitti_mots`).
    """

    def __init__(
        self,
        sampler: PointSampler,
        data_dir: str | Path = "data",
        train_name: str = "synth/mots_train",
        eval_name: str = "synth/mots_eval",
        train_seed: int = 1,
        eval_seed: int = 2,
        synth: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        for key in ("root", "val_root", "split", "val_split"):
            if kwargs.pop(key, None) is not None:
                raise ValueError(
                    f"SyntheticPointTrackDataModule generates its own data: set data_dir, not {key}"
                )
        data_dir = Path(data_dir)
        self.train_dataset_dir, self.eval_dataset_dir = data_dir / train_name, data_dir / eval_name
        self.train_seed, self.eval_seed = int(train_seed), int(eval_seed)
        self.synth = {"layout": "kitti_mots", **dict(synth or {})}
        if self.synth["layout"] != "kitti_mots":
            raise ValueError(
                f"PointTrack needs instance masks: synth.layout must be kitti_mots, got {self.synth['layout']!r}"
            )
        kwargs.setdefault("ids_shared_across_sequences", True)
        super().__init__(
            root=self.train_dataset_dir,
            sampler=sampler,
            split="train",
            val_root=self.eval_dataset_dir,
            val_split="train",
            **kwargs,
        )

    def prepare_data(self) -> None:
        from citytrack.data.synth import ensure_synthetic_dataset

        for folder, seed in (
            (self.train_dataset_dir, self.train_seed),
            (self.eval_dataset_dir, self.eval_seed),
        ):
            ensure_synthetic_dataset(
                folder, seed=seed, split="train", **{k: v for k, v in self.synth.items() if k != "split"}
            )
