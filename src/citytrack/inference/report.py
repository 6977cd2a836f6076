"""Log an inference run to the experiment loggers (`python infer.py logger=wandb`): its metrics
table and a few annotated frames, beside the result files the runner already wrote.

Inference has no Lightning trainer, so the loggers are used directly: W&B (offline by default, see
conf/logger/wandb.yaml) gets a `metrics` table and an `annotated_frames` image panel; other loggers
get the scalar metrics. The frames come from what the runner wrote: frames of its annotated
videos (scene: every camera tiled with the bird's-eye view; mot_video), else the tracked boxes
drawn on a few images of each MOTChallenge sequence (task=mot).
"""

from __future__ import annotations

import logging
import numbers
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from citytrack.utils.instantiate import instantiate_collection

log = logging.getLogger(__name__)


def metrics_table(result: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """`(columns, rows)`: one row per sequence for the MOT runner's nested table, else one row of scalars."""
    nested = result.get("metrics")
    if isinstance(nested, dict) and nested and all(isinstance(v, dict) for v in nested.values()):
        names = list(dict.fromkeys(k for row in nested.values() for k in row))
        return ["name", *names], [[str(seq), *(row.get(k) for k in names)] for seq, row in nested.items()]
    scalars = {k: float(v) for k, v in result.items() if isinstance(v, numbers.Real) and not isinstance(v, bool)}
    return list(scalars), [list(scalars.values())] if scalars else []


def annotated_frames(out: Path, result: dict[str, Any], data_root: Path, count: int = 3) -> list[tuple[str, np.ndarray]]:
    """`count` frames (BGR) of each annotated video under `out`, else of each tracked MOT sequence."""
    from citytrack.data.video import probe_video, read_frames

    frames: list[tuple[str, np.ndarray]] = []
    for video in sorted(out.glob("*.mp4")):
        n = probe_video(video).frame_count
        picks = sorted({int(q * max(n - 1, 0)) for q in np.linspace(0.2, 0.8, count)}) if n else [0]
        for index, image in read_frames(video, picks).items():
            frames.append((f"{video.stem} frame {index}", image))
    if frames:
        return frames
    return _mot_frames(out, result, data_root, count)


def _mot_frames(out: Path, result: dict[str, Any], root: Path, count: int) -> list[tuple[str, np.ndarray]]:
    """Tracked boxes of `<out>/<sequence>.txt` drawn on the sequence's own images (when it has them)."""
    import cv2

    from citytrack.data.formats.mot import load_sequence, read_mot
    from citytrack.visualize import draw_tracks

    frames: list[tuple[str, np.ndarray]] = []
    for name in result.get("sequences", []):
        table = read_mot(out / f"{name}.txt", kind="result")
        seq_dir = root / name
        if not len(table) or not seq_dir.is_dir():
            continue
        seq = load_sequence(seq_dir)
        present = np.unique(table[:, 0]).astype(int)
        for frame in present[np.linspace(0, len(present) - 1, min(count, len(present))).astype(int)]:
            image = cv2.imread(str(seq.image_path(int(frame))))
            if image is None:
                break
            rows = table[table[:, 0] == frame]
            boxes = np.c_[rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]]
            frames.append((f"{name} frame {frame}", draw_tracks(image, boxes, rows[:, 1].astype(int))))
    return frames


def _loggable(cfg: DictConfig) -> dict[str, Any]:
    """The config resolved; unresolved where it needs Hydra's runtime (`run_task` called from Python)."""
    try:
        container = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException:
        container = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(container, dict)
    return container  # type: ignore[return-value]


def log_inference(cfg: DictConfig, result: dict[str, Any]) -> None:
    """Build `cfg.logger`'s loggers, log the run's config, metrics and frames, and finish them."""
    loggers = instantiate_collection(cfg.get("logger"), "logger")
    if not loggers:
        return
    from pytorch_lightning.loggers import WandbLogger

    columns, rows = metrics_table(result)
    scalars = {k: float(v) for k, v in result.items() if isinstance(v, numbers.Real) and not isinstance(v, bool)}
    failed = True
    try:
        for lg in loggers:
            lg.log_hyperparams(_loggable(cfg))
            if scalars:
                lg.log_metrics(scalars)
            if isinstance(lg, WandbLogger):
                if rows:
                    lg.log_table(key="metrics", columns=columns, data=rows)
                frames = annotated_frames(Path(str(cfg.out)), result, Path(str(cfg.data.root)))
                if frames:
                    lg.log_image(key="annotated_frames", images=[img[..., ::-1].copy() for _, img in frames],
                                 caption=[name for name, _ in frames])
            lg.save()
        failed = False
    finally:
        for lg in loggers:
            if isinstance(lg, WandbLogger):
                import wandb

                wandb.finish(exit_code=1 if failed else 0)
