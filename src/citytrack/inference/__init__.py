"""Inference runners behind `python infer.py task=...`.

Each task config (conf/task/*.yaml) names its runner with `_target_`: a function
taking the whole config and returning a dict of metrics (possibly empty). A task node with
`_partial_: true` is built by `hydra.utils.instantiate` (its pipeline and options come from
YAML only) and then called with the whole config.
"""

from __future__ import annotations

import logging
from typing import Any

import hydra
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def run_task(cfg: DictConfig) -> dict[str, Any]:
    """Dispatch to the runner named by `task._target_`."""
    if cfg.get("task") is None or "_target_" not in cfg.task:
        raise ValueError("infer.py needs a task with a _target_ runner, e.g. `task=mot`")
    log.info("Running task %s", cfg.task._target_)
    if cfg.task.get("_partial_", False):
        return hydra.utils.instantiate(cfg.task)(cfg)
    runner = hydra.utils.get_method(cfg.task._target_)
    return runner(cfg)
