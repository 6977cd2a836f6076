"""SpatialEmbeddingModule: the MOTS instance segmenter (SpatialEmbedding, as PointTrack uses it).

Batches arrive as `{"image": (B, 3, H, W) RGB, "ids": (B, H, W) KITTI MOTS ids}`; the datamodule
turns uint8 images into [0, 1] floats (and augments training crops) in `on_after_batch_transfer`.
Training regresses `SpatialEmbeddingLoss` on crops. Validation runs full frames (padded
right/bottom to a multiple of 8), clusters them with `Clusterer` and logs `val/AP50` (mask AP at
IoU 0.5), `val/precision`, `val/recall`, `val/F1` and `val/loss`, plus a picture of the seed map
and the clusters of the first validation frame.

`segment` is the inference entry point of the MOTS runner: a batch of BGR uint8 frames on any
device in, one `InstanceMasks` per frame out (on the frames' device), bf16 autocast and
channels_last on CUDA.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytorch_lightning as pl
import torch

from citytrack.models.spatial_embedding.cluster import Clusterer, InstanceMasks
from citytrack.models.spatial_embedding.loss import SpatialEmbeddingLoss
from citytrack.models.spatial_embedding.metrics import MaskMatchEvaluator
from citytrack.models.spatial_embedding.net import BranchedERFNet, pad_to_stride
from citytrack.utils.io import atomic_path
from citytrack.visualize.draw import draw_label, draw_masks

log = logging.getLogger(__name__)


class SpatialEmbeddingModule(pl.LightningModule):
    """SpatialEmbedding instance segmentation: branched ERFNet, Lovász embedding loss, seed clustering.

    Args:
        net: a built `BranchedERFNet`; its `classes` are the KITTI class ids of the seed channels.
        criterion: a built `SpatialEmbeddingLoss` (term weights live there).
        clusterer: a built `Clusterer` (inference thresholds live there).
        optimizer / scheduler: partials (`_partial_: true`); a scheduler taking `total_iters`
            or `total_steps` (PolynomialLR, OneCycleLR) gets the trainer's step count and steps per batch.
        channels_last: NHWC memory layout on CUDA.
        log_images: log the seed map and clusters of the first validation frame each epoch.
    """

    def __init__(
        self,
        net: BranchedERFNet,
        criterion: SpatialEmbeddingLoss,
        clusterer: Clusterer,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        channels_last: bool = True,
        log_images: bool = True,
    ) -> None:
        super().__init__()
        if criterion.n_sigma != net.n_sigma or clusterer.n_sigma != net.n_sigma:
            raise ValueError(
                f"n_sigma differs: net {net.n_sigma}, criterion {criterion.n_sigma}, clusterer {clusterer.n_sigma}"
            )
        self.save_hyperparameters(
            logger=False, ignore=["net", "criterion", "clusterer", "optimizer", "scheduler"]
        )
        self.net = net
        self.criterion = criterion
        self.clusterer = clusterer
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.val_eval = MaskMatchEvaluator(net.classes)
        self._picture: np.ndarray | None = None

    @property
    def classes(self) -> list[int]:
        """KITTI class ids of the seed channels (1 car, 2 pedestrian)."""
        return self.net.classes

    # ------------------------------------------------------------------ core
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Raw output `(B, 2 + n_sigma + C, H, W)` of RGB [0, 1] images of any size (padded, then cropped back)."""
        h, w = images.shape[-2:]
        x = pad_to_stride(images)
        if self.hparams.channels_last and x.is_cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)[..., :h, :w]

    def on_fit_start(self) -> None:
        if self.hparams.channels_last and self.device.type == "cuda":
            self.net.to(memory_format=torch.channels_last)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        losses = self.criterion(self(batch["image"]), batch["ids"], self.classes)
        bs = batch["image"].shape[0]
        self.log("train/loss", losses["loss"], prog_bar=True, batch_size=bs)
        for k in ("instance", "variance", "seed"):
            self.log(f"train/{k}", losses[k].detach(), batch_size=bs)
        return losses["loss"]

    # ------------------------------------------------------------------ validation
    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        images, ids = batch["image"], batch["ids"]
        out = self(images)
        losses = self.criterion(out, ids, self.classes)
        self.log("val/loss", losses["loss"], batch_size=len(images), sync_dist=True)
        sizes = batch.get("size", torch.tensor([images.shape[-2:]] * len(images)))
        scales = batch.get("scale", torch.ones(len(images)))
        for b, ((h, w), scale) in enumerate(zip(sizes.tolist(), scales.tolist(), strict=True)):
            pred = out[b, :, :h, :w].float()
            inst = self.clusterer(pred, self.classes, min_pixel=round(self.clusterer.min_pixel * scale**2))
            self.val_eval.update(inst.masks, inst.classes, inst.scores, ids[b, :h, :w])
            if b == 0 and batch_idx == 0 and self.hparams.log_images:
                self._picture = self._draw(images[b, :, :h, :w], pred, inst)

    def on_validation_epoch_end(self) -> None:
        metrics = self.val_eval.compute()
        self.val_eval.reset()
        for k, v in metrics.items():
            self.log(f"val/{k}", v, prog_bar=k in ("AP50", "F1"), sync_dist=True)
        if self._picture is not None and not self.trainer.sanity_checking:
            try:
                self.log_picture("val/segmentation", self._picture)
            except Exception as err:  # noqa: BLE001 - a picture must never stop training
                log.warning("could not log the segmentation picture: %s", err)
        self._picture = None

    def _draw(self, image: torch.Tensor, pred: torch.Tensor, inst: InstanceMasks) -> np.ndarray:
        """BGR picture: the clusters over the frame above the seed map (max over classes, JET colours)."""
        rgb = (image.float().clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        frame = np.ascontiguousarray(rgb[..., ::-1])
        draw_masks(frame, inst.masks.cpu().numpy(), np.arange(1, len(inst) + 1), labels=False)
        seeds = torch.sigmoid(pred[2 + self.net.n_sigma :]).amax(0)
        heat = cv2.applyColorMap((seeds.clamp(0, 1) * 255).to(torch.uint8).cpu().numpy(), cv2.COLORMAP_JET)
        draw_label(frame, f"{len(inst)} instances", (4, 18), (255, 255, 255))
        draw_label(heat, "seed", (4, 18), (255, 255, 255))
        return np.concatenate([frame, heat], 0)

    def log_picture(self, key: str, picture: np.ndarray) -> None:
        """W&B image / TensorBoard image where those loggers run; always a PNG under the run folder."""
        from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger

        rgb = np.ascontiguousarray(picture[..., ::-1])
        for lg in self.loggers:
            if isinstance(lg, WandbLogger):
                lg.log_image(key=key, images=[rgb], step=self.global_step)
            elif isinstance(lg, TensorBoardLogger):
                lg.experiment.add_image(key, rgb, global_step=self.global_step, dataformats="HWC")
        path = Path(self.trainer.default_root_dir) / "predictions" / f"val_epoch{self.current_epoch:03d}.png"
        with atomic_path(path) as tmp:
            cv2.imwrite(str(tmp), picture)

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise ValueError("SpatialEmbeddingModule needs an optimizer partial to train")
        optimizer = self.optimizer_factory(params=[p for p in self.net.parameters() if p.requires_grad])
        if self.scheduler_factory is None:
            return optimizer
        func = getattr(self.scheduler_factory, "func", self.scheduler_factory)
        params = inspect.signature(func).parameters
        given = getattr(self.scheduler_factory, "keywords", {})
        kwargs: dict[str, Any] = {}
        for name in ("total_iters", "total_steps"):
            if name in params and given.get(name) is None:
                kwargs[name] = max(int(self.trainer.estimated_stepping_batches), 1)
        scheduler = self.scheduler_factory(optimizer=optimizer, **kwargs)
        interval = "step" if kwargs else "epoch"
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["spatial_embedding"] = {
            "net": dict(self.net.config),
            "criterion": dict(self.criterion.config),
            "clusterer": dict(self.clusterer.config),
        }

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def segment(self, images: torch.Tensor, batch_size: int = 8) -> list[InstanceMasks]:
        """Instances of a batch of BGR uint8 frames `(B, 3, H, W)` on any device; results on that device.

        Frames run through the net `batch_size` at a time on the module's device (bf16 autocast
        and channels_last on CUDA), padded right/bottom to a multiple of 8 and cropped back, then
        each is clustered in float32.
        """
        if images.ndim != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
            raise ValueError(
                f"segment takes uint8 BGR frames (B, 3, H, W), got {images.dtype} {tuple(images.shape)}"
            )
        was_training = self.training
        self.eval()
        device = self.device
        results: list[InstanceMasks] = []
        try:
            for start in range(0, len(images), batch_size):
                x = (
                    images[start : start + batch_size]
                    .to(device, non_blocking=True)
                    .flip(1)
                    .float()
                    .div_(255.0)
                )
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                    out = self(x)
                results += [self.clusterer(o.float(), self.classes).to(images.device) for o in out]
        finally:
            self.train(was_training)
        return results


def save_inference_checkpoint(module: SpatialEmbeddingModule, path: str | Path, half: bool = True) -> Path:
    """A small checkpoint for inference (`checkpoints/*.pt`): the net's weights (fp16 by default) and the
    net / loss / clustering settings, no optimizer state; `load_spatial_embedding` reads it like a training one."""
    state = {
        k: (v.half() if half and v.dtype.is_floating_point else v).detach().cpu().clone()
        for k, v in module.state_dict().items()
    }
    payload = {
        "spatial_embedding": {
            "net": dict(module.net.config),
            "criterion": dict(module.criterion.config),
            "clusterer": dict(module.clusterer.config),
        },
        "state_dict": state,
        "hyper_parameters": {
            k: module.hparams[k] for k in ("channels_last", "log_images") if k in module.hparams
        },
        "format": "citytrack-spatial-embedding-inference-v1",
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_spatial_embedding(
    path: str | Path, map_location: str | torch.device = "cpu", **cluster: Any
) -> SpatialEmbeddingModule:
    """Rebuild a trained segmenter from its Lightning checkpoint or a `save_inference_checkpoint` file.

    The net, loss and clustering settings are stored in it; `cluster` overrides clustering
    settings (`threshold`, `min_pixel`, `seed_thresh`, `proposal_thresh`, `min_unclustered`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: SpatialEmbedding checkpoint does not exist")
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    if "spatial_embedding" not in ckpt or "state_dict" not in ckpt:
        raise ValueError(f"{path}: not a SpatialEmbeddingModule checkpoint (no spatial_embedding/state_dict)")
    parts = ckpt["spatial_embedding"]
    unknown = set(cluster) - set(parts["clusterer"]) | ({"n_sigma"} & set(cluster))
    if unknown:
        raise ValueError(
            f"unknown clustering settings {sorted(unknown)}; known: {sorted(set(parts['clusterer']) - {'n_sigma'})}"
        )
    hparams = {
        k: v for k, v in ckpt.get("hyper_parameters", {}).items() if k in ("channels_last", "log_images")
    }
    module = SpatialEmbeddingModule(
        BranchedERFNet(**parts["net"]),
        SpatialEmbeddingLoss(**parts["criterion"]),
        Clusterer(**{**parts["clusterer"], **cluster}),
        **hparams,
    )
    module.load_state_dict(ckpt["state_dict"])  # fp16 inference checkpoints are cast to the module's fp32
    return module.to(map_location).eval()
