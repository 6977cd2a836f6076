"""`python infer.py task=mots`: segment and track image sequences, KITTI MOTS `instances_txt` out.

    python infer.py task=mots                                   # the embedded held-out synthetic sequences
    python infer.py task=mots data.root=<KITTI MOTS split | image_02/SEQ | MOTS20 folder> out=DIR
    python infer.py task=mots segmenter=gt mots_tracker=mask_iou  # association alone, on ground-truth masks

The pipeline (`citytrack.tracking.mots_pipeline.MotsPipeline`) is built by Hydra from the
`segmenter` and `mots_tracker` groups and `task.embedder`. For each sequence this runner writes
`<out>/<SEQ>.txt` (`frame obj_id class_id height width rle`, obj_id = class*1000 + id), optionally
`<out>/instances/<SEQ>/<FRAME>.png` (16-bit id maps) and `<out>/<SEQ>.mp4` (masks over the frames,
coloured and labelled by id), all atomically; where ground truth exists it scores the run with the
`mots_tools` metrics (sMOTSA, MOTSA, MOTSP, IDS, ... per class) and HOTA on masks, and writes
`<out>/summary.json` last.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from citytrack.data.formats import kitti_mots
from citytrack.data.formats.kitti_mots import MotsRecord
from citytrack.data.mots_sequences import MotsSequence, find_mots_sequences
from citytrack.data.synth import ensure_synthetic_dataset
from citytrack.data.video import AtomicVideoWriter
from citytrack.eval.mots import evaluate_mots, format_mots_table
from citytrack.tracking.mots_pipeline import MotsPipeline, MotsRun
from citytrack.utils.io import atomic_open
from citytrack.visualize.draw import draw_label, draw_masks

log = logging.getLogger(__name__)


def resolve_root(spec: Any, synthetic: dict[str, Any], data_dir: str | Path) -> Path:
    """`data.root`: an embedded synthetic set's name (generated on first use, its split folder) or a path."""
    spec = "" if spec is None else str(spec)
    if spec in synthetic:
        params = dict(synthetic[spec])
        root = ensure_synthetic_dataset(Path(data_dir) / "synth" / f"mots_{spec}", **params)
        return root / str(params.get("split", "train"))
    return Path(spec)


class SequenceOutputs:
    """The per-frame side outputs of one sequence: the overlay video and the PNG id maps."""

    def __init__(self, out: Path, sequence: MotsSequence, fps: float, video: bool, png: bool) -> None:
        self.png_dir = out / "instances" / sequence.name if png else None
        self.size = sequence.size
        self.name = sequence.name
        self.writer = AtomicVideoWriter(out / f"{sequence.name}.mp4", fps, self.size[::-1]) if video else None

    def __call__(self, frame: int, image: np.ndarray, records: list[MotsRecord]) -> None:
        masks = kitti_mots.decode_masks(records) if records else np.zeros((0, *self.size), bool)
        if self.png_dir is not None:
            ids = np.zeros(self.size, dtype=np.uint16)
            for record, mask in zip(records, masks, strict=True):
                ids[mask] = record.obj_id
            kitti_mots.write_instance_png(self.png_dir / f"{frame:06d}.png", ids)
        if self.writer is not None:
            canvas = draw_masks(image.copy(), masks, np.array([r.obj_id % 1000 for r in records], dtype=np.int64))
            draw_label(canvas, f"{self.name}  frame {frame}  {len(records)} instances", (6, 20), (255, 255, 255), 0.55)
            self.writer.write(canvas)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()


def run(
    cfg: DictConfig,
    pipeline: MotsPipeline,
    synthetic: dict[str, Any] | None = None,
    split: str | None = None,
    sequences: list[str] | None = None,
    classes: list[int] | None = None,
    video: bool = True,
    png: bool = False,
    fps: float = 10.0,
    evaluate: bool = True,
) -> dict[str, Any]:
    """Track every sequence under `cfg.data.root`; returns the overall metrics (empty without ground truth)."""
    synthetic = dict(OmegaConf.to_container(synthetic, resolve=True)) if isinstance(synthetic, DictConfig) else dict(synthetic or {})
    root = resolve_root(cfg.data.root, synthetic, cfg.paths.data_dir)
    seqs = find_mots_sequences(root, split=split, names=sequences)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").unlink(missing_ok=True)  # a stale summary must not describe this run
    log.info("MOTS on %d sequence(s) under %s -> %s", len(seqs), root, out)

    runs: dict[str, MotsRun] = {}
    for seq in seqs:
        side = SequenceOutputs(out, seq, fps, video, png)
        try:
            result = pipeline.run(seq, on_frame=side)
        except BaseException:
            side.abort()
            raise
        side.close()
        kitti_mots.write_instances_txt(out / f"{seq.name}.txt", result.records)
        runs[seq.name] = result
        log.info("%s: %d frames, %d masks, %.1f frames/s", seq.name, result.frames, len(result.records), result.fps)

    metrics: dict[str, Any] = {}
    labelled = [s for s in seqs if s.labelled]
    if evaluate and labelled:
        gt = {s.name: [r for recs in s.records.values() for r in recs] for s in labelled}
        pred = {s.name: runs[s.name].records for s in labelled}
        metrics = evaluate_mots(gt, pred, classes=tuple(classes) if classes else (1, 2))
        # a class absent from both sides (cars in the pedestrian-only synthetic world) has only NaN ratios
        metrics = {k: v for k, v in metrics.items() if v.get("num_gt", 0) or v.get("num_pred", 0)}
        print(format_mots_table(metrics))
    summary = {
        "root": str(root),
        "metrics": metrics,
        "sequences": {
            name: {"frames": r.frames, "masks": len(r.records), "fps": r.fps, "seconds": r.seconds}
            for name, r in runs.items()
        },
        "config": OmegaConf.to_container(cfg, resolve=False),
    }
    with atomic_open(out / "summary.json") as fh:
        json.dump(summary, fh, indent=2, default=float)
    print(f"results: {out}/<SEQ>.txt  summary: {out / 'summary.json'}")
    return metrics
