"""A DataLoader that Lightning checkpoints mid-epoch, so a killed run resumes where it stopped.

Lightning saves `state_dict()` of every training loader that has `state_dict` / `load_state_dict`
with each checkpoint, and calls `load_state_dict()` before the resumed epoch starts; it does not
save the random state. Without both, a run resumed from a mid-epoch `last.ckpt` restarts the epoch's
batch order from its first batch and draws other augmentations, so it ends with other weights.

The state kept here: how many batches this epoch's iterator delivered, the random state when the
epoch's sampler made its first draw (a shuffling sampler draws its permutation seed then), and the
random state at the save. On resume the next iteration restores the first, replays the sampler and
drops the delivered batches' indices (no data is loaded for them), then restores the second: the
remaining batches, their augmentation and dropout are the ones the uninterrupted run saw. This is
exact with `num_workers=0`; with workers the batch order is exact, while random draws made inside
the worker processes restart from fresh worker seeds.

Lightning applies the saved states only when it creates the training loader after restoring the loops;
a module that reads `trainer.estimated_stepping_batches` in `configure_optimizers` (our warm-up
cosine schedules do) has it created earlier, and the states are dropped. `RestoreLoaderStates`
(conf/callbacks/default.yaml) applies them at `on_train_start`, before the first batch is drawn.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch (and CUDA, once initialised) global random states."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        # plain lists and numbers: checkpoints are read back with torch.load(weights_only=True)
        "numpy": [v.tolist() if isinstance(v, np.ndarray) else v for v in np.random.get_state()],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` captured (the CUDA part only where CUDA is up)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, key, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(key, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class _ReplayingIndices:
    """The loader's batch sampler (or sampler), replaying a saved epoch position at its first draw."""

    def __init__(self, inner: Iterable[Any], loader: ResumableDataLoader) -> None:
        self.inner = inner
        self.loader = loader

    def __len__(self) -> int:
        return len(self.inner)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        resume, self.loader._resume = self.loader._resume, None
        if resume is not None and resume["skip"]:
            set_rng_state(resume["epoch_rng"])
        self.loader._epoch_rng = rng_state()
        indices = iter(self.inner)
        for _ in range(resume["skip"] if resume is not None else 0):
            next(indices)
        if resume is not None:
            set_rng_state(resume["rng"])
        yield from indices


class ResumableDataLoader(DataLoader):
    """`torch.utils.data.DataLoader` with a mid-epoch `state_dict` that Lightning saves and restores.

    Same arguments as `DataLoader` (Lightning re-creates it with them, e.g. to add a
    `DistributedSampler` under DDP); used by the datamodules for their training loaders.
    """

    _delivered: int = 0
    _epoch_rng: dict[str, Any] | None = None
    _pending: dict[str, Any] | None = None
    _resume: dict[str, Any] | None = None

    @property
    def _index_sampler(self) -> Any:
        return _ReplayingIndices(super()._index_sampler, self)

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        # a generator: the underlying iterator (and the sampler's first draw) starts at the first
        # `next`, after Lightning has called `set_epoch` on the samplers
        pending, self._pending = self._pending, None
        skip = 0
        if pending is not None:
            whole_epoch = pending["delivered"] >= self._length()
            skip = 0 if whole_epoch else pending["delivered"]
            self._resume = {"skip": skip, "epoch_rng": pending["epoch_rng"], "rng": pending["rng"]}
        self._delivered = skip
        for batch in super().__iter__():
            self._delivered += 1
            yield batch

    def _length(self) -> int:
        try:
            return len(self)
        except TypeError:  # an iterable dataset without a length: only the random state is restored
            return 0

    def state_dict(self) -> dict[str, Any]:
        """Batches delivered this epoch and the random states to replay them (saved in checkpoints)."""
        return {"delivered": self._delivered, "epoch_rng": self._epoch_rng, "rng": rng_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume at the saved position: applied when the next iteration starts."""
        if state.get("epoch_rng") is None:  # saved before the first epoch drew anything
            state = {**state, "delivered": 0, "epoch_rng": state["rng"]}
        self._pending = dict(state)


def _loaders(node: Any) -> list[Any]:
    """The loaders of `trainer.train_dataloader` (one loader, or a dict / list of them), in order."""
    if isinstance(node, Mapping):
        return [x for v in node.values() for x in _loaders(v)]
    if isinstance(node, Sequence) and not isinstance(node, (str, bytes)):
        return [x for v in node for x in _loaders(v)]
    return [node]


class RestoreLoaderStates(pl.Callback):
    """Apply the checkpoint's training-loader states at `on_train_start` (see the module docstring)."""

    def __init__(self) -> None:
        self._states: list[dict[str, Any]] = []

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        fit_state = checkpoint.get("loops", {}).get("fit_loop", {}).get("state_dict", {})
        self._states = list(fit_state.get("combined_loader", []))

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        states, self._states = self._states, []
        if not states:
            return
        loaders = [dl for dl in _loaders(trainer.train_dataloader) if isinstance(dl, ResumableDataLoader)]
        if len(loaders) != len(states):
            raise RuntimeError(f"the checkpoint holds {len(states)} training-loader states for {len(loaders)} loaders")
        for loader, state in zip(loaders, states, strict=True):
            loader.load_state_dict(state)


def make_loader(dataset: Any, num_workers: int = 0, pin_memory: bool = False, **kwargs: Any) -> ResumableDataLoader:
    """The datamodules' one loader recipe: resumable, pinned only where CUDA is, workers kept alive."""
    return ResumableDataLoader(
        dataset,
        num_workers=num_workers,
        pin_memory=pin_memory and torch.cuda.is_available(),
        persistent_workers=num_workers > 0,
        **kwargs,
    )
