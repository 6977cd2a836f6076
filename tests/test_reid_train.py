"""One tiny training run through the real Hydra config (experiment=reid_synthetic), then resume and extract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

TINY_SYNTH = "{scenes:1,cameras:2,people:8,frames:40,width:320,height:180,progress:false}"  # 2 PK batches, queries in both cameras


def compose_reid(config_dir: Path, tmp: Path, data_dir: Path, extra: list[str] | None = None) -> DictConfig:
    GlobalHydra.instance().clear()
    overrides = [
        "experiment=reid_synthetic",
        "trainer=cpu",
        "logger=csv",
        f"paths.data_dir={data_dir}",
        f"paths.log_dir={tmp}/logs",
        f"+data.synth={TINY_SYNTH}",
        "data.height=64",
        "data.width=32",
        "data.p=2",
        "data.k=2",
        "data.num_workers=0",
        "model.net.backbone=osnet_x0_25",
        "model.scheduler.warmup_steps=1",
        "trainer.max_epochs=1",
        "++trainer.max_steps=2",
        "++trainer.limit_train_batches=2",  # an epoch is the 2 steps, however many PK batches the world gives
        "trainer.check_val_every_n_epoch=1",
        "trainer.log_every_n_steps=1",
        "~callbacks.model_summary",
        *(extra or []),
    ]
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp / "run")
        del cfg["hydra"]  # set as the runtime config above; train() logs the rest resolved
    return cfg


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, config_dir: Path) -> tuple[DictConfig, dict, Path]:
    from citytrack.train import train

    tmp = tmp_path_factory.mktemp("reid_run")
    cfg = compose_reid(config_dir, tmp, tmp / "data")
    metrics, _ = train(cfg)
    GlobalHydra.instance().clear()
    return cfg, metrics, tmp


@pytest.mark.slow
def test_tiny_training_run_validates_checkpoints_and_tests(tiny_run) -> None:
    _, metrics, tmp = tiny_run
    for key in ("val/rank1", "val/mAP", "test/rank1", "test/mAP"):
        assert key in metrics, key
        assert 0.0 <= float(metrics[key]) <= 1.0
    ckpts = list((tmp / "run" / "checkpoints").glob("*.ckpt"))
    assert any(p.name == "last.ckpt" for p in ckpts)
    # the generated data went to paths.data_dir: two seeds, two datasets
    assert (tmp / "data" / "synth" / "reid_train" / "meta.json").is_file()
    assert (tmp / "data" / "synth" / "reid_eval" / "meta.json").is_file()
    assert list((tmp / "run" / "rankings").glob("val_ranking_epoch*.png"))
    assert list((tmp / "run" / "csv").rglob("metrics.csv"))


@pytest.mark.slow
def test_resume_from_checkpoint(tiny_run, config_dir: Path) -> None:
    import torch

    from citytrack.train import train

    _, _, tmp = tiny_run
    last = tmp / "run" / "checkpoints" / "last.ckpt"
    cfg = compose_reid(config_dir, tmp / "resumed", tmp / "data", [f"ckpt_path={last}", "++trainer.max_steps=4", "trainer.max_epochs=5", "test=false"])
    _, objects = train(cfg)
    GlobalHydra.instance().clear()
    assert objects["trainer"].global_step == 4
    assert torch.load(last, weights_only=False)["global_step"] == 2


@pytest.mark.slow
def test_extractor_from_trained_checkpoint(tiny_run) -> None:
    from citytrack.models.reid.extractor import FeatureExtractor

    _, _, tmp = tiny_run
    ext = FeatureExtractor.from_checkpoint(tmp / "run" / "checkpoints" / "last.ckpt", device="cpu")
    assert ext.input_size == (64, 32)
    frame = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    feats = ext.embed(frame, np.array([[10, 5, 20, 40], [50, 20, 30, 60]], dtype=np.float32))
    assert feats.shape == (2, ext.dim)
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
