"""DetectorModule: the YOLOX-style detector (person, or person and vehicle classes) as a LightningModule.

Batches arrive as `{"images": (B, 3, S, S) RGB, "targets": (B, M, 5) class,x1,y1,x2,y2}` in
letterboxed input pixels (class -1 = padding); the datamodule's GPU augmentation turns
uint8 images into [0, 1] floats in `on_after_batch_transfer`. Validation logs COCO
`val/mAP`, `val/mAP50` and recall at the trackers' score thresholds (over all classes), with
more than one class also `val/AP50_<class>` per class, plus a picture of predictions. With
`ema_decay > 0` an exponential moving average of the weights (YOLOX's `ModelEMA`) is kept next to the trained net and used for validation, testing and inference.
`predict_frames` is the inference entry point of the multi-camera runner:
BGR frames of any sizes in, per-frame `(N, 5) x, y, w, h, score` arrays out (`(N, 6)` with the class
index with `return_class=True`; `classes=` keeps some classes), one batched forward per frame size
on the module's device. `init_from=<checkpoint>` starts the net from another detector's weights,
classes matched by name (`warmstart.py`).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytorch_lightning as pl
import torch
from torchmetrics.detection import MeanAveragePrecision

from citytrack.data.letterbox import letterbox_batch, native_input_size, rect_input_size
from citytrack.eval.detection import TRACKER_THRESHOLDS, DetectionEvaluator, draw_predictions
from citytrack.models.detector.losses import YoloxLoss
from citytrack.models.detector.net import YoloxNet
from citytrack.models.detector.postprocess import postprocess, suppress_xywh
from citytrack.models.detector.warmstart import init_from_checkpoint
from citytrack.models.ema import ModelEma
from citytrack.utils.boxes import xyxy_to_xywh
from citytrack.utils.io import atomic_path

log = logging.getLogger(__name__)


class DetectorModule(pl.LightningModule):
    """Anchor-free one-stage detector (YOLOX family) with SimOTA assignment.

    Args:
        net: a built `YoloxNet`.
        optimizer / scheduler: partials (`_partial_: true`); a scheduler that takes
            `total_steps` (OneCycleLR) gets the trainer's estimated step count and steps per batch.
        num_classes / class_names: detection classes (`person`; `person, car, bus, truck` for the
            city detector); the names travel in every checkpoint and the exported `.pt`.
        img_size: square network input of inference (`predict_frames`).
        score_thresh: inference score threshold (0.1 = ByteTrack's low threshold, so the
            tracker sees every detection it can use); eval_score_thresh: for mAP (COCO keeps low scores).
        nms_thresh / max_det: class-aware NMS IoU and detections per image.
        channels_last: NHWC memory layout on GPU (faster convs with bf16 tensor cores).
        ema_decay / ema_tau: weight EMA (0 = off); see `ModelEma`.
        init_from: a detector checkpoint (`.ckpt` or exported `.pt`) whose weights start the net;
            classifier rows are matched by class name, new classes start at the bias prior.
            Only used when the module is built from config (never stored in exported checkpoints).
    """

    # inference under bf16 autocast on CUDA (fp32 on the CPU regardless); a benchmark's fp32 baseline clears it
    bf16_inference: bool = True

    def __init__(
        self,
        net: YoloxNet,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        num_classes: int = 1,
        class_names: Sequence[str] = ("person",),
        img_size: int = 640,
        score_thresh: float = 0.1,
        eval_score_thresh: float = 0.001,
        nms_thresh: float = 0.65,
        max_det: int = 300,
        box_weight: float = 5.0,
        center_radius: float = 2.5,
        simota_topk: int = 10,
        recall_thresholds: Sequence[float] = TRACKER_THRESHOLDS,
        channels_last: bool = True,
        log_images: int = 4,
        ema_decay: float = 0.0,
        ema_tau: float = 2000.0,
        init_from: str | None = None,
    ) -> None:
        super().__init__()
        if net.num_classes != num_classes:
            raise ValueError(f"net has {net.num_classes} classes but num_classes={num_classes}")
        if len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class_names {list(class_names)} for num_classes={num_classes}")
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"], logger=False)
        if init_from:  # before the EMA copy: both start from the loaded weights
            init_from_checkpoint(net, init_from, list(class_names))
        self.net = net
        self.ema = ModelEma(net, ema_decay, ema_tau) if ema_decay > 0 else None
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.criterion = YoloxLoss(num_classes, box_weight, center_radius, simota_topk)
        self.val_eval = DetectionEvaluator(recall_thresholds)
        self.test_eval = DetectionEvaluator(recall_thresholds)
        # AP@.5 per class (COCO, pycocotools) next to the all-class evaluator; one class needs none
        self.class_ap = {s: per_class_ap50() for s in ("val", "test")} if num_classes > 1 else {}
        self._picture: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] | None = None

    # ------------------------------------------------------------------ core
    @property
    def eval_net(self) -> YoloxNet:
        """The net used for validation and inference: the EMA when kept, else the trained one."""
        return self.ema.module if self.ema is not None else self.net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.eval_net(images)

    def _images(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype == torch.uint8:
            images = images.float() / 255.0
        if self.hparams.channels_last and images.is_cuda:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def on_fit_start(self) -> None:
        if self.hparams.channels_last and self.device.type == "cuda":
            self.net.to(memory_format=torch.channels_last)
            if self.ema is not None:
                self.ema.module.to(memory_format=torch.channels_last)

    def _loss(self, batch: dict[str, torch.Tensor], net: YoloxNet | None = None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        net = self.net if net is None else net
        images = self._images(batch["images"])
        outputs, centres, strides = net.decode(net.forward_levels(images))
        return self.criterion(outputs, batch["targets"].float(), centres, strides), outputs

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        losses, _ = self._loss(batch)
        bs = batch["images"].shape[0]
        self.log("train/loss", losses["loss"], prog_bar=True, batch_size=bs)
        for k in ("loss_box", "loss_obj", "loss_cls", "num_fg", "fg_per_gt", "mean_iou"):
            self.log(f"train/{k}", losses[k], batch_size=bs)
        return losses["loss"]

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update(self.net)

    # ------------------------------------------------------------------ evaluation
    def _eval_step(self, batch: dict[str, torch.Tensor], evaluator: DetectionEvaluator, stage: str, batch_idx: int) -> None:
        losses, outputs = self._loss(batch, self.eval_net)
        self.log(f"{stage}/loss", losses["loss"], batch_size=batch["images"].shape[0], sync_dist=True)
        dets = postprocess(outputs, self.hparams.eval_score_thresh, self.hparams.nms_thresh, self.hparams.max_det)
        preds, targets = [], []
        for d, t in zip(dets, batch["targets"], strict=True):
            t = t[t[:, 0] != -1]
            preds.append({"boxes": d[:, :4], "scores": d[:, 4], "labels": d[:, 5].long()})
            targets.append(eval_targets(t, self.hparams.num_classes))
        evaluator.update(preds, targets)
        if stage in self.class_ap:
            self.class_ap[stage].update(
                [{k: v.detach().float().cpu() if k != "labels" else v.cpu() for k, v in p.items()} for p in preds],
                [{k: v.cpu() for k, v in t.items()} for t in targets],
            )
        if stage == "val" and batch_idx == 0 and self.hparams.log_images:
            n = self.hparams.log_images
            imgs = batch["images"][:n]
            imgs = imgs if imgs.dtype == torch.uint8 else (imgs.clamp(0, 1) * 255).to(torch.uint8)
            bgr = [np.ascontiguousarray(i.permute(1, 2, 0).cpu().numpy()[..., ::-1]) for i in imgs]
            self._picture = (
                bgr,
                [d.cpu().numpy() for d in dets[:n]],
                [t["boxes"][t["iscrowd"] == 0].cpu().numpy() for t in targets[:n]],
            )

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, self.val_eval, "val", batch_idx)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, self.test_eval, "test", batch_idx)

    def _log_metrics(self, evaluator: DetectionEvaluator, stage: str) -> dict[str, float]:
        metrics = evaluator.compute()
        evaluator.reset()
        if stage in self.class_ap:
            metrics.update(class_ap50(self.class_ap[stage], self.hparams.class_names))
        for k, v in metrics.items():
            self.log(f"{stage}/{k}", v, prog_bar=k in ("mAP50", "mAP"), sync_dist=True)
        return metrics

    def on_validation_epoch_end(self) -> None:
        self._log_metrics(self.val_eval, "val")
        if self._picture is not None and not self.trainer.sanity_checking:
            self._save_picture(*self._picture)
        self._picture = None

    def on_test_epoch_end(self) -> None:
        self._log_metrics(self.test_eval, "test")

    def _save_picture(self, images: list[np.ndarray], dets: list[np.ndarray], gts: list[np.ndarray]) -> None:
        """Predictions on validation frames: a PNG in the run folder, and a W&B image when W&B logs."""
        grid = draw_predictions(images, dets, gts, score_thresh=0.3)
        root = Path(self.trainer.default_root_dir if self.trainer.log_dir is None else self.trainer.log_dir)
        path = root / "predictions" / f"val_epoch{self.current_epoch:03d}.png"
        with atomic_path(path) as tmp:
            cv2.imwrite(str(tmp), grid)
        for lg in self.loggers:
            if type(lg).__name__ == "WandbLogger":
                lg.log_image(key="val/predictions", images=[grid[..., ::-1].copy()], step=self.global_step)

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise ValueError("DetectorModule needs an optimizer partial to train")
        decay, no_decay = [], []
        for name, p in self.net.named_parameters():
            if not p.requires_grad:
                continue
            (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
        optimizer = self.optimizer_factory(
            params=[{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]
        )
        if self.scheduler_factory is None:
            return optimizer
        kwargs: dict[str, Any] = {}
        func = getattr(self.scheduler_factory, "func", self.scheduler_factory)
        takes_total = "total_steps" in inspect.signature(func).parameters
        if takes_total:
            kwargs["total_steps"] = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(optimizer=optimizer, **kwargs)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step" if takes_total else "epoch"},
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["net_config"] = dict(self.net.config)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def predict_frames(
        self,
        frames: Sequence[np.ndarray],
        batch_size: int = 8,
        score_thresh: float | None = None,
        img_size: int | Sequence[int] | str | None = None,
        classes: Sequence[int] | None = None,
        return_class: bool = False,
    ) -> list[np.ndarray]:
        """Detect in BGR frames from any number of cameras; `(N, 5) x, y, w, h, score` per frame.

        Frames of the same size are letterboxed and run together on the module's device
        (bf16 autocast on CUDA); boxes come back in each frame's own pixels, clipped.
        `classes`: class indices to keep (None: all); `return_class`: a sixth column, the class index.
        """
        results: list[np.ndarray | None] = [None] * len(frames)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, f in enumerate(frames):
            if f is None or f.ndim != 3 or f.shape[2] != 3 or f.size == 0:
                raise ValueError(f"frame {i}: expected an HxWx3 BGR image, got {None if f is None else f.shape}")
            groups.setdefault(f.shape, []).append(i)
        for idx in groups.values():
            for start in range(0, len(idx), batch_size):
                chunk = idx[start : start + batch_size]
                x = torch.from_numpy(np.stack([frames[i] for i in chunk])).to(self.device, non_blocking=True)
                x = x.permute(0, 3, 1, 2).flip(1)  # BGR -> RGB
                dets = self.predict_images(x, batch_size, score_thresh, img_size, classes=classes,
                                           return_class=return_class)
                for i, d in zip(chunk, dets, strict=True):
                    results[i] = d
        return [r if r is not None else np.zeros((0, 6 if return_class else 5)) for r in results]

    @torch.no_grad()
    def predict_images(
        self,
        images: torch.Tensor,
        batch_size: int = 8,
        score_thresh: float | None = None,
        img_size: int | Sequence[int] | str | None = None,
        rect: bool = False,
        classes: Sequence[int] | None = None,
        return_class: bool = False,
    ) -> list[np.ndarray]:
        """Detect in a same-size batch `(B, 3, H, W)` of RGB images (uint8, or float in [0, 1]).

        The multi-camera runner uploads each step's frames once and passes the same tensor here
        and to the ReID crops, so frames stay on the device from upload to features.
        Rows are `x, y, w, h, score` (plus the class index with `return_class`); `classes` keeps
        only those class indices (NMS is per class, so dropping a class never revives a box).
        `img_size`: None, the checkpoint's size; "native", the frames' own resolution
        (`data.letterbox.native_input_size`, at most 1280: a large frame shrunk to the checkpoint's
        size loses its far people); or a list of sizes, a multi-scale test: one pass per size, the
        boxes pooled and suppressed once more per class at `nms_thresh` (one person, one box).
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
        if isinstance(img_size, str):
            if img_size != "native":
                raise ValueError(f"img_size: an int, a list of ints or 'native', got {img_size!r}")
            img_size = native_input_size(images.shape[-1], images.shape[-2])
        if img_size is not None and not isinstance(img_size, int | np.integer):
            sizes = [int(s) for s in img_size]
            if not sizes:
                raise ValueError("img_size: an empty list of input sizes")
            if len(sizes) > 1:
                return self._predict_multi_scale(images, sizes, batch_size, score_thresh, rect, classes, return_class)
            img_size = sizes[0]
        was_training = self.training
        self.eval()
        size = int(img_size or self.hparams.img_size)
        thresh = self.hparams.score_thresh if score_thresh is None else score_thresh
        device = self.device
        keep_cls = None
        if classes is not None:
            keep_cls = torch.as_tensor([int(c) for c in classes], device=device)
            bad = [int(c) for c in classes if not 0 <= int(c) < self.hparams.num_classes]
            if bad:
                raise ValueError(f"classes {bad} out of range for a {self.hparams.num_classes}-class detector")
        if rect:  # pad only to the stride: same scale as the square letterbox, fewer pixels
            size = rect_input_size(images.shape[-1], images.shape[-2], size)  # type: ignore[assignment]
        out_dets: list[np.ndarray] = []
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size].to(device, non_blocking=True)
            # uint8 is letterboxed in pixel units then scaled; float in [0, 1] pads with the scaled value
            x, lb = letterbox_batch(x, size)
            x = self._images(x / 255.0 if images.dtype == torch.uint8 else x)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda" and self.bf16_inference):
                out = self.eval_net(x)
            for d in postprocess(out, thresh, self.hparams.nms_thresh, self.hparams.max_det):
                if keep_cls is not None:
                    d = d[torch.isin(d[:, 5].long(), keep_cls)]
                boxes = xyxy_to_xywh(lb.to_image(d[:, :4]).float().cpu().numpy())
                keep = (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
                cols = [boxes, d[:, 4:5].float().cpu().numpy()]
                if return_class:
                    cols.append(d[:, 5:6].float().cpu().numpy())
                out_dets.append(np.concatenate(cols, 1)[keep])
        self.train(was_training)
        return out_dets

    def _predict_multi_scale(self, images: torch.Tensor, sizes: Sequence[int], batch_size: int,
                             score_thresh: float | None, rect: bool, classes: Sequence[int] | None,
                             return_class: bool) -> list[np.ndarray]:
        """`predict_images` at each of `sizes`, pooled per image and suppressed per class."""
        passes = [self.predict_images(images, batch_size, score_thresh, size, rect, classes, return_class=True)
                  for size in sizes]
        out: list[np.ndarray] = []
        for per_size in zip(*passes, strict=True):
            d = np.concatenate(per_size, 0)
            if len(d) > 1:
                d = d[suppress_xywh(d, self.hparams.nms_thresh, classes=d[:, 5])[: int(self.hparams.max_det)]]
            out.append(d if return_class else d[:, :5])
        return out


def save_inference_checkpoint(module: DetectorModule, path: str | Path, half: bool = True) -> Path:
    """A small checkpoint for inference: the evaluation net's weights only (the EMA when kept), fp16 by default.

    `load_detector` reads it like a training checkpoint; it holds no optimizer state and no
    second copy of the weights, so a small detector fits in a few MB.
    """
    state = {f"net.{k}": (v.half() if half and v.dtype.is_floating_point else v).detach().cpu().clone()
             for k, v in module.eval_net.state_dict().items()}
    hparams = {k: v for k, v in dict(module.hparams).items() if k not in ("net", "optimizer", "scheduler")}
    hparams["ema_decay"] = 0.0
    hparams["init_from"] = None  # the weights are here; rebuilding must not load the source again
    hparams["class_names"] = [str(c) for c in module.hparams.class_names]
    payload = {"net_config": dict(module.net.config), "state_dict": state, "hyper_parameters": hparams,
               "format": "citytrack-detector-inference-v1"}
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_detector(path: str | Path, map_location: str | torch.device = "cpu") -> DetectorModule:
    """Rebuild a trained detector from a Lightning checkpoint (net config + hyperparameters are stored in it)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: detector checkpoint does not exist")
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    if "net_config" not in ckpt or "state_dict" not in ckpt:
        raise ValueError(f"{path}: not a DetectorModule checkpoint (no net_config/state_dict)")
    net = YoloxNet(**ckpt["net_config"])
    hparams = {k: v for k, v in ckpt.get("hyper_parameters", {}).items() if k not in ("net", "optimizer", "scheduler")}
    hparams.pop("init_from", None)  # the checkpoint's own weights replace the starting point
    module = DetectorModule(net, **hparams)
    module.load_state_dict(ckpt["state_dict"])  # fp16 inference checkpoints are cast to the module's fp32
    return module.to(map_location).eval()


def eval_targets(targets: torch.Tensor, num_classes: int) -> dict[str, torch.Tensor]:
    """`(M, 5) class, x1, y1, x2, y2` (class -2: ignore region) -> COCO evaluator targets.

    An ignore region is a crowd box of every class (COCO matches crowds per category): a
    detection of any class on a barely visible object is neither a true nor a false positive.
    """
    crowd = targets[:, 0] == -2
    real = targets[~crowd]
    ign = targets[crowd]
    boxes = torch.cat([real[:, 1:5], ign[:, 1:5].repeat(num_classes, 1)])
    ign_labels = torch.arange(num_classes, device=targets.device).repeat_interleave(len(ign))
    labels = torch.cat([real[:, 0].long(), ign_labels])
    iscrowd = torch.cat([torch.zeros(len(real), dtype=torch.long, device=targets.device),
                         torch.ones(len(ign_labels), dtype=torch.long, device=targets.device)])
    return {"boxes": boxes, "labels": labels, "iscrowd": iscrowd}


def per_class_ap50() -> MeanAveragePrecision:
    """COCO AP at IoU 0.5 per class (pycocotools, 100 detections per image, as `DetectionEvaluator`)."""
    return MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend="pycocotools", iou_thresholds=[0.5],
                                class_metrics=True)


def class_ap50(metric: MeanAveragePrecision, class_names: Sequence[str]) -> dict[str, float]:
    """`{"AP50_<class>": AP}` from `per_class_ap50()` (then reset); a class without gt boxes gets -1, as COCO."""
    res = metric.compute()
    metric.reset()
    out = {f"AP50_{name}": -1.0 for name in class_names}
    for c, ap in zip(res["classes"].reshape(-1).tolist(), res["map_per_class"].reshape(-1).tolist(), strict=True):
        if 0 <= int(c) < len(class_names):
            out[f"AP50_{class_names[int(c)]}"] = float(ap)
    return out
