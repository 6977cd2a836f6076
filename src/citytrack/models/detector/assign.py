"""SimOTA dynamic label assignment (YOLOX, Ge et al. 2021, sec. 2.2 "SimOTA").

For one image:
1. Centre prior: candidate anchors are those whose centre lies inside a gt box or within
   `center_radius * stride` of its centre; anchors satisfying both get no geometry penalty.
2. Cost of assigning anchor a to gt g: `cls_cost + iou_weight * (-log IoU) + 1e5 * [not (in box and in centre)]`,
   with `cls_cost` the BCE between sqrt(sigmoid(cls) * sigmoid(obj)) and the one-hot gt class.
3. Dynamic k per gt: the (integer, >= 1) sum of its top-`topk` IoUs with the candidates.
4. Each gt takes its k lowest-cost anchors; an anchor claimed by several gts goes to the cheapest.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torchvision.ops import box_iou

INF_COST = 1e5


@dataclass
class Assignment:
    """Result for one image: foreground mask over anchors and the gt each foreground anchor learns."""

    fg_mask: torch.Tensor  # (A,) bool
    gt_index: torch.Tensor  # (F,) long, index into the image's gts, in anchor order of fg_mask
    iou: torch.Tensor  # (F,) IoU of the predicted box with its gt (the soft class target)

    @property
    def num_fg(self) -> int:
        return int(self.fg_mask.sum())


def centre_prior(
    gt_xyxy: torch.Tensor, centres: torch.Tensor, strides: torch.Tensor, center_radius: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(candidate mask (A,), in-box-and-in-centre matrix (G, A)) of the YOLOX centre prior."""
    x, y = centres[:, 0][None], centres[:, 1][None]
    in_box = (x > gt_xyxy[:, 0:1]) & (x < gt_xyxy[:, 2:3]) & (y > gt_xyxy[:, 1:2]) & (y < gt_xyxy[:, 3:4])
    gcx = (gt_xyxy[:, 0:1] + gt_xyxy[:, 2:3]) / 2
    gcy = (gt_xyxy[:, 1:2] + gt_xyxy[:, 3:4]) / 2
    r = center_radius * strides[None]
    in_centre = ((x - gcx).abs() < r) & ((y - gcy).abs() < r)
    candidates = (in_box | in_centre).any(0)
    return candidates, in_box & in_centre


@torch.no_grad()
def simota_assign(
    pred_boxes: torch.Tensor,
    cls_logits: torch.Tensor,
    obj_logits: torch.Tensor,
    centres: torch.Tensor,
    strides: torch.Tensor,
    gt_boxes: torch.Tensor,
    gt_labels: torch.Tensor,
    center_radius: float = 2.5,
    topk: int = 10,
    iou_weight: float = 3.0,
) -> Assignment:
    """Assign anchors of one image to its gts.

    Args:
        pred_boxes: `(A, 4)` predicted xyxy boxes in input pixels.
        cls_logits: `(A, C)`; obj_logits: `(A,)` or `(A, 1)`.
        centres, strides: `(A, 2)`, `(A,)` anchor points from `YoloxNet.anchor_points`.
        gt_boxes: `(G, 4)` xyxy; gt_labels: `(G,)` class indices.
    """
    num_anchors = pred_boxes.shape[0]
    device = pred_boxes.device
    empty = Assignment(
        torch.zeros(num_anchors, dtype=torch.bool, device=device),
        torch.zeros(0, dtype=torch.long, device=device),
        torch.zeros(0, device=device),
    )
    if gt_boxes.numel() == 0:
        return empty
    candidates, geometry = centre_prior(gt_boxes, centres, strides, center_radius)
    cand_idx = torch.nonzero(candidates, as_tuple=True)[0]
    if cand_idx.numel() == 0:
        return empty
    boxes = pred_boxes[cand_idx].float()
    ious = box_iou(gt_boxes.float(), boxes)  # (G, K)
    iou_cost = -torch.log(ious + 1e-8)
    num_classes = cls_logits.shape[-1]
    scores = (cls_logits[cand_idx].float().sigmoid() * obj_logits.reshape(-1, 1)[cand_idx].float().sigmoid()).sqrt()
    target = F.one_hot(gt_labels.long(), num_classes).float()  # (G, C)
    g, k = gt_boxes.shape[0], cand_idx.numel()
    cls_cost = F.binary_cross_entropy(
        scores[None].expand(g, k, num_classes).clamp(1e-6, 1 - 1e-6),
        target[:, None].expand(g, k, num_classes),
        reduction="none",
    ).sum(-1)
    cost = cls_cost + iou_weight * iou_cost + INF_COST * (~geometry[:, cand_idx]).float()

    # dynamic k: how many anchors each gt deserves, from the quality of its best predictions
    n_top = min(topk, k)
    dynamic_k = ious.topk(n_top, dim=1).values.sum(1).int().clamp(min=1)
    matching = torch.zeros_like(cost, dtype=torch.bool)
    for gi in range(g):
        kk = int(min(dynamic_k[gi].item(), k))
        idx = cost[gi].topk(kk, largest=False).indices
        matching[gi, idx] = True
    # an anchor claimed by several gts goes to the cheapest one
    multi = matching.sum(0) > 1
    if multi.any():
        best = cost[:, multi].argmin(0)
        matching[:, multi] = False
        matching[best, torch.nonzero(multi, as_tuple=True)[0]] = True
    matched = matching.any(0)
    gt_index = matching[:, matched].float().argmax(0)
    fg_mask = torch.zeros(num_anchors, dtype=torch.bool, device=device)
    fg_mask[cand_idx[matched]] = True
    return Assignment(fg_mask, gt_index, ious[gt_index, torch.nonzero(matched, as_tuple=True)[0]])
