"""Tracker tuning on synthetic data (conf/hparams_search/tracker_optuna.yaml).

`task=mot` reads MOTChallenge folders that must exist; a sweep over tracker thresholds should not need
a manual generation step, nor tune on the seeds the tests and the demo score on. `run` wraps the MOT
runner: it first makes sure the tuning set (`ensure_synthetic_dataset` arguments, with its `root`) is
on disk. `tracker_search_space` gives Optuna the thresholds of whichever tracker was chosen
(`tracker=bytetrack | botsort | deepsort | sort`), since one sweeper `params` block cannot follow the
tracker choice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from citytrack.data.synth import ensure_synthetic_dataset


def run(cfg: DictConfig, *, runner: Callable[..., dict[str, Any]], synthetic: Any, **options: Any) -> dict[str, Any]:
    """`ensure_synthetic_dataset(**synthetic)`, then `runner(cfg, **options)` (the runner reads `cfg.data.root`)."""
    spec = OmegaConf.to_container(synthetic, resolve=True) if isinstance(synthetic, DictConfig) else dict(synthetic)
    assert isinstance(spec, dict)
    ensure_synthetic_dataset(**spec)
    return runner(cfg, **options)


def tracker_search_space(cfg: DictConfig, trial: Any) -> None:
    """Optuna `custom_search_space`: suggest `cfg.tracker_search_spaces[<tracker choice>]`.

    Each entry is `override.key: {low, high}` (float; `log: true` for a log scale), `{low, high, int: true}`
    or `{choices: [...]}`; the suggested values become the trial's overrides.
    """
    choice = cfg.hydra.runtime.choices.get("tracker")
    spaces = cfg.tracker_search_spaces
    if choice not in spaces:
        raise KeyError(f"tracker_search_spaces has no entry for tracker={choice}; known: {sorted(spaces)}")
    for name, spec in spaces[choice].items():
        if "choices" in spec:
            trial.suggest_categorical(name, list(spec.choices))
        elif spec.get("int", False):
            trial.suggest_int(name, int(spec.low), int(spec.high), log=bool(spec.get("log", False)))
        else:
            trial.suggest_float(name, float(spec.low), float(spec.high), log=bool(spec.get("log", False)))
