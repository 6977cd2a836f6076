"""Validate a detector checkpoint on a data config's validation sources:
`python -m citytrack.models.detector.evaluate ckpt=PATH data=detection_city [split=val|test] [sources=0,1] [key=value ...]`.

Any trained detector (Lightning `.ckpt` or exported `checkpoints/*.pt`) is scored the way training
validates it (`DetectorModule.validation_step`: COCO mAP / mAP50, recalls at the trackers' thresholds,
`AP50_<class>` per class for a multi-class detector) on the frames of `conf/data/<data>.yaml`, labelled
with the checkpoint's own class list. Extra `key=value` pairs are Hydra overrides of the composed
`train.yaml` (e.g. `data.val.1.stride=5`). Prints one `name value` line per metric.
"""

from __future__ import annotations

import sys
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from citytrack.models.detector.module import load_detector
from citytrack.utils.paths import config_dir


def evaluate(
    ckpt: str, data: str, split: str = "val", overrides: list[str] | None = None, sources: list[int] | None = None
) -> dict[str, float]:
    """Metrics of `ckpt` on the `split` sources (all, or those at `sources`) of `conf/data/<data>.yaml`."""
    module = load_detector(ckpt)
    names = [str(c) for c in module.hparams.class_names]
    with initialize_config_dir(str(config_dir()), version_base="1.3", job_name="detector_evaluate"):
        cfg = compose("train", overrides=[f"data={data}", *(overrides or [])])
    dm_cfg: Any = cfg.data
    if split not in ("val", "test"):
        raise ValueError(f"split must be val or test, got {split!r}")
    chosen = list(OmegaConf.to_container(dm_cfg[split], resolve=True) or [])  # type: ignore[arg-type]
    if sources is not None:
        bad = [i for i in sources if not 0 <= i < len(chosen)]
        if bad:
            raise ValueError(f"sources {bad}: conf/data/{data}.yaml has {len(chosen)} {split} sources")
        chosen = [chosen[i] for i in sources]
    # only the evaluated frames: no training source is generated or read
    extra = {"train": [], "val": chosen, "test": chosen if split == "test" else None}
    dm = hydra.utils.instantiate(dm_cfg, class_names=names, img_size=int(module.hparams.img_size), **extra)
    module.hparams.log_images = 0
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    if split == "val":
        (metrics,) = trainer.validate(module, datamodule=dm, verbose=False)
    else:
        (metrics,) = trainer.test(module, datamodule=dm, verbose=False)
    return {k: float(v) for k, v in metrics.items()}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    opts = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in args if a.split("=", 1)[0] in ("ckpt", "data", "split", "sources")}
    rest = [a for a in args if a.split("=", 1)[0] not in ("ckpt", "data", "split", "sources")]
    if "ckpt" not in opts or "data" not in opts:
        print("usage: python -m citytrack.models.detector.evaluate ckpt=PATH data=<conf/data name> [split=val] [overrides]")
        return 2
    sources = [int(i) for i in opts["sources"].split(",")] if opts.get("sources") else None
    metrics = evaluate(opts["ckpt"], opts["data"], opts.get("split", "val"), rest, sources)
    for k in sorted(metrics):
        print(f"{k} {metrics[k]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
