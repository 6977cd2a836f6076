"""One tiny training run through the real Hydra config (experiment=pose_synthetic_cpu), then extract keypoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

TINY_SYNTH = ("{scenes:1,cameras:2,people:6,frames:12,width:320,height:192,progress:false,"
              "pose:{stride:2,min_height:20,min_keypoints:3,test_fraction:0.5}}")


def compose_pose(config_dir: Path, tmp: Path, experiment: str) -> DictConfig:
    GlobalHydra.instance().clear()
    overrides = [
        f"experiment={experiment}",
        "trainer=cpu",
        "logger=csv",
        f"paths.data_dir={tmp}/data",
        f"paths.log_dir={tmp}/logs",
        f"++data.synth={TINY_SYNTH}",
        "data.batch_size=4",
        "data.eval_batch_size=8",
        "data.num_workers=0",
        "model.net.backbone=resnet18",
        "model.net.feature_index=-3",
        "model.net.width=16",
        "model.input_size=[64,32]",
        "model.log_images=4",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=2",
        "trainer.limit_test_batches=1",
        "trainer.check_val_every_n_epoch=1",
        "trainer.log_every_n_steps=1",
        "~callbacks.model_summary",
    ]
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp / "run")
        del cfg["hydra"]
    return cfg


@pytest.mark.parametrize("experiment", ["pose_synthetic", "pose_synthetic_cpu"])
def test_experiments_compose(config_dir: Path, tmp_path: Path, experiment: str) -> None:
    import hydra

    cfg = compose_pose(config_dir, tmp_path, experiment)
    GlobalHydra.instance().clear()
    assert cfg.optimized_metric == "val/AP"
    model = hydra.utils.instantiate(cfg.model)
    assert model.input_size == (64, 32)


@pytest.mark.parametrize("experiment", ["pose_synthetic_cpu_more", "pose_synthetic_cpu_w3", "pose_synthetic_cpu_diverse",
                                        "pose_synthetic_cpu_mixed"])
def test_later_stages_start_from_the_committed_checkpoint(config_dir: Path, tmp_path: Path, experiment: str) -> None:
    """The later CPU stages: the CPU net (not the tiny test net) warm-started from the committed
    checkpoint, so its first heatmaps are the checkpoint's (new skip connections start silent)."""
    import hydra

    from citytrack.models.pose.extractor import KeypointExtractor

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"experiment={experiment}", f"paths.data_dir={tmp_path}"])
    GlobalHydra.instance().clear()
    assert cfg.data.eval_name != "synth/pose_eval"  # the world-1 cache must not be validated on
    model = hydra.utils.instantiate(cfg.model).eval()
    ext = KeypointExtractor.from_checkpoint(cfg.model.init_from)
    x = torch.rand(2, 3, *model.input_size)
    torch.testing.assert_close(model.net(x), ext.net(x))


@pytest.mark.parametrize(("experiment", "eval_name"), [("pose_synthetic_cpu_mixed", "pose_eval_w3"), ("pose_synthetic", "pose_eval_large")])
def test_mixed_experiments_train_on_both_camera_resolutions(config_dir: Path, tmp_path: Path, experiment: str, eval_name: str) -> None:
    """CPU stage 5's and the GPU experiment's datamodules: a 640x360 world plus a 1920x1080 one on its
    own seed; the validation world keeps its own size."""
    import hydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"experiment={experiment}", f"paths.data_dir={tmp_path}"])
    GlobalHydra.instance().clear()
    dm = hydra.utils.instantiate(cfg.data)
    sizes = [(synth.get("width", 640), synth.get("height", 360), seed) for _, seed, synth in dm.train_worlds]
    assert sizes == [(640, 360, 1), (1920, 1080, 11)]
    assert dm.eval_dir.name == eval_name and dm.eval_synth == dm.synth


def test_tiny_training_run_logs_ap_and_a_picture_and_extracts(config_dir: Path, tmp_path: Path) -> None:
    from citytrack.models.pose.extractor import KeypointExtractor
    from citytrack.train import train

    cfg = compose_pose(config_dir, tmp_path, "pose_synthetic_cpu")
    metrics, objects = train(cfg)
    GlobalHydra.instance().clear()
    for key in ("val/AP", "val/AP50", "val/PCK@0.2", "test/AP"):
        assert key in metrics, key
        assert -1.0 <= float(metrics[key]) <= 1.0
    assert objects["trainer"].global_step == 2
    assert (tmp_path / "data" / "synth" / "pose_train" / "pose" / "person_keypoints_train.json").is_file()
    assert list((tmp_path / "run").rglob("val_skeletons_epoch*.png"))
    ext = KeypointExtractor.from_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt", device="cpu")
    assert ext.input_size == (64, 32)
    frames = torch.randint(0, 255, (2, 3, 90, 120), dtype=torch.uint8)
    out = ext(frames, [np.array([[10, 5, 20, 40], [50, 20, 30, 60]], dtype=np.float32), np.zeros((0, 4))])
    assert out[0].shape == (2, 17, 3) and out[1].shape == (0, 17, 3)
    assert ((out[0][..., 2] >= 0) & (out[0][..., 2] <= 1)).all()


def test_train_splits_take_both_identity_halves_of_the_training_world(tmp_path: Path) -> None:
    from citytrack.data.pose_datamodule import SyntheticPoseDataModule

    synth = {"scenes": 1, "cameras": 2, "people": 6, "frames": 12, "width": 320, "height": 192, "progress": False,
             "pose": {"stride": 2, "min_height": 20, "min_keypoints": 3, "test_fraction": 0.5}}
    sizes, people = {}, {}
    for splits in (["train"], ["test"], ["train", "test"]):
        dm = SyntheticPoseDataModule(str(tmp_path), synth=synth, train_splits=splits, num_workers=0)
        dm.setup("fit")
        key = "+".join(splits)
        sizes[key] = len(dm.train_set)
        parts = dm.train_set.datasets if key == "train+test" else [dm.train_set]
        people[key] = {a["track_id"] for d in parts for a in d.coco.dataset["annotations"]}
    assert sizes["train"] > 0 and sizes["test"] > 0 and sizes["train+test"] == sizes["train"] + sizes["test"]
    assert not people["train"] & people["test"] and people["train+test"] == people["train"] | people["test"]
    assert len(dm.val_set) > 0  # the eval world is untouched by train_splits
    with pytest.raises(ValueError, match="train_splits"):
        SyntheticPoseDataModule(str(tmp_path), train_splits=["val"])


def test_train_synth_sizes_only_the_training_world(tmp_path: Path) -> None:
    """`train_synth` is merged over `synth` (nested keys too) for the training world; the eval world keeps `synth`."""
    from citytrack.data.pose_datamodule import SyntheticPoseDataModule

    synth = {"scenes": 1, "cameras": 2, "people": 6, "frames": 12, "width": 320, "height": 192, "progress": False,
             "pose": {"stride": 2, "min_height": 20, "min_keypoints": 3, "test_fraction": 0.5}}
    dm = SyntheticPoseDataModule(str(tmp_path), synth=synth, num_workers=0,
                                 train_synth={"scenes": 2, "frames": 8, "pose": {"stride": 4}})
    assert dm.train_synth["pose"] == {**synth["pose"], "stride": 4} and dm.train_synth["people"] == 6
    dm.prepare_data()
    train_meta = json.loads((dm.train_dir / "meta.json").read_text())["config"]
    eval_meta = json.loads((dm.eval_dir / "meta.json").read_text())["config"]
    assert (train_meta["scenes"], train_meta["frames"], train_meta["pose"]["stride"]) == (2, 8, 4)
    assert (eval_meta["scenes"], eval_meta["frames"], eval_meta["pose"]["stride"]) == (1, 12, 2)


def test_extra_training_worlds_and_the_eval_world_overrides(tmp_path: Path) -> None:
    """`extra_train` worlds join the training set with their own seed and overrides; `eval_synth`
    sizes the evaluation world only; a training world on the evaluation seed is refused."""
    from citytrack.data.pose_datamodule import SyntheticPoseDataModule

    synth = {"scenes": 1, "cameras": 2, "people": 6, "frames": 12, "width": 320, "height": 192, "progress": False,
             "pose": {"stride": 2, "min_height": 20, "min_keypoints": 3, "test_fraction": 0.5}}
    extra = [{"name": "synth/pose_train_wide", "seed": 5, "synth": {"width": 480, "height": 288}}]
    dm = SyntheticPoseDataModule(str(tmp_path), synth=synth, num_workers=0, train_synth={"frames": 8},
                                 eval_synth={"width": 400, "height": 240}, extra_train=extra)
    dm.setup("fit")
    metas = {name: json.loads((tmp_path / "synth" / name / "meta.json").read_text())
             for name in ("pose_train", "pose_train_wide", "pose_eval")}
    assert (metas["pose_train"]["width"], metas["pose_train"]["seed"], metas["pose_train"]["frames"]) == (320, 1, 8)
    # the extra world keeps the training world's overrides (frames) under its own
    assert (metas["pose_train_wide"]["width"], metas["pose_train_wide"]["seed"], metas["pose_train_wide"]["frames"]) == (480, 5, 8)
    assert (metas["pose_eval"]["width"], metas["pose_eval"]["frames"]) == (400, 12)
    parts = dm.train_set.datasets
    assert [p.json_path.parent.parent.name for p in parts] == ["pose_train", "pose_train_wide"]
    assert len(dm.train_set) == sum(len(p) for p in parts) and all(len(p) > 0 for p in parts)
    with pytest.raises(ValueError, match="eval_seed 2"):
        SyntheticPoseDataModule(str(tmp_path), synth=synth, extra_train=[{"name": "synth/x", "seed": 2}])
    with pytest.raises(ValueError, match=r"extra_train\[0\] needs a name and a seed"):
        SyntheticPoseDataModule(str(tmp_path), synth=synth, extra_train=[{"name": "synth/x"}])
