"""Checkpoints written atomically: a killed run leaves the previous `last.ckpt`, never half of one.

Lightning's `TorchCheckpointIO` writes through an fsspec transaction: for a local path the bytes go to a
file in the system temp folder that is then `shutil.move`d onto the checkpoint. When the temp folder
is on another filesystem (a node-local /tmp, checkpoints on NFS or Lustre: the usual cluster set-up),
that move is a copy, and a job killed during the copy leaves a truncated `last.ckpt`. Here the file is
written beside its target, flushed to disk, and renamed with `os.replace` (`citytrack.utils.io`).
Remote URLs (`s3://...`) keep Lightning's own path. Configured as a trainer plugin
(`conf/trainer/default.yaml`), so every checkpoint the strategy saves goes through it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.utilities.types import _PATH
from pytorch_lightning.plugins.io import TorchCheckpointIO

from citytrack.utils.io import atomic_open


class AtomicCheckpointIO(TorchCheckpointIO):
    """`TorchCheckpointIO` whose local writes are a temp file in the same folder plus a rename."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        if "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options for local checkpoints")
        with atomic_open(os.fspath(path), "wb") as handle:
            torch.save(checkpoint, handle)


def load_net_from_checkpoint(
    path: str | Path,
    entry: str,
    build: Callable[[dict[str, Any]], torch.nn.Module],
    owner: str,
    prefixes: Sequence[str] = ("net.",),
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The net of a LightningModule checkpoint that stores how to rebuild it under `entry` (a dict
    with the net's `config`), without the training config: `build(config)` makes the net, the weights
    under the first prefix of `prefixes` that the checkpoint has fill it exactly (so a weight average,
    `ema.module.`, listed first wins over the trained `net.`). Returns (net, the `entry` dict).
    Errors name the file and the `owner` module (a missing file, no `entry`, weights that do not fit)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {owner} checkpoint not found")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict) or entry not in ckpt or "state_dict" not in ckpt:
        raise ValueError(f"{path}: not a {owner} checkpoint (no '{entry}' entry)")
    meta = dict(ckpt[entry])
    net = build(dict(meta["config"]))
    keys = ckpt["state_dict"].keys()
    prefix = next((p for p in prefixes if any(key.startswith(p) for key in keys)), prefixes[0])
    state = {key[len(prefix) :]: value for key, value in ckpt["state_dict"].items() if key.startswith(prefix)}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: checkpoint does not match its saved net config: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    return net, meta
