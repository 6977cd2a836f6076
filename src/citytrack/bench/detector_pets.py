"""`python -m citytrack.bench detector_pets`: kept as a short name for the PETS09-S2L1 part of `transfer`.

    python -m citytrack.bench detector_pets [--ckpt checkpoints/detector_synthetic_cpu.pt] [--stride 5] \
        [--max-frames N] [--hog-upscale 2.0] [--no-hog] [--img-size 640] [--out results.json] [--picture pets.png]

runs `python -m citytrack.bench transfer --parts detection --datasets pets` (see that module): our detector
(only with `--ckpt`), OpenCV HOG (unless `--no-hog`) and the public Faster R-CNN detections, COCO mAP on
the clip's frames against the MOT15 ground truth scaled by 0.625. Since the move, zero-marked gt rows are
ignore regions rather than ground truth, and the clip path comes from `--data`.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m citytrack.bench detector_pets", description=__doc__.splitlines()[0])
    p.add_argument("--ckpt", help="detector checkpoint (omit to run HOG and the public detections only)")
    p.add_argument("--no-hog", action="store_true")
    args, rest = p.parse_known_args(argv)
    detectors = ["ours"] * bool(args.ckpt) + ["hog"] * (not args.no_hog) + ["frcnn"]
    forward = ["--parts", "detection", "--datasets", "pets", "--detectors", ",".join(detectors), *rest]
    if args.ckpt:
        forward += ["--ckpt", args.ckpt]
    print(f"detector_pets is `transfer {' '.join(forward)}`", file=sys.stderr)
    from citytrack.bench import transfer

    return transfer.main(forward)


if __name__ == "__main__":
    sys.exit(main())
