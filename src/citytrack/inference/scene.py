"""`python infer.py scene=...`: multi-camera people tracking of whole scenes, scored where ground truth exists.

    python infer.py                                        # the embedded held-out synthetic scene
    python infer.py scene=<scene_XXX | S0XX | folder of scenes | name> multicam=online|offline|none
    python infer.py detector=gt reid=none                  # oracles for ablation
    python infer.py -m scene=a,b,c hydra/launcher=parallel # scenes in parallel here (joblib; or =slurm)

The pipeline (`citytrack.multicam.pipeline.ScenePipeline`) is built by Hydra from the
`detector`, `reid`, `tracker`, `multicam` and `pose` groups. This runner resolves the scenes,
runs them, writes `<out>/track1.txt` (every scene, global ids unique across scenes), one
`<out>/<scene>.txt` per scene, `<out>/<scene>.mp4` (all cameras tiled, boxes coloured by global
id, bird's-eye panel) and `<out>/summary.json` (metrics, per-stage timing, config), all atomically.

Frames in the result files follow the input's frame base (AI City 2024: 0; AI City 2023 `label.txt`: 1).
Global ids are renumbered 1..K per scene, each scene after the last one's ids, so they are unique
across scenes. Metrics are those the data allows: the AI City 2024 ground-plane HOTA only where the
ground truth has world points and the submission carries them (`output_format=aic24`), the multi-camera
IDF1 and per-camera metrics wherever there is ground truth.

`summary.json` is written last: a run that stops early (an error, Ctrl-C) leaves the per-scene results
of the scenes it finished, no `track1.txt` / `summary.json` (those of an earlier run in the same `out`
are removed when decoding starts) and no partial video or temporary file.
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
from citytrack.multicam.tracks import CAM, FRAME, GLOBAL_ID, XWORLD, YWORLD, H, W, X, Y
from citytrack.utils.io import atomic_open
from citytrack.visualize.scene import SceneVideoWriter

log = logging.getLogger(__name__)


RUN_RESULTS = ("track1.txt", "summary.json")  # written after every scene has run


def resolve_scenes(spec: Any, synthetic: dict[str, Any], data_dir: str | Path, search_roots: list[str]) -> list[Path]:
    """Scene folders of `scene=`: an embedded synthetic scene (generated on first use), a path, or a name."""
    spec = "" if spec is None else str(spec)
    if spec in synthetic:
        params = dict(synthetic[spec])
        root = ensure_synthetic_dataset(Path(data_dir) / "synth" / f"scene_{spec}", **params)
        return find_scene_dirs(root / str(params.get("split", "train")))
    return find_scene_dirs(spec, search_roots)


def submission_rows(table: np.ndarray, output_format: str) -> np.ndarray:
    """AI City rows `camera_id obj_id frame_id x y w h xworld yworld` (AIC23: world columns -1),
    frames as the pipeline counts them (0-based video indices), ids as the associator gave them."""
    out = np.c_[table[:, CAM], table[:, GLOBAL_ID], table[:, FRAME], table[:, [X, Y, W, H]],
                table[:, [XWORLD, YWORLD]]]
    if output_format == "aic23":
        out[:, 7:9] = -1
    else:  # a ground point that cannot be mapped (above the horizon) is not a valid AIC24 row
        out = out[np.isfinite(out[:, 7:9]).all(axis=1)]
    return out[np.lexsort((out[:, 1], out[:, 2], out[:, 0]))]


def renumber_ids(rows: np.ndarray, id_offset: int) -> tuple[np.ndarray, int]:
    """Global ids `id_offset + 1 ..` in order of the scene's own ids; returns the rows and the next offset."""
    rows = rows.copy()
    ids, inverse = np.unique(rows[:, 1], return_inverse=True)
    rows[:, 1] = id_offset + 1 + inverse
    return rows, id_offset + len(ids)


def in_frame_base(rows: np.ndarray, frame_base: int) -> np.ndarray:
    """Rows with 0-based video frames renumbered to the scene files' frame base."""
    rows = rows.copy()
    rows[:, 2] += frame_base
    return rows


def evaluate_scene(scene: SceneInput, pred: np.ndarray, world: bool) -> dict[str, Any]:
    """AI City 2024 world HOTA (when `world` and the ground truth has world points), AI City 2023
    multi-camera IDF1, and per-camera metrics; `pred` in the ground truth's frames (0-based video)."""
    gt = scene.ground_truth
    assert gt is not None
    cams = scene.camera_ids
    metrics: dict[str, Any] = {}
    if world and scene.has_world_ground_truth:
        metrics.update({k: v for k, v in evaluate_aic24(gt, pred, {scene.name: cams}).items() if k != "scenes"})
    metrics.update({f"mc_{k}": v for k, v in evaluate_aic23_idf1(gt, pred, cameras=cams).items()})
    per_cam = evaluate_per_camera(gt, pred, cameras=cams)
    metrics["per_camera"] = {name: {k: float(v) for k, v in row.items()} for name, row in per_cam.to_dict("index").items()}
    return metrics


def write_scene_video(path: Path, run: SceneRun, rows: np.ndarray, tile_width: int, stride: int = 1) -> None:
    """Second pass over the videos: the final (possibly offline) global ids drawn on every camera.
    `rows` have the pipeline's frames (0-based video indices)."""
    scene = run.scene
    cams = [c for c in scene.camera_ids if c in run.image_sizes]
    calib = {c.camera_id: c.calibration for c in scene.cameras if c.camera_id in run.image_sizes}
    by_frame = {int(f): rows[rows[:, 2] == f] for f in np.unique(rows[:, 2])}
    paths = {c.camera_id: c.video for c in scene.cameras if c.camera_id in cams}
    with SceneVideoWriter(path, cams, run.image_sizes, calib, run.fps, tile_width=tile_width) as writer, \
            SyncedVideoReader(paths, max_frames=run.frames, stride=stride) as reader:
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
    scene_dirs = resolve_scenes(cfg.scene, OmegaConf.to_container(cfg.synthetic_scenes), cfg.paths.data_dir,
                                list(search_roots or []))
    scenes = [load_scene(d) for d in scene_dirs]  # every calibration checked before any decoding
    log.info("%d scene(s): %s", len(scenes), ", ".join(s.name for s in scenes))
    out.mkdir(parents=True, exist_ok=True)
    for name in RUN_RESULTS:  # an earlier run's: they must not outlive a run that stops early
        if (out / name).is_file():
            log.info("removing %s of an earlier run", out / name)
            (out / name).unlink()
    all_rows, summary_scenes, id_offset = [], {}, 0
    for scene in scenes:
        run_ = pipeline.run(scene)
        rows, id_offset = renumber_ids(submission_rows(run_.table, output_format), id_offset)
        file_rows = in_frame_base(rows, scene.frame_base)
        aicity.write_track1(out / f"{scene.name}.txt", file_rows)
        all_rows.append(file_rows)
        entry: dict[str, Any] = {
            "dir": str(scene.dir), "layout": scene.layout, "frame_base": scene.frame_base,
            "cameras": scene.camera_ids, "dropped_cameras": run_.dropped,
            "frames": run_.frames, "camera_frames": run_.camera_frames,
            "seconds": {k: round(run_.seconds.get(k, 0.0), 4) for k in STAGES},
            "camera_frames_per_second": run_.camera_frames / max(sum(run_.seconds.values()), 1e-9),
            "global_ids": len(np.unique(rows[:, 1])),
        }
        if run_.dropped:
            log.warning("%s: ran without camera(s) %s (see dropped_cameras in summary.json)", scene.name,
                        ", ".join(map(str, run_.dropped)))
        if evaluate and scene.ground_truth is not None:
            entry["metrics"] = evaluate_scene(scene, rows, world=output_format == "aic24")
            m = entry["metrics"]
            world = f"HOTA {100 * m['HOTA']:.1f} DetA {100 * m['DetA']:.1f} AssA {100 * m['AssA']:.1f} | " \
                if "HOTA" in m else ""
            log.info("%s: %smulti-camera IDF1 %.1f", scene.name, world, 100 * m["mc_IDF1"])
        if video:
            write_scene_video(out / f"{scene.name}.mp4", run_, rows, video_tile_width, pipeline.stride)
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
    keys = dict.fromkeys(k for m in scored for k, v in m.items() if isinstance(v, int | float))
    return {k: float(np.mean([m[k] for m in scored if k in m])) for k in keys}


SUMMARY_COLUMNS = ("HOTA", "DetA", "AssA", "LocA", "mc_IDF1", "mc_IDP", "mc_IDR")


def _cells(m: dict[str, Any]) -> str:
    """Percentages; `-` for a metric the data does not allow (no world points, no ground truth)."""
    return "".join(f"{100 * m[k]:7.1f}" if k in m else f"{'-':>7}" for k in SUMMARY_COLUMNS)


def print_summary(scenes: dict[str, dict[str, Any]], metrics: dict[str, float], out: Path) -> None:
    head = f"{'scene':<14}{'HOTA':>7}{'DetA':>7}{'AssA':>7}{'LocA':>7}{'IDF1':>7}{'IDP':>7}{'IDR':>7}{'ids':>6}{'cam-fr/s':>10}"
    lines = [head]
    for name, s in scenes.items():
        lines.append(f"{name:<14}" + _cells(s.get("metrics", {})) + f"{s['global_ids']:6d}"
                     + f"{s['camera_frames_per_second']:10.1f}")
    if len(scenes) > 1 and metrics:
        lines.append(f"{'MEAN':<14}" + _cells(metrics))
    print("\n".join(lines))
    print(f"submission: {out / 'track1.txt'}  summary: {out / 'summary.json'}")
