"""`python -m citytrack.bench mots`: frames per second of the MOTS pipeline at KITTI resolution (1242x375).

    python -m citytrack.bench mots [--frames 40] [--people 14] [--device auto|cpu|cuda] [--threads N]
        [--repeats 2] [--override segmenter=gt ...] [--json OUT]

The sequence is synthetic (KITTI MOTS layout, seed 4040: a benchmark seed nothing is trained or tuned
on), rendered on first use under `<data>/synth/bench_mots_<parameters>/` and reused after. The pipeline
is built exactly as `python infer.py task=mots` builds it (`conf/infer.yaml` + `task=mots` + the given
overrides), with the shipped segmenter and PointTrack checkpoints by default.

Reported from the fastest of `--repeats` runs (after one warm-up run over a few frames):
- `segmenter_fps`: frames / seconds in the SpatialEmbedding network and clustering;
- `association_fps`: frames / seconds of PointTrack embedding + association on the segmenter's masks;
- `pipeline_fps`: frames / wall seconds of `MotsPipeline.run` (image reading included);
- the peer in the same run: the mask-IoU association on the same pipeline (`mask_iou_association_fps`).
PointTrack reports 22 frames/s for its whole pipeline on a GPU; compare `pipeline_fps` on CUDA.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from citytrack.utils.io import atomic_open
from citytrack.utils.paths import config_dir

SEQUENCE = {"layout": "kitti_mots", "seed": 4040, "split": "bench", "scenes": 1, "cameras": 1, "people": 14,
            "frames": 40, "fps": 10, "width": 1242, "height": 375, "progress": False}


def compose_config(device: str, overrides: list[str]) -> Any:
    """`conf/infer.yaml` with `task=mots`, as `python infer.py task=mots` composes it; overrides last."""
    from hydra import compose, initialize_config_dir

    conf = config_dir()
    base = ["task=mots", f"paths.root_dir={conf.parent}", f"device={device}", "task.pipeline.progress=false",
            "task.video=false"]
    with initialize_config_dir(str(conf), version_base="1.3", job_name="bench_mots"):
        return compose("infer", overrides=[*base, *overrides])


def time_pipeline(pipeline: Any, sequence: Any, repeats: int) -> dict[str, Any]:
    """Fastest of `repeats` runs: wall seconds and per-stage seconds."""
    from citytrack.utils.device import synchronize

    device = getattr(getattr(pipeline.segmenter, "device", None), "type", None)
    best: dict[str, Any] | None = None
    for _ in range(repeats):
        if device == "cuda":
            synchronize(pipeline.segmenter.device)
        t0 = time.perf_counter()
        run = pipeline.run(sequence)
        if device == "cuda":
            synchronize(pipeline.segmenter.device)
        wall = time.perf_counter() - t0
        if best is None or wall < best["wall_s"]:
            best = {"wall_s": wall, "seconds": dict(run.seconds), "frames": run.frames, "masks": len(run.records)}
    assert best is not None
    return best


def run_benchmark(frames: int = 40, people: int = 14, device: str = "auto", repeats: int = 2,
                  overrides: list[str] | tuple[str, ...] = (), data_dir: str | Path | None = None) -> dict[str, Any]:
    load_start = os.getloadavg()[0]
    import hydra.utils
    import torch

    from citytrack.data.mots_sequences import find_mots_sequences
    from citytrack.data.synth import ensure_synthetic_dataset

    cfg = compose_config(device, list(overrides))
    params = {**SEQUENCE, "frames": frames, "people": people}
    key = f"s{params['seed']}_{params['width']}x{params['height']}_p{people}_f{frames}"
    root = Path(data_dir if data_dir is not None else cfg.paths.data_dir) / "synth" / f"bench_mots_{key}"
    ensure_synthetic_dataset(root, **params)
    (sequence,) = find_mots_sequences(root / params["split"])

    pipeline = hydra.utils.instantiate(cfg.task.pipeline)
    warm = copy.copy(sequence)
    warm.images, warm.frames = sequence.images[:4], sequence.frames[:4]
    pipeline.run(warm)
    pointtrack = time_pipeline(pipeline, sequence, repeats)
    mask_iou_cfg = compose_config(device, [*overrides, "mots_tracker=mask_iou"])
    peer = copy.copy(pipeline)
    peer.tracker_factory = hydra.utils.instantiate(mask_iou_cfg.mots_tracker)
    iou = time_pipeline(peer, sequence, repeats)

    def fps(run: dict[str, Any], *stages: str) -> float:
        s = sum(run["seconds"].get(k, 0.0) for k in stages)
        return run["frames"] / s if s > 0 else float("inf")

    dev = torch.device(cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    return {
        "sequence": {**params, "dir": str(root)},
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "load_average_start": load_start,
        "masks_per_frame": pointtrack["masks"] / max(pointtrack["frames"], 1),
        "segmenter_fps": fps(pointtrack, "segment"),
        "association_fps": fps(pointtrack, "embed", "track"),
        "pipeline_fps": pointtrack["frames"] / pointtrack["wall_s"],
        "mask_iou_association_fps": fps(iou, "track"),
        "mask_iou_pipeline_fps": iou["frames"] / iou["wall_s"],
        "seconds": {"pointtrack": pointtrack["seconds"], "mask_iou": iou["seconds"]},
        "overrides": list(overrides),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m citytrack.bench mots", description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=SEQUENCE["frames"])
    parser.add_argument("--people", type=int, default=SEQUENCE["people"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--override", action="append", default=[], help="Hydra override, e.g. segmenter=gt")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    result = run_benchmark(args.frames, args.people, args.device, args.repeats, args.override, args.data_dir)
    print(f"MOTS at {SEQUENCE['width']}x{SEQUENCE['height']}, {args.frames} frames, "
          f"{result['masks_per_frame']:.1f} masks/frame, {result['device']} ({result['torch_threads']} threads), "
          f"start load {result['load_average_start']:.2f}")
    print(f"  segmenter            {result['segmenter_fps']:8.2f} frames/s")
    print(f"  PointTrack assoc.    {result['association_fps']:8.2f} frames/s (embedding + association)")
    print(f"  mask-IoU assoc.      {result['mask_iou_association_fps']:8.2f} frames/s (peer, same run)")
    print(f"  whole pipeline       {result['pipeline_fps']:8.2f} frames/s (PointTrack; mask-IoU: "
          f"{result['mask_iou_pipeline_fps']:.2f})")
    if args.json:
        with atomic_open(args.json) as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
