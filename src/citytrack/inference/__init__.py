"""Inference runners behind `python infer.py task=...`.

Each task config (conf/task/*.yaml) names its runner with `_target_` and `_partial_: true`: a
function `run(cfg, <pieces and options>) -> dict` of metrics (possibly empty). Hydra builds the
pieces (tracker, detector, pipeline, ...) and binds the options, all from YAML; the runner is then
called with the whole config (for `out`, `data.root`, ...). With `logger=...` (e.g. `logger=wandb`,
offline) the run's config, metrics table and a few annotated frames are logged afterwards
(`citytrack.inference.report`).
"""

from __future__ import annotations

import logging
from typing import Any

import hydra
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def run_task(cfg: DictConfig) -> dict[str, Any]:
    """Build the runner of `cfg.task` and call it with the whole config."""
    if cfg.get("task") is None or "_target_" not in cfg.task:
        raise ValueError("infer.py needs a task with a _target_ runner, e.g. `task=mot`")
    if not cfg.task.get("_partial_"):
        raise ValueError(f"task {cfg.task._target_} needs `_partial_: true`: its runner is called with the config")
    log.info("Running task %s", cfg.task._target_)
    result = hydra.utils.instantiate(cfg.task)(cfg)
    if cfg.get("logger"):
        from citytrack.inference.report import log_inference

        log_inference(cfg, result)
    return result
