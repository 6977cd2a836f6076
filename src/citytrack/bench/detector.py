"""`python -m citytrack.bench detector [--device cuda] [--batch 8] [--img-size 640] [--steps 10]`.

Images per second of the detector for training (forward + SimOTA loss + backward + AdamW step on
letterboxed inputs, GPU augmentation included) and for inference (`predict_frames` on
`batch` frames of 1920x1080: upload, letterbox, forward, NMS, boxes back to frame pixels).
On CUDA the defaults are the training/inference paths' own: bf16 autocast and channels_last;
`--precision fp32` and `--no-channels-last` measure what each buys. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from citytrack.utils.device import resolve_device, synchronize


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m citytrack.bench detector")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--neck-channels", type=int, default=96)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--img-size", type=int, default=640)
    parser.add_argument("--frame-size", default="1920x1080", help="WxH of the inference frames")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--ckpt", default=None, help="benchmark a trained checkpoint instead of a fresh net")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="auto: bf16 autocast on CUDA, fp32 on the CPU")
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false",
                        help="keep NCHW on CUDA (the module's default is NHWC there)")
    args = parser.parse_args(argv)

    from citytrack.data.detection_augment import augment_batch
    from citytrack.models.detector.module import DetectorModule, load_detector
    from citytrack.models.detector.net import YoloxNet

    device = resolve_device(args.device)
    torch.manual_seed(0)
    if args.ckpt:
        module = load_detector(args.ckpt, map_location=device)
    else:
        module = DetectorModule(YoloxNet(args.backbone, 1, neck_channels=args.neck_channels), img_size=args.img_size)
    module = module.to(device)
    bf16 = device.type == "cuda" if args.precision == "auto" else args.precision == "bf16"
    module.bf16_inference = bf16
    module.hparams.channels_last = args.channels_last
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")
        if args.channels_last:
            module.net.to(memory_format=torch.channels_last)

    # training: random people-sized boxes on random images
    s = args.img_size
    images = torch.randint(0, 255, (args.batch, 3, s, s), dtype=torch.uint8, device=device)
    rng = np.random.default_rng(0)
    targets = torch.full((args.batch, 20, 5), -1.0)
    for b in range(args.batch):
        for j in range(20):
            x, y = rng.uniform(0, s - 60), rng.uniform(0, s - 150)
            h = rng.uniform(40, 150)
            targets[b, j] = torch.tensor([0, x, y, x + h * 0.4, y + h])
    targets = targets.to(device)
    module.train()
    opt = torch.optim.AdamW(module.parameters(), lr=1e-3)

    def train_step() -> None:
        x, t = augment_batch(images.float() / 255, targets)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = module._loss({"images": x, "targets": t})[0]["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        train_step()
    synchronize(device)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        train_step()
    synchronize(device)
    train_ips = args.batch * args.steps / (time.perf_counter() - t0)

    fw, fh = (int(v) for v in args.frame_size.lower().split("x"))
    frames = [np.random.default_rng(i).integers(0, 255, (fh, fw, 3), dtype=np.uint8) for i in range(args.batch)]
    module.eval()
    for _ in range(args.warmup):
        module.predict_frames(frames, batch_size=args.batch, img_size=s)
    synchronize(device)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        module.predict_frames(frames, batch_size=args.batch, img_size=s)
    synchronize(device)
    infer_ips = args.batch * args.steps / (time.perf_counter() - t0)
    print(
        json.dumps(
            {
                "benchmark": "detector",
                "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
                "precision": "bf16-mixed" if bf16 else "fp32",
                "channels_last": bool(args.channels_last and device.type == "cuda"),
                "backbone": module.net.config["backbone"],
                "batch": args.batch,
                "img_size": s,
                "frame_size": f"{fw}x{fh}",
                "train_images_per_s": round(train_ips, 2),
                "infer_images_per_s": round(infer_ips, 2),
            }
        )
    )
    return 0
