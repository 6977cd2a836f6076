"""Run a citytrack task: `python infer.py task=mot data.root=DIR tracker=bytetrack out=DIR`.

Returns the metric named by `optimized_metric` (e.g. `HOTA`, `metrics.OVERALL.HOTA`) so Optuna sweeps
(`-m hparams_search=tracker_optuna`) can maximise it. A bad override or input file is one `error:` line
(`--debug` or `HYDRA_FULL_ERROR=1` for the traceback).
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from citytrack.inference import run_task
from citytrack.train import metric_value
from citytrack.utils.cli import report_task_errors, run_hydra_app


@hydra.main(version_base="1.3", config_path="conf", config_name="infer")
@report_task_errors
def main(cfg: DictConfig) -> float | None:
    return metric_value(run_task(cfg), cfg.get("optimized_metric"))


if __name__ == "__main__":
    run_hydra_app(main)
