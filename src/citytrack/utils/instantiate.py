"""Build callbacks and loggers from config nodes (lightning-hydra-template style)."""

from __future__ import annotations

import logging
from typing import Any

import hydra
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def instantiate_collection(cfg: DictConfig | None, kind: str) -> list[Any]:
    """Instantiate every child node that has a `_target_` (callbacks or loggers)."""
    built: list[Any] = []
    if not cfg:
        return built
    if not isinstance(cfg, DictConfig):
        raise TypeError(f"{kind} config must be a mapping of named nodes, got {type(cfg).__name__}")
    for name, node in cfg.items():
        if isinstance(node, DictConfig) and "_target_" in node:
            log.info("Instantiating %s <%s> (%s)", kind, node._target_, name)
            built.append(hydra.utils.instantiate(node))
    return built
