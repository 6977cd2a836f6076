"""`ReIDModule`: the LightningModule that trains a `ReIDNet` with the strong-baseline recipe.

Label-smoothed ID cross-entropy on the BNNeck feature + batch-hard triplet on the pooled
feature (+ optional center loss, + optional auxiliary attribute heads such as vehicle type
and orientation, AI City 2019), GPU augmentation after the batch transfer, warm-up +
cosine learning rate, CMC/mAP each validation epoch with a ranking picture.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from citytrack.eval.reid_metrics import ReIDMetric, draw_ranking
from citytrack.models.reid.augment import ReIDAugment
from citytrack.models.reid.backbones import ReIDNet
from citytrack.models.reid.heads import Classifier
from citytrack.models.reid.losses import CenterLoss, CrossEntropyLabelSmooth, TripletLoss
from citytrack.utils.io import atomic_path

log = logging.getLogger(__name__)


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    warmup_steps: int = 500,
    total_steps: int | None = None,
    warmup_factor: float = 0.01,
    min_lr_ratio: float = 0.01,
) -> LambdaLR:
    """Linear warm-up from `warmup_factor * lr` to `lr`, then cosine decay to `min_lr_ratio * lr`.

    `total_steps=None` is filled in by `ReIDModule` from the trainer's estimated steps.
    """
    if total_steps is None or total_steps < 1:
        raise ValueError("warmup_cosine needs total_steps >= 1 (ReIDModule fills it from the trainer)")
    warmup_steps = max(0, min(int(warmup_steps), int(total_steps) - 1))

    def factor(step: int) -> float:
        if step < warmup_steps:
            return warmup_factor + (1.0 - warmup_factor) * step / max(warmup_steps, 1)
        progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def _partial_target(fn: Any) -> Any:
    """The wrapped callable of a functools.partial or of Hydra's deferred `_partial_` target."""
    for attr in ("func", "_target_", "target"):
        if hasattr(fn, attr) and callable(getattr(fn, attr)):
            return getattr(fn, attr)
    return fn


def _partial_keywords(fn: Any) -> dict[str, Any]:
    for attr in ("keywords", "_kwargs", "kwargs"):
        value = getattr(fn, attr, None)
        if isinstance(value, dict):
            return value
    return {}


class ReIDModule(pl.LightningModule):
    """Train/evaluate a ReID embedding network.

    Args:
        net: the built `ReIDNet` (backbone + pooling + BNNeck).
        optimizer: partial optimizer (`_partial_: true`), called with parameter groups.
        scheduler: partial scheduler or None; `warmup_cosine` gets `total_steps` filled in.
        num_classes: training identities; None = taken from the datamodule in `setup`.
        aux_heads: extra classification heads on the BNNeck feature, name -> classes
            (e.g. `{vehicle_type: 8, orientation: 8}`); trained on batch keys of the same
            name, label -1 = unknown.
    """

    def __init__(
        self,
        net: ReIDNet,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        num_classes: int | None = None,
        ce_weight: float = 1.0,
        label_smoothing: float = 0.1,
        triplet_weight: float = 1.0,
        triplet_margin: float | None = 0.3,
        center_weight: float = 0.0,
        aux_heads: dict[str, int] | None = None,
        aux_weight: float = 0.5,
        augment: ReIDAugment | None = None,
        backbone_lr_mult: float = 1.0,
        rerank: bool = False,
        rerank_k1: int = 20,
        rerank_k2: int = 6,
        rerank_lambda: float = 0.3,
        flip_test: bool = False,
        ranking_queries: int = 6,
        ranking_topk: int = 8,
        channels_last: bool = True,
        compile: bool = False,
    ) -> None:
        super().__init__()
        # only plain values go into the checkpoint (torch.load(weights_only=True) must read it back)
        self.save_hyperparameters(logger=False, ignore=["net", "augment", "optimizer", "scheduler"])
        self.optimizer_fn, self.scheduler_fn = optimizer, scheduler
        self.net = net
        self.augment = augment
        self.ce = CrossEntropyLabelSmooth(label_smoothing)
        self.triplet = TripletLoss(margin=triplet_margin)
        self.aux_heads = nn.ModuleDict({k: Classifier(net.feat_dim, int(n)) for k, n in (aux_heads or {}).items()})
        self.classifier: Classifier | None = None
        self.center: CenterLoss | None = None
        if num_classes is not None:
            self._build_heads(int(num_classes))
        metric_kw = {"rerank": rerank, "k1": rerank_k1, "k2": rerank_k2, "lambda_value": rerank_lambda}
        self.val_metric = ReIDMetric(topk=ranking_topk, **metric_kw)
        self.test_metric = ReIDMetric(topk=ranking_topk, **metric_kw)

    # ------------------------------------------------------------------ construction
    def _build_heads(self, num_classes: int) -> None:
        if num_classes < 2:
            raise ValueError(f"ReID training needs at least 2 identities, got {num_classes}")
        self.classifier = Classifier(self.net.feat_dim, num_classes)
        if self.hparams.center_weight > 0:
            self.center = CenterLoss(num_classes, self.net.feat_dim)
        self.hparams["num_classes"] = num_classes

    def setup(self, stage: str) -> None:
        if self.classifier is None:
            dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
            if dm is None or not hasattr(dm, "num_classes"):
                raise ValueError("ReIDModule: num_classes is not set and the datamodule does not expose num_classes")
            self._build_heads(int(dm.num_classes))
        if self.hparams.compile and stage == "fit":
            self.net = torch.compile(self.net)  # type: ignore[assignment]

    def on_fit_start(self) -> None:
        if self.hparams.channels_last and self.device.type == "cuda":
            self.net.to(memory_format=torch.channels_last)

    # ------------------------------------------------------------------ data on device
    def on_after_batch_transfer(self, batch: dict[str, torch.Tensor], dataloader_idx: int) -> dict[str, torch.Tensor]:
        img = batch["image"]
        if img.dtype == torch.uint8:
            img = img.float().div_(255.0)
        if self.trainer is not None and self.trainer.training and self.augment is not None:
            img = self.augment(img)
        if self.hparams.channels_last and img.is_cuda:
            img = img.contiguous(memory_format=torch.channels_last)
        batch = dict(batch)
        batch["image"] = img
        return batch

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Retrieval embedding (BNNeck feature), not normalised."""
        return self.net(images)

    # ------------------------------------------------------------------ training
    def compute_losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """All loss terms for a batch; `loss` is their weighted sum. Exposed for tests."""
        if self.classifier is None:
            raise RuntimeError("ReIDModule has no classifier yet: pass num_classes or train with a datamodule")
        feat, bn_feat = self.net.forward_train(batch["image"])
        pids = batch["pid"]
        logits = self.classifier(bn_feat)
        hp = self.hparams
        out: dict[str, torch.Tensor] = {}
        out["ce"] = self.ce(logits, pids)
        total = hp.ce_weight * out["ce"]
        if hp.triplet_weight > 0:
            out["triplet"] = self.triplet(feat, pids)
            total = total + hp.triplet_weight * out["triplet"]
        if self.center is not None:
            out["center"] = self.center(feat, pids)
            total = total + hp.center_weight * out["center"]
        for name, head in self.aux_heads.items():
            if name in batch:
                target = batch[name].long()
                if bool((target >= 0).any()):
                    out[name] = nn.functional.cross_entropy(head(bn_feat).float(), target, ignore_index=-1)
                    total = total + hp.aux_weight * out[name]
        out["acc"] = (logits.argmax(1) == pids).float().mean().detach()
        out["loss"] = total
        return out

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        losses = self.compute_losses(batch)
        bs = batch["pid"].shape[0]
        self.log_dict({f"train/{k}": v.detach() for k, v in losses.items()}, prog_bar=False, batch_size=bs)
        self.log("train/loss_step", losses["loss"].detach(), prog_bar=True, batch_size=bs)
        return losses["loss"]

    # ------------------------------------------------------------------ evaluation
    def _embed(self, images: torch.Tensor) -> torch.Tensor:
        feats = self.net(images)
        if self.hparams.flip_test:
            feats = feats + self.net(torch.flip(images, dims=[3]))
        return feats

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.val_metric.update(self._embed(batch["image"]), batch["pid"], batch["camid"], batch["is_query"], batch["index"])

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.test_metric.update(self._embed(batch["image"]), batch["pid"], batch["camid"], batch["is_query"], batch["index"])

    def on_validation_epoch_end(self) -> None:
        self._finish_eval(self.val_metric, "val")

    def on_test_epoch_end(self) -> None:
        self._finish_eval(self.test_metric, "test")

    def _finish_eval(self, metric: ReIDMetric, prefix: str) -> None:
        if self.trainer.sanity_checking:  # a few batches: ranking them says nothing
            metric.reset()
            return
        results = metric.compute()
        self.log_dict({f"{prefix}/{k}": v for k, v in results.items()}, prog_bar=True, sync_dist=False)
        if self.hparams.ranking_queries > 0:
            try:
                self._log_ranking(metric, prefix)
            except Exception as err:  # noqa: BLE001 - a picture must never stop training
                log.warning("could not log the ranking picture: %s", err)
        metric.reset()

    def _eval_dataset(self, prefix: str) -> Any:
        dm = getattr(self.trainer, "datamodule", None)
        return getattr(dm, "val_set" if prefix == "val" else "test_set", None)

    def _log_ranking(self, metric: ReIDMetric, prefix: str) -> None:
        ranking, dataset = metric.last_ranking, self._eval_dataset(prefix)
        if ranking is None or dataset is None or not hasattr(dataset, "load_rgb"):
            return
        valid = np.where(ranking.valid)[0]
        if len(valid) == 0:
            return
        pick = valid[np.linspace(0, len(valid) - 1, min(self.hparams.ranking_queries, len(valid))).astype(int)]
        queries = [dataset.load_rgb(int(ranking.query_index[i])) for i in pick]
        gallery = [[dataset.load_rgb(int(g)) if g >= 0 else None for g in ranking.gallery_index[i]] for i in pick]
        picture = draw_ranking(queries, gallery, ranking.match[pick])
        self.log_picture(f"{prefix}/ranking", picture)

    def log_picture(self, key: str, picture: np.ndarray) -> None:
        """W&B image / TensorBoard image where those loggers run; always a PNG under the run folder."""
        import cv2
        from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger

        step = self.current_epoch
        for lg in self.loggers:
            if isinstance(lg, WandbLogger):
                lg.log_image(key=key, images=[picture], step=self.global_step)
            elif isinstance(lg, TensorBoardLogger):
                lg.experiment.add_image(key, picture, global_step=self.global_step, dataformats="HWC")
        root = Path(self.trainer.default_root_dir)
        path = root / "rankings" / f"{key.replace('/', '_')}_epoch{step:03d}.png"
        with atomic_path(path) as tmp:
            cv2.imwrite(str(tmp), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        backbone = [p for p in self.net.backbone.parameters() if p.requires_grad]
        backbone_ids = {id(p) for p in backbone}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in backbone_ids]
        groups = [{"params": rest}]
        if backbone:
            base_lr = getattr(self.optimizer_fn, "keywords", {}).get("lr")
            group: dict[str, Any] = {"params": backbone}
            if base_lr is not None and self.hparams.backbone_lr_mult != 1.0:
                group["lr"] = base_lr * self.hparams.backbone_lr_mult
            groups.insert(0, group)
        optimizer = self.optimizer_fn(params=groups)
        if self.scheduler_fn is None:
            return optimizer
        sched_fn = self.scheduler_fn
        kwargs: dict[str, Any] = {}
        if _partial_target(sched_fn) is warmup_cosine and _partial_keywords(sched_fn).get("total_steps") is None:
            kwargs["total_steps"] = max(int(self.trainer.estimated_stepping_batches), 1)
        scheduler = sched_fn(optimizer=optimizer, **kwargs)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store what `FeatureExtractor.from_checkpoint` needs to rebuild the net without the config."""
        net = getattr(self.net, "_orig_mod", self.net)
        dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        checkpoint["reid_net"] = {
            "config": dict(net.config),
            "input_size": [int(getattr(dm, "height", 256)), int(getattr(dm, "width", 128))],
        }
