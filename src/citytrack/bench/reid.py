"""`python -m citytrack.bench reid`: ReID throughput, images/s for training and for feature extraction.

Training: full steps of `ReIDModule.compute_losses` (CE + triplet) with the kornia
augmentation, backward and AdamW, on random P x K batches (bf16 autocast and
channels_last on CUDA, as in training). Extraction: `FeatureExtractor` on random
1920x1080 BGR frames with `--boxes` boxes each (roi_align crops + embedding), the
tracker's path. Random pixels: the cost does not depend on the content.

`--eval-ckpt CKPT --eval-root DIR` also measures retrieval accuracy of a trained checkpoint
on a Market-1501 style folder (query + bounding_box_test), with and without k-reciprocal
re-ranking: `python -m citytrack.bench reid --eval-ckpt last.ckpt --eval-root data/synth/reid_eval/reid`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from citytrack.models.reid.augment import ReIDAugment
from citytrack.models.reid.backbones import ReIDNet
from citytrack.models.reid.extractor import FeatureExtractor
from citytrack.models.reid.module import ReIDModule
from citytrack.utils.device import resolve_device, synchronize
from citytrack.utils.io import atomic_open


def bench_training(backbone: str, height: int, width: int, p: int, k: int, steps: int, warmup: int,
                   device: torch.device) -> float:
    torch.manual_seed(0)
    module = ReIDModule(ReIDNet(backbone), optimizer=lambda params: torch.optim.AdamW(params, lr=3.5e-4),
                        num_classes=max(p * 4, 2)).to(device)
    aug = ReIDAugment()
    if device.type == "cuda":
        module.to(memory_format=torch.channels_last)
    opt = module.optimizer_fn(module.parameters())
    pids = torch.arange(p, device=device).repeat_interleave(k)
    images = torch.randint(0, 256, (p * k, 3, height, width), dtype=torch.uint8, device=device)
    use_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    module.train()
    elapsed = 0.0
    for step in range(warmup + steps):
        synchronize(device)
        t0 = time.perf_counter()
        x = aug(images.float().div(255.0))
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss = module.compute_losses({"image": x, "pid": pids})["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        synchronize(device)
        if step >= warmup:
            elapsed += time.perf_counter() - t0
    return steps * p * k / elapsed


def bench_extraction(backbone: str, height: int, width: int, frames: int, boxes: int, batch: int, warmup: int,
                     device: torch.device) -> float:
    torch.manual_seed(0)
    ext = FeatureExtractor(ReIDNet(backbone), input_size=(height, width), device=device, batch_size=batch)
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8) for _ in range(frames)]
    xy = rng.uniform(0, [1800, 900], size=(frames, boxes, 2))
    wh = rng.uniform([30, 60], [120, 180], size=(frames, boxes, 2))
    bxs = [np.concatenate([xy[i], wh[i]], axis=1).astype(np.float32) for i in range(frames)]
    for _ in range(warmup):
        ext(imgs[:1], bxs[:1])
    synchronize(device)
    t0 = time.perf_counter()
    ext(imgs, bxs)
    synchronize(device)
    return frames * boxes / (time.perf_counter() - t0)


def evaluate_checkpoint(ckpt: Path, root: Path, fmt: str, device: str, batch: int) -> dict[str, dict[str, float]]:
    """rank-1/5/10 and mAP of a checkpoint on root's query/gallery, plain and re-ranked (k1=20, k2=6, lambda=0.3)."""
    from citytrack.data.reid_datamodule import ReIDDataModule
    from citytrack.eval.reid_metrics import ReIDMetric

    ext = FeatureExtractor.from_checkpoint(ckpt, device=device)
    dm = ReIDDataModule(root=str(root), format=fmt, height=ext.input_size[0], width=ext.input_size[1],
                        eval_batch_size=batch, num_workers=0)
    dataset = dm._eval_set(root)
    feats, pids, cams, flags = [], [], [], []
    for b in dm._loader(dataset, batch_size=batch, shuffle=False):
        feats.append(ext.embed_crops(b["image"].to(ext.device).float().div(255.0)).cpu())
        pids.append(b["pid"]), cams.append(b["camid"]), flags.append(b["is_query"])
    out = {}
    for name, rerank in (("plain", False), ("re-ranked", True)):
        metric = ReIDMetric(rerank=rerank)
        metric.update(torch.cat(feats), torch.cat(pids), torch.cat(cams), torch.cat(flags))
        out[name] = {k: round(float(v), 4) for k, v in metric.compute().items()}
    out["sizes"] = {"query": int(torch.cat(flags).sum()), "gallery": int((~torch.cat(flags)).sum())}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m citytrack.bench reid", description=__doc__.split("\n")[0])
    ap.add_argument("--backbone", default="osnet_x0_25", help="osnet_x1_0, osnet_x0_25, resnet50, any timm name")
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--p", type=int, default=16)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--steps", type=int, default=10, help="timed training steps")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--frames", type=int, default=8, help="frames for the extraction benchmark")
    ap.add_argument("--boxes", type=int, default=32, help="boxes per frame")
    ap.add_argument("--batch", type=int, default=256, help="extractor batch size")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    ap.add_argument("--eval-ckpt", type=Path, default=None, help="also evaluate this ReIDModule checkpoint")
    ap.add_argument("--eval-root", type=Path, default=None, help="Market-1501 style folder for --eval-ckpt")
    ap.add_argument("--eval-format", default="market1501", choices=["market1501", "veri776"])
    ap.add_argument("--skip-speed", action="store_true", help="only run --eval-ckpt")
    args = ap.parse_args(argv)
    if (args.eval_ckpt is None) != (args.eval_root is None):
        ap.error("--eval-ckpt and --eval-root go together")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
    result: dict = {}
    if args.eval_ckpt is not None:
        acc = evaluate_checkpoint(args.eval_ckpt, args.eval_root, args.eval_format, str(device), args.batch)
        result["accuracy"] = acc
        print(f"| {args.eval_root} | query {acc['sizes']['query']} | gallery {acc['sizes']['gallery']} |")
        print("| ranking | rank-1 | rank-5 | rank-10 | mAP |\n|---|---|---|---|---|")
        for name in ("plain", "re-ranked"):
            a = acc[name]
            print(f"| {name} | {a['rank1']:.3f} | {a['rank5']:.3f} | {a['rank10']:.3f} | {a['mAP']:.3f} |")
        if args.skip_speed:
            if args.out is not None:
                with atomic_open(args.out) as fh:
                    json.dump(result, fh, indent=2)
            return 0
    train_ips = bench_training(args.backbone, args.height, args.width, args.p, args.k, args.steps, args.warmup, device)
    extract_ips = bench_extraction(args.backbone, args.height, args.width, args.frames, args.boxes, args.batch,
                                   args.warmup, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    result |= {
        "backbone": args.backbone, "input": [args.height, args.width], "device": name,
        "batch": args.p * args.k, "train_images_per_s": round(train_ips, 1),
        "extract_crops_per_s": round(extract_ips, 1), "frames": args.frames, "boxes_per_frame": args.boxes,
    }
    print(f"| backbone | input | device | train img/s (batch {args.p * args.k}) | extraction crops/s |")
    print("|---|---|---|---|---|")
    print(f"| {args.backbone} | {args.height}x{args.width} | {name} | {train_ips:.1f} | {extract_ips:.1f} |")
    if args.out is not None:
        with atomic_open(args.out) as fh:
            json.dump(result, fh, indent=2)
    return 0
