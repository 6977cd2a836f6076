"""Decode network outputs into per-image detections: score = obj * cls, top-k, class-aware NMS."""

from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import batched_nms

from citytrack.utils.boxes import cxcywh_to_xyxy, xywh_to_xyxy


def postprocess(
    outputs: torch.Tensor,
    score_thresh: float = 0.1,
    nms_thresh: float = 0.65,
    max_det: int = 300,
    pre_nms_topk: int = 2000,
) -> list[torch.Tensor]:
    """`(B, A, 5 + C)` decoded outputs -> per image `(N, 6)` `x1, y1, x2, y2, score, class`, best first.

    Each anchor keeps its best class (one box per anchor, as YOLOX); NMS runs per class
    (`torchvision.ops.batched_nms`): a car box never suppresses the person standing in front of it.
    """
    outputs = outputs.float()
    boxes = cxcywh_to_xyxy(outputs[..., :4])
    scores_all = outputs[..., 4:5].sigmoid() * outputs[..., 5:].sigmoid()
    scores, labels = scores_all.max(-1)
    results: list[torch.Tensor] = []
    for b in range(outputs.shape[0]):
        keep = scores[b] >= score_thresh
        bx, sc, lb = boxes[b][keep], scores[b][keep], labels[b][keep]
        if sc.numel() > pre_nms_topk:
            top = sc.topk(pre_nms_topk).indices
            bx, sc, lb = bx[top], sc[top], lb[top]
        kept = batched_nms(bx, sc, lb, nms_thresh)[:max_det]
        results.append(torch.cat([bx[kept], sc[kept, None], lb[kept, None].float()], 1))
    return results


def suppress_xywh(dets: np.ndarray, iou: float, classes: np.ndarray | None = None) -> np.ndarray:
    """NMS over detections already in image pixels, `(N, 5+)` x, y, w, h, score: the kept row
    indices, surest first. Per class with `classes` `(N,)`, across all rows without. Merges boxes
    pooled from several passes (test sizes, class guesses) into one per object."""
    xyxy = torch.from_numpy(xywh_to_xyxy(dets[:, :4]))
    scores = torch.from_numpy(np.ascontiguousarray(dets[:, 4], dtype=np.float64))
    groups = torch.zeros(len(dets), dtype=torch.long) if classes is None else torch.from_numpy(np.asarray(classes)).long()
    return batched_nms(xyxy, scores, groups, float(iou)).numpy()


def suppress_contained(dets: np.ndarray, contain: float) -> np.ndarray:
    """Greedy suppression by containment over detections in image pixels, `(N, 5+)` x, y, w, h,
    score: the kept row indices, surest first. A box goes when more than `contain` of the smaller
    of it and a surer kept box lies inside the other.

    IoU-NMS keeps a part box inside a whole one (a car box on a truck's cab, a far pass's box on
    a near vehicle's bonnet): their IoU is the area ratio, small. Two real vehicles rarely put most
    of one's visible box inside the other's, so intersection over the smaller area tells them apart.
    """
    from citytrack.tracking.matching import iou_matrix

    order = np.argsort(-np.asarray(dets[:, 4], dtype=np.float64), kind="stable")
    boxes = np.asarray(dets[order, :4], dtype=np.float64)
    area = np.maximum(boxes[:, 2] * boxes[:, 3], 1e-9)
    iou = iou_matrix(boxes, boxes)
    inter = iou * (area[:, None] + area[None, :]) / (1.0 + iou)  # IoU = inter / (a + b - inter)
    over_smaller = inter / np.minimum(area[:, None], area[None, :])
    alive = np.ones(len(order), dtype=bool)
    for i in range(len(order)):
        if alive[i]:
            alive[i + 1:] &= ~(over_smaller[i, i + 1:] > contain)
    return order[alive]
