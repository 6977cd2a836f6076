"""Start a detector from another detector's weights, with a different class list.

Training a person + vehicle detector from scratch costs the CPU budget of the person one again;
starting from the person checkpoint reuses its backbone, neck, box and objectness branches and
its person classifier. Only the classification convs (`heads.*.cls_pred`, one output channel per
class) change shape: rows of classes the source knows (by name) are copied, the other rows keep
the fresh net's initialisation (default conv weights, bias at the `PRIOR_PROB` prior), so before
any training the expanded net scores the source's classes exactly as the source did.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from citytrack.models.detector.net import YoloxNet

log = logging.getLogger(__name__)

# net-config keys that must agree for weights to transfer (num_classes may differ)
_ARCH_KEYS = ("backbone", "out_indices", "neck_channels", "head_depth", "backbone_kwargs")


def _source_state(path: Path) -> tuple[dict[str, torch.Tensor], dict, list[str]]:
    """(net state dict without the `net.` prefix, net config, class names) of a detector checkpoint."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: detector checkpoint to initialise from does not exist")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict) or "net_config" not in ckpt or "state_dict" not in ckpt:
        raise ValueError(f"{path}: not a detector checkpoint (no net_config/state_dict)")
    state = ckpt["state_dict"]
    # the EMA weights when the run kept them (what it validated and exported), else the trained net
    prefix = "ema.module." if any(k.startswith("ema.module.") for k in state) else "net."
    net_state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not net_state:
        raise ValueError(f"{path}: checkpoint holds no detector net weights")
    hp = ckpt.get("hyper_parameters", {})
    n = int(ckpt["net_config"].get("num_classes", 1))
    names = [str(c) for c in hp.get("class_names", ["person"] if n == 1 else [])]
    if len(names) != n:
        raise ValueError(f"{path}: {len(names)} class names for {n} classes; cannot map classes by name")
    return net_state, dict(ckpt["net_config"]), names


@torch.no_grad()
def init_from_checkpoint(net: YoloxNet, path: str | Path, class_names: Sequence[str]) -> dict[str, int]:
    """Load `path`'s weights into `net` (class list `class_names`); returns target class -> source row copied.

    Every tensor except the classifier rows must match in shape; a different architecture
    raises naming the checkpoint and the differing config keys.
    """
    path = Path(path)
    src, src_config, src_names = _source_state(path)
    diff = [k for k in _ARCH_KEYS if src_config.get(k) != net.config.get(k)]
    if diff:
        raise ValueError(
            f"{path}: architecture differs from the configured net in {', '.join(diff)} "
            f"({ {k: src_config.get(k) for k in diff} } vs { {k: net.config.get(k) for k in diff} })"
        )
    if len(class_names) != net.num_classes:
        raise ValueError(f"{len(class_names)} class names for a net of {net.num_classes} classes")
    mapping = {name: src_names.index(name) for name in class_names if name in src_names}
    if not mapping:
        raise ValueError(f"{path}: no class in common ({src_names} vs {list(class_names)}): nothing to keep")
    own = net.state_dict()
    merged: dict[str, torch.Tensor] = {}
    for key, value in own.items():
        if key not in src:
            raise ValueError(f"{path}: weight {key} missing in the checkpoint")
        s = src[key].to(value.dtype)
        if ".cls_pred." in key:
            out = value.clone()  # fresh init (bias prior) for classes the source did not have
            for row, name in enumerate(class_names):
                if name in mapping:
                    out[row] = s[mapping[name]]
            merged[key] = out
        elif s.shape != value.shape:
            raise ValueError(f"{path}: weight {key} has shape {tuple(s.shape)}, the net needs {tuple(value.shape)}")
        else:
            merged[key] = s
    net.load_state_dict(merged)
    log.info("initialised from %s: classes %s copied, %s new", path, sorted(mapping),
             [c for c in class_names if c not in mapping])
    return mapping
