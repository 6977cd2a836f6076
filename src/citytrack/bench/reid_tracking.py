"""`python -m citytrack.bench reid_tracking`: does appearance help tracking? DeepSORT / BoT-SORT with vs without our ReID embeddings, on a synthetic world.

    # 1. pick the appearance thresholds on the TRAINING world (seed 1): same-id vs different-id
    #    cosine distances of the embeddings, and where their histograms cross
    python -m citytrack.bench reid_tracking --ckpt checkpoints/reid_synthetic_osnet.ckpt \
        --data data/synth/reid_train --distances
    # 2. report on the held-out world (seed 2, unseen identities); --min-visibility 0.3 keeps
    #    only the boxes a detector could fire on, --miss 0.3 drops more of them
    python -m citytrack.bench reid_tracking --ckpt checkpoints/reid_synthetic_osnet.ckpt \
        --data data/synth/reid_eval --min-visibility 0.3 --out logs/reid_tracking.json

Detections are the ground-truth boxes of each camera (the FULL box of each person, as the
generator writes it), jittered (`--jitter` x box size) and randomly dropped (`--miss`); the
same detections and the same embeddings go to every tracker. `--min-visibility v` also drops
the boxes of people less than `v` visible (the world is re-rendered from `meta.json` to get
the visibility): a real detector does not fire on a person hidden behind a pillar, whereas the
default (0) keeps the box of a person with 10 visible pixels, whose crop shows the occluder.
`--detector CKPT` tracks that detector's boxes (at its own score threshold) instead: a scene of the runner's
benchmark (`data/synth/bench_pose_*`) then shows what appearance adds over a real detector's misses and
mixed boxes; DeepSORT filters them at `--deepsort-min-confidence` (0.3, as deep_sort_app).
`--appearance-max-cover`, `--appearance-fusion` and `--relink-lost` switch on the trackers' appearance options.
Each camera is a sequence; the table reports the OVERALL row (`citytrack.eval.mot_metrics`).

`--distances` prints the same-id (same camera, 1..`--max-gap` frames apart) and different-id
(same camera, up to `--max-gap` frames apart) cosine-distance quantiles of the ground-truth
boxes, the equal-error threshold and the histogram crossing, per visibility floor. The
default thresholds below come from this on seed 1 with `checkpoints/reid_synthetic_osnet.ckpt`
(crossing 0.52 at visibility >= 0.3, 0.56 for all boxes): DeepSORT `max_cosine_distance` 0.52,
BoT-SORT `appearance_thresh` 0.26 (it compares half the cosine distance). The papers' 0.2 / 0.25
were set for other networks; with this one the same-id median is 0.14-0.18, so 0.2 rejects many
true matches, and DeepSORT has no other way back for a track missed two frames or more. (The
previous checkpoint, trained on one world, crossed at 0.60.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from citytrack.data.formats.aicity import list_aic24_scenes, load_aic24_scene, read_aic24_ground_truth
from citytrack.data.video import VideoError, VideoReader
from citytrack.eval.mot_metrics import evaluate_sequences
from citytrack.models.reid.extractor import FeatureExtractor
from citytrack.tracking.botsort import BotSort
from citytrack.tracking.deepsort import DeepSort
from citytrack.utils.io import atomic_open

SYNTH_MAX_COSINE_DISTANCE = 0.52
"""DeepSORT's appearance gate for checkpoints/reid_synthetic_osnet.ckpt: the seed-1 same/other-id crossing."""


def camera_sequences(data: Path, max_scenes: int | None):
    """Yield (name, camera id, video path, (N, 9) ground truth of one camera)."""
    scenes = list_aic24_scenes(data)
    if not scenes:
        raise SystemExit(f"{data}: no scene_XXX folders (expected the AI City 2024 layout)")
    for scene_dir in scenes[:max_scenes]:
        scene = load_aic24_scene(scene_dir)
        if scene.ground_truth is None:
            raise SystemExit(f"{scene.dir}: no ground_truth.txt")
        gt = read_aic24_ground_truth(scene.ground_truth)
        for cam in scene.cameras:
            rows = gt[gt[:, 0] == cam.camera_id]
            if len(rows):
                yield f"{scene.dir.name}_{cam.dir.name}", int(cam.camera_id), cam.video, rows


def read_frames(video: Path) -> list[np.ndarray]:
    try:
        with VideoReader(video) as reader:
            frames = [img for _, img in reader]
    except VideoError as err:
        raise SystemExit(str(err)) from None
    if not frames:
        raise SystemExit(f"{video}: no frames decoded")
    return frames


def render_visibility(data: Path, max_scenes: int | None) -> dict[tuple[int, int, int], float]:
    """`{(camera id, frame, person id): visible fraction}` of a generated world, re-rendered from its meta.json.

    The generator is deterministic in (seed, scene, camera), so this is the world the videos show.
    """
    from omegaconf import OmegaConf

    from citytrack.data.synth.config import validate
    from citytrack.data.synth.generate import resolve_config
    from citytrack.data.synth.render import CameraRenderer, PoseCache
    from citytrack.data.synth.world import build_world

    meta = json.loads((data / "meta.json").read_text())
    cfg = resolve_config(OmegaConf.create(meta["config"]), workers=1)
    spec = validate(cfg)
    out: dict[tuple[int, int, int], float] = {}
    n_scenes = int(cfg.scenes) if max_scenes is None else min(int(cfg.scenes), max_scenes)
    for s in range(n_scenes):
        world = build_world(spec, cfg.seed, s, id_offset=s * spec.people)
        for c in range(spec.cameras):
            renderer = CameraRenderer(world, world.cameras[c], poses=PoseCache(world))
            for f in range(world.frames):
                fr = renderer.render(f)
                for a, v in zip(fr.agents, fr.visibility, strict=True):
                    out[(s * spec.cameras + c + 1, f, world.agents[int(a)].global_id)] = float(v)
    return out


def gt_visibility(gt: np.ndarray, vis: dict[tuple[int, int, int], float] | None) -> np.ndarray:
    if vis is None:
        return np.ones(len(gt))
    return np.array([vis.get((int(c), int(f), int(p)), 0.0) for c, p, f in gt[:, :3]])


def make_detections(
    gt: np.ndarray, n_frames: int, jitter: float, miss: float, seed: int, visibility: np.ndarray | None = None,
    min_visibility: float = 0.0,
) -> list[np.ndarray]:
    """Jittered gt boxes per frame; a box is dropped at random (`miss`) or when its person is
    less than `min_visibility` visible (the random draws do not depend on the visibility)."""
    rng = np.random.default_rng(seed)
    vis = np.ones(len(gt)) if visibility is None else visibility
    dets = []
    for f in range(n_frames):
        sel = gt[:, 2] == f
        rows = gt[sel]
        keep = rng.random(len(rows)) >= miss
        boxes = rows[keep, 3:7].copy()
        if len(boxes):
            size = np.repeat(boxes[:, 2:4], 2, axis=1)
            boxes += rng.normal(0.0, jitter, boxes.shape) * size
            boxes[:, 2:] = np.maximum(boxes[:, 2:], 2.0)
        boxes = boxes[vis[sel][keep] >= min_visibility]  # after the draws: the same noise with or without a floor
        dets.append(np.concatenate([boxes, np.full((len(boxes), 1), 0.9)], axis=1))
    return dets


def to_mot(rows: list[tuple[int, np.ndarray]]) -> np.ndarray:
    out = [np.column_stack([np.full(len(o), f + 1), o[:, 4], o[:, :4], o[:, 5], -np.ones((len(o), 3))])
           for f, o in rows if len(o)]
    return np.concatenate(out) if out else np.zeros((0, 10))


def gt_to_mot(gt: np.ndarray) -> np.ndarray:
    n = len(gt)
    return np.column_stack([gt[:, 2] + 1, gt[:, 1], gt[:, 3:7], np.ones(n), np.ones(n), np.ones(n), -np.ones(n)])


# ---------------------------------------------------------------------------- distances
def distance_stats(same: np.ndarray, diff: np.ndarray) -> dict[str, float]:
    """Quantiles of same-id / different-id distances, the equal-error threshold and the first
    histogram crossing (bins of 0.02: where the same-id density first falls below the other)."""
    ts = np.linspace(0.0, 1.2, 241)
    fnr = (same[None, :] > ts[:, None]).mean(axis=1)
    fpr = (diff[None, :] <= ts[:, None]).mean(axis=1)
    k = int(np.argmin(np.abs(fnr - fpr)))
    hs, edges = np.histogram(same, bins=60, range=(0.0, 1.2), density=True)
    hd, _ = np.histogram(diff, bins=60, range=(0.0, 1.2), density=True)
    below = np.flatnonzero((hs <= hd) & (np.arange(60) > int(np.argmax(hs))))
    return {
        "same_n": len(same), "diff_n": len(diff),
        **{f"same_q{q}": float(np.quantile(same, q / 100)) for q in (50, 90, 95, 99)},
        **{f"diff_q{q}": float(np.quantile(diff, q / 100)) for q in (1, 5, 10, 50)},
        "eer_threshold": float(ts[k]), "eer": float(fnr[k]),
        "crossing": float(edges[below[0]]) if len(below) else float("nan"),
    }


def pair_distances(cam: np.ndarray, frame: np.ndarray, pid: np.ndarray, feat: np.ndarray, max_gap: int):
    """Same-id pairs (1..max_gap frames apart) and different-id pairs (0..max_gap apart), same camera."""
    same, diff = [], []
    for c in np.unique(cam):
        idx = np.flatnonzero(cam == c)
        d = 1.0 - feat[idx] @ feat[idx].T
        gap = np.abs(frame[idx, None] - frame[None, idx])
        sp = pid[idx, None] == pid[None, idx]
        upper = np.triu(np.ones_like(sp), 1)
        same.append(d[sp & upper & (gap > 0) & (gap <= max_gap)])
        diff.append(d[~sp & upper & (gap <= max_gap)])
    return np.concatenate(same), np.concatenate(diff)


def run_distances(args: argparse.Namespace, ext: FeatureExtractor) -> dict[str, Any]:
    vis_map = render_visibility(args.data, args.max_scenes)
    cams, frames_, pids, feats, viss = [], [], [], [], []
    for _name, cam_id, video, gt in camera_sequences(args.data, args.max_scenes):
        vis = gt_visibility(gt, vis_map)
        for f, img in enumerate(read_frames(video)):
            if f % args.stride:
                continue
            sel = gt[:, 2] == f
            if sel.any():
                feats.append(ext.embed(img, gt[sel, 3:7]))
                cams.append(np.full(int(sel.sum()), cam_id))
                frames_.append(np.full(int(sel.sum()), f))
                pids.append(gt[sel, 1].astype(np.int64))
                viss.append(vis[sel])
    cam, frame, pid, feat, vis = (np.concatenate(x) for x in (cams, frames_, pids, feats, viss))
    print(f"{len(feat)} ground-truth boxes of {args.data} (every {args.stride} frames); pairs up to {args.max_gap} frames apart")
    print("| visibility >= | same-id q50 / q90 / q95 | other-id q1 / q5 / q10 / q50 | equal error at | EER | crossing |")
    print("|---|---|---|---|---|---|")
    out = {}
    for vmin in (0.0, 0.3, 0.5, 0.7):
        m = vis >= vmin
        s = distance_stats(*pair_distances(cam[m], frame[m], pid[m], feat[m], args.max_gap))
        out[str(vmin)] = s
        print(f"| {vmin} | {s['same_q50']:.3f} / {s['same_q90']:.3f} / {s['same_q95']:.3f} | "
              f"{s['diff_q1']:.3f} / {s['diff_q5']:.3f} / {s['diff_q10']:.3f} / {s['diff_q50']:.3f} | "
              f"{s['eer_threshold']:.3f} | {s['eer']:.3f} | {s['crossing']:.2f} |")
    return out


# ---------------------------------------------------------------------------- tracking
def make_tracker(name: str, args: argparse.Namespace) -> DeepSort | BotSort:
    if name == "deepsort":
        return DeepSort(max_age=args.max_age, n_init=args.n_init, max_cosine_distance=args.max_cosine_distance,
                        min_confidence=args.deepsort_min_confidence, appearance_max_cover=args.appearance_max_cover,
                        motion_weight=args.deepsort_motion_weight)
    return BotSort(track_buffer=args.max_age, appearance_thresh=args.appearance_thresh, frame_rate=30.0,
                   appearance_max_cover=args.appearance_max_cover, appearance_fusion=args.appearance_fusion,
                   relink_lost=args.relink_lost)


def run_tracking(args: argparse.Namespace, ext: FeatureExtractor) -> dict[str, Any]:
    # the visibility floor applies to jittered ground truth only: a detector's boxes are what it found
    vis_map = render_visibility(args.data, args.max_scenes) if args.min_visibility > 0 and args.detector is None else None
    gts: dict[str, np.ndarray] = {}
    labels = [f"{t} {mode}" for t in args.trackers for mode in ("motion only", "with ReID")]
    preds: dict[str, dict[str, np.ndarray]] = {label: {} for label in labels}
    t_embed, n_crops = 0.0, 0
    detector = None
    if args.detector is not None:
        from citytrack.models.detector.module import load_detector

        detector = load_detector(args.detector, map_location=ext.device)
    for i, (name, _cam_id, video, gt) in enumerate(camera_sequences(args.data, args.max_scenes)):
        frames = read_frames(video)
        if detector is not None:  # the checkpoint's boxes at its own score threshold, as infer.py gives them
            dets = detector.predict_frames(frames, 8, score_thresh=float(detector.hparams.score_thresh))
        else:
            dets = make_detections(gt, len(frames), args.jitter, args.miss, args.seed + i,
                                   gt_visibility(gt, vis_map), args.min_visibility)
        gts[name] = gt_to_mot(gt)
        t0 = time.perf_counter()
        embs = [ext.embed(img, d[:, :4]) if len(d) else np.zeros((0, ext.dim), np.float32)
                for img, d in zip(frames, dets, strict=True)]
        t_embed += time.perf_counter() - t0
        n_crops += sum(len(d) for d in dets)
        for label in labels:
            tracker = make_tracker(label.split()[0], args)
            use = label.endswith("with ReID")
            rows = [(f, tracker.update(d, frame=f, embeddings=e if use else None, image=img))
                    for f, (img, d, e) in enumerate(zip(frames, dets, embs, strict=True))]
            preds[label][name] = to_mot(rows)
    results = {}
    boxes = f"boxes of {args.detector}" if detector is not None else f"miss {args.miss}, min visibility {args.min_visibility}"
    print(f"| tracker | IDF1 | MOTA | HOTA | IDs |  ({len(gts)} camera sequences of {args.data}, {boxes})")
    print("|---|---|---|---|---|")
    for label, pred in preds.items():
        df = evaluate_sequences(gts, pred, distractor_handling="none")
        row = df.loc["OVERALL"]
        results[label] = {k: float(row[k]) for k in ("IDF1", "MOTA", "HOTA", "IDs") if k in row}
        r = results[label]
        print(f"| {label} | {r['IDF1']:.1f} | {r['MOTA']:.1f} | {r['HOTA']:.1f} | {r['IDs']:.0f} |")
    print(f"embedding: {n_crops} crops in {t_embed:.1f} s ({n_crops / max(t_embed, 1e-9):.0f} crops/s, {ext.device})")
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m citytrack.bench reid_tracking", description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", type=Path, default=Path("checkpoints/reid_synthetic_osnet.ckpt"),
                    help="ReIDModule checkpoint (.ckpt)")
    ap.add_argument("--data", type=Path, default=Path("data/synth/reid_eval"), help="synthetic AI City dataset")
    ap.add_argument("--max-scenes", type=int, default=None)
    ap.add_argument("--distances", action="store_true", help="print embedding distance statistics, no tracking")
    ap.add_argument("--stride", type=int, default=2, help="--distances: every n-th frame")
    ap.add_argument("--max-gap", type=int, default=30, help="--distances: pairs up to this many frames apart")
    ap.add_argument("--jitter", type=float, default=0.05, help="box noise, fraction of width/height")
    ap.add_argument("--miss", type=float, default=0.1, help="detection drop rate")
    ap.add_argument("--min-visibility", type=float, default=0.0,
                    help="drop the boxes of people less visible than this (re-renders the world)")
    ap.add_argument("--trackers", nargs="+", choices=["deepsort", "botsort"], default=["deepsort", "botsort"])
    ap.add_argument("--max-cosine-distance", type=float, default=SYNTH_MAX_COSINE_DISTANCE,
                    help="DeepSORT appearance gate (seed-1 same/other-id crossing of the default checkpoint)")
    ap.add_argument("--appearance-thresh", type=float, default=SYNTH_MAX_COSINE_DISTANCE / 2,
                    help="BoT-SORT theta_emb, half cosine distance (half the seed-1 crossing)")
    ap.add_argument("--appearance-max-cover", type=float, default=None,
                    help="boxes more than this share inside another box carry no appearance (default: off)")
    ap.add_argument("--appearance-fusion", choices=["min", "gate"], default="min",
                    help="BoT-SORT: min(IoU, appearance) as published, or IoU gated by appearance")
    ap.add_argument("--relink-lost", action="store_true",
                    help="BoT-SORT: lost tracks re-link by appearance inside their Kalman gate")
    ap.add_argument("--detector", type=Path, default=None,
                    help="track this detector checkpoint's boxes instead of jittered ground truth")
    ap.add_argument("--deepsort-min-confidence", type=float, default=0.3,
                    help="DeepSORT's detection score filter (deep_sort_app's 0.3; ground-truth boxes score 0.9)")
    ap.add_argument("--deepsort-motion-weight", type=float, default=0.0,
                    help="DeepSORT's lambda: weight of the squared Mahalanobis distance in the cascade's cost")
    ap.add_argument("--max-age", type=int, default=30)
    ap.add_argument("--n-init", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--flip", action="store_true", help="embed each crop and its mirror image, summed")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = ap.parse_args(argv)

    ext = FeatureExtractor.from_checkpoint(args.ckpt, device=args.device, flip=args.flip)
    results = run_distances(args, ext) if args.distances else run_tracking(args, ext)
    if args.out is not None:
        with atomic_open(args.out) as fh:
            json.dump({"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
