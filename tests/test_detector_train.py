"""One tiny training run through the real Hydra config (`experiment=detector_synthetic`), then infer.py task=detect."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict

from tests.conftest import CONFIG_DIR


@pytest.mark.slow
def test_tiny_training_run_via_hydra_and_detect_task(tmp_path: Path) -> None:
    from citytrack.inference import run_task
    from citytrack.train import train

    synth = {"scenes": 1, "cameras": 1, "people": 5, "frames": 12, "progress": False}
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            config_name="train",
            return_hydra_config=True,
            overrides=[
                "experiment=detector_synthetic",
                "model=detector_tiny",
                "trainer=cpu",
                "logger=csv",
                "~callbacks.model_summary",
                "~callbacks.progress_bar",
                "trainer.max_steps=3",
                "trainer.max_epochs=1",
                "trainer.limit_val_batches=1",
                "trainer.num_sanity_val_steps=0",
                "trainer.enable_progress_bar=false",
                "data.img_size=160",  # people of the 640 px frames stay >= min_size (4 px) wide: ground truth to score
                "data.batch_size=2",
                f"data.train.0.root={tmp_path / 'synth_train'}",
                f"data.val.0.root={tmp_path / 'synth_val'}",
                f"paths.log_dir={tmp_path / 'logs'}",
                f"paths.output_dir={tmp_path / 'run'}",
                f"paths.work_dir={tmp_path}",
            ],
        )
        with open_dict(cfg):
            cfg.data.train[0].overrides = {**synth, "seed": 1}
            cfg.data.val[0].overrides = {**synth, "seed": 2}
            cfg.data.train[0].stride = 2
            cfg.data.val[0].stride = 6
            del cfg.hydra
        metrics, _ = train(cfg)
        assert "val/mAP50" in metrics and "val/recall@0.1" in metrics
        assert 0.0 <= float(metrics["val/mAP50"]) <= 1.0
        assert np.isfinite(float(metrics["train/loss"]))
        ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
        assert ckpt.is_file()
        assert list((tmp_path / "run").rglob("predictions/val_epoch000.png"))

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        icfg = compose(
            config_name="infer",
            overrides=[
                "task=detect",
                f"data.root={tmp_path / 'synth_val' / 'train' / 'scene_001'}",
                f"ckpt={ckpt}",
                f"out={tmp_path / 'dets'}",
                "task.max_frames=3",
                "device=cpu",
                f"paths.output_dir={tmp_path / 'infer'}",
            ],
        )
    summary = run_task(icfg)
    assert summary
    from citytrack.data.formats.mot import read_mot

    for name in summary:
        table = read_mot(tmp_path / "dets" / name / "det" / "det.txt", kind="det")
        assert len(table) == summary[name]
        assert table[:, 0].max() <= 3 if len(table) else True


@pytest.mark.slow
def test_cpu_experiment_trains_a_few_steps_on_mot_layout_scenes(tmp_path: Path) -> None:
    """`experiment=detector_synthetic_cpu`: MOT-layout synth source, mosaic/crop to a smaller canvas, EMA."""
    from citytrack.train import train

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            config_name="train",
            return_hydra_config=True,
            overrides=[
                "experiment=detector_synthetic_cpu",
                "logger=csv",
                "~callbacks.model_summary",
                "~callbacks.progress_bar",
                "trainer.max_steps=2",
                "trainer.max_epochs=1",
                "trainer.check_val_every_n_epoch=1",
                "trainer.limit_val_batches=1",
                "trainer.num_sanity_val_steps=0",
                "trainer.enable_progress_bar=false",
                "data.img_size=128",
                "data.augment.out_size=96",
                "data.batch_size=2",
                "data.val_batch_size=2",
                f"data.train.0.root={tmp_path / 'synth_train'}",
                f"data.val.0.root={tmp_path / 'synth_val'}",
                f"paths.log_dir={tmp_path / 'logs'}",
                f"paths.output_dir={tmp_path / 'run'}",
                f"paths.work_dir={tmp_path}",
            ],
        )
        with open_dict(cfg):
            small = {"scenes": 1, "cameras": 1, "people": 5, "frames": 8, "progress": False}
            cfg.data.train[0].overrides = {**cfg.data.train[0].overrides, **small, "seed": 1}
            cfg.data.val[0].overrides = {**small, "seed": 2}
            cfg.data.val[0].stride = 4
            del cfg.hydra
        assert cfg.data.train[0].overrides.layout == "mot" and cfg.model.ema_decay > 0
        metrics, objs = train(cfg)
    assert np.isfinite(float(metrics["train/loss"])) and "val/mAP50" in metrics
    model = objs["model"]
    assert int(model.ema.updates) == 2
    assert (tmp_path / "synth_train" / "train" / "SYNTH-01-01" / "gt" / "gt.txt").is_file()
