"""ReID datamodules: Market-1501 / VeRi-776 folders, crops of synthetic AI City scenes, crops cut from
any AI City 2024 scene (videos + ground_truth.txt; the cutting is `reid_crops.py`), and the synthetic
vehicle city written as a VeRi-776 folder.

A VeRi-776 folder with label files (`train_label.xml`, `test_label.xml`) also gives every crop its
vehicle type and orientation, as the batch keys `vehicle_type` and `orientation` the auxiliary heads
of `ReIDModule` train on (AI City 2019 Track 2 winner): types are numbered 0..T-1 over the VeRi
`typeID`s present in `train_label.xml`, in increasing `typeID` order (`vehicle_type_ids` gives the
mapping back; VeRi typeIDs 1..9 = sedan, suv, van, hatchback, mpv, pickup, bus, truck, estate);
orientation is the 0..7 `orientationID` (0 = front towards the camera, 4 = rear), -1 where absent
(real VeRi-776 has none), as is the type of a crop without a label or of a type unseen in training.

All share one config family (`conf/data/reid_*.yaml`): crop size, P x K sampling, loaders.
Images leave the loader as uint8 (3, H, W) RGB tensors (4x less to copy than float);
conversion, normalisation and augmentation run on the device in the LightningModule.

Evaluation follows Market-1501: `query` and gallery (`bounding_box_test`) images, the
same-identity-same-camera gallery images are excluded per query (see `eval/reid_metrics.py`).
The validation split is the training dataset's own query/gallery; the test split is a
separate held-out dataset when one is given (for the synthetic data: another seed,
unseen identities), so the reported test figures are not the ones used to pick a checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from citytrack.data.formats.errors import FormatError
from citytrack.data.formats.reid import LAYOUTS, read_veri_labels, scan_folder
from citytrack.data.formats.reid import ReidItem as ReIDSample
from citytrack.data.reid_crops import crop_params_key, extract_aic24_reid_crops, scene_dirs_of
from citytrack.data.resumable import make_loader
from citytrack.data.samplers import PKBatchSampler
from citytrack.data.synth.config import merge_overrides

log = logging.getLogger(__name__)

def read_rgb(path: Path) -> np.ndarray:
    """Decode an image file to RGB uint8; a clear error naming the file if it cannot be read."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FormatError(path, "cannot be read or decoded as an image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class ReIDImageDataset(Dataset):
    """Crops resized to (height, width); items are dicts of image (uint8 3xHxW), pid, camid, index, is_query.

    For training, `relabel=True` maps identities to 0..C-1 (the classifier's targets).
    For evaluation, `is_query` marks the queries, the rest is the gallery.
    """

    def __init__(
        self,
        samples: Sequence[ReIDSample],
        height: int,
        width: int,
        relabel: bool = False,
        is_query: Sequence[bool] | None = None,
        attributes: dict[str, Sequence[int]] | None = None,
        mirror_p: float = 0.0,
    ) -> None:
        if not samples:
            raise ValueError("a ReID dataset needs at least one image")
        self.samples = list(samples)
        self.height, self.width = int(height), int(width)
        self.is_query = [bool(q) for q in is_query] if is_query is not None else [False] * len(self.samples)
        if len(self.is_query) != len(self.samples):
            raise ValueError(f"is_query has {len(self.is_query)} flags for {len(self.samples)} samples")
        self.num_query = sum(self.is_query)
        self.pid_map: dict[int, int] = {}
        if relabel:
            self.pid_map = {pid: i for i, pid in enumerate(sorted({s.pid for s in self.samples}))}
        self.labels = [self.pid_map.get(s.pid, s.pid) if relabel else s.pid for s in self.samples]
        self.attributes = {k: [int(v) for v in vals] for k, vals in (attributes or {}).items()}
        for name, vals in self.attributes.items():
            if len(vals) != len(self.samples):
                raise ValueError(f"attribute {name!r} has {len(vals)} labels for {len(self.samples)} samples")
        self.mirror_p = float(mirror_p)

    @property
    def num_classes(self) -> int:
        return len(self.pid_map) if self.pid_map else len({s.pid for s in self.samples})

    def __len__(self) -> int:
        return len(self.samples)

    def load_rgb(self, index: int) -> np.ndarray:
        return read_rgb(self.samples[index].path)

    def __getitem__(self, index: int) -> dict[str, Any]:
        img = cv2.resize(self.load_rgb(index), (self.width, self.height), interpolation=cv2.INTER_LINEAR)
        attributes = {k: v[index] for k, v in self.attributes.items()}
        if self.mirror_p > 0 and float(torch.rand(())) < self.mirror_p:
            img = img[:, ::-1]
            attributes = {k: MIRRORED[k][v] if k in MIRRORED and v >= 0 else v for k, v in attributes.items()}
        return {
            "image": torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))),
            "pid": torch.tensor(self.labels[index], dtype=torch.long),
            "camid": torch.tensor(self.samples[index].camid, dtype=torch.long),
            "index": torch.tensor(index, dtype=torch.long),
            "is_query": torch.tensor(self.is_query[index]),
            **{k: torch.tensor(v, dtype=torch.long) for k, v in attributes.items()},
        }


#: label after a horizontal flip, per attribute: orientation bins 0..7 (0 front, 2 driving to the
#: camera's right, 4 rear, 6 left; `data/synth/vehicles_render.py`) mirror as o -> (8 - o) % 8
MIRRORED: dict[str, tuple[int, ...]] = {"orientation": tuple((8 - o) % 8 for o in range(8))}


def vehicle_type_classes(labels: dict[str, dict[str, int]]) -> list[int]:
    """The VeRi `typeID`s present in a label table, sorted: class i of the type head is typeID `[i]`."""
    return sorted({int(v["typeID"]) for v in labels.values() if int(v.get("typeID", -1)) > 0})


def vehicle_attributes(
    samples: Sequence[ReIDSample], labels: dict[str, dict[str, int]], type_ids: Sequence[int]
) -> dict[str, list[int]]:
    """`vehicle_type` (class index into `type_ids`) and `orientation` (0..7) per sample; -1 where unknown."""
    type_class = {int(t): i for i, t in enumerate(type_ids)}
    types, orientations = [], []
    for s in samples:
        label = labels.get(s.path.name, {})
        types.append(type_class.get(int(label.get("typeID", -1)), -1))
        orientation = int(label.get("orientationID", -1))
        orientations.append(orientation if 0 <= orientation < 8 else -1)
    return {"vehicle_type": types, "orientation": orientations}


class ReIDDataModule(pl.LightningDataModule):
    """Market-1501 / VeRi-776 style folders: `root/{train,gallery,query}` sub-folders named per `format`.

    `test_root` (same layout) is the held-out test set; without it the test split repeats validation.
    A VeRi-776 root with `train_label.xml` adds `vehicle_type` / `orientation` to the training items
    (see the module docstring; `vehicle_type_ids` is the class -> VeRi typeID mapping).
    `mirror_p` flips training crops in the loader, mirroring their orientation labels; set it in place
    of the model's `augment.flip_p` when an orientation head trains.
    """

    def __init__(
        self,
        root: str | None = None,
        format: str = "market1501",
        test_root: str | None = None,
        height: int = 256,
        width: int = 128,
        p: int = 16,
        k: int = 4,
        eval_batch_size: int = 128,
        num_workers: int = 4,
        pin_memory: bool = True,
        seed: int = 0,
        mirror_p: float = 0.0,
    ) -> None:
        super().__init__()
        if format not in LAYOUTS:
            raise ValueError(f"unknown ReID folder format {format!r}; known: {sorted(LAYOUTS)}")
        self.root = Path(root) if root is not None else None
        self.format = format
        self.test_root = Path(test_root) if test_root is not None else None
        self.height, self.width, self.p, self.k = int(height), int(width), int(p), int(k)
        self.eval_batch_size, self.num_workers, self.pin_memory, self.seed = eval_batch_size, num_workers, pin_memory, seed
        self.mirror_p = float(mirror_p)
        self.train_set: ReIDImageDataset | None = None
        self.val_set: ReIDImageDataset | None = None
        self.test_set: ReIDImageDataset | None = None
        self.vehicle_type_ids: list[int] = []

    def too_few_identities_hint(self) -> str:
        """Which config keys to change when the training set has fewer identities than P."""
        return "lower data.p (at most the number of identities) or point data.root at a larger dataset"

    # roots may be produced by prepare_data (synthetic subclasses)
    def train_root(self) -> Path:
        if self.root is None:
            raise ValueError("ReIDDataModule: `root` is not set (a Market-1501 or VeRi-776 style folder)")
        return self.root

    def heldout_root(self) -> Path | None:
        return self.test_root

    def _split(self, root: Path, which: int) -> Path:
        folder = root / LAYOUTS[self.format][which]
        if not folder.is_dir():
            raise FormatError(folder, f"missing {self.format} sub-folder (expected {LAYOUTS[self.format]})")
        return folder

    def _eval_set(self, root: Path) -> ReIDImageDataset:
        query = scan_folder(self._split(root, 2), self.format)
        gallery = [s for s in scan_folder(self._split(root, 1), self.format) if s.pid != -1]
        if not query or not gallery:
            raise FormatError(root, "evaluation needs a non-empty query and gallery folder")
        # interleave queries and gallery (fixed order) so that any prefix of the loader, e.g. with
        # trainer.limit_val_batches, still holds both and evaluates a subset
        order = np.random.default_rng(0).permutation(len(query) + len(gallery))
        samples = [(query + gallery)[i] for i in order]
        flags = [bool(i < len(query)) for i in order]
        return ReIDImageDataset(samples, self.height, self.width, is_query=flags)

    def setup(self, stage: str | None = None) -> None:
        root = self.train_root()
        if stage in (None, "fit") and self.train_set is None:
            train = self.train_samples(root)
            attributes = self._attributes(root, train)
            train_set = ReIDImageDataset(
                train, self.height, self.width, relabel=True, attributes=attributes, mirror_p=self.mirror_p
            )
            if train_set.num_classes < self.p:
                raise ValueError(
                    f"ReID training set {root} has {train_set.num_classes} identities, but P x K sampling takes "
                    f"P={self.p} identities per batch: {self.too_few_identities_hint()}"
                )
            self.train_set = train_set
            log.info("ReID train set %s: %d images, %d identities", root, len(train), self.train_set.num_classes)
        if stage in (None, "fit", "validate") and self.val_set is None:
            self.val_set = self._eval_set(root)
        if stage in (None, "test") and self.test_set is None:
            held = self.heldout_root()
            self.test_set = self._eval_set(held) if held is not None else self._eval_set(root)

    def train_samples(self, root: Path) -> list[ReIDSample]:
        """The training crops: `root`'s train split without junk (subclasses add worlds)."""
        return [s for s in scan_folder(self._split(root, 0), self.format) if s.pid >= 0]

    def _attributes(self, root: Path, train: Sequence[ReIDSample]) -> dict[str, list[int]] | None:
        """Vehicle type / orientation labels of the training crops when a VeRi `train_label.xml` exists."""
        xml = root / "train_label.xml"
        if self.format != "veri776" or not xml.is_file():
            return None
        labels = read_veri_labels(xml)
        self.vehicle_type_ids = vehicle_type_classes(labels)
        attributes = vehicle_attributes(train, labels, self.vehicle_type_ids)
        log.info(
            "VeRi labels %s: type classes = typeIDs %s; %d/%d crops with a type, %d with an orientation",
            xml, self.vehicle_type_ids, sum(t >= 0 for t in attributes["vehicle_type"]), len(train),
            sum(o >= 0 for o in attributes["orientation"]),
        )
        return attributes

    @property
    def num_classes(self) -> int:
        if self.train_set is None:
            self.setup("fit")
        assert self.train_set is not None
        return self.train_set.num_classes

    def _loader(self, dataset: Dataset, **kwargs: Any) -> DataLoader:
        return make_loader(dataset, self.num_workers, self.pin_memory, **kwargs)

    def train_dataloader(self) -> DataLoader:
        assert self.train_set is not None, "call setup('fit') first"
        sampler = PKBatchSampler(self.train_set.labels, p=self.p, k=self.k, seed=self.seed)
        return self._loader(self.train_set, batch_sampler=sampler)

    def val_dataloader(self) -> DataLoader:
        assert self.val_set is not None, "call setup('fit') or setup('validate') first"
        return self._loader(self.val_set, batch_size=self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        assert self.test_set is not None, "call setup('test') first"
        return self._loader(self.test_set, batch_size=self.eval_batch_size, shuffle=False)


class _OwnCropsDataModule(ReIDDataModule):
    """A ReID datamodule that writes its own Market-1501 crop folder, so `root` is not the user's to set."""

    _root_error: ClassVar[str]

    def __init__(self, root: str | None = None, **kwargs: Any) -> None:
        if root is not None:
            raise ValueError(self._root_error)
        kwargs.setdefault("format", "market1501")
        super().__init__(root=None, **kwargs)


class SyntheticReIDDataModule(_OwnCropsDataModule):
    """Crops of the synthetic AI City world; generated on first use.

    Two datasets from different seeds (disjoint identities): `train_seed` for training and
    validation, `eval_seed` for the held-out test. `source="crops"` uses the Market-1501
    folder the generator writes (`<dataset>/reid`); `source="scenes"` cuts crops from the
    scene videos + ground truth itself (frame stride, minimum visibility, query/gallery by camera).

    `extra_train` adds training worlds, each `{name, seed, synth}` with its `synth` merged over `synth`
    (e.g. the detector's domain-randomised worlds: more identities, real-camera imaging). They are never
    evaluated, so all their identities train (train, query and gallery folders of their `reid` crops);
    identities stay apart between worlds. Their seeds must differ from `eval_seed`.
    """

    # identities of extra world k are numbered from (k + 1) * WORLD_PID_STRIDE (Market-1501 pids are < 10^4)
    WORLD_PID_STRIDE: ClassVar[int] = 1_000_000

    _root_error = "SyntheticReIDDataModule generates its own data: set data_dir, not root"

    def __init__(
        self,
        data_dir: str = "data",
        train_name: str = "synth/reid_train",
        eval_name: str = "synth/reid_eval",
        train_seed: int = 1,
        eval_seed: int = 2,
        synth: dict[str, Any] | None = None,
        source: str = "crops",
        frame_stride: int = 5,
        min_visibility: float = 0.6,
        min_height: int = 24,
        extra_train: list[dict[str, Any]] | None = None,
        root: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(root=root, **kwargs)
        if source not in {"crops", "scenes"}:
            raise ValueError(f"source must be 'crops' or 'scenes', got {source!r}")
        if extra_train and source != "crops":
            raise ValueError("extra_train needs source='crops' (the generator's reid folders)")
        self.data_dir = Path(data_dir)
        self.train_dataset_dir = self.data_dir / train_name
        self.eval_dataset_dir = self.data_dir / eval_name
        self.train_seed, self.eval_seed = int(train_seed), int(eval_seed)
        self.synth = dict(synth or {})
        self.source = source
        self.frame_stride, self.min_visibility, self.min_height = frame_stride, min_visibility, min_height
        # (folder, seed, world overrides) of the extra training worlds
        self.extra_worlds: list[tuple[Path, int, dict[str, Any]]] = []
        for k, world in enumerate(extra_train or []):
            if not {"name", "seed"} <= set(world):
                raise ValueError(f"extra_train[{k}] needs a name and a seed, got {dict(world)}")
            if int(world["seed"]) == self.eval_seed:
                raise ValueError(f"extra_train[{k}] has eval_seed {self.eval_seed}: the evaluation world must be held out")
            self.extra_worlds.append((self.data_dir / str(world["name"]), int(world["seed"]),
                                      merge_overrides(self.synth, world.get("synth"))))

    def too_few_identities_hint(self) -> str:
        return (
            f"generate a larger world (data.synth.scenes, data.synth.people: about half of scenes x people "
            f"are training identities; now {self.synth or 'the generator defaults'}; an existing "
            f"{self.train_dataset_dir} is reused as is, delete it or change data.train_name) or lower data.p"
        )

    def _crops_root(self, dataset_dir: Path, eval_only: bool) -> Path:
        if self.source == "crops":
            return dataset_dir / "reid"
        eval_fraction, seed = (1.0, self.eval_seed) if eval_only else (0.5, self.train_seed)
        key = crop_params_key(self.frame_stride, self.min_visibility, self.min_height, eval_fraction, seed)
        return dataset_dir / f"reid_scenes_s{self.frame_stride}_v{self.min_visibility:g}_{key}"

    def check_world_size(self) -> None:
        """Fail before generating anything when the world cannot hold P training identities."""
        from citytrack.data.synth import resolve_config

        cfg = resolve_config(None, out=str(self.train_dataset_dir), seed=self.train_seed, **self.synth)
        total = int(cfg.scenes) * int(cfg.people)
        eval_share = float(cfg.reid.test_fraction) if self.source == "crops" else 0.5
        at_most = total - round(eval_share * total)
        if at_most < self.p:
            raise ValueError(
                f"the synthetic world has {cfg.scenes} scene(s) x {cfg.people} people: at most {at_most} training "
                f"identities, but P x K sampling takes P={self.p} identities per batch: {self.too_few_identities_hint()}"
            )

    def prepare_data(self) -> None:
        from citytrack.data.synth import ensure_synthetic_dataset

        self.check_world_size()
        for folder, seed, eval_only in (
            (self.train_dataset_dir, self.train_seed, False),
            (self.eval_dataset_dir, self.eval_seed, True),
        ):
            ensure_synthetic_dataset(folder, seed=seed, **self.synth)
            if self.source == "scenes":
                extract_aic24_reid_crops(
                    scene_dirs_of(folder),
                    self._crops_root(folder, eval_only),
                    frame_stride=self.frame_stride,
                    min_visibility=self.min_visibility,
                    min_height=self.min_height,
                    eval_fraction=1.0 if eval_only else 0.5,
                    seed=seed,
                )
        for folder, seed, synth in self.extra_worlds:
            ensure_synthetic_dataset(folder, seed=seed, **synth)

    def train_samples(self, root: Path) -> list[ReIDSample]:
        samples = super().train_samples(root)
        if any(not (folder / "reid").is_dir() for folder, _, _ in self.extra_worlds):
            self.prepare_data()  # setup() without prepare_data(): generate the missing worlds
        for k, (folder, _, _) in enumerate(self.extra_worlds):
            crops = folder / "reid"
            offset = (k + 1) * self.WORLD_PID_STRIDE
            world = [ReIDSample(s.path, s.pid + offset, s.camid)
                     for split in (0, 1, 2) for s in scan_folder(self._split(crops, split), self.format) if s.pid >= 0]
            log.info("ReID extra training world %s: %d images, %d identities", crops, len(world),
                     len({s.pid for s in world}))
            samples += world
        return samples

    def train_root(self) -> Path:
        root = self._crops_root(self.train_dataset_dir, False)
        if not root.is_dir() or (self.source == "scenes" and not (root / "crops.json").is_file()):
            self.prepare_data()
        return root

    def heldout_root(self) -> Path:
        return self._crops_root(self.eval_dataset_dir, True)


class AICityCropsDataModule(_OwnCropsDataModule):
    """ReID crops cut from AI City 2024 scenes (`<root>/<split>/scene_XXX/...`), e.g. real AIC24 data.

    Identities of the scenes are split into train and evaluation identities (`eval_fraction`);
    crops are extracted once into `cache_dir` in the Market-1501 layout.
    """

    _root_error = "AICityCropsDataModule cuts crops from scenes_root: set scenes_root/cache_dir, not root"

    def __init__(
        self,
        scenes_root: str,
        split: str | None = None,
        cache_dir: str | None = None,
        frame_stride: int = 5,
        min_visibility: float = 0.6,
        min_height: int = 24,
        eval_fraction: float = 0.5,
        root: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(root=root, **kwargs)
        self.scenes_root, self.split = Path(scenes_root), split
        self.frame_stride, self.min_visibility, self.min_height = frame_stride, min_visibility, min_height
        self.eval_fraction = eval_fraction
        # the default cache folder is keyed by every extraction parameter and the split, so another
        # split/seed/fraction gets its own folder; crops.json is also checked (explicit cache_dir)
        key = crop_params_key(frame_stride, min_visibility, min_height, eval_fraction, self.seed, split)
        default = self.scenes_root / f"reid_crops_s{frame_stride}_v{min_visibility:g}_{key}"
        self.cache = Path(cache_dir) if cache_dir else default

    def too_few_identities_hint(self) -> str:
        return "lower data.p or data.eval_fraction, or use more scenes (data.scenes_root, data.split)"

    def prepare_data(self) -> None:
        from citytrack.data.formats.aicity import list_aic24_scenes

        extract_aic24_reid_crops(
            list_aic24_scenes(self.scenes_root, self.split),
            self.cache,
            frame_stride=self.frame_stride,
            min_visibility=self.min_visibility,
            min_height=self.min_height,
            eval_fraction=self.eval_fraction,
            seed=self.seed,
        )

    def train_root(self) -> Path:
        self.prepare_data()  # cheap when crops.json matches the parameters; re-extracts otherwise
        return self.cache


class SyntheticVehicleReIDDataModule(ReIDDataModule):
    """The synthetic vehicle city as a VeRi-776 folder (`root`), written on first use by `ensure_city_veri`.

    Training crops come from one world (`synth.train_seed`), query and gallery from another
    (`synth.test_seed`: unseen vehicles), so validation is already held out and the test split
    repeats it. Label files give the `vehicle_type` / `orientation` batch keys.
    """

    def __init__(self, root: str, synth: dict[str, Any] | None = None, format: str = "veri776", **kwargs: Any) -> None:
        if format != "veri776":
            raise ValueError(f"SyntheticVehicleReIDDataModule writes a VeRi-776 folder, got format={format!r}")
        super().__init__(root=root, format=format, **kwargs)
        self.synth = dict(synth or {})

    def too_few_identities_hint(self) -> str:
        return (
            f"generate a larger city (data.synth.scenes, data.synth.vehicles; now {self.synth or 'the defaults'}; "
            f"an existing {self.root} is reused as is, delete it or change data.root) or lower data.p"
        )

    def prepare_data(self) -> None:
        from citytrack.data.synth.city_crops import ensure_city_veri

        assert self.root is not None
        ensure_city_veri(self.root, **self.synth)

    def train_root(self) -> Path:
        root = super().train_root()
        if not (root / "image_train").is_dir():
            self.prepare_data()
        return root
