"""Generate a synthetic dataset: world -> renderers -> layout writers.

Each camera of each scene is one task: render all its frames and write its files (video,
images, instance maps, ReID crops, pose crops) through the layout's `CameraSink`; the scene's own files
(ground truth, calibration) are written here from the tasks' results. With `workers > 1`
the tasks run in worker processes, otherwise in this process; either way a camera's pixels
depend only on (seed, scene, camera), so the dataset is byte-identical for any `workers`.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import re
import shutil
import signal
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from citytrack.data.synth.city_writer import generate_city
from citytrack.data.synth.config import compose_config, overrides_from_kwargs, validate
from citytrack.data.synth.pose_crops import PoseCameraWriter, PoseCropWriter
from citytrack.data.synth.render import CameraRenderer, PoseCache
from citytrack.data.synth.world import SynthConfigError, World, build_world
from citytrack.data.synth.writers import (
    SINKS,
    WORLD_VERSION,
    ReidCameraWriter,
    ReidWriter,
    SceneSink,
    write_meta,
)

log = logging.getLogger(__name__)


def resolve_config(cfg: DictConfig | Mapping[str, Any] | None = None, **overrides: Any) -> DictConfig:
    """A full, validated synth config from a composed DictConfig, or from keyword overrides."""
    if isinstance(cfg, DictConfig):
        out = cfg.copy()
        if overrides:
            out = OmegaConf.merge(out, OmegaConf.from_dotlist(overrides_from_kwargs(overrides)))
    else:
        kwargs = {**(dict(cfg) if cfg else {}), **overrides}
        out = compose_config(overrides_from_kwargs(kwargs))
    assert isinstance(out, DictConfig)
    validate(out)
    resolve_workers(out)
    return out


def cpu_count() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# Rough single-process cost of a camera-frame per pixel (render, mp4v encode, ground truth and
# ReID crops: ~6 ms at 640x360, ~50 ms at 1920x1080 with 30 people on the 2-core dev machine).
SECONDS_PER_PIXEL = 2.5e-8
# Starting workers costs ~2 CPU-seconds (the fork server imports the package, torch included) and
# the world is still built here: below this much estimated rendering, one process is faster.
AUTO_MIN_SECONDS = 8.0


def estimated_seconds(cfg: DictConfig) -> float:
    """Single-process estimate of the rendering and writing time of `cfg` (world building excluded)."""
    return int(cfg.scenes) * int(cfg.cameras) * int(cfg.frames) * int(cfg.width) * int(cfg.height) * SECONDS_PER_PIXEL


def resolve_workers(cfg: DictConfig) -> int:
    """Worker processes for `cfg.workers`; 1 means render in this process.

    `auto`: min(scenes x cameras, CPUs), or 1 for small jobs (estimated under `AUTO_MIN_SECONDS`
    in one process), where starting workers would cost more than it saves. The output is the
    same for any number of workers.
    """
    value = cfg.get("workers", "auto")
    tasks = int(cfg.cameras) * int(cfg.scenes)
    if value == "auto" or value is None:
        if estimated_seconds(cfg) < AUTO_MIN_SECONDS:
            return 1
        return max(1, min(tasks, cpu_count()))
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SynthConfigError(f"synth config: workers must be a positive integer or 'auto', got {value!r}")
    return min(value, tasks)


# ---------------------------------------------------------------------------- one camera
@dataclass
class CameraTask:
    """Everything a (possibly separate) process needs to render and write one camera of one scene."""

    world: World
    camera: int
    cfg: DictConfig
    root: Path
    cam_offset: int
    reid_test_ids: frozenset[int]
    pose_test_ids: frozenset[int]


class _Stopped(Exception):
    """The parent asked the workers to stop (another camera failed, or Ctrl-C)."""


# Set in each worker process by `_init_worker`.
_progress_queue: Any = None
_stop_event: Any = None


@dataclass
class CameraResult:
    """What a rendered camera hands back to the scene: the layout's, ReID's and pose's results, and its cost."""

    layout: Any
    reid: tuple[dict[str, int], dict[tuple[int, int], list[str]]]
    pose: dict[str, list]
    frames: int
    cpu_s: float  # CPU time of this task (process time, all threads)


def render_camera(task: CameraTask, progress: Callable[[int], None] | None = None,
                  stop: Callable[[], bool] | None = None) -> CameraResult:
    """Render every frame of one camera into its layout files, ReID crops and pose crops.

    On any error the camera's unfinished files are removed and the error propagates.
    """
    cpu0 = time.process_time()
    cfg, world, c = task.cfg, task.world, task.camera
    min_px = int(cfg.gt.min_visible_pixels)
    sink = SINKS[cfg.layout.name].camera_sink(world, task.root, str(cfg.split), cfg, task.cam_offset, c)
    try:
        reid = ReidCameraWriter(task.root / "reid", cfg.reid, task.reid_test_ids, world, c)
        pose = PoseCameraWriter(task.root / "pose", cfg.pose, task.pose_test_ids, world, task.cam_offset + c + 1)
        renderer = CameraRenderer(world, world.cameras[c], poses=PoseCache(world))
        for f in range(world.frames):
            if stop is not None and stop():
                raise _Stopped
            fr = renderer.render(f)
            keep = fr.visible_pixels >= min_px
            sink.add(fr, keep)
            reid.add(fr, keep)
            pose.add(fr, keep)
            if progress is not None:
                progress(1)
        result = sink.close()
    except BaseException:
        sink.abort()
        raise
    return CameraResult(result, reid.result(), pose.result(), world.frames, time.process_time() - cpu0)


def _init_worker(progress_queue: Any, stop_event: Any) -> None:
    global _progress_queue, _stop_event
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and tells the workers to stop
    import cv2

    cv2.setNumThreads(1)  # one process per core already
    _progress_queue, _stop_event = progress_queue, stop_event


def _worker_task(task: CameraTask) -> CameraResult:
    pending, last = 0, time.monotonic()

    def progress(n: int) -> None:
        nonlocal pending, last
        pending += n
        now = time.monotonic()
        if now - last > 0.2:
            _progress_queue.put(pending)
            pending, last = 0, now

    try:
        return render_camera(task, progress, _stop_event.is_set)
    finally:
        if pending:
            _progress_queue.put(pending)


def mp_context() -> Any:
    """The multiprocessing context for render workers."""
    # Not "fork": the parent may hold OpenCV/torch thread pools and tqdm's monitor thread,
    # which a forked child would inherit half-alive.
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    # The fork server imports this module once; every worker is then forked from it ready to run.
    ctx.set_forkserver_preload([__name__])
    return ctx


# ---------------------------------------------------------------------------- the dataset
# The folders each layout writes directly under `<out>/<split>` (see `writers.py`). `generate()`
# removes these, and only these, before writing: a previous run with more scenes, cameras or
# frames would otherwise leave stale scenes, sequences and frames that the readers pick up.
_LAYOUT_DIRS: dict[str, re.Pattern[str]] = {
    "aic24": re.compile(r"scene_\d{3,}"),
    "aic23": re.compile(r"S\d{3,}"),
    "mot": re.compile(r"SYNTH-\d{2,}-\d{2,}"),
    "kitti_mots": re.compile(r"image_02|instances|instances_txt"),
}


def _clear_layout_output(root: Path, split: str, layout: str) -> None:
    """Remove the folders that `layout` writes under `root/split` (a previous run's output); nothing else."""
    base = root / split
    if not base.is_dir():
        return
    pattern = _LAYOUT_DIRS[layout]
    for entry in base.iterdir():
        if pattern.fullmatch(entry.name) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)


@dataclass
class _Scene:
    world: World
    sink: SceneSink
    futures: list[Future]


def generate(cfg: DictConfig | Mapping[str, Any] | None = None, out: str | Path | None = None,
             stats: dict[str, float] | None = None, **overrides: Any) -> Path:
    """Render and write a dataset; returns its root. `meta.json` is removed first and written last;
    the layout's own folders under `out/split` (a previous run's output) are removed before writing.

    With `workers > 1` (the default `auto` on a multi-core machine) cameras are rendered in worker
    processes started by `forkserver` (or `spawn`): a script calling this must do so under
    `if __name__ == "__main__":`, as for any multiprocessing code.
    `stats`, when given, receives `cam_frames`, `workers`, `wall_s` and `cpu_s` (this process
    plus the camera tasks, wherever they ran).
    """
    wall0, cpu0 = time.perf_counter(), time.process_time()
    if out is not None:
        overrides["out"] = str(out)
    cfg = resolve_config(cfg, **overrides)
    spec = validate(cfg)
    if OmegaConf.is_missing(cfg, "out"):
        raise SynthConfigError("synth config: out=DIR is required")
    root = Path(cfg.out)
    if cfg.layout.name == "aic19":  # the vehicle world (city.py) has its own scene loop and writer
        return generate_city(cfg, root)
    workers = resolve_workers(cfg)
    root.mkdir(parents=True, exist_ok=True)
    (root / "meta.json").unlink(missing_ok=True)
    _clear_layout_output(root, str(cfg.split), cfg.layout.name)
    reid = ReidWriter(root / "reid", cfg.reid, cfg.scenes * spec.people, cfg.seed)
    pose = PoseCropWriter(root / "pose", cfg.pose, cfg.scenes * spec.people, cfg.seed)
    split = str(cfg.split)

    def scene(s: int) -> tuple[World, SceneSink, list[CameraTask]]:
        world = build_world(spec, cfg.seed, s, id_offset=s * spec.people)
        sink = SINKS[cfg.layout.name](world, root, split, cfg, s * spec.cameras)
        tasks = [CameraTask(world, c, cfg, root, s * spec.cameras, reid.test_ids, pose.test_ids) for c in range(spec.cameras)]
        return world, sink, tasks

    task_cpu = [0.0]  # CPU time of camera tasks run in worker processes

    def finish(sink: SceneSink, results: list[CameraResult], remote: bool) -> dict[str, Any]:
        for r in results:
            reid.merge(r.reid)
            pose.merge(r.pose)
            if remote:
                task_cpu[0] += r.cpu_s
        return sink.close([r.layout for r in results])

    bar = tqdm(total=cfg.scenes * spec.frames * spec.cameras, desc="synth", unit="cam-frame", disable=not cfg.progress)
    scenes: list[dict[str, Any]] = []
    try:
        if workers == 1:
            for s in range(cfg.scenes):
                _world, sink, tasks = scene(s)
                scenes.append(finish(sink, [render_camera(t, bar.update) for t in tasks], remote=False))
        else:
            scenes = _generate_parallel(cfg.scenes, workers, scene, finish, bar)
    finally:
        bar.close()
    reid_info = reid.finish()
    write_meta(root, cfg, scenes, reid_info, pose.finish())
    n = cfg.scenes * spec.cameras * spec.frames
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0 + task_cpu[0]
    log.info("synthetic %s dataset written to %s: %d camera-frames in %.1f s (%.1f/s) with %d worker(s), %.1f s CPU",
             cfg.layout.name, root, n, wall, n / wall, workers, cpu)
    if stats is not None:
        stats.update(cam_frames=n, workers=workers, wall_s=wall, cpu_s=cpu)
    return root


def _generate_parallel(
    n_scenes: int, workers: int, scene: Callable[[int], tuple[World, SceneSink, list[CameraTask]]],
    finish: Callable[[SceneSink, list[CameraResult], bool], dict[str, Any]], bar: tqdm,
) -> list[dict[str, Any]]:
    """Cameras in `workers` processes; at most two scenes in flight so the pool never idles between scenes."""
    ctx = mp_context()
    progress_queue, stop_event = ctx.Queue(), ctx.Event()

    def drain() -> None:
        while True:
            try:
                bar.update(progress_queue.get_nowait())
            except queue.Empty:
                return

    def wait_scene(sc: _Scene) -> list[CameraResult]:
        pending = set(sc.futures)
        while pending:
            done, pending = wait(pending, timeout=0.1, return_when=FIRST_EXCEPTION)
            drain()
            for fut in done:
                fut.result()  # raises the worker's exception (its traceback is chained)
        return [fut.result() for fut in sc.futures]

    out: list[dict[str, Any]] = []
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(progress_queue, stop_event))
    inflight: deque[_Scene] = deque()
    try:
        for _ in range(workers):  # start the workers (imports) while the first world is built here
            pool.submit(int)
        for s in range(n_scenes):
            world, sink, tasks = scene(s)
            inflight.append(_Scene(world, sink, [pool.submit(_worker_task, t) for t in tasks]))
            if len(inflight) == 2:
                sc = inflight.popleft()
                out.append(finish(sc.sink, wait_scene(sc), True))
        while inflight:
            sc = inflight.popleft()
            out.append(finish(sc.sink, wait_scene(sc), True))
    except BrokenProcessPool as err:
        stop_event.set()
        raise RuntimeError(
            "a synth worker process died: out of memory, killed, or started from a script that calls generate() "
            "outside `if __name__ == '__main__':` (workers re-import the main module); rerun with workers=1 to see"
        ) from err
    except BaseException:
        stop_event.set()  # running cameras stop at their next frame and remove their unfinished files
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        drain()
        progress_queue.close()
    return out


def ensure_synthetic_dataset(root: str | Path, **overrides: Any) -> Path:
    """Generate the dataset into `root` unless `root/meta.json` says it is complete; returns `root`.

    A folder without meta.json (an interrupted run) or written by another `WORLD_VERSION` of the
    generator (the same config would render a different world now) is regenerated. An existing
    dataset of this version is reused as is, even when `overrides` differ from its config (a
    warning says so): delete the folder to regenerate.
    """
    root = Path(root)
    meta = root / "meta.json"
    if meta.is_file():
        import json

        stored_meta = json.loads(meta.read_text())
        from citytrack.data.synth.city import CITY_VERSION

        if stored_meta.get("layout") == "aic19" and stored_meta.get("city_version", 1) != CITY_VERSION:
            log.warning("%s holds a version-%s city, this is %d: regenerating it", root,
                        stored_meta.get("city_version", 1), CITY_VERSION)
            return generate(None, out=root, **overrides)
        if stored_meta.get("world_version", 1) != WORLD_VERSION:
            log.warning("%s was rendered by world version %s, this is %d: regenerating it",
                        root, stored_meta.get("world_version", 1), WORLD_VERSION)
            return generate(None, out=root, **overrides)
        stored = stored_meta.get("config", {})
        wanted = OmegaConf.to_container(resolve_config(None, out=str(root), **overrides), resolve=True)
        assert isinstance(wanted, dict)
        diff = [k for k in wanted if k not in ("out", "progress", "workers") and stored.get(k) != wanted[k]]
        if diff:
            log.warning("%s exists with a different config (%s); reusing it. Delete it to regenerate.", root, ", ".join(diff))
        return root
    return generate(None, out=root, **overrides)


__all__ = ["ensure_synthetic_dataset", "generate", "resolve_config"]
