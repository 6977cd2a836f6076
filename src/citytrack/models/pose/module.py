"""`KeypointModule`: trains a `PoseNet` on top-down person crops with heatmap regression.

Batches arrive as uint8 crops with COCO keypoints and the person's box in crop pixels; on the
device each crop is warped into the network input (`augment.py`: jitter and flip while training,
the plain box region otherwise) and Gaussian target heatmaps are drawn. Targets encode COCO
visibility: a visible joint peaks at 1, an occluded one at `occluded_target`, a joint outside the
frame has an empty map (weight `unlabelled_weight`; the synthetic ground truth only leaves joints
unlabelled outside the frame, so the network learns to say "not here"), so the decoded peak is a
confidence that separates visible, hidden and absent joints. Loss: per-joint weighted MSE.
Validation: OKS keypoint AP (pycocotools) and PCK@0.2 in crop pixels, and a picture of
predicted skeletons. With `ema_decay > 0` a moving average of the weights (`models.ema.ModelEma`) is kept
beside the trained net and is what validation, testing, export and warm starts use.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytorch_lightning as pl
import torch

from citytrack.models.ema import ModelEma
from citytrack.models.pose.augment import PoseAugment, apply_matrices, input_from_crop_matrices, warp_crops
from citytrack.models.pose.extractor import load_pose_net
from citytrack.models.pose.heatmaps import (
    COCO_FEET,
    PLAIN_CUT,
    CropCut,
    box_regions,
    crop_cuts,
    cut_regions,
    decode_heatmaps,
    flip_averaged,
    gaussian_targets,
    multi_cut_heatmaps,
)
from citytrack.models.pose.metrics import KeypointEvaluator
from citytrack.models.pose.net import HEATMAP_STRIDE, PoseNet
from citytrack.utils.io import atomic_path

log = logging.getLogger(__name__)


class KeypointModule(pl.LightningModule):
    """Top-down keypoint training and evaluation.

    Args:
        net: a built `PoseNet`.
        optimizer / scheduler: partials (`_partial_: true`); a scheduler taking `total_steps`
            (OneCycleLR) gets the trainer's estimated steps and steps per batch.
        augment: training jitter (None = none).
        input_size: network input (height, width).
        padding: the crop region is the box at the input's aspect ratio enlarged by this (as at inference).
        sigma: target Gaussian's standard deviation in heatmap cells.
        occluded_target / unlabelled_weight: see the module docstring.
        flip_test: average the heatmaps of the crop and of its mirror at evaluation.
        test_scales: region scales of a multi-scale test (`heatmaps.multi_cut_heatmaps`; [1.0] = none):
            each crop is cut at every scale about its centre and the heatmaps averaged on one grid.
        test_shifts: offsets (x, y, heatmap cells) at which each of those is also cut ([[0, 0]] = none).
        test_angles: angles (degrees) at which each scale is also cut ([0] = none; `heatmaps.crop_cuts`).
        blur_sigma: DARK's blur of the heatmaps before decoding, in cells (`heatmaps.modulate`; 0 = none).
        separate_feet: decode the two ankles at distinct peaks and name them left and right by the
            knees and their own maps (`heatmaps.COCO_FEET`), as the extractor does.
        log_images: crops in the validation picture (0 = none).
        ema_decay / ema_tau: weight EMA (0 = off); see `ModelEma`.
        init_from: a `KeypointModule` checkpoint whose weights start the net (a warm start, e.g. on a
            changed world); its net config must equal `net`'s, except that a net without skip
            connections may start one with them (`PoseNet(skip=True)`).
    """

    def __init__(
        self,
        net: PoseNet,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        augment: PoseAugment | None = None,
        input_size: tuple[int, int] = (256, 128),
        padding: float = 1.25,
        sigma: float = 2.0,
        occluded_target: float = 0.5,
        unlabelled_weight: float = 1.0,
        flip_test: bool = False,
        test_scales: tuple[float, ...] | list[float] = (1.0,),
        test_shifts: Sequence[Sequence[float]] = ((0.0, 0.0),),
        test_angles: Sequence[float] = (0.0,),
        blur_sigma: float = 1.0,
        separate_feet: bool = True,
        log_images: int = 16,
        channels_last: bool = True,
        ema_decay: float = 0.0,
        ema_tau: float = 2000.0,
        init_from: str | None = None,
    ) -> None:
        super().__init__()
        # plain values only in the checkpoint (torch.load(weights_only=True) must read it back): the
        # hyperparameters are read from these locals, so a Hydra ListConfig becomes a list here
        input_size = [int(input_size[0]), int(input_size[1])]
        test_scales = [float(scale) for scale in test_scales]
        test_shifts = [[float(v) for v in shift] for shift in test_shifts]
        test_angles = [float(angle) for angle in test_angles]
        test_cuts = crop_cuts(test_scales, test_shifts, test_angles)  # raises on bad values
        self.save_hyperparameters(logger=False, ignore=["net", "augment", "optimizer", "scheduler"])
        if init_from:
            self._warm_start(net, init_from)
        self.net = net
        self.ema = ModelEma(net, ema_decay, ema_tau) if ema_decay > 0 else None
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.augment = augment
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.test_cuts = test_cuts
        self.val_eval = KeypointEvaluator()
        self.test_eval = KeypointEvaluator()
        self._picture: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @staticmethod
    @torch.no_grad()
    def _warm_start(net: PoseNet, path: str) -> None:
        source, _ = load_pose_net(path)
        adds_skips = net.config["skip"] and not source.config["skip"]
        drops_skips = source.config["skip"] and not net.config["skip"]
        if {**source.config, "skip": net.config["skip"]} != dict(net.config) or drops_skips:
            raise ValueError(f"{path}: its net config {source.config} differs from the configured {net.config}")
        # a net without skips starts one with them: its laterals begin silent (`PoseNet`), all else is loaded
        missing, _ = net.load_state_dict(source.state_dict(), strict=not adds_skips)
        if any(not key.startswith("lateral.") for key in missing):
            raise ValueError(f"{path}: weights missing for {[k for k in missing if not k.startswith('lateral.')]}")
        log.info("keypoint net warm-started from %s", path)

    # ------------------------------------------------------------------ data on device
    def prepare_batch(self, batch: dict[str, torch.Tensor], train: bool) -> dict[str, torch.Tensor]:
        """Warp crops into inputs; keypoints to input pixels; `matrix` maps input back to crop pixels."""
        img = batch["image"]
        img = img.float().div_(255.0) if img.dtype == torch.uint8 else img.float()
        kp = batch["keypoints"].float()
        out = dict(batch)
        if train and self.augment is not None:
            regions = box_regions(batch["bbox"].float(), self.input_size, self.hparams.padding)
            out["input"], out["target_kp"] = self.augment(img, kp, regions, self.input_size)
            if self.hparams.channels_last and out["input"].is_cuda:
                out["input"] = out["input"].contiguous(memory_format=torch.channels_last)
        else:
            out["input"], m = self.cut(img, batch["bbox"].float())
            tk = kp.clone()
            tk[..., :2] = apply_matrices(torch.linalg.inv(m), kp[..., :2])
            out["target_kp"], out["matrix"] = tk, m
        return out

    def cut(self, images: torch.Tensor, boxes: torch.Tensor, cut: CropCut = PLAIN_CUT) -> tuple[torch.Tensor, torch.Tensor]:
        """Network inputs of the boxes' crop regions (`box_regions`, cut as `cut` says: `heatmaps.CropCut`) from
        crops in [0, 1], and the input -> crop matrices."""
        regions = box_regions(boxes, self.input_size, self.hparams.padding)
        angle = None
        if not cut.plain:
            regions = cut_regions(regions, cut, self.input_size, HEATMAP_STRIDE)
            angle = torch.full((len(regions),), math.radians(cut.angle), device=regions.device, dtype=regions.dtype)
        m = input_from_crop_matrices(regions, self.input_size, angle=angle)
        inputs = warp_crops(images, m, self.input_size)
        if self.hparams.channels_last and inputs.is_cuda:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        return inputs, m

    def on_after_batch_transfer(self, batch: dict[str, torch.Tensor], dataloader_idx: int) -> dict[str, torch.Tensor]:
        training = self._trainer is not None and self.trainer.training
        return self.prepare_batch(batch, training)

    def on_fit_start(self) -> None:
        if self.hparams.channels_last and self.device.type == "cuda":
            self.net.to(memory_format=torch.channels_last)
            if self.ema is not None:
                self.ema.module.to(memory_format=torch.channels_last)

    @property
    def eval_net(self) -> PoseNet:
        """The net that evaluates: the weight average when one is kept."""
        return self.ema.module if self.ema is not None else self.net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    # ------------------------------------------------------------------ training
    def targets(self, keypoints: torch.Tensor, heatmap_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Target heatmaps and per-joint weights `(B, J)` from input-pixel keypoints `(B, J, 3)`."""
        v = keypoints[..., 2]
        amp = torch.where(v >= 2, 1.0, torch.where(v >= 1, self.hparams.occluded_target, 0.0)).to(keypoints.dtype)
        weight = torch.where(v > 0, 1.0, self.hparams.unlabelled_weight).to(keypoints.dtype)
        return gaussian_targets(keypoints[..., :2], heatmap_size, HEATMAP_STRIDE, self.hparams.sigma, amp), weight

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Weighted heatmap MSE of a prepared batch (`prepare_batch`)."""
        pred = self.net(batch["input"]).float()
        target, weight = self.targets(batch["target_kp"], tuple(pred.shape[-2:]))
        return (((pred - target) ** 2).mean(dim=(2, 3)) * weight).mean()

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.compute_loss(batch)
        self.log("train/loss", loss.detach(), prog_bar=True, batch_size=len(batch["input"]))
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update(self.net)

    # ------------------------------------------------------------------ evaluation
    def heatmaps(self, inputs: torch.Tensor) -> torch.Tensor:
        """Heatmaps of network inputs, averaged with the mirrored input's (left/right swapped) under flip test."""
        net = self.eval_net
        return flip_averaged(net, inputs) if self.hparams.flip_test else net(inputs).float()

    def eval_heatmaps(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Heatmaps of a prepared evaluation batch on its plain crops' grid, averaged over its test cuts
        (`test_scales`, `test_shifts`, `test_angles`)."""
        if len(self.test_cuts) == 1 and self.test_cuts[0].plain:
            return self.heatmaps(batch["input"])
        img = batch["image"]
        img = img.float().div(255.0) if img.dtype == torch.uint8 else img.float()
        boxes = batch["bbox"].float()

        def heatmaps_at(cut: CropCut) -> torch.Tensor:
            return self.heatmaps(batch["input"] if cut.plain else self.cut(img, boxes, cut)[0])

        return multi_cut_heatmaps(heatmaps_at, self.test_cuts)

    def _eval_step(self, batch: dict[str, torch.Tensor], evaluator: KeypointEvaluator, batch_idx: int, stage: str) -> None:
        pairs = COCO_FEET if self.hparams.separate_feet else ()
        dec = decode_heatmaps(self.eval_heatmaps(batch), HEATMAP_STRIDE, pairs, blur_sigma=self.hparams.blur_sigma)
        crop = dec.clone()
        crop[..., :2] = apply_matrices(batch["matrix"], dec[..., :2])
        crop[..., 2] = crop[..., 2].clamp(0, 1)
        gt = batch["keypoints"].float().cpu().numpy()
        evaluator.update(batch["image_id"].cpu().numpy(), crop.cpu().numpy(), gt, batch["bbox"].float().cpu().numpy())
        if stage == "val" and batch_idx == 0 and self.hparams.log_images:
            n = int(self.hparams.log_images)
            images = (batch["input"][:n].float().clamp(0, 1) * 255).byte().permute(0, 2, 3, 1).cpu().numpy()[..., ::-1]
            self._picture = (np.ascontiguousarray(images), dec[:n].cpu().numpy(), batch["target_kp"][:n].cpu().numpy())

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, self.val_eval, batch_idx, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, self.test_eval, batch_idx, "test")

    def on_validation_epoch_end(self) -> None:
        self._finish(self.val_eval, "val")
        if self._picture is not None and not self.trainer.sanity_checking:
            try:
                self._save_picture(*self._picture)
            except Exception as err:  # noqa: BLE001 - a picture must never stop training
                log.warning("could not log the skeleton picture: %s", err)
        self._picture = None

    def on_test_epoch_end(self) -> None:
        self._finish(self.test_eval, "test")

    def _finish(self, evaluator: KeypointEvaluator, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        dataset = getattr(dm, f"{stage}_set", None)
        metrics = evaluator.compute(getattr(dataset, "coco", None))
        evaluator.reset()
        for k, v in metrics.items():
            self.log(f"{stage}/{k}", v, prog_bar=k in ("AP", "PCK@0.2"))

    def _save_picture(self, images: np.ndarray, pred: np.ndarray, truth: np.ndarray) -> None:
        """Predicted skeletons (and the true joints as dots) on validation inputs: a PNG in the run
        folder, and a W&B / TensorBoard image where those loggers run."""
        from citytrack.visualize.draw import draw_skeletons

        tiles = []
        for img, p, t in zip(images, pred, truth, strict=True):
            tile = img.copy()
            for x, y, v in t:
                if v > 0:
                    cv2.circle(tile, (round(x), round(y)), 2, (255, 255, 255), -1, cv2.LINE_AA)
            tiles.append(draw_skeletons(tile, p[None], conf_thresh=0.3))
        cols = min(8, len(tiles))
        while len(tiles) % cols:
            tiles.append(np.zeros_like(tiles[0]))
        grid = np.vstack([np.hstack(tiles[i : i + cols]) for i in range(0, len(tiles), cols)])
        root = Path(self.trainer.default_root_dir if self.trainer.log_dir is None else self.trainer.log_dir)
        path = root / "predictions" / f"val_skeletons_epoch{self.current_epoch:03d}.png"
        with atomic_path(path) as tmp:
            cv2.imwrite(str(tmp), grid)
        for lg in self.loggers:
            name = type(lg).__name__
            if name == "WandbLogger":
                lg.log_image(key="val/skeletons", images=[grid[..., ::-1].copy()], step=self.global_step)
            elif name == "TensorBoardLogger":
                lg.experiment.add_image("val/skeletons", grid[..., ::-1].copy(), global_step=self.global_step, dataformats="HWC")

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise ValueError("KeypointModule needs an optimizer partial to train")
        decay, no_decay = [], []
        for name, p in self.net.named_parameters():
            if p.requires_grad:
                (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
        optimizer = self.optimizer_factory(params=[{"params": decay}, {"params": no_decay, "weight_decay": 0.0}])
        if self.scheduler_factory is None:
            return optimizer
        func = getattr(self.scheduler_factory, "func", self.scheduler_factory)
        kwargs: dict[str, Any] = {}
        given = getattr(self.scheduler_factory, "keywords", {}).get("total_steps")
        if "total_steps" in inspect.signature(func).parameters and given is None:
            kwargs["total_steps"] = max(int(self.trainer.estimated_stepping_batches), 1)
        scheduler = self.scheduler_factory(optimizer=optimizer, **kwargs)
        interval = "step" if "total_steps" in inspect.signature(func).parameters else "epoch"
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """What `KeypointExtractor.from_checkpoint` needs to rebuild the net without the training config."""
        if "hyper_parameters" in checkpoint:
            checkpoint["hyper_parameters"]["init_from"] = None  # the weights are here now
        checkpoint["pose_net"] = {"config": dict(self.net.config), "input_size": list(self.input_size),
                                  "padding": float(self.hparams.padding)}
