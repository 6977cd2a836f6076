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
