"""Run a citytrack task: `python infer.py task=mot data.root=DIR tracker=bytetrack out=DIR`."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from citytrack.inference import run_task


@hydra.main(version_base="1.3", config_path="conf", config_name="infer")
def main(cfg: DictConfig) -> None:
    run_task(cfg)


if __name__ == "__main__":
    main()
