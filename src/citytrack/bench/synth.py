"""`python -m citytrack.bench synth`: camera-frames per second of the synthetic renderer.

Measures render-only and render + mp4v encode at 640x360 and 1920x1080 with 30 people
(targets: 200 and 20 camera-frames/s rendered and encoded on a 2-core machine). Reports
wall-clock rates, process-CPU rates (what the code would do on an otherwise idle core) and
the machine's load average, since benchmarks here share the CPU with other jobs.
With `--workers 2` cameras are rendered in parallel processes, one video writer each.
`--dataset` also times the real dataset command (`generate`, aic24 layout: videos, ground
truth, calibration, ReID crops) end to end, world building included, with `--workers` processes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from citytrack.data.synth.generate import generate, mp_context
from citytrack.data.synth.render import CameraRenderer, PoseCache
from citytrack.data.synth.world import SceneSpec, build_world
from citytrack.data.video import AtomicVideoWriter

TARGETS = {(640, 360): 200.0, (1920, 1080): 20.0}


def _run_cameras(args: tuple[int, int, int, int, int, list[int], bool, str]) -> tuple[int, float, float]:
    """Render (and encode) the given cameras of a world; returns (camera-frames, wall s, cpu s)."""
    width, height, people, frames, cameras, cams, encode, tmpdir = args
    spec = SceneSpec(cameras=cameras, people=people, frames=frames, width=width, height=height)
    world = build_world(spec, seed=0)
    poses = PoseCache(world)
    renderers = [CameraRenderer(world, world.cameras[c], poses=poses) for c in cams]
    with contextlib.ExitStack() as stack:
        writers = [
            stack.enter_context(AtomicVideoWriter(Path(tmpdir) / f"cam{c}_{width}.mp4", 10.0, (width, height)))
            for c in (cams if encode else [])
        ]
        renderers[0].render(0)  # warm up
        t0, c0 = time.perf_counter(), time.process_time()
        n = 0
        for f in range(frames):
            for i, r in enumerate(renderers):
                fr = r.render(f)
                if encode:
                    writers[i].write(fr.image)
                n += 1
    # the writers are closed (flushed, renamed) above: part of the encode time
    return n, time.perf_counter() - t0, time.process_time() - c0


def bench(width: int, height: int, people: int, frames: int, cameras: int, encode: bool, workers: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        if workers <= 1:
            n, wall, cpu = _run_cameras((width, height, people, frames, cameras, list(range(cameras)), encode, tmp))
            return {"cam_frames": n, "fps_wall": n / wall, "fps_cpu": n / cpu}
        groups = [list(range(cameras))[i::workers] for i in range(workers)]
        t0 = time.perf_counter()
        with ProcessPoolExecutor(workers, mp_context=mp_context()) as pool:
            results = list(pool.map(_run_cameras, [(width, height, people, frames, cameras, g, encode, tmp) for g in groups]))
        wall = time.perf_counter() - t0  # includes world building in the workers
        n = sum(r[0] for r in results)
        return {"cam_frames": n, "fps_wall": n / max(r[1] for r in results), "fps_wall_incl_setup": n / wall,
                "fps_cpu": n / sum(r[2] for r in results) * workers}


def bench_dataset(width: int, height: int, people: int, frames: int, cameras: int, workers: int) -> dict[str, float]:
    """The dataset command end to end; CPU time counts this process and the camera tasks in the workers."""
    stats: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        generate(None, out=Path(tmp) / "ds", stats=stats, cameras=cameras, people=people, frames=frames,
                 width=width, height=height, workers=workers, progress=False)
    n = stats["cam_frames"]
    return {"cam_frames": n, "fps_wall": n / stats["wall_s"], "fps_cpu": n / stats["cpu_s"] * stats["workers"]}


def _repeat(n: int, fn: Callable[[], dict[str, float]]) -> dict[str, float]:
    """Best of `n` runs per rate (other jobs only ever slow a run down), with the medians."""
    runs = [fn() for _ in range(max(1, n))]
    out = dict(runs[0])
    for key in ("fps_wall", "fps_cpu"):
        vals = sorted(r[key] for r in runs)
        out[key], out[key + "_median"], out["runs"] = vals[-1], float(np.median(vals)), len(runs)
    return out


def _spread(r: dict[str, float]) -> str:
    if r.get("runs", 1) <= 1:
        return ""
    return f", best of {int(r['runs'])}; medians {r['fps_wall_median']:.1f} wall, {r['fps_cpu_median']:.1f} CPU"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m citytrack.bench synth", description=__doc__.splitlines()[0])
    p.add_argument("--people", type=int, default=30)
    p.add_argument("--cameras", type=int, default=4)
    p.add_argument("--frames", type=int, default=50, help="frames per camera at 640x360 (1080p uses a fifth)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--sizes", default="640x360,1920x1080")
    p.add_argument("--dataset", action="store_true", help="also time the dataset command (generate) end to end")
    p.add_argument("--repeat", type=int, default=1, help="run each measurement n times; report the best and the median")
    args = p.parse_args(argv)
    cv2.setNumThreads(1)
    print(f"synth render benchmark: {args.people} people, {args.cameras} cameras, workers={args.workers}, "
          f"cpus={os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f}")
    ok = True
    for size in args.sizes.split(","):
        w, h = (int(v) for v in size.split("x"))
        frames = args.frames if w * h <= 640 * 360 else max(5, args.frames // 5)
        for encode in (False, True):
            r = _repeat(args.repeat, partial(bench, w, h, args.people, frames, args.cameras, encode, args.workers))
            what = "render+encode" if encode else "render only  "
            target = TARGETS.get((w, h))
            line = (f"{w}x{h} {what}: {r['fps_wall']:7.1f} cam-frames/s wall, {r['fps_cpu']:7.1f} by CPU time "
                    f"({int(r['cam_frames'])} cam-frames{_spread(r)}, load {os.getloadavg()[0]:.2f})")
            if encode and target:
                line += f"  target {target:.0f}: {'met' if r['fps_wall'] >= target else 'NOT met (wall)'}"
                ok &= r["fps_wall"] >= target
            print(line, flush=True)
        if args.dataset:
            r = _repeat(args.repeat, partial(bench_dataset, w, h, args.people, frames, args.cameras, args.workers))
            startup = ", not the workers' start-up" if args.workers > 1 else ""
            print(f"{w}x{h} dataset cmd  : {r['fps_wall']:7.1f} cam-frames/s wall, {r['fps_cpu']:7.1f} by CPU time "
                  f"({int(r['cam_frames'])} cam-frames{_spread(r)}; counts world building and files{startup}; "
                  f"load {os.getloadavg()[0]:.2f})", flush=True)
    print("all targets met (wall clock)" if ok else "some targets not met on wall clock; see the CPU-time rates and the load")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
