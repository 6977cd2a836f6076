"""Trainer configs compose as documented: Lightning flags without `+`, DDP, and the SLURM multi-node recipe."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig


def _compose(config_dir: Path, name: str, overrides: list[str]) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        return compose(config_name=name, overrides=overrides, return_hydra_config=True)


def test_common_lightning_flags_override_without_plus(config_dir: Path) -> None:
    flags = {
        "fast_dev_run": True, "limit_train_batches": 0.25, "limit_val_batches": 3, "val_check_interval": 0.5,
        "precision": "bf16-mixed", "accumulate_grad_batches": 4, "gradient_clip_val": 1.0, "max_steps": 100,
        "num_sanity_val_steps": 0, "overfit_batches": 2, "enable_progress_bar": False, "profiler": "simple",
    }
    overrides = [f"trainer.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in flags.items()]
    cfg = _compose(config_dir, "train", ["experiment=reid_synthetic", *overrides])
    for key, value in flags.items():
        assert cfg.trainer[key] == value, key


def test_declared_trainer_flags_are_lightnings_own_defaults(config_dir: Path) -> None:
    import inspect

    import pytorch_lightning as pl

    defaults = {k: p.default for k, p in inspect.signature(pl.Trainer.__init__).parameters.items()}
    cfg = _compose(config_dir, "train", ["experiment=reid_synthetic"])
    ours = {"default_root_dir", "accelerator", "devices", "precision", "max_epochs", "min_epochs", "log_every_n_steps",
            "deterministic", "plugins", "check_val_every_n_epoch"}  # chosen on purpose
    for key in cfg.trainer:
        if key.startswith("_") or key in ours:
            continue
        value = cfg.trainer[key]
        assert key in defaults, f"trainer.{key} is not a Trainer argument"
        assert value == defaults[key], f"trainer.{key}: {value!r} but Lightning's default is {defaults[key]!r}"


def test_ddp_multi_node_slurm_recipe_composes(config_dir: Path) -> None:
    cfg = _compose(config_dir, "train", [
        "experiment=reid_synthetic", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2",
        "hydra/launcher=slurm", "hydra.launcher.partition=gpu",
    ])
    assert cfg.trainer.strategy == "ddp" and cfg.trainer.sync_batchnorm is True
    assert (cfg.trainer.devices, cfg.trainer.num_nodes) == (4, 2)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)
    assert launcher.partition == "gpu"
    # the trainer builds its atomic checkpoint writer from the same config
    assert cfg.trainer.plugins[0]._target_ == "citytrack.utils.checkpoint.AtomicCheckpointIO"


def test_slurm_launcher_without_trainer_runs_one_gpu_per_scene(config_dir: Path) -> None:
    cfg = _compose(config_dir, "infer", ["hydra/launcher=slurm"])
    assert (cfg.hydra.launcher.nodes, cfg.hydra.launcher.tasks_per_node, cfg.hydra.launcher.gpus_per_node) == (1, 1, 1)


@pytest.mark.parametrize(("name", "search", "extra"), [
    ("train", "reid_optuna", ["experiment=reid_synthetic"]),
    ("train", "detector_optuna", ["experiment=detector_synthetic_cpu"]),
    ("infer", "multicam_optuna", []),
])
def test_optuna_search_spaces_name_real_config_keys(config_dir: Path, name: str, search: str, extra: list[str]) -> None:
    from omegaconf import OmegaConf

    cfg = _compose(config_dir, name, [f"hparams_search={search}", *extra])
    assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper")
    assert cfg.hydra.sweeper.direction == "maximize" and cfg.optimized_metric
    for key in cfg.hydra.sweeper.params:
        assert OmegaConf.select(cfg, key, throw_on_missing=False) is not None, f"{search}: {key} is not in the config"


def test_tracker_search_spaces_name_each_trackers_own_keys(config_dir: Path) -> None:
    from omegaconf import OmegaConf

    for tracker, space in _compose(config_dir, "infer", ["hparams_search=tracker_optuna"]).tracker_search_spaces.items():
        cfg = _compose(config_dir, "infer", ["hparams_search=tracker_optuna", f"tracker={tracker}"])
        for key in space:
            assert OmegaConf.select(cfg, key) is not None, f"tracker={tracker}: {key} is not in its config"
