"""`python -m citytrack.bench pose_ceiling`: the keypoint AP a perfect network would lose to the pixels.

OKS AP of the TRUE joints of a top-down crop dataset (`DIR/pose/person_keypoints_{split}.json`, crops
carrying `crop_box`: the synthetic ones) moved by Gaussian noise of a few SOURCE-frame pixels, with
the COCO size classes by source-frame area (`citytrack.models.pose.metrics`). A network cannot
place a joint much better than about a pixel of the frame it sees, so this says which AP the
people's size in pixels allows: on 640x360 cameras most synthetic people are COCO "small" (COCO
scores keypoints on medium and large people only), and 1 px of noise alone costs a quarter of the AP.

    python -m citytrack.bench pose_ceiling --data data/synth/pose_heldout3 --noise 0.5,1,2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from citytrack.data.formats.coco import load_coco_keypoints
from citytrack.data.formats.errors import FormatError
from citytrack.models.pose.metrics import KeypointEvaluator, frame_areas, source_scale
from citytrack.utils.io import atomic_open


def noisy_truth_ap(json_path: str | Path, noise_px: list[float], seed: int = 0) -> dict[str, object]:
    """AP (all, per COCO size class) of the true joints plus `noise_px` source-pixel Gaussian noise
    per coordinate, and the people's source-frame heights (median, 10th and 90th percentile)."""
    coco = load_coco_keypoints(json_path)
    ids = sorted(coco.imgs)
    if frame_areas(coco, ids) is None:
        raise FormatError(json_path, "needs top-down crops: one person per image, each image with a crop_box")
    anns = [coco.imgToAnns[i][0] for i in ids]
    truth = np.stack([np.reshape(a["keypoints"], (-1, 3)).astype(np.float64) for a in anns])
    scale = np.array([source_scale(coco.imgs[i]) for i in ids])  # (N, 2) source pixels per crop pixel
    heights = np.array([a["bbox"][3] for a in anns]) * scale[:, 1]
    rng = np.random.default_rng(seed)
    rows = {}
    for sigma in noise_px:
        pred = truth.copy()
        pred[..., :2] += rng.normal(0.0, sigma, pred[..., :2].shape) / scale[:, None, :]
        pred[..., 2] = 1.0
        ev = KeypointEvaluator()
        ev.update(np.array(ids), pred)
        rows[float(sigma)] = ev.compute(coco)
    return {"people": len(ids), "height_px": {"p10": float(np.percentile(heights, 10)),
            "median": float(np.median(heights)), "p90": float(np.percentile(heights, 90))}, "ap": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m citytrack.bench pose_ceiling", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="a synthetic dataset folder (its pose/ crops)")
    p.add_argument("--split", default="train", help="person_keypoints_<split>.json (train: the test split of train.py test=true)")
    p.add_argument("--noise", default="0.5,1,2", help="source-frame pixels of noise per coordinate, comma-separated")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="OUT", help="write the result here (atomically)")
    args = p.parse_args(argv)
    path = Path(args.data) / "pose" / f"person_keypoints_{args.split}.json"
    result = noisy_truth_ap(path, [float(s) for s in args.noise.split(",")], args.seed)
    h = result["height_px"]
    print(f"{path}: {result['people']} people, source-frame height median {h['median']:.0f} px "
          f"(10th-90th percentile {h['p10']:.0f}-{h['p90']:.0f})")
    print(f"{'noise (px)':>10} {'AP':>6} {'AP50':>6} {'AP75':>6} {'AP_S':>6} {'AP_M':>6} {'AP_L':>6} {'AP_ML':>6}")
    for sigma, m in result["ap"].items():
        print(f"{sigma:>10.2f} " + " ".join(f"{m[k]:6.3f}" for k in ("AP", "AP50", "AP75", "AP_S", "AP_M", "AP_L", "AP_ML")))
    if args.json:
        with atomic_open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0
