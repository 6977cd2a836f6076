"""`python -m citytrack.bench vehicle_mtmc`: city-scale vehicle tracking on held-out synthetic cities.

    python -m citytrack.bench vehicle_mtmc [--seed 1001] [--scenes 1] [--cameras 6] [--frames 300] [--vehicles 40]
        [--boxes detector,gt] [--variants appearance,st,st_rerank] [--override KEY=VALUE ...] [--threads N] [--json OUT]

Per box source (`detector`: `vehicle_detector=synthetic_cpu`; `gt`: the oracle `gt/gt.txt` boxes;
`gt_jitter`: the city's `det_gt_jitter.txt`) the scenario runs once through the shipped pipeline
(`conf/task/vehicle_mtmc.yaml`: DeepSORT with the vehicle ReID, tracklets on the ground); the
linking ablation then re-links the same tracklets:

- `appearance`: appearance only (one camera never holds a vehicle twice at once, nothing else);
- `st`: + the spatio-temporal constraints (travel model, direction, overlap);
- `st_rerank`: + k-reciprocal re-ranking.

Scores are AI City 2019 Track 1 multi-camera IDF1 / IDP / IDR (`eval.mtmc.evaluate_aic19_mtmc`);
speed is end-to-end camera-frames per second of the run (decode, detect, ReID, track, link; no
video writing). Cities are rendered on first use under `<data>/synth/city_bench_<parameters>/`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from citytrack.utils.io import atomic_open
from citytrack.utils.paths import config_dir

VARIANTS = {
    "appearance": {"use_constraints": False, "rerank": False},
    "st": {"use_constraints": True, "rerank": False},
    "st_rerank": {"use_constraints": True, "rerank": True},
}
BOXES = {"detector": "synthetic_cpu", "gt": "gt", "gt_jitter": "file"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m citytrack.bench vehicle_mtmc", description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=1001)
    p.add_argument("--scenes", type=int, default=1)
    p.add_argument("--cameras", type=int, default=6)
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--vehicles", type=int, default=40)
    p.add_argument("--boxes", default="detector,gt")
    p.add_argument("--variants", default="appearance,st,st_rerank")
    p.add_argument("--override", action="append", default=[], help="infer.py override, e.g. task.pipeline.link.threshold=0.4")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", default=None)
    return p


def compose(overrides: list[str]) -> Any:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return hydra_compose("infer", overrides=["task=vehicle_mtmc", *overrides])


def run(args: argparse.Namespace) -> dict[str, Any]:
    import hydra
    import torch

    from citytrack.data.formats.aicity.aic19 import read_aic19_ground_truth
    from citytrack.eval.mtmc import evaluate_aic19_mtmc
    from citytrack.inference.vehicle_mtmc import resolve_city_scenes
    from citytrack.multicam.vehicle_link import LinkConfig, global_rows, link_tracklets
    from citytrack.multicam.vehicle_pipeline import with_world

    if args.threads:
        torch.set_num_threads(args.threads)
    key = f"bench_s{args.seed}_n{args.scenes}_c{args.cameras}_f{args.frames}_v{args.vehicles}"
    synthetic = {key: {"seed": args.seed, "split": "test", "scenes": args.scenes, "cameras": args.cameras,
                       "frames": args.frames, "fps": 10, "width": 640, "height": 360, "progress": False,
                       "city": {"vehicles": args.vehicles}}}
    base = compose([f"device={args.device}", "task.pipeline.progress=false", *args.override])
    scenes = resolve_city_scenes(key, synthetic, base.paths.data_dir)
    variants = [v for v in args.variants.split(",") if v]
    results: dict[str, Any] = {"scenes": [str(s) for s in scenes], "boxes": {}}
    for boxes in [b for b in args.boxes.split(",") if b]:
        if boxes not in BOXES:
            raise SystemExit(f"unknown --boxes {boxes!r}; choose from {sorted(BOXES)}")
        cfg = compose([f"device={args.device}", "task.pipeline.progress=false", f"vehicle_detector={BOXES[boxes]}",
                       *args.override])
        pipeline = hydra.utils.instantiate(cfg.task.pipeline)
        base_link: LinkConfig = pipeline.link
        per_variant: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
        frames = 0
        seconds = 0.0
        for scene in scenes:
            t0 = time.perf_counter()
            result = pipeline.run(scene)
            seconds += time.perf_counter() - t0
            frames += result.camera_frames
            gt, _ = read_aic19_ground_truth(scene)
            for v in variants:
                link = dataclasses.replace(base_link, **VARIANTS[v])
                labels = link_tracklets(result.tracklets, link, pipeline.travel_model, pipeline.topology)
                rows = with_world(global_rows(result.tracks[:, :7], result.tracklets, labels, link.min_cameras), result.setups)
                per_variant[v].append(evaluate_aic19_mtmc(gt, rows))
        entry = {v: {k: float(np.mean([m[k] for m in ms])) for k in ("IDF1", "IDP", "IDR")} for v, ms in per_variant.items()}
        entry["camera_frames_per_second"] = frames / max(seconds, 1e-9)
        results["boxes"][boxes] = entry
        cells = "  ".join(f"{v}: IDF1 {100 * entry[v]['IDF1']:.1f} (IDP {100 * entry[v]['IDP']:.1f}, IDR {100 * entry[v]['IDR']:.1f})"
                          for v in variants)
        print(f"{boxes:10s} {cells}  |  {entry['camera_frames_per_second']:.1f} camera-frames/s", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    results = run(args)
    if args.json:
        with atomic_open(Path(args.json)) as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
