"""A run killed mid-epoch and resumed from its last.ckpt ends where the uninterrupted run ends.

Tiny ReID training through the real config (experiment=reid_synthetic): 2 epochs of 5 steps. The
interrupted run checkpoints every 3 steps and dies at the start of step 5 (mid-epoch 0), the resumed
one continues from `last.ckpt`. The data position, the augmentation draws (citytrack.data.resumable)
and the optimiser/scheduler state all come back, so the final weights are identical.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from hydra.core.global_hydra import GlobalHydra

from tests.test_reid_train import compose_reid


class KillAtStep(pl.Callback):
    """Stands in for a SIGKILL / node failure: raises when the trainer reaches `step`."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: pl.Trainer, *args: object) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError(f"killed at step {self.step}")


def _overrides(extra: list[str]) -> list[str]:
    return [
        "trainer.max_epochs=2",
        "trainer.max_steps=-1",
        "trainer.limit_train_batches=5",
        "trainer.limit_val_batches=0",
        "trainer.num_sanity_val_steps=0",
        "trainer.enable_progress_bar=false",
        "~callbacks.progress_bar",
        "callbacks.model_checkpoint.monitor=null",
        "+callbacks.model_checkpoint.every_n_train_steps=3",
        "test=false",
        "model.net.backbone=osnet_x0_25",
        "data.synth.people=12",  # enough identities for 5 P x K batches per epoch
        "data.synth.frames=30",
        *extra,
    ]


def _train(config_dir: Path, run: Path, data: Path, extra: list[str]) -> pl.Trainer:
    from citytrack.train import train

    cfg = compose_reid(config_dir, run, data, _overrides(extra))
    try:
        _, objects = train(cfg)
    finally:
        GlobalHydra.instance().clear()
    return objects["trainer"]


def test_killed_and_resumed_run_matches_uninterrupted(tmp_path: Path, config_dir: Path) -> None:
    data = tmp_path / "data"
    full = _train(config_dir, tmp_path / "full", data, [])
    assert full.global_step == 10

    with pytest.raises(RuntimeError, match="killed at step 5"):
        _train(config_dir, tmp_path / "killed", data,
               ["+callbacks.kill._target_=tests.test_resume.KillAtStep", "+callbacks.kill.step=5"])
    last = tmp_path / "killed" / "run" / "checkpoints" / "last.ckpt"
    saved = torch.load(last, map_location="cpu", weights_only=False)
    assert saved["global_step"] == 3 and saved["epoch"] == 0  # mid-epoch: 3 of 5 batches
    assert not list(last.parent.glob(".last.ckpt.*")), "no temporary checkpoint left behind"

    resumed = _train(config_dir, tmp_path / "resumed", data, [f"ckpt_path={last}"])
    assert resumed.global_step == 10
    a, b = full.lightning_module.state_dict(), resumed.lightning_module.state_dict()
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=0, msg=f"{name} differs after resume")
    assert float(resumed.callback_metrics["train/loss"]) == float(full.callback_metrics["train/loss"])
