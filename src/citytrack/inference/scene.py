"""`python infer.py scene=...`: multi-camera people tracking of whole scenes, scored where ground truth exists.

    python infer.py                                        # the embedded held-out synthetic scene
    python infer.py scene=<scene_XXX | S0XX | folder of scenes | name> multicam=online|offline|none
    python infer.py detector=gt reid=none                  # oracles for ablation
    python infer.py -m scene=a,b,c hydra/launcher=joblib   # scenes in parallel

The pipeline (`citytrack.multicam.pipeline.ScenePipeline`) is built by Hydra from the
`detector`, `reid`, `tracker`, `multicam` and `pose` groups. This runner resolves the scenes,
runs them, writes `<out>/track1.txt` (every scene, global ids unique across scenes), one
`<out>/<scene>.txt` per scene, `<out>/<scene>.mp4` (all cameras tiled, boxes coloured by global
id, bird's-eye panel) and `<out>/summary.json` (metrics, per-stage timing, config), all atomically.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from citytrack.data.formats import aicity
from citytrack.data.scenes import SceneInput, find_scene_dirs, load_scene
from citytrack.data.synth import ensure_synthetic_dataset
from citytrack.data.video import SyncedVideoReader
from citytrack.eval.mtmc import evaluate_aic23_idf1, evaluate_aic24, evaluate_per_camera
from citytrack.multicam.pipeline import STAGES, ScenePipeline, SceneRun
from citytrack.multicam.tracks import CAM, FRAME, GLOBAL_ID, H, W, X, XWORLD, Y, YWORLD
from citytrack.utils.io import atomic_open
from citytrack.visualize.scene import SceneVideoWriter

log = logging.getLogger(__name__)


def resolve_scenes(spec: str, synthetic: dict[str, Any], data_dir: str | Path, search_roots: list[str]) -> list[Path]:
    """Scene folders of `scene=`: an embedded synthetic scene (generated on first use), a path, or a name."""
    if spec in synthetic:
        params = dict(synthetic[spec])
        root = ensure_synthetic_dataset(Path(data_dir) / "synth" / f"scene_{spec}", **params)
        return find_scene_dirs(root / str(params.get("split", "train")))
    return find_scene_dirs(spec, search_roots)


def submission_rows(table: np.ndarray, id_offset: int, output_format: str) -> np.ndarray:
    """AI City rows `camera_id obj_id frame_id x y w h xworld yworld` (AIC23: world columns -1)."""
    out = np.c_[table[:, CAM], table[:, GLOBAL_ID] + id_offset, table[:, FRAME], table[:, [X, Y, W, H]],
                table[:, [XWORLD, YWORLD]]]
    if output_format == "aic23":
        out[:, 7:9] = -1
    else:  # a ground point that cannot be mapped (above the horizon) is not a valid AIC24 row
        out = out[np.isfinite(out[:, 7:9]).all(axis=1)]
    return out[np.lexsort((out[:, 1], out[:, 2], out[:, 0]))]


def evaluate_scene(scene: SceneInput, pred: np.ndarray) -> dict[str, Any]:
    """AI City 2024 world HOTA (AIC24 layout), AI City 2023 multi-camera IDF1, and per-camera metrics."""
    gt = scene.ground_truth
    assert gt is not None
    cams = scene.camera_ids
    metrics: dict[str, Any] = {}
    if np.isfinite(gt[:, XWORLD]).all():
        metrics.update({k: v for k, v in evaluate_aic24(gt, pred, {scene.name: cams}).items() if k != "scenes"})
    metrics.update({f"mc_{k}": v for k, v in evaluate_aic23_idf1(gt, pred, cameras=cams).items()})
    per_cam = evaluate_per_camera(gt, pred, cameras=cams)
    metrics["per_camera"] = {name: {k: float(v) for k, v in row.items()} for name, row in per_cam.to_dict("index").items()}
    return metrics


def write_scene_video(path: Path, run: SceneRun, rows: np.ndarray, tile_width: int) -> None:
    """Second pass over the videos: the final (possibly offline) global ids drawn on every camera."""
    scene = run.scene
    cams = [c for c in scene.camera_ids if c in run.image_sizes]
    calib = {c.camera_id: c.calibration for c in scene.cameras if c.camera_id in run.image_sizes}
    by_frame = {int(f): rows[rows[:, 2] == f] for f in np.unique(rows[:, 2])}
    paths = {c.camera_id: c.video for c in scene.cameras if c.camera_id in cams}
    with SceneVideoWriter(path, cams, run.image_sizes, calib, run.fps, tile_width=tile_width) as writer, \
            SyncedVideoReader(paths, max_frames=run.frames) as reader:
        for frame, images in reader:
            writer.write(frame, {int(k): v for k, v in images.items()}, by_frame.get(frame, np.zeros((0, 9))))


def run(
    cfg: DictConfig,
    pipeline: ScenePipeline,
    output_format: str = "aic24",
    video: bool = True,
    video_tile_width: int = 480,
    evaluate: bool = True,
    search_roots: list[str] | None = None,
) -> dict[str, Any]:
    """Run every scene named by `cfg.scene`; returns the metrics (mean over scenes with ground truth)."""
    if output_format not in ("aic24", "aic23"):
        raise ValueError(f"task.output_format must be aic24 or aic23, got {output_format!r}")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    scene_dirs = resolve_scenes(str(cfg.scene), OmegaConf.to_container(cfg.synthetic_scenes), cfg.paths.data_dir,
                                list(search_roots or []))
    scenes = [load_scene(d) for d in scene_dirs]  # every calibration checked before any decoding
    log.info("%d scene(s): %s", len(scenes), ", ".join(s.name for s in scenes))
    all_rows, summary_scenes, id_offset = [], {}, 0
    for scene in scenes:
        run_ = pipeline.run(scene)
        rows = submission_rows(run_.table, id_offset, output_format)
        id_offset = int(max(id_offset, rows[:, 1].max() if len(rows) else 0))
        aicity.write_track1(out / f"{scene.name}.txt", rows)
        all_rows.append(rows)
        entry: dict[str, Any] = {
            "dir": str(scene.dir), "cameras": scene.camera_ids, "dropped_cameras": run_.dropped,
            "frames": run_.frames, "camera_frames": run_.camera_frames,
            "seconds": {k: round(run_.seconds.get(k, 0.0), 4) for k in STAGES},
            "camera_frames_per_second": run_.camera_frames / max(sum(run_.seconds.values()), 1e-9),
            "global_ids": int(len(np.unique(rows[:, 1]))),
        }
        if evaluate and scene.ground_truth is not None:
            entry["metrics"] = evaluate_scene(scene, rows)
            m = entry["metrics"]
            log.info("%s: HOTA %.1f DetA %.1f AssA %.1f | multi-camera IDF1 %.1f", scene.name,
                     100 * m.get("HOTA", np.nan), 100 * m.get("DetA", np.nan), 100 * m.get("AssA", np.nan),
                     100 * m["mc_IDF1"])
        if video:
            write_scene_video(out / f"{scene.name}.mp4", run_, rows, video_tile_width)
            entry["video"] = str(out / f"{scene.name}.mp4")
        summary_scenes[scene.name] = entry
    aicity.write_track1(out / "track1.txt", np.concatenate(all_rows) if all_rows else np.zeros((0, 9)))
    metrics = mean_metrics(summary_scenes)
    summary = {"metrics": metrics, "scenes": summary_scenes, "submission": str(out / "track1.txt"),
               "config": OmegaConf.to_container(cfg, resolve=False)}
    with atomic_open(out / "summary.json") as fh:
        json.dump(summary, fh, indent=2, default=float)
    print_summary(summary_scenes, metrics, out)
    return metrics


def mean_metrics(scenes: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Unweighted mean over scenes (the AI City headline) of every scalar metric."""
    scored = [s["metrics"] for s in scenes.values() if "metrics" in s]
    if not scored:
        return {}
    keys = [k for k, v in scored[0].items() if isinstance(v, int | float)]
    return {k: float(np.mean([m[k] for m in scored if k in m])) for k in keys}


def print_summary(scenes: dict[str, dict[str, Any]], metrics: dict[str, float], out: Path) -> None:
    head = f"{'scene':<14}{'HOTA':>7}{'DetA':>7}{'AssA':>7}{'LocA':>7}{'IDF1':>7}{'IDP':>7}{'IDR':>7}{'ids':>6}{'cam-fr/s':>10}"
    lines = [head]
    for name, s in scenes.items():
        m = s.get("metrics", {})
        cells = [100 * m.get(k, np.nan) for k in ("HOTA", "DetA", "AssA", "LocA", "mc_IDF1", "mc_IDP", "mc_IDR")]
        lines.append(f"{name:<14}" + "".join(f"{c:7.1f}" for c in cells) + f"{s['global_ids']:6d}"
                     + f"{s['camera_frames_per_second']:10.1f}")
    if len(scenes) > 1 and metrics:
        cells = [100 * metrics.get(k, np.nan) for k in ("HOTA", "DetA", "AssA", "LocA", "mc_IDF1", "mc_IDP", "mc_IDR")]
        lines.append(f"{'MEAN':<14}" + "".join(f"{c:7.1f}" for c in cells))
    print("\n".join(lines))
    print(f"submission: {out / 'track1.txt'}  summary: {out / 'summary.json'}")
