"""`python -m citytrack.bench detector_pets`: PETS09-S2L1 transfer of our synthetic-trained detector vs
OpenCV's HOG people detector, COCO mAP.

    python -m citytrack.bench detector_pets --ckpt logs/detector_synthetic/runs/<run>/checkpoints/last.ckpt \
        [--stride 5] [--max-frames N] [--hog-upscale 2.0] [--img-size 640] [--out results.json] \
        [--picture pets.png]

The clip (`../shared/data/video/pets09_s2l1_view001.avi` from the repository root, 480x360) is view 001 of PETS09-S2L1;
the MOT15 ground truth (768x576) lines up after scaling by 0.625. Every `--stride`-th frame
is scored by both detectors through `citytrack.eval.detection.DetectionEvaluator`
(torchmetrics/pycocotools mAP@.5, mAP@[.5:.95], recall at the trackers' thresholds).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path("../shared/data")  # from the repository root, as `bench tracking --data`


def load_gt(path: Path, scale: float) -> dict[int, np.ndarray]:
    """MOT15 gt -> `{frame: (N, 4) xywh}` in video pixels."""
    from citytrack.data.formats.mot import frame_groups, read_mot

    gt = read_mot(path, kind="gt")
    gt[:, 2:6] *= scale
    return {f: rows[:, 2:6] for f, rows in frame_groups(gt).items()}


def read_frames(video: Path, stride: int, max_frames: int | None) -> tuple[list[int], list[np.ndarray]]:
    """Every `stride`-th frame of the clip with its 1-based (MOT gt) frame number."""
    from citytrack.data.video import VideoError, VideoReader

    numbers, images = [], []
    with VideoReader(video, stride=stride, max_frames=max_frames) as reader:
        for index, image in reader:
            numbers.append(index + 1)
            images.append(image)
    if not images:
        raise VideoError(video, "video has no decodable frames")
    return numbers, images


def evaluate(dets: list[np.ndarray], frames: list[int], gt: dict[int, np.ndarray]) -> dict[str, float]:
    from citytrack.eval.detection import DetectionEvaluator, mot_frames_to_coco

    preds, targets = mot_frames_to_coco(dict(zip(frames, dets, strict=True)), gt, frames)
    ev = DetectionEvaluator()
    ev.update(preds, targets)
    return ev.compute()


def save_picture(path: Path, images: list[np.ndarray], dets: list[np.ndarray], frames: list[int], gt: dict[int, np.ndarray]) -> None:
    """Four evenly spaced frames with the detector's boxes and the gt, for looking at failure modes."""
    import cv2

    from citytrack.eval.detection import draw_predictions
    from citytrack.utils.boxes import xywh_to_xyxy
    from citytrack.utils.io import atomic_path

    pick = np.linspace(0, len(frames) - 1, min(4, len(frames))).round().astype(int)
    preds = [np.concatenate([xywh_to_xyxy(dets[i][:, :4]), dets[i][:, 4:5]], 1) for i in pick]
    gts = [xywh_to_xyxy(gt.get(frames[i], np.zeros((0, 4)))[:, :4]) for i in pick]
    grid = draw_predictions([images[i] for i in pick], preds, gts, score_thresh=0.3, columns=2)
    with atomic_path(path) as tmp:
        cv2.imwrite(str(tmp), grid)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m citytrack.bench detector_pets", description=__doc__.splitlines()[0])
    p.add_argument("--ckpt", help="detector checkpoint (omit to run HOG only)")
    p.add_argument("--video", type=Path, default=DATA / "video" / "pets09_s2l1_view001.avi")
    p.add_argument("--gt", type=Path, default=DATA / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt")
    p.add_argument("--scale", type=float, default=0.625)
    p.add_argument("--stride", type=int, default=1, help="use every n-th frame")
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--img-size", type=int, default=None, help="detector input (default: the checkpoint's)")
    p.add_argument("--hog-upscale", type=float, default=2.0, help="HOG's window is 64x128: upscale small people")
    p.add_argument("--no-hog", action="store_true")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON (atomically)")
    p.add_argument("--picture", type=Path, default=None, help="PNG of the detector's boxes (red, score >= 0.3) and gt (green) on 4 frames")
    args = p.parse_args(argv)

    gt = load_gt(args.gt, args.scale)
    frames, images = read_frames(args.video, args.stride, args.max_frames)
    results: dict[str, object] = {"frames": len(frames), "stride": args.stride, "video": str(args.video)}
    if args.ckpt:
        from citytrack.models.detector.module import load_detector

        det = load_detector(args.ckpt, map_location=args.device)
        t0 = time.perf_counter()
        dets = det.predict_frames(images, batch_size=8, score_thresh=0.001, img_size=args.img_size)
        results["detector"] = evaluate(dets, frames, gt) | {"seconds": round(time.perf_counter() - t0, 2)}
        results["detector_img_size"] = int(args.img_size or det.hparams.img_size)
        if args.picture:
            save_picture(args.picture, images, dets, frames, gt)
    if not args.no_hog:
        from citytrack.models.detector.hog import HogPersonDetector

        hog = HogPersonDetector(upscale=args.hog_upscale)
        t0 = time.perf_counter()
        dets = hog(images)
        results["hog"] = evaluate(dets, frames, gt) | {"seconds": round(time.perf_counter() - t0, 2)}
        results["hog_upscale"] = args.hog_upscale
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        from citytrack.utils.io import atomic_open

        with atomic_open(args.out) as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
