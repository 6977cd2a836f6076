"""`python -m citytrack.bench scene`: camera-frames per second of the multi-camera pipeline, batched vs sequential.

    python -m citytrack.bench scene [--cameras 4] [--width 640] [--height 360] [--frames 100] [--people 14]
        [--device auto|cpu|cuda] [--threads N] [--repeats 2] [--warmup 5] [--override detector=gt ...] [--json OUT]

The scene is synthetic (AI City 2024 layout, seed 4040: a benchmark seed nothing is trained or
tuned on), rendered on first use under `<data>/synth/bench_scene_<parameters>/` and reused after.
A 1920x1080 scene takes a while to render on a CPU; the run itself does not.

The pipeline is built exactly as `python infer.py` builds it: `conf/infer.yaml` composed with the
given overrides (`--override detector=gt`, `--override reid=none`, ...; `device=` from `--device`),
then `hydra.utils.instantiate(cfg.task.pipeline)`, with the progress bar off. Only the pipeline is
timed: the runner's files, metrics and scene video are not part of it.

Two modes run in the same process on the same networks: `batched` (`batch_cameras=True`: one
upload, detector batch and ReID batch per frame index over all cameras) and its peer `sequential`
(`batch_cameras=False`: the networks run camera after camera). Each mode first runs `--warmup`
frames untimed; then each of `--repeats` rounds runs both modes over the whole scene, the order
alternating between rounds. Reported per mode: camera-frames per second end to end (wall clock
of `ScenePipeline.run`, video decoding and the final association included) of the fastest round
and the median, milliseconds per camera-frame and share of each stage (`SceneRun.seconds` of the
fastest round; `other` is the untimed remainder), process CPU seconds per wall second, and the
batched / sequential ratio. On CUDA the stages synchronise at their boundaries (`sync_timing`).

The machine is shared: the 1-minute load average is recorded at the start (before the scene is
rendered and the networks loaded), before the timed rounds and after them (the last includes this
benchmark's own load). A start load of half the CPU count or more is flagged: the figures are
then lower bounds. Each round's rate and process CPU / wall ratio are printed too: with as many
torch threads as cores, another job starting mid-round makes that round crawl (5-40x slower, ratio
near 1), so read the fastest round, and rerun when the rounds disagree.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from citytrack.utils.io import atomic_open
from citytrack.utils.paths import config_dir

CONF_DIR = config_dir()
SCENE = {"seed": 4040, "split": "bench", "scenes": 1, "cameras": 4, "people": 14, "frames": 100, "fps": 10,
         "width": 640, "height": 360}
"""The benchmark scene (`ensure_synthetic_dataset` arguments); `--cameras` ... `--people` change it."""
MODES: dict[str, bool] = {"batched": True, "sequential": False}
"""Mode name -> `ScenePipeline.batch_cameras`."""
LOADED = 0.5
"""Start load average per CPU at or above which the machine counts as loaded."""


@dataclass
class Round:
    """One timed run of one mode."""

    wall_s: float
    cpu_s: float
    seconds: dict[str, float]
    camera_frames: int
    frames: int
    table: np.ndarray

    @property
    def camera_frames_per_s(self) -> float:
        return self.camera_frames / self.wall_s if self.wall_s > 0 else float("inf")


def scene_dir(data_dir: Path, scene: dict[str, Any]) -> Path:
    """`<data_dir>/synth/bench_scene_...`: one folder per parameter set (an existing folder is reused as is)."""
    key = (f"s{scene['seed']}_c{scene['cameras']}_{scene['width']}x{scene['height']}_p{scene['people']}"
           f"_f{scene['frames']}_fps{scene['fps']}")
    return Path(data_dir) / "synth" / f"bench_scene_{key}"


def compose_config(conf_dir: Path, device: str, overrides: list[str]) -> Any:
    """`conf/infer.yaml` as `python infer.py` composes it; the overrides come last so they win."""
    from hydra import compose, initialize_config_dir

    base = [f"paths.root_dir={conf_dir.resolve().parent}", f"device={device}", "task.pipeline.progress=false",
            "task.video=false"]
    with initialize_config_dir(str(conf_dir.resolve()), version_base="1.3", job_name="bench_scene"):
        return compose("infer", overrides=[*base, *overrides])


def _variant(pipeline: Any, **attrs: Any) -> Any:
    """A shallow copy of the pipeline (same networks, tracker factory and associator) with attributes changed."""
    out = copy.copy(pipeline)
    for name, value in attrs.items():
        if not hasattr(out, name):
            raise AttributeError(f"{type(pipeline).__name__} has no attribute {name!r}")
        setattr(out, name, value)
    return out


def time_run(pipeline: Any, scene: Any) -> Round:
    """One `pipeline.run(scene)`, wall clock and process CPU time around it."""
    from citytrack.utils.device import synchronize  # torch only once a pipeline runs

    synchronize(pipeline.device)
    t0, c0 = time.perf_counter(), time.process_time()
    run = pipeline.run(scene)
    synchronize(pipeline.device)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return Round(wall, cpu, dict(run.seconds), run.camera_frames, run.frames, run.table)


def summarise(rounds: list[Round], stages: tuple[str, ...]) -> dict[str, Any]:
    """Fastest and median rate; per-stage ms per camera-frame and share of the fastest round."""
    best = min(rounds, key=lambda r: r.wall_s)
    n = max(best.camera_frames, 1)
    ms = {s: 1000 * best.seconds.get(s, 0.0) / n for s in stages}
    ms["other"] = max(1000 * best.wall_s / n - sum(ms.values()), 0.0)
    total = 1000 * best.wall_s / n
    return {
        "camera_frames": best.camera_frames,
        "frames": best.frames,
        "camera_frames_per_s": best.camera_frames_per_s,
        "camera_frames_per_s_median": float(np.median([r.camera_frames_per_s for r in rounds])),
        "ms_per_camera_frame": {**ms, "total": total},
        "share": {s: v / total if total > 0 else 0.0 for s, v in ms.items()},
        "cpu_per_wall": best.cpu_s / best.wall_s if best.wall_s > 0 else 0.0,
        "runs": [{"wall_s": r.wall_s, "cpu_s": r.cpu_s, "camera_frames": r.camera_frames,
                  "camera_frames_per_s": r.camera_frames_per_s, "seconds": r.seconds} for r in rounds],
    }


def run_benchmark(
    cameras: int = SCENE["cameras"],
    width: int = SCENE["width"],
    height: int = SCENE["height"],
    frames: int = SCENE["frames"],
    people: int = SCENE["people"],
    seed: int = SCENE["seed"],
    fps: int = SCENE["fps"],
    device: str = "auto",
    repeats: int = 2,
    warmup: int = 5,
    overrides: list[str] | tuple[str, ...] = (),
    data_dir: str | Path | None = None,
    conf_dir: str | Path = CONF_DIR,
) -> dict[str, Any]:
    """Render (first use) the benchmark scene, build the pipeline from the config, time both modes."""
    load = {"start": os.getloadavg()[0]}  # before this process's own imports and rendering add to it
    import hydra.utils
    import torch

    from citytrack.data.scenes import find_scene_dirs, load_scene
    from citytrack.data.synth import ensure_synthetic_dataset
    from citytrack.multicam.pipeline import STAGES

    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    cfg = compose_config(Path(conf_dir), device, list(overrides))
    params = {**SCENE, "seed": seed, "cameras": cameras, "people": people, "frames": frames, "fps": fps,
              "width": width, "height": height}
    root = scene_dir(Path(data_dir) if data_dir is not None else Path(cfg.paths.data_dir), params)
    ensure_synthetic_dataset(root, progress=False, **params)
    (scene_path,) = find_scene_dirs(root / params["split"])
    scene = load_scene(scene_path)

    pipeline = hydra.utils.instantiate(cfg.task.pipeline)
    dev = pipeline.device
    modes = {name: _variant(pipeline, batch_cameras=flag) for name, flag in MODES.items()}
    if warmup:
        for p in modes.values():
            _variant(p, max_frames=warmup).run(scene)
    gc.collect()  # once: a full collection of torch's module graph takes a while
    load["before"] = os.getloadavg()[0]
    rounds: dict[str, list[Round]] = {name: [] for name in modes}
    peak_mem: dict[str, int] = {}
    for i in range(repeats):
        for name in (list(modes) if i % 2 == 0 else list(modes)[::-1]):
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats(dev)
            rounds[name].append(time_run(modes[name], scene))
            if dev.type == "cuda":
                peak_mem[name] = max(peak_mem.get(name, 0), int(torch.cuda.max_memory_allocated(dev)))
    load["after"] = os.getloadavg()[0]

    results = {name: summarise(r, STAGES) for name, r in rounds.items()}
    for name, mem in peak_mem.items():
        results[name]["peak_gpu_memory_mib"] = mem / 2**20
    b, s = results["batched"], results["sequential"]
    first = {name: r[0].table for name, r in rounds.items()}
    cpus = os.cpu_count() or 1
    device_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
    return {
        "benchmark": "scene",
        "scene": {**params, "dir": str(scene_path), "camera_frames": b["camera_frames"]},
        "detector": _target(cfg.get("detector")),
        "reid": _target(cfg.get("reid")),
        "tracker": _target(cfg.get("tracker")),
        "multicam": _target(cfg.get("multicam")),
        "overrides": list(overrides),
        "device": str(dev),
        "device_name": device_name,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cpus": cpus,
        "python": platform.python_version(),
        "repeats": repeats,
        "warmup_frames": warmup,
        "load_average": load,
        "loaded": load["start"] >= LOADED * cpus,
        "modes": results,
        "batched_over_sequential": b["camera_frames_per_s"] / s["camera_frames_per_s"],
        "batched_over_sequential_median": b["camera_frames_per_s_median"] / s["camera_frames_per_s_median"],
        "same_output": bool(first["batched"].shape == first["sequential"].shape
                            and np.allclose(first["batched"], first["sequential"], equal_nan=True)),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _target(node: Any) -> str:
    """Short name of a config node: its `_target_` class (and checkpoint file), `none` for a null node."""
    if node is None:
        return "none"
    target = str(node.get("_target_", "?")).split(".")
    name = ".".join(target[-2:]) if target[-1][:1].islower() and len(target) > 1 else target[-1]
    ckpt = node.get("ckpt", node.get("path"))
    return f"{name}({Path(str(ckpt)).name})" if ckpt else name


def format_table(result: dict[str, Any]) -> str:
    """The printed report: header, one ms row and one share row per mode, the ratios."""
    from citytrack.multicam.pipeline import STAGES

    sc, load = result["scene"], result["load_average"]
    cols = [*STAGES, "other", "total"]
    head = (f"scene benchmark: {sc['cameras']} cameras {sc['width']}x{sc['height']}, {sc['frames']} frames, "
            f"{sc['people']} people (seed {sc['seed']}) = {sc['camera_frames']} camera-frames per run")
    setup = (f"detector {result['detector']}, ReID {result['reid']}, tracker {result['tracker']}, "
             f"multicam {result['multicam']}; device {result['device']} ({result['device_name']}), "
             f"torch {result['torch']}, {result['torch_threads']} threads "
             f"(OMP_NUM_THREADS={result['omp_num_threads']}), {result['cpus']} CPUs")
    timing = (f"{result['repeats']} round(s) per mode after {result['warmup_frames']} warm-up frames; load average "
              f"{load['start']:.2f} at start, {load['before']:.2f} before timing, {load['after']:.2f} after "
              "(incl. this run)")
    lines = [
        head,
        setup,
        timing,
        "",
        f"{'mode':<11}{'cam-fr/s':>9}{'median':>8}{'cpu/wall':>9}  " + "".join(f"{c:>10}" for c in cols),
        f"{'':<37}" + "ms per camera-frame (fastest round) and share".rjust(10 * len(cols)),
    ]
    for name, r in result["modes"].items():
        ms, share = r["ms_per_camera_frame"], r["share"]
        lines.append(f"{name:<11}{r['camera_frames_per_s']:9.1f}{r['camera_frames_per_s_median']:8.1f}"
                     f"{r['cpu_per_wall']:9.2f}  " + "".join(f"{ms[c]:10.2f}" for c in cols))
        lines.append(f"{'':<37}" + "".join(f"{100 * share[c]:9.0f}%" if c in share else f"{'':>10}" for c in cols))
    b, s = result["modes"]["batched"]["ms_per_camera_frame"], result["modes"]["sequential"]["ms_per_camera_frame"]
    speed = "".join(f"{(s[c] / b[c] if b[c] > 0 else float('nan')):9.2f}x" for c in cols)
    lines.append(f"{'seq/batch':<37}{speed}")
    rounds = "; ".join(f"{name} " + ", ".join(f"{r['camera_frames_per_s']:.1f} ({r['cpu_s'] / r['wall_s']:.2f})"
                                              for r in mode["runs"]) for name, mode in result["modes"].items())
    lines.append(f"rounds per mode in run order, cam-fr/s (cpu/wall): {rounds}")
    lines.append(f"batched / sequential end to end: {result['batched_over_sequential']:.2f}x "
                 f"(medians {result['batched_over_sequential_median']:.2f}x); same output: {result['same_output']}")
    if result["loaded"]:
        lines.append(f"NOTE: the machine was loaded at the start (load {load['start']:.2f} on {result['cpus']} CPUs): "
                     "the rates are lower bounds")
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m citytrack.bench scene", description=__doc__.splitlines()[0])
    p.add_argument("--cameras", type=int, default=SCENE["cameras"])
    p.add_argument("--width", type=int, default=SCENE["width"])
    p.add_argument("--height", type=int, default=SCENE["height"])
    p.add_argument("--frames", type=int, default=SCENE["frames"], help="frames per camera")
    p.add_argument("--people", type=int, default=SCENE["people"])
    p.add_argument("--seed", type=int, default=SCENE["seed"], help="scene seed (4040: nothing trains or tunes on it)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (the config's `device=`)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--repeats", type=int, default=2, help="timed rounds per mode, order alternating")
    p.add_argument("--warmup", type=int, default=5, help="untimed frames per mode before the rounds")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="Hydra override of conf/infer.yaml (repeatable), e.g. detector=gt, reid=none")
    p.add_argument("--data", type=Path, default=None, help="data folder (default: the config's paths.data_dir)")
    p.add_argument("--conf-dir", type=Path, default=CONF_DIR, help="Hydra config tree holding infer.yaml")
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="write the full result here (atomically)")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be >= 1")
    if args.warmup < 0:
        p.error("--warmup must be >= 0")
    if min(args.cameras, args.width, args.height, args.frames, args.people) < 1:
        p.error("--cameras, --width, --height, --frames and --people must be positive")
    if args.warmup >= args.frames:
        p.error("--warmup must be smaller than --frames")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    result = run_benchmark(cameras=args.cameras, width=args.width, height=args.height, frames=args.frames,
                           people=args.people, seed=args.seed, device=args.device, repeats=args.repeats,
                           warmup=args.warmup, overrides=args.override, data_dir=args.data, conf_dir=args.conf_dir)
    print(format_table(result))
    if args.json is not None:
        with atomic_open(args.json) as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
