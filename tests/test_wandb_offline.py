"""W&B offline runs hold what the dashboards show: inference metrics table and annotated frames; a training
run's summary table; and a training run that raises is still finished (marked failed)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


def _run_dir(root: Path) -> Path:
    runs = sorted((root / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, runs
    return runs[0]


def test_infer_logs_metrics_table_and_annotated_frames(tmp_path: Path, config_dir: Path) -> None:
    from citytrack.data.synth import ensure_synthetic_dataset
    from citytrack.inference import run_task

    data = ensure_synthetic_dataset(tmp_path / "mot", layout="mot", seed=3, cameras=2, people=5, frames=20,
                                    width=320, height=180, workers=1, progress=False)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = compose("infer", overrides=["task=mot", "logger=wandb", f"data.root={data / 'train'}",
                                          f"out={tmp_path / 'out'}", f"paths.output_dir={tmp_path / 'run'}"])
    result = run_task(cfg)
    import wandb

    assert wandb.run is None, "the inference run was finished"
    files = _run_dir(tmp_path / "run") / "files"
    tables = list((files / "media" / "table").glob("metrics_*.table.json"))
    assert len(tables) == 1
    table = json.loads(tables[0].read_text())
    assert table["columns"][0] == "name" and "HOTA" in table["columns"]
    assert [row[0] for row in table["data"]] == [*result["sequences"], "OVERALL"]
    frames = list((files / "media" / "images").glob("annotated_frames_*.png"))
    assert len(frames) == 2 * 3  # three frames of each camera's sequence


def _tiny_reid(config_dir: Path, tmp_path: Path, extra: list[str]) -> DictConfig:
    from tests.test_reid_train import TINY_SYNTH

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True, overrides=[
            "experiment=reid_synthetic", "trainer=cpu", "logger=wandb", f"paths.data_dir={tmp_path / 'data'}",
            f"+data.synth={TINY_SYNTH}", "data.height=64", "data.width=32", "data.p=2", "data.k=2",
            "data.num_workers=0", "model.scheduler.warmup_steps=1", "trainer.max_epochs=1", "trainer.max_steps=2",
            "++trainer.limit_train_batches=2",  # the epoch (and its validation) ends with the 2 steps
            "trainer.check_val_every_n_epoch=1", "trainer.num_sanity_val_steps=0",
            "trainer.log_every_n_steps=1", "trainer.enable_progress_bar=false", "~callbacks.model_summary",
            "~callbacks.progress_bar", "test=false", *extra,
        ])
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
        del cfg["hydra"]
    return cfg


def test_training_run_logs_config_pictures_and_summary_table(tmp_path: Path, config_dir: Path) -> None:
    from citytrack.train import train

    metrics, _ = train(_tiny_reid(config_dir, tmp_path, []))
    GlobalHydra.instance().clear()
    import wandb

    assert wandb.run is None
    run = _run_dir(tmp_path / "run")
    files = run / "files"
    # the composed config is in the offline run's record (config.yaml appears on `wandb sync`); wandb's
    # service process may still be writing the record when `finish` returns (seen once under load): wait for it
    record = next(run.glob("run-*.wandb"))
    deadline = time.monotonic() + 30.0
    while b"reid_synthetic" not in record.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert b"reid_synthetic" in record.read_bytes()
    table = json.loads(next((files / "media" / "table" / "summary").glob("metrics_*.table.json")).read_text())
    assert {row[0] for row in table["data"]} == set(metrics)
    assert list((files / "media" / "images" / "val").glob("ranking_*.png")), "the ReID ranking grid"


def test_training_that_raises_still_finishes_its_run(tmp_path: Path, config_dir: Path) -> None:
    from citytrack.train import train

    cfg = _tiny_reid(config_dir, tmp_path, ["+callbacks.kill._target_=tests.test_resume.KillAtStep",
                                            "+callbacks.kill.step=1"])
    with pytest.raises(RuntimeError, match="killed at step 1"):
        train(cfg)
    GlobalHydra.instance().clear()
    import wandb

    assert wandb.run is None, "the failed run was finished, not left open for the next job"
    assert next(_run_dir(tmp_path / "run").glob("run-*.wandb")).stat().st_size > 0
