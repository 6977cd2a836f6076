"""`python -m citytrack.bench synth`: camera-frames per second of the synthetic renderer.

Measures render-only and render + mp4v encode at 640x360 and 1920x1080 with 30 people
(targets: 200 and 20 camera-frames/s rendered and encoded on a 2-core machine). Reports
wall-clock rates, process-CPU rates (what the code would do on an otherwise idle core) and
the machine's load average, since benchmarks here share the CPU with other jobs.
With `--workers 2` cameras are rendered in parallel processes, one video writer each.
`--dataset` also times the real dataset command (`generate`, aic24 layout: videos, ground
truth, calibration, ReID crops) end to end, world building included, with `--workers` processes.
`--layout aic19` measures the vehicle world instead (`city.py`, `vehicles_render.py`: 30 vehicles per
scene by default, `--vehicles`), encoding as its `vdo.avi` is written (the layout's fourcc, MJPG); with
`--workers` unset it runs 640x360 with 1 and 2 workers and 1920x1080 with 1 (the same targets).
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
from typing import Any

import cv2
import numpy as np

from citytrack.data.synth.city import CitySpec, build_city
from citytrack.data.synth.generate import generate, mp_context
from citytrack.data.synth.render import CameraRenderer, PoseCache
from citytrack.data.synth.vehicles_render import CityRenderer
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
        n, t0, c0 = _render_loop(renderers, writers, frames, encode)
    # the writers are closed (flushed, renamed) above: part of the encode time
    return n, time.perf_counter() - t0, time.process_time() - c0


def _render_loop(renderers: list[Any], writers: list[AtomicVideoWriter], frames: int,
                 encode: bool) -> tuple[int, float, float]:
    """Render (and encode) every camera's frames after one warm-up frame; returns the camera-frames
    done and the wall / CPU clocks at the start, so the caller's total includes closing the writers."""
    renderers[0].render(0)  # warm up
    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    for f in range(frames):
        for i, r in enumerate(renderers):
            fr = r.render(f)
            if encode:
                writers[i].write(fr.image)
            n += 1
    return n, t0, c0


def _run_city_cameras(args: tuple[int, int, int, int, int, list[int], bool, str]) -> tuple[int, float, float]:
    """`_run_cameras` for the vehicle world (`layout=aic19`): `people` is the number of vehicles."""
    width, height, vehicles, frames, cameras, cams, encode, tmpdir = args
    spec = CitySpec(cameras=cameras, frames=frames, vehicles=vehicles, width=width, height=height)
    city = build_city(spec, seed=0)
    renderers = [CityRenderer(city, c) for c in cams]
    fourcc = _city_fourcc()
    with contextlib.ExitStack() as stack:
        writers = [
            stack.enter_context(AtomicVideoWriter(Path(tmpdir) / f"cam{c}_{width}.avi", spec.fps, (width, height), fourcc))
            for c in (cams if encode else [])
        ]
        n, t0, c0 = _render_loop(renderers, writers, frames, encode)
    return n, time.perf_counter() - t0, time.process_time() - c0


def _city_fourcc() -> str:
    """The codec `layout=aic19` writes `vdo.avi` with (`conf/synth/layout/aic19.yaml`)."""
    from citytrack.data.synth.config import compose_config

    return str(compose_config(["layout=aic19", "out=unused"]).layout.fourcc)


def bench(width: int, height: int, people: int, frames: int, cameras: int, encode: bool, workers: int,
          layout: str = "aic24") -> dict[str, float]:
    run = _run_city_cameras if layout == "aic19" else _run_cameras
    with tempfile.TemporaryDirectory() as tmp:
        if workers <= 1:
            n, wall, cpu = run((width, height, people, frames, cameras, list(range(cameras)), encode, tmp))
            return {"cam_frames": n, "fps_wall": n / wall, "fps_cpu": n / cpu}
        groups = [list(range(cameras))[i::workers] for i in range(workers)]
        t0 = time.perf_counter()
        with ProcessPoolExecutor(workers, mp_context=mp_context()) as pool:
            results = list(pool.map(run, [(width, height, people, frames, cameras, g, encode, tmp) for g in groups]))
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
    p.add_argument("--layout", choices=("aic24", "aic19"), default="aic24",
                   help="aic24: the people world; aic19: the vehicle world (city.py)")
    p.add_argument("--people", type=int, default=30)
    p.add_argument("--vehicles", type=int, default=30, help="vehicles per scene (--layout aic19)")
    p.add_argument("--cameras", type=int, default=4)
    p.add_argument("--frames", type=int, default=50, help="frames per camera at 640x360 (1080p uses a fifth)")
    p.add_argument("--workers", type=int, default=None,
                   help="render processes (default 1; with --layout aic19: 1 and 2 at 640x360, 1 at 1080p)")
    p.add_argument("--sizes", default="640x360,1920x1080")
    p.add_argument("--dataset", action="store_true", help="also time the dataset command (generate) end to end")
    p.add_argument("--repeat", type=int, default=1, help="run each measurement n times; report the best and the median")
    args = p.parse_args(argv)
    cv2.setNumThreads(1)
    city = args.layout == "aic19"
    count = args.vehicles if city else args.people
    what_count = f"{count} vehicles" if city else f"{count} people"
    print(f"synth render benchmark ({args.layout}): {what_count}, {args.cameras} cameras, workers={args.workers or 1}, "
          f"cpus={os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f}")
    ok = True
    for size in args.sizes.split(","):
        w, h = (int(v) for v in size.split("x"))
        frames = args.frames if w * h <= 640 * 360 else max(5, args.frames // 5)
        if args.workers is not None:
            worker_counts = [args.workers]
        else:
            worker_counts = [1, 2] if city and w * h <= 640 * 360 else [1]
        for workers in worker_counts:
            for encode in (False, True):
                r = _repeat(args.repeat, partial(bench, w, h, count, frames, args.cameras, encode, workers, args.layout))
                what = "render+encode" if encode else "render only  "
                target = TARGETS.get((w, h))
                label = f"{w}x{h} {what}" + (f" workers={workers}" if city else "")
                line = (f"{label}: {r['fps_wall']:7.1f} cam-frames/s wall, "
                        f"{r['fps_cpu']:7.1f} by CPU time ({int(r['cam_frames'])} cam-frames{_spread(r)}, "
                        f"load {os.getloadavg()[0]:.2f})")
                if encode and target:
                    line += f"  target {target:.0f}: {'met' if r['fps_wall'] >= target else 'NOT met (wall)'}"
                    if workers == max(worker_counts):
                        ok &= r["fps_wall"] >= target
                print(line, flush=True)
        if args.dataset and not city:
            workers = args.workers or 1
            r = _repeat(args.repeat, partial(bench_dataset, w, h, args.people, frames, args.cameras, workers))
            startup = ", not the workers' start-up" if workers > 1 else ""
            print(f"{w}x{h} dataset cmd  : {r['fps_wall']:7.1f} cam-frames/s wall, {r['fps_cpu']:7.1f} by CPU time "
                  f"({int(r['cam_frames'])} cam-frames{_spread(r)}; counts world building and files{startup}; "
                  f"load {os.getloadavg()[0]:.2f})", flush=True)
    print("all targets met (wall clock)" if ok else "some targets not met on wall clock; see the CPU-time rates and the load")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
