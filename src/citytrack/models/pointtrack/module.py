"""`PointTrackModule`: trains the PointTrack embedding and embeds instances for the MOTS trackers.

Training (`train_tracker_with_val.py`, `config_mots/car_finetune_tracking.py` of the reference):
a batch is P instances x 3 crops (frames mid - d, mid, mid + d of the instance's track,
d in [1, nearby]); the loss is the batch-hard triplet loss with margin 0.2 on the Euclidean
distance of the *unnormalised* 32-d embeddings (the trackers' similarity is linear in that
distance); Adam, lr 2e-3, weight decay 1e-4, step decay.

Validation measures association directly on held-out sequences, from one embedding per
ground-truth instance (points drawn with a fixed seed, as at inference):

- `val/next_acc`: share of instances whose nearest embedding among the next frame's
  instances (same sequence) has the same identity, over instances present in both frames;
- `val/mAP`: mean average precision of ranking, for each instance, the instances of the
  next `val_nearby` frames of its sequence by distance (queries with a true match only).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from citytrack.models.pointtrack.net import PointTrackNet
from citytrack.models.pointtrack.points import PointSampler
from citytrack.models.reid.losses import TripletLoss, euclidean_dist


def association_metrics(
    embeddings: np.ndarray, sequence: np.ndarray, frame: np.ndarray, identity: np.ndarray, nearby: int = 10
) -> dict[str, float]:
    """`next_acc` and `mAP` (see the module docstring) of per-instance embeddings `(N, D)`.

    `sequence`, `frame`, `identity`: `(N,)` integers; identities are compared within a sequence.
    """
    emb = np.asarray(embeddings, dtype=np.float64)
    seq, frm, ids = (np.asarray(a, dtype=np.int64) for a in (sequence, frame, identity))
    hits = total = 0
    aps: list[float] = []
    for s in np.unique(seq):
        rows = np.flatnonzero(seq == s)
        frames = np.unique(frm[rows])
        by_frame = {int(f): rows[frm[rows] == f] for f in frames}
        for i, f in enumerate(frames):
            query = by_frame[int(f)]
            if i + 1 < len(frames):  # nearest neighbour in the next frame that has instances
                nxt = by_frame[int(frames[i + 1])]
                d = np.linalg.norm(emb[query, None] - emb[None, nxt], axis=2)
                present = np.isin(ids[query], ids[nxt])
                best = ids[nxt][d.argmin(axis=1)]
                hits += int((best == ids[query])[present].sum())
                total += int(present.sum())
            gallery = rows[(frm[rows] > f) & (frm[rows] <= f + nearby)]
            if len(gallery) == 0:
                continue
            d = np.linalg.norm(emb[query, None] - emb[None, gallery], axis=2)
            for qi, q in enumerate(query):
                match = ids[gallery][np.argsort(d[qi], kind="stable")] == ids[q]
                if match.any():
                    precision = np.cumsum(match) / np.arange(1, len(match) + 1)
                    aps.append(float(precision[match].mean()))
    return {
        "next_acc": hits / total if total else float("nan"),
        "mAP": float(np.mean(aps)) if aps else float("nan"),
    }


class PointTrackModule(pl.LightningModule):
    """Train/evaluate a `PointTrackNet`; `embed(image, masks, classes)` for the MOTS trackers.

    Args:
        net: the built `PointTrackNet`.
        sampler: crop and point settings, shared with the datamodule and stored in checkpoints.
        optimizer: partial optimizer (`_partial_: true`), called with the parameters.
        scheduler: partial epoch-wise scheduler (MultiStepLR) or None.
        triplet_margin: of the batch-hard triplet loss (0.2).
        eval_seed: seed of the point draw at inference and validation (deterministic embeddings).
        embed_batch: instances per forward pass in `embed`.
        val_nearby: frames after the query searched by `val/mAP`.
    """

    def __init__(
        self,
        net: PointTrackNet,
        sampler: PointSampler,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        triplet_margin: float = 0.2,
        eval_seed: int = 0,
        embed_batch: int = 64,
        val_nearby: int = 10,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["net", "sampler", "optimizer", "scheduler"])
        self.net = net
        self.sampler = sampler
        self.optimizer_fn, self.scheduler_fn = optimizer, scheduler
        self.triplet = TripletLoss(margin=triplet_margin, normalize=False)
        self._val: list[dict[str, torch.Tensor]] = []

    def forward(self, fg: torch.Tensor, env: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
        return self.net(fg, env, box)

    # ------------------------------------------------------------------ training
    def compute_losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Triplet loss of a P x 3 batch, plus the mean hardest positive / negative distances (logged)."""
        emb = self.net(batch["fg"], batch["env"], batch["box"])
        labels = batch["label"]
        loss = self.triplet(emb, labels)
        with torch.no_grad():
            dist = euclidean_dist(emb, emb)
            same = labels[:, None] == labels[None, :]
            d_ap = dist.masked_fill(~same, float("-inf")).amax(dim=1).mean()
            d_an = dist.masked_fill(same, float("inf")).amin(dim=1).mean()
        return {"loss": loss, "d_ap": d_ap, "d_an": d_an}

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        out = self.compute_losses(batch)
        bs = int(batch["label"].shape[0])
        self.log_dict({f"train/{k}": v.detach() for k, v in out.items()}, batch_size=bs)
        self.log("train/loss_step", out["loss"].detach(), prog_bar=True, batch_size=bs)
        return out["loss"]

    # ------------------------------------------------------------------ validation
    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        emb = self.net(batch["fg"], batch["env"], batch["box"])
        self._val.append(
            {"emb": emb.float().cpu(), **{k: batch[k].cpu() for k in ("sequence", "frame", "identity")}}
        )

    def on_validation_epoch_end(self) -> None:
        parts, self._val = self._val, []
        if self.trainer.sanity_checking or not parts:
            return
        cat = {k: torch.cat([p[k] for p in parts]).numpy() for k in parts[0]}
        metrics = association_metrics(
            cat["emb"], cat["sequence"], cat["frame"], cat["identity"], self.hparams.val_nearby
        )
        self.log_dict({f"val/{k}": v for k, v in metrics.items()}, prog_bar=True)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def embed(
        self,
        image: np.ndarray,
        masks: np.ndarray | torch.Tensor,
        classes: Sequence[int] | np.ndarray | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Embeddings `(N, out_dim)` (float32, CPU) of the N instance masks `(N, H, W)` of one BGR uint8 frame.

        Deterministic: the points are drawn with `eval_seed` on every call, no jitter, network in
        eval mode. `classes` decides which other masks count as "other instance" (same class).
        """
        if isinstance(classes, torch.Tensor):
            classes = classes.cpu().numpy()
        crops = self.sampler.crops(image, masks, classes)
        if not crops:
            return torch.zeros((0, self.net.out_dim))
        points = self.sampler.sample(crops, np.random.default_rng(self.hparams.eval_seed), train=False)
        was_training = self.net.training
        self.net.eval()
        try:
            out = []
            for start in range(0, len(points), self.hparams.embed_batch):
                part = {
                    k: v[start : start + self.hparams.embed_batch].to(self.device)
                    for k, v in points.tensors().items()
                }
                out.append(self.net(part["fg"], part["env"], part["box"]).float().cpu())
        finally:
            self.net.train(was_training)
        return torch.cat(out)

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_fn(params=[p for p in self.parameters() if p.requires_grad])
        if self.scheduler_fn is None:
            return optimizer
        scheduler = self.scheduler_fn(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch", "frequency": 1},
        }

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store what `load_pointtrack` needs to rebuild the module without the Hydra config."""
        checkpoint["pointtrack"] = {"net": self.net.config, "sampler": self.sampler.config}


def load_pointtrack(ckpt: str | Path, map_location: str | torch.device = "cpu") -> PointTrackModule:
    """A trained `PointTrackModule` (eval mode) from a Lightning checkpoint written by `train.py`."""
    state = torch.load(str(ckpt), map_location=map_location, weights_only=False)
    if "pointtrack" not in state:
        raise ValueError(f"{ckpt} is not a PointTrack checkpoint (no 'pointtrack' entry)")
    meta = state["pointtrack"]
    hparams = dict(state.get("hyper_parameters", {}))
    module = PointTrackModule(
        net=PointTrackNet(**meta["net"]),
        sampler=PointSampler(**meta["sampler"]),
        optimizer=torch.optim.Adam,
        **hparams,
    )
    module.load_state_dict(state["state_dict"])
    return module.to(map_location).eval()
