"""ReID datamodules: Market-1501 / VeRi folders, crops cut from AI City scenes, vehicle heads plumbing."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from citytrack.data.formats.errors import FormatError
from citytrack.data.formats.reid import scan_folder
from citytrack.data.reid_crops import box_visibility, extract_aic24_reid_crops
from citytrack.data.reid_datamodule import ReIDDataModule, ReIDImageDataset
from citytrack.data.video import AtomicVideoWriter
from citytrack.models.reid.backbones import ReIDNet
from citytrack.models.reid.module import ReIDModule, warmup_cosine


def _write_market(root: Path, ids: int = 4, per_cam: int = 2, cams: int = 2) -> None:
    rng = np.random.default_rng(0)
    for sub, pid_offset in (("bounding_box_train", 1), ("bounding_box_test", 100), ("query", 100)):
        (root / sub).mkdir(parents=True)
        for pid in range(pid_offset, pid_offset + ids):
            for cam in range(1, cams + 1):
                n = 1 if sub == "query" else per_cam
                for j in range(n):
                    img = rng.integers(0, 255, (40, 20, 3), dtype=np.uint8)
                    cv2.imwrite(str(root / sub / f"{pid:04d}_c{cam}s1_{j:06d}_01.jpg"), img)
    # a junk gallery image is ignored
    cv2.imwrite(str(root / "bounding_box_test" / "-1_c1s1_000000_00.jpg"), np.zeros((8, 4, 3), np.uint8))


def test_market_folder_datamodule(tmp_path: Path) -> None:
    _write_market(tmp_path)
    cfg = OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "data" / "reid_market.yaml")
    cfg.root, cfg.seed, cfg.num_workers, cfg.height, cfg.width, cfg.p, cfg.k = str(tmp_path), 0, 0, 32, 16, 2, 2
    dm = instantiate(cfg)
    assert isinstance(dm, ReIDDataModule)
    dm.setup("fit")
    assert dm.num_classes == 4
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 32, 16) and batch["image"].dtype == torch.uint8
    assert set(batch["pid"].tolist()) <= set(range(4))
    val = dm.val_set
    assert val.num_query == 8 and len(val) == 8 + 16
    vb = next(iter(dm.val_dataloader()))
    assert int(vb["is_query"].sum()) == 8 and len(vb["is_query"]) == 24
    # queries are interleaved with the gallery: a short prefix has both
    first = [bool(val[i]["is_query"]) for i in range(6)]
    assert any(first) and not all(first)


def test_missing_folder_and_bad_image_are_named(tmp_path: Path) -> None:
    dm = ReIDDataModule(root=str(tmp_path), num_workers=0)
    with pytest.raises(FormatError, match="bounding_box_train"):
        dm.setup("fit")
    bad = tmp_path / "0001_c1s1_000001_01.jpg"
    bad.write_bytes(b"not a jpeg")
    ds = ReIDImageDataset(scan_folder(tmp_path, "market1501"), 32, 16)
    with pytest.raises(FormatError, match="0001_c1s1_000001_01.jpg"):
        ds[0]


def test_real_market_samples(shared_data: Path) -> None:
    samples = scan_folder(shared_data / "market1501_samples", "market1501")
    assert len(samples) == 5
    assert {(s.pid, s.camid) for s in samples} >= {(22, 6), (27, 2)}
    ds = ReIDImageDataset(samples, 64, 32)
    item = ds[0]
    assert item["image"].shape == (3, 64, 32) and item["image"].float().std() > 5


def test_box_visibility_occlusion_and_border() -> None:
    boxes = np.array([[0, 0, 10, 20], [0, 10, 10, 20], [95, 0, 10, 10]], dtype=float)
    vis = box_visibility(boxes, width=100, height=100)
    # box 0's lower half is covered by box 1 (nearer: lower bottom edge); box 2 half outside
    np.testing.assert_allclose(vis, [0.5, 1.0, 0.5], atol=1e-6)


@pytest.mark.slow
def test_crops_cut_from_synthetic_scene(tmp_path: Path) -> None:
    from citytrack.data.reid_crops import scene_dirs_of
    from citytrack.data.synth import ensure_synthetic_dataset

    ds = ensure_synthetic_dataset(tmp_path / "world", seed=3, cameras=2, people=6, frames=20, width=320,
                                  height=180, progress=False)
    out = extract_aic24_reid_crops(scene_dirs_of(ds), tmp_path / "crops", frame_stride=5, min_visibility=0.5,
                                   min_height=16, eval_fraction=0.5, seed=0)
    train = scan_folder(out / "bounding_box_train", "market1501")
    gallery = scan_folder(out / "bounding_box_test", "market1501")
    query = scan_folder(out / "query", "market1501")
    assert train and gallery
    assert not ({s.pid for s in train} & {s.pid for s in gallery + query})  # disjoint identities
    # at most one query per identity and camera, and each query identity is in another camera's gallery
    keys = [(s.pid, s.camid) for s in query]
    assert len(keys) == len(set(keys))
    for s in query:
        assert any(g.pid == s.pid and g.camid != s.camid for g in gallery + query)
    frames = {int(s.path.name.split("_")[2]) for s in train + gallery + query}
    assert all(f % 5 == 0 for f in frames)
    assert (out / "crops.json").is_file()
    # a second call with the same parameters reuses the folder
    stamp = (out / "crops.json").stat().st_mtime_ns
    assert extract_aic24_reid_crops(scene_dirs_of(ds), out, frame_stride=5, min_visibility=0.5,
                                    min_height=16, eval_fraction=0.5, seed=0) == out
    assert (out / "crops.json").stat().st_mtime_ns == stamp


def test_vehicle_aux_heads_losses_on_random_tensors() -> None:
    torch.manual_seed(0)
    net = ReIDNet("osnet_x0_25")
    module = ReIDModule(
        net,
        optimizer=lambda params: torch.optim.SGD(params, lr=0.1),
        num_classes=3,
        aux_heads={"vehicle_type": 8, "orientation": 8},
        center_weight=5e-4,
    )
    batch = {
        "image": torch.rand(6, 3, 32, 16),
        "pid": torch.tensor([0, 0, 1, 1, 2, 2]),
        "vehicle_type": torch.tensor([1, 1, 4, 4, -1, -1]),
        "orientation": torch.tensor([0, 7, 3, 3, 2, -1]),
    }
    out = module.compute_losses(batch)
    assert {"ce", "triplet", "center", "vehicle_type", "orientation", "loss"} <= set(out)
    out["loss"].backward()
    assert module.aux_heads["vehicle_type"].fc.weight.grad is not None
    assert module.aux_heads["vehicle_type"].fc.weight.grad.abs().sum() > 0
    # without the attribute labels in the batch the heads are idle
    del batch["orientation"], batch["vehicle_type"]
    assert "orientation" not in module.compute_losses(batch)


def test_vehicle_config_composes(config_dir: Path) -> None:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["experiment=reid_vehicle_synthetic"])
    GlobalHydra.instance().clear()
    assert dict(cfg.model.aux_heads) == {"vehicle_type": 8, "orientation": 8}
    assert cfg.optimized_metric == "val/mAP"


def test_warmup_cosine_schedule_shape() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = warmup_cosine(opt, warmup_steps=4, total_steps=14, warmup_factor=0.1, min_lr_ratio=0.0)
    lrs = []
    for _ in range(14):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.1) and lrs[4] == pytest.approx(1.0)
    assert lrs[:5] == sorted(lrs[:5]) and lrs[4:] == sorted(lrs[4:], reverse=True)
    assert lrs[9] == pytest.approx(0.5)


def _write_aic24_scene(scene: Path, pids: range, frames: int = 6, cams: int = 2) -> None:
    """A tiny AI City 2024 scene: `cams` cameras of 160x96 mp4 video, people as coloured boxes."""
    rows = []
    for cam in range(1, cams + 1):
        d = scene / f"camera_{cam:04d}"
        d.mkdir(parents=True)
        with AtomicVideoWriter(d / "video.mp4", 10, (160, 96), "mp4v") as writer:
            for f in range(frames):
                img = np.full((96, 160, 3), 40, np.uint8)
                for j, pid in enumerate(pids):
                    x, y = 5 + 30 * j, 10
                    img[y : y + 60, x : x + 20] = (50 * j % 255, 200, 100)
                    rows.append([cam, pid, f, x, y, 20, 60, 0, 0])
                writer.write(img)
    np.savetxt(scene / "ground_truth.txt", np.array(rows), fmt="%g")


def test_crop_cache_is_not_reused_across_splits_or_parameters(tmp_path: Path) -> None:
    from citytrack.data.reid_datamodule import AICityCropsDataModule

    _write_aic24_scene(tmp_path / "train" / "scene_001", range(1, 5))
    _write_aic24_scene(tmp_path / "val" / "scene_002", range(11, 13))
    kw = {"frame_stride": 3, "min_visibility": 0.5, "min_height": 16, "num_workers": 0, "height": 32, "width": 16,
          "p": 2, "k": 2}
    train = AICityCropsDataModule(str(tmp_path), split="train", **kw)
    train_root = train.train_root()
    assert len(scan_folder(train_root / "bounding_box_train", "market1501")) == 2 * 2 * 2  # 2 ids x 2 cams x 2 frames
    val = AICityCropsDataModule(str(tmp_path), split="val", eval_fraction=1.0, **kw)
    val_root = val.train_root()
    assert val_root != train_root
    assert not scan_folder(val_root / "bounding_box_train", "market1501")  # all identities are evaluation ones
    assert len(scan_folder(val_root / "bounding_box_test", "market1501")) + len(
        scan_folder(val_root / "query", "market1501")) == 2 * 2 * 2
    # one explicit cache_dir: changed parameters/scenes re-extract and remove the old crops
    cache = tmp_path / "cache"
    scenes_train = [tmp_path / "train" / "scene_001"]
    out = extract_aic24_reid_crops(scenes_train, cache, frame_stride=3, min_visibility=0.5, min_height=16, seed=0)
    first = sorted(p.name for p in out.rglob("*.jpg"))
    assert len(first) == 16
    stamp = (cache / "crops.json").stat().st_mtime_ns
    extract_aic24_reid_crops(scenes_train, cache, frame_stride=3, min_visibility=0.5, min_height=16, seed=0)
    assert (cache / "crops.json").stat().st_mtime_ns == stamp  # same parameters: reused
    extract_aic24_reid_crops(scenes_train, cache, frame_stride=3, min_visibility=0.5, min_height=16, seed=0,
                             eval_fraction=0.0)
    assert len(scan_folder(cache / "bounding_box_train", "market1501")) == 16
    assert not list((cache / "query").glob("*.jpg")) and not list((cache / "bounding_box_test").glob("*.jpg"))
    extract_aic24_reid_crops([tmp_path / "val" / "scene_002"], cache, frame_stride=3, min_visibility=0.5,
                             min_height=16, seed=0, eval_fraction=0.0)
    assert {s.pid for s in scan_folder(cache / "bounding_box_train", "market1501")} == {1, 2}
    assert len(list(cache.rglob("*.jpg"))) == 8  # only the new scene's crops are left
    extract_aic24_reid_crops([tmp_path / "val" / "scene_002"], cache, frame_stride=2, min_visibility=0.5,
                             min_height=16, seed=0, eval_fraction=0.0)
    assert {int(p.name.split("_")[2]) for p in cache.rglob("*.jpg")} == {0, 2, 4}
    extract_aic24_reid_crops([tmp_path / "val" / "scene_002"], cache, frame_stride=2, min_visibility=0.5,
                             min_height=100, seed=0, eval_fraction=0.0)
    assert not list(cache.rglob("*.jpg"))


def test_synthetic_scene_crop_folders_depend_on_every_extraction_parameter(tmp_path: Path) -> None:
    from citytrack.data.reid_datamodule import SyntheticReIDDataModule

    def roots(**kw: object) -> tuple[Path, Path]:
        dm = SyntheticReIDDataModule(data_dir=str(tmp_path), source="scenes", num_workers=0, **kw)
        return dm._crops_root(dm.train_dataset_dir, False), dm.heldout_root()

    base = roots()
    assert base[0].parent != base[1].parent
    for kw in ({"min_height": 40}, {"train_seed": 5, "eval_seed": 6}, {"frame_stride": 2}, {"min_visibility": 0.3}):
        changed = roots(**kw)
        assert changed[0] != base[0] and changed[1] != base[1], kw


def test_fewer_identities_than_p_fail_in_setup_naming_the_config_keys(tmp_path: Path) -> None:
    _write_market(tmp_path)  # 4 training identities
    dm = ReIDDataModule(str(tmp_path), num_workers=0, height=32, width=16, p=8, k=2)
    with pytest.raises(ValueError, match=r"4 identities.*P=8.*data\.p"):
        dm.setup("fit")


def test_synthetic_world_too_small_for_p_fails_before_generating(tmp_path: Path) -> None:
    from citytrack.data.reid_datamodule import SyntheticReIDDataModule

    dm = SyntheticReIDDataModule(data_dir=str(tmp_path / "d"), synth={}, num_workers=0, p=16)
    with pytest.raises(ValueError, match=r"at most 6 training identities.*data\.synth\.scenes, data\.synth\.people"):
        dm.prepare_data()
    assert not (tmp_path / "d").exists()  # nothing generated


@pytest.mark.parametrize("overrides", [["data=reid_synthetic"]])
def test_reid_synthetic_data_config_has_enough_identities_by_itself(config_dir: Path, tmp_path: Path,
                                                                    overrides: list[str]) -> None:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[*overrides, f"paths.data_dir={tmp_path}"])
    GlobalHydra.instance().clear()
    synth = cfg.data.synth
    assert synth.scenes * synth.people // 2 >= cfg.data.p
    dm = instantiate(cfg.data)
    dm.check_world_size()  # raises when the world cannot hold P training identities


def test_synthetic_extra_worlds_train_all_their_identities_apart_from_the_main_world(tmp_path: Path) -> None:
    from citytrack.data.reid_datamodule import SyntheticReIDDataModule

    # both worlds number their people from 1: without the per-world offset ids 1-4 would merge
    _write_market(tmp_path / "synth" / "main" / "reid")
    _write_market(tmp_path / "synth" / "extra" / "reid")
    dm = SyntheticReIDDataModule(data_dir=str(tmp_path), train_name="synth/main", num_workers=0, height=32,
                                 width=16, p=2, k=2, extra_train=[{"name": "synth/extra", "seed": 5}])
    dm.setup("fit")
    assert dm.train_set is not None
    # main: its 4 training identities; extra: 4 training + 4 query/gallery identities (junk dropped)
    assert dm.num_classes == 4 + 8
    assert len(dm.train_set) == 4 * 2 * 2 + (4 * 2 * 2 + 4 * 2 * 2 + 4 * 2)
    assert dm.val_set is not None and dm.val_set.num_query == 8  # validation stays the main world's


def test_synthetic_extra_worlds_are_checked(tmp_path: Path) -> None:
    from citytrack.data.reid_datamodule import SyntheticReIDDataModule

    with pytest.raises(ValueError, match="needs a name and a seed"):
        SyntheticReIDDataModule(data_dir=str(tmp_path), extra_train=[{"name": "synth/x"}])
    with pytest.raises(ValueError, match="eval_seed 2.*held out"):
        SyntheticReIDDataModule(data_dir=str(tmp_path), eval_seed=2, extra_train=[{"name": "synth/x", "seed": 2}])
    with pytest.raises(ValueError, match="source='crops'"):
        SyntheticReIDDataModule(data_dir=str(tmp_path), source="scenes", extra_train=[{"name": "synth/x", "seed": 3}])
