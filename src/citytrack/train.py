"""Training pipeline behind `python train.py experiment=...`.

Compose config -> seed -> datamodule, model, callbacks, loggers, trainer -> fit ->
test with the best checkpoint -> return the metric named by `optimized_metric`, so
Hydra sweepers (Optuna, multirun grids) can optimise it.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from citytrack.utils.instantiate import instantiate_collection

log = logging.getLogger(__name__)


def _prepare_environment(cfg: DictConfig) -> None:
    """W&B offline unless the user says otherwise; tensor-core matmuls on GPUs."""
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    if torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")


def train(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit (and optionally test) the configured model; return (metrics, objects).

    The loggers are finished whatever happens (lightning-hydra-template's `task_wrapper`): a run that
    raises still closes its W&B run, marked failed, so the next job of a sweep starts its own.
    """
    if cfg.get("data") is None or cfg.get("model") is None:
        raise ValueError(
            "no data/model configured: pick an experiment, e.g. `python train.py experiment=reid_synthetic`"
        )
    _prepare_environment(cfg)
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)

    log.info("Instantiating datamodule <%s>", cfg.data._target_)
    datamodule: pl.LightningDataModule = hydra.utils.instantiate(cfg.data)
    log.info("Instantiating model <%s>", cfg.model._target_)
    model: pl.LightningModule = hydra.utils.instantiate(cfg.model)
    callbacks = instantiate_collection(cfg.get("callbacks"), "callback")
    loggers = instantiate_collection(cfg.get("logger"), "logger")
    failed = True
    try:
        trainer: pl.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
        for lg in loggers:
            lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]

        if cfg.get("train", True):
            trainer.fit(model=model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        train_metrics = dict(trainer.callback_metrics)

        test_metrics: dict[str, Any] = {}
        if cfg.get("test", False) and _has_test_split(datamodule):
            trainer.test(model=model, datamodule=datamodule, ckpt_path=_test_checkpoint(cfg, trainer))
            test_metrics = dict(trainer.callback_metrics)

        metrics = {**train_metrics, **test_metrics}
        _log_summary_table(loggers, metrics)
        failed = False
    finally:
        _finish_loggers(loggers, failed=failed)
    return metrics, {"cfg": cfg, "datamodule": datamodule, "model": model, "trainer": trainer}


def _test_checkpoint(cfg: DictConfig, trainer: pl.Trainer) -> str | None:
    """Best checkpoint of this fit; else the one the user passed (`train=false ckpt_path=X`)."""
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if best:
        return best
    if cfg.get("ckpt_path"):
        return str(cfg.ckpt_path)
    log.warning("testing the in-memory weights: no best checkpoint and no ckpt_path")
    return None


def _log_summary_table(loggers: list[Any], metrics: dict[str, Any]) -> None:
    """The run's final metrics as one W&B table (`summary/metrics`), beside the curves and pictures."""
    rows = [[name, _as_float(value)] for name, value in sorted(metrics.items())]
    for lg in loggers:
        if isinstance(lg, pl.loggers.WandbLogger) and rows:
            lg.log_table(key="summary/metrics", columns=["metric", "value"], data=rows)


def _finish_loggers(loggers: list[Any], failed: bool = False) -> None:
    """Close W&B runs so the next multirun job starts its own run instead of logging into this one."""
    for lg in loggers:
        if isinstance(lg, pl.loggers.WandbLogger):
            import wandb

            wandb.finish(exit_code=1 if failed else 0)


def _has_test_split(datamodule: pl.LightningDataModule) -> bool:
    return type(datamodule).test_dataloader is not pl.LightningDataModule.test_dataloader


def metric_value(metrics: dict[str, Any], name: str | None) -> float | None:
    """The value Hydra sweepers optimise; a clear error when the name was never logged.

    `name` is a logged key (`val/mAP`) or a dotted path into nested results
    (`metrics.OVERALL.HOTA`, the MOT runner's table).
    """
    if not name:
        return None
    if name in metrics:
        return _as_float(metrics[name])
    node: Any = metrics
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"optimized_metric {name!r} was not logged; logged: {sorted(metrics)}")
        node = node[part]
    return _as_float(node)


def _as_float(value: Any) -> float:
    return float(value.item() if hasattr(value, "item") else value)
