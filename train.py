"""Train a citytrack model: `python train.py experiment=reid_synthetic` (see conf/experiment/).

Returns the metric named by `optimized_metric` so Optuna sweeps (`-m hparams_search=reid_optuna`) see it.
A bad override or input file is one `error:` line (`--debug` or `HYDRA_FULL_ERROR=1` for the traceback).
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from citytrack.train import metric_value, train
from citytrack.utils.cli import report_task_errors, run_hydra_app


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@report_task_errors
def main(cfg: DictConfig) -> float | None:
    metrics, _ = train(cfg)
    if not cfg.get("train", True):  # `train=false test=true ckpt_path=X`: an evaluation, nothing to optimise
        return None
    return metric_value(metrics, cfg.get("optimized_metric"))


if __name__ == "__main__":
    run_hydra_app(main)
