"""YOLOX loss: SimOTA targets, GIoU box loss, BCE objectness and IoU-aware BCE classification."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import generalized_box_iou_loss

from citytrack.models.detector.assign import simota_assign
from citytrack.utils.boxes import cxcywh_to_xyxy

IGNORE_CLASS = -2


class YoloxLoss(nn.Module):
    """Sum of `box_weight * GIoU + obj BCE + cls BCE`, each normalised by the number of foreground anchors.

    Targets come as a padded tensor `(B, M, 5)` of `class, x1, y1, x2, y2` in input pixels,
    with class `-1` marking padding (images may have no boxes at all) and `-2` ignore regions:
    anchors centred in an ignore region that SimOTA left as background get no objectness loss.
    """

    def __init__(
        self,
        num_classes: int,
        box_weight: float = 5.0,
        center_radius: float = 2.5,
        topk: int = 10,
        iou_weight: float = 3.0,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.box_weight = box_weight
        self.center_radius = center_radius
        self.topk = topk
        self.iou_weight = iou_weight

    def forward(
        self, outputs: torch.Tensor, targets: torch.Tensor, centres: torch.Tensor, strides: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """`outputs (B, A, 5 + C)` from `YoloxNet.forward`; returns the total and its parts."""
        outputs = outputs.float()
        boxes = cxcywh_to_xyxy(outputs[..., :4])
        obj = outputs[..., 4]
        cls = outputs[..., 5:]
        obj_target = torch.zeros_like(obj)
        obj_weight = torch.ones_like(obj)
        box_pred, box_target, cls_pred, cls_target = [], [], [], []
        num_gt = 0
        for b in range(outputs.shape[0]):
            valid = targets[b, :, 0] >= 0
            gt = targets[b][valid]
            num_gt += len(gt)
            ignore = targets[b][targets[b, :, 0] == IGNORE_CLASS, 1:5]
            if len(ignore):
                x, y = centres[:, 0][None], centres[:, 1][None]
                inside = (x > ignore[:, 0:1]) & (x < ignore[:, 2:3]) & (y > ignore[:, 1:2]) & (y < ignore[:, 3:4])
                obj_weight[b, inside.any(0)] = 0.0
            a = simota_assign(
                boxes[b].detach(),
                cls[b].detach(),
                obj[b].detach(),
                centres,
                strides,
                gt[:, 1:5],
                gt[:, 0].long(),
                self.center_radius,
                self.topk,
                self.iou_weight,
            )
            if a.num_fg == 0:
                continue
            obj_target[b, a.fg_mask] = 1.0
            obj_weight[b, a.fg_mask] = 1.0
            box_pred.append(boxes[b, a.fg_mask])
            box_target.append(gt[a.gt_index, 1:5])
            cls_pred.append(cls[b, a.fg_mask])
            cls_target.append(F.one_hot(gt[a.gt_index, 0].long(), self.num_classes).float() * a.iou[:, None])
        num_fg = max(sum(len(p) for p in box_pred), 1)
        loss_obj = F.binary_cross_entropy_with_logits(obj, obj_target, obj_weight, reduction="sum") / num_fg
        if box_pred:
            loss_box = generalized_box_iou_loss(torch.cat(box_pred), torch.cat(box_target), reduction="sum") / num_fg
            loss_cls = (
                F.binary_cross_entropy_with_logits(torch.cat(cls_pred), torch.cat(cls_target), reduction="sum") / num_fg
            )
        else:
            loss_box = loss_cls = outputs.sum() * 0.0
        total = self.box_weight * loss_box + loss_obj + loss_cls
        return {
            "loss": total,
            "loss_box": loss_box.detach(),
            "loss_obj": loss_obj.detach(),
            "loss_cls": loss_cls.detach(),
            "num_fg": torch.tensor(float(num_fg) / outputs.shape[0]),
            # SimOTA health: foreground anchors per gt (dynamic k, YOLOX reports ~5-10) and their IoU
            "fg_per_gt": torch.tensor(sum(len(p) for p in box_pred) / max(num_gt, 1)),
            "mean_iou": torch.cat([t.max(1).values for t in cls_target]).mean().detach() if cls_target else torch.tensor(0.0),
        }
