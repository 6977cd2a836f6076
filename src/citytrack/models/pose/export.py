"""A `KeypointModule` training checkpoint -> the small file that ships:
`python -m citytrack.models.pose.export ckpt=logs/RUN/checkpoints/last.ckpt out=checkpoints/pose.ckpt [half=false]`.

Keeps what inference (`KeypointExtractor.from_checkpoint`, `pose=synthetic`) and evaluation
(`train.py ... train=false test=true ckpt_path=...`) read: the weights, the hyperparameters and the
`pose_net` entry; drops the optimizer and scheduler state (three times the weights with AdamW).
`half=true` stores floating-point weights as fp16 (a GPU-sized net on its way back from a device);
both readers load them into fp32 nets. A run that kept a weight average (`model.ema_decay`) ships the
average as the net (and `ema_decay=0`), the way the detector's export does.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from citytrack.models.ema import EMA_PREFIX
from citytrack.utils.io import atomic_path

KEPT = ("epoch", "global_step", "pytorch-lightning_version", "state_dict", "hyper_parameters", "pose_net")


def export_pose_checkpoint(ckpt: str | Path, out: str | Path, half: bool = False) -> Path:
    """Write `ckpt`'s inference entries to `out` (atomically); errors name the file."""
    ckpt, out = Path(ckpt), Path(out)
    if not ckpt.is_file():
        raise FileNotFoundError(f"{ckpt}: KeypointModule checkpoint not found")
    source = torch.load(ckpt, map_location="cpu", weights_only=False)
    if not isinstance(source, dict) or "pose_net" not in source or "state_dict" not in source:
        raise ValueError(f"{ckpt}: not a KeypointModule checkpoint (no 'pose_net' entry)")
    payload = {k: source[k] for k in KEPT if k in source}
    state = source["state_dict"]
    if any(k.startswith(EMA_PREFIX) for k in state):
        state = {"net." + k[len(EMA_PREFIX) :]: v for k, v in state.items() if k.startswith(EMA_PREFIX)}
        payload["hyper_parameters"] = {**payload.get("hyper_parameters", {}), "ema_decay": 0.0}
    if half:
        state = {k: v.half() if v.dtype.is_floating_point else v for k, v in state.items()}
    payload["state_dict"] = state
    with atomic_path(out) as tmp:
        torch.save(payload, tmp)
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI: `ckpt=PATH out=FILE [half=true|false]`."""
    args = dict(a.split("=", 1) for a in (sys.argv[1:] if argv is None else argv) if "=" in a)
    if "ckpt" not in args or "out" not in args:
        print("usage: python -m citytrack.models.pose.export ckpt=PATH out=FILE [half=false]")
        return 2
    path = export_pose_checkpoint(args["ckpt"], args["out"], half=args.get("half", "false").lower() in ("1", "true", "yes"))
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
