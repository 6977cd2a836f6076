"""`python infer.py task=vehicle_mtmc scene=<SXX | folder of SXX | key>`: city-scale vehicle tracking.

Thin runner over `multicam.vehicle_pipeline.VehiclePipeline`: resolves the scenarios (the
embedded held-out synthetic city is generated on first use), runs each, writes
`<out>/<SXX>.txt` and `<out>/track1.txt` (AI City 2019 Track 1 columns, atomically), a tiled
video of the cameras and a map of the network with the linked trajectories, and scores them
where ground truth exists (multi-camera IDF1 / IDP / IDR, per-camera MOT metrics).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from omegaconf import DictConfig, OmegaConf

from citytrack.data.formats.aicity import aic24
from citytrack.data.formats.aicity.aic19 import list_aic19_scenes, read_aic19_ground_truth
from citytrack.data.formats.errors import FormatError
from citytrack.data.synth.generate import ensure_synthetic_dataset
from citytrack.data.video import SyncedVideoReader
from citytrack.eval.mtmc import evaluate_aic19_mtmc, evaluate_per_camera
from citytrack.multicam.vehicle_pipeline import VehiclePipeline, VehicleRun
from citytrack.utils.io import atomic_path
from citytrack.visualize.birdseye import birds_eye_background, draw_world_tracks
from citytrack.visualize.scene import SceneVideoWriter

log = logging.getLogger(__name__)


def resolve_city_scenes(spec: Any, synthetic: dict[str, Any], data_dir: str | Path) -> list[Path]:
    """`SXX` folders named by `scene=`: a key of `synthetic` (generated on first use), an `SXX`
    folder, or a folder holding them (a split or a dataset root)."""
    spec = "" if spec is None else str(spec)
    if spec in synthetic:
        params = dict(synthetic[spec])
        city = params.pop("city", {}) or {}
        overrides = {**params, **{f"layout.city.{k}": v for k, v in city.items()}}
        root = ensure_synthetic_dataset(Path(data_dir) / "synth" / f"city_{spec}", layout="aic19", **overrides)
        return list_aic19_scenes(root, str(params.get("split", "train")))
    path = Path(spec)
    if not path.exists():
        raise FormatError(path, "no such scenario folder (scene= takes an SXX folder, a folder of them, or "
                                f"one of {sorted(synthetic)})")
    if path.name[:1] == "S" and path.name[1:].isdigit():
        return [path]
    scenes = list_aic19_scenes(path)
    if not scenes:
        raise FormatError(path, "holds no SXX scenario folders")
    return scenes


def _on_map(setup: Any, uv: np.ndarray, w2p: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Integer map pixels `(M, 2)` of a camera's image points on the ground, those inside the map only."""
    with np.errstate(invalid="ignore", divide="ignore"):
        px = w2p(setup.calibration.image_to_ground(uv))
    px = np.rint(px[np.isfinite(px).all(1)]).astype(int)
    return px[(px[:, 0] >= 0) & (px[:, 0] < shape[1]) & (px[:, 1] >= 0) & (px[:, 1] < shape[0])]


def write_map(path: Path, run: VehicleRun, size_px: int = 900) -> None:
    """The road network seen from above: camera footprints and every linked vehicle's trajectory over all cameras."""
    cams = [s.calibration for s in run.setups]
    canvas, w2p = birds_eye_background(cams, [s.image_size for s in run.setups], size_px,
                                       names=[s.camera.name for s in run.setups], max_range=90.0)
    road = np.zeros(canvas.shape[:2], dtype=np.uint8)
    for s in run.setups:  # the roads: each camera's roi.jpg pixels on the ground
        v, u = np.nonzero(s.roi[::2, ::2])
        px = _on_map(s, np.column_stack([u * 2.0, v * 2.0]), w2p, canvas.shape)
        road[px[:, 1], px[:, 0]] = 255
    road = cv2.morphologyEx(road, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)) > 0
    canvas[road] = (canvas[road] * 0.4 + 0.6 * np.array([150, 150, 150])).astype(np.uint8)
    draw_zones(canvas, w2p, run)
    rows = run.linked
    trails, last = {}, {}
    setups = {s.camera.camera_id: s for s in run.setups}
    for gid in np.unique(rows[:, 1]).astype(int):
        r = rows[rows[:, 1] == gid]
        t = np.array([setups[int(c)].frame_time(f) for c, f in r[:, [0, 2]]])
        order = np.argsort(t, kind="stable")
        pts = r[order, 7:9]
        pts = pts[(pts != -1).all(1)]
        if len(pts):
            trails[gid], last[gid] = pts, pts[-1:]
    draw_world_tracks(canvas, w2p, trails, last, thickness=2, fade=False)
    with atomic_path(path, suffix=".png") as tmp:
        if not cv2.imwrite(str(tmp), canvas):
            raise OSError(f"cannot write {path}")


def draw_zones(canvas: np.ndarray, w2p: Any, run: VehicleRun) -> None:
    """Each camera's entry/exit zones on the ground, tinted, labelled `cXXX:zone` at their middle."""
    for s in run.setups:
        zmap = run.zones.get(s.camera.camera_id)
        if zmap is None:
            continue
        for zone in zmap.zone_ids:
            v, u = np.nonzero(zmap.labels == zone)
            px = _on_map(s, np.column_stack([u, v]).astype(np.float64), w2p, canvas.shape)
            if len(px) == 0:
                continue
            canvas[px[:, 1], px[:, 0]] = (0, 200, 255)
            x, y = np.median(px, axis=0).astype(int)
            cv2.putText(canvas, f"{s.camera.name}:{zone}", (int(x) + 3, int(y)), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                        (0, 200, 255), 1, cv2.LINE_AA)


def write_video(path: Path, run: VehicleRun, tile_width: int, max_frames: int | None) -> None:
    """Tiled cameras with boxes coloured by global id (frames in step by index; clocks differ by the offsets)."""
    sizes = {s.camera.camera_id: s.image_size for s in run.setups}
    calib = {s.camera.camera_id: s.calibration for s in run.setups}
    paths = {s.camera.camera_id: s.camera.video for s in run.setups}
    fps = float(np.median([s.fps for s in run.setups]))
    rows = run.linked.copy()
    rows[:, 2] -= 1  # the writer takes 0-based frame indices
    by_frame = {int(f): rows[rows[:, 2] == f] for f in np.unique(rows[:, 2])}
    with SceneVideoWriter(path, list(paths), sizes, calib, fps, tile_width=tile_width, max_range=90.0,
                          title=run.scene_dir.name) as writer, SyncedVideoReader(paths, max_frames=max_frames) as reader:
        for frame, images in reader:
            writer.write(frame, {int(k): v for k, v in images.items()}, by_frame.get(frame, np.zeros((0, 9))))


def evaluate_run(run: VehicleRun) -> dict[str, Any] | None:
    """AI City 2019 Track 1 scores of a run against its `gt/gt.txt` files; None without ground truth."""
    if not any(s.camera.gt is not None for s in run.setups):
        return None
    gt, _ = read_aic19_ground_truth(run.scene_dir)
    cams = [s.camera.camera_id for s in run.setups]
    scores: dict[str, Any] = dict(evaluate_aic19_mtmc(gt, run.linked, cameras=cams))
    per_cam = evaluate_per_camera(gt, run.linked, cameras=cams)
    scores["per_camera"] = {str(k): {m: float(v) for m, v in row.items()} for k, row in per_cam.iterrows()}
    return scores


def run(
    cfg: DictConfig,
    pipeline: VehiclePipeline,
    synthetic: dict[str, Any] | None = None,
    video: bool = True,
    video_tile_width: int = 400,
    map_picture: bool = True,
    evaluate: bool = True,
) -> dict[str, Any]:
    """Run every scenario of `cfg.scene`; returns the mean multi-camera IDF1/IDP/IDR over scored scenarios."""
    out = Path(cfg.out)
    synth = OmegaConf.to_container(synthetic, resolve=True) if isinstance(synthetic, DictConfig) else dict(synthetic or {})
    scenes = resolve_city_scenes(cfg.scene, synth, cfg.paths.data_dir)
    out.mkdir(parents=True, exist_ok=True)
    all_rows, summary, id_offset = [], {}, 0
    for scene_dir in scenes:
        log.info("vehicle MTMC: %s", scene_dir)
        result = pipeline.run(scene_dir)
        rows = result.linked.copy()
        if len(rows):
            rows[:, 1] += id_offset
            id_offset = int(rows[:, 1].max())
        aic24.write_track1(out / f"{scene_dir.name}.txt", rows)
        all_rows.append(rows)
        total = max(sum(result.seconds.values()), 1e-9)
        entry: dict[str, Any] = {
            "dir": str(scene_dir), "cameras": [s.camera.name for s in result.setups], "dropped_cameras": result.dropped,
            "camera_frames": result.camera_frames, "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
            "camera_frames_per_second": result.camera_frames / total,
            "tracklets": len(result.tracklets), "global_ids": len(np.unique(rows[:, 1])) if len(rows) else 0,
        }
        if evaluate:
            scores = evaluate_run(result)
            if scores is not None:
                entry["metrics"] = scores
                log.info("%s: multi-camera IDF1 %.1f IDP %.1f IDR %.1f", scene_dir.name, 100 * scores["IDF1"],
                         100 * scores["IDP"], 100 * scores["IDR"])
        if map_picture:
            write_map(out / f"{scene_dir.name}_map.png", result)
            entry["map"] = str(out / f"{scene_dir.name}_map.png")
        if video:
            write_video(out / f"{scene_dir.name}.mp4", result, video_tile_width, pipeline.max_frames)
            entry["video"] = str(out / f"{scene_dir.name}.mp4")
        summary[scene_dir.name] = entry
    aic24.write_track1(out / "track1.txt", np.concatenate(all_rows) if all_rows else np.zeros((0, 9)))
    scored = [e["metrics"] for e in summary.values() if "metrics" in e]
    metrics = {k: float(np.mean([m[k] for m in scored])) for k in ("IDF1", "IDP", "IDR")} if scored else {}
    frames = sum(e["camera_frames"] for e in summary.values())
    seconds = sum(sum(e["seconds"].values()) for e in summary.values())
    metrics["camera_frames_per_second"] = frames / max(seconds, 1e-9)
    with atomic_path(out / "summary.json", suffix=".json") as tmp:
        tmp.write_text(json.dumps({"metrics": metrics, "scenes": summary, "submission": str(out / "track1.txt"),
                                   "config": OmegaConf.to_container(cfg, resolve=False)}, indent=2, default=float))
    for name, e in summary.items():
        m = e.get("metrics")
        score = f"IDF1 {100 * m['IDF1']:.1f}  IDP {100 * m['IDP']:.1f}  IDR {100 * m['IDR']:.1f}" if m else "no ground truth"
        print(f"{name}: {score}  ({e['camera_frames_per_second']:.1f} camera-frames/s, {e['global_ids']} vehicles)")
    print(f"results in {out}")
    return metrics
