"""Does appearance help tracking? DeepSORT / BoT-SORT with vs without our ReID embeddings, IDF1 on a synthetic scene.

    python benchmarks/reid_tracking.py --ckpt logs/reid_synthetic/runs/<run>/checkpoints/last.ckpt \
        --data data/synth/reid_eval --out logs/reid_tracking.json

The scene is the held-out synthetic world (`--data`, another seed than the ReID training
data, so the identities were never seen). Detections are the ground-truth boxes of each
camera, jittered (`--jitter` x box size) and randomly dropped (`--miss`), with the same
detections fed to both trackers; people hidden behind occluders or each other leave the
ground truth, which is where a motion-only tracker switches identities. Each camera is a
sequence; the table reports the OVERALL row (`citytrack.eval.mot_metrics`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from citytrack.data.formats.aicity import list_aic24_scenes, load_aic24_scene, read_aic24_ground_truth
from citytrack.eval.mot_metrics import evaluate_sequences
from citytrack.models.reid.extractor import FeatureExtractor
from citytrack.tracking.botsort import BotSort
from citytrack.tracking.deepsort import DeepSort
from citytrack.utils.io import atomic_open


def camera_sequences(data: Path, max_scenes: int | None):
    """Yield (name, video path, (N, 9) ground truth of one camera)."""
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
                yield f"{scene.dir.name}_{cam.dir.name}", cam.video, rows


def make_detections(gt: np.ndarray, n_frames: int, jitter: float, miss: float, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    dets = []
    for f in range(n_frames):
        rows = gt[gt[:, 2] == f]
        keep = rng.random(len(rows)) >= miss
        boxes = rows[keep, 3:7].copy()
        if len(boxes):
            size = np.repeat(boxes[:, 2:4], 2, axis=1)
            boxes += rng.normal(0.0, jitter, boxes.shape) * size
            boxes[:, 2:] = np.maximum(boxes[:, 2:], 2.0)
        dets.append(np.concatenate([boxes, np.full((len(boxes), 1), 0.9)], axis=1))
    return dets


def to_mot(rows: list[tuple[int, np.ndarray]]) -> np.ndarray:
    out = [np.column_stack([np.full(len(o), f + 1), o[:, 4], o[:, :4], o[:, 5], -np.ones((len(o), 3))])
           for f, o in rows if len(o)]
    return np.concatenate(out) if out else np.zeros((0, 10))


def gt_to_mot(gt: np.ndarray) -> np.ndarray:
    n = len(gt)
    return np.column_stack([gt[:, 2] + 1, gt[:, 1], gt[:, 3:7], np.ones(n), np.ones(n), np.ones(n), -np.ones(n)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", type=Path, required=True, help="ReIDModule checkpoint (.ckpt)")
    ap.add_argument("--data", type=Path, default=Path("data/synth/reid_eval"), help="synthetic AI City dataset")
    ap.add_argument("--max-scenes", type=int, default=None)
    ap.add_argument("--jitter", type=float, default=0.05, help="box noise, fraction of width/height")
    ap.add_argument("--miss", type=float, default=0.1, help="detection drop rate")
    ap.add_argument("--tracker", choices=["deepsort", "botsort"], default="deepsort")
    ap.add_argument("--max-cosine-distance", type=float, default=0.3,
                    help="DeepSORT max_cosine_distance / BoT-SORT appearance_thresh")
    ap.add_argument("--max-age", type=int, default=30)
    ap.add_argument("--n-init", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="write the two OVERALL rows as JSON")
    args = ap.parse_args(argv)

    ext = FeatureExtractor.from_checkpoint(args.ckpt, device=args.device)
    gts: dict[str, np.ndarray] = {}
    preds: dict[str, dict[str, np.ndarray]] = {"motion only": {}, "with ReID": {}}
    t_embed = 0.0
    n_crops = 0
    for i, (name, video, gt) in enumerate(camera_sequences(args.data, args.max_scenes)):
        cap = cv2.VideoCapture(str(video))
        if not cap.isOpened():
            raise SystemExit(f"{video}: cannot open the video")
        frames = []
        while True:
            ok, img = cap.read()
            if not ok:
                break
            frames.append(img)
        cap.release()
        if not frames:
            raise SystemExit(f"{video}: no frames decoded")
        dets = make_detections(gt, len(frames), args.jitter, args.miss, args.seed + i)
        gts[name] = gt_to_mot(gt)
        for label in preds:
            if args.tracker == "deepsort":
                tracker = DeepSort(max_age=args.max_age, n_init=args.n_init, max_cosine_distance=args.max_cosine_distance)
            else:
                tracker = BotSort(track_buffer=args.max_age, appearance_thresh=args.max_cosine_distance, frame_rate=30.0)
            rows = []
            for f, (img, d) in enumerate(zip(frames, dets, strict=True)):
                emb = None
                if label == "with ReID":
                    t0 = time.perf_counter()
                    emb = ext.embed(img, d[:, :4]) if len(d) else np.zeros((0, ext.dim), np.float32)
                    t_embed += time.perf_counter() - t0
                    n_crops += len(d)
                rows.append((f, tracker.update(d, frame=f, embeddings=emb, image=img)))
            preds[label][name] = to_mot(rows)
    results = {}
    print(f"| tracker | IDF1 | MOTA | HOTA | IDs |  ({len(gts)} camera sequences of {args.data})")
    print("|---|---|---|---|---|")
    for label, pred in preds.items():
        df = evaluate_sequences(gts, pred, distractor_handling="none")
        row = df.loc["OVERALL"] if "OVERALL" in df.index else df.iloc[-1]
        results[label] = {k: float(row[k]) for k in ("IDF1", "MOTA", "HOTA", "IDs") if k in row}
        r = results[label]
        print(f"| {args.tracker} {label} | {r.get('IDF1', float('nan')):.1f} | {r.get('MOTA', float('nan')):.1f} | "
              f"{r.get('HOTA', float('nan')):.1f} | {r.get('IDs', float('nan')):.0f} |")
    print(f"embedding: {n_crops} crops in {t_embed:.1f} s ({n_crops / max(t_embed, 1e-9):.0f} crops/s, {ext.device})")
    if args.out is not None:
        with atomic_open(args.out) as fh:
            json.dump({"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
