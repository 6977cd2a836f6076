"""Instance-segmentation quality of single frames, for validating the segmenter.

A predicted mask and a ground-truth mask of the same class match when their mask IoU exceeds
0.5; both sides are non-overlapping, so a match is unique (as in the MOTS metrics). An
unmatched prediction lying more than half inside the ignore regions (id 10000) is neither a
true nor a false positive, as the MOTS metrics treat it.

- `AP50`: mask average precision at IoU 0.5, all-point interpolated precision over recall
  with predictions ranked by score, per class, averaged over classes that have ground truth.
- `precision`, `recall`, `F1`: of every predicted instance (the clustering's operating
  point, what the tracker receives), pooled over classes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from citytrack.data.formats.kitti_mots import IGNORE_ID


def average_precision(scores: np.ndarray, tp: np.ndarray, n_gt: int) -> float:
    """All-point interpolated AP of ranked detections (`tp` 0/1 per detection) against `n_gt` objects."""
    if n_gt == 0:
        return float("nan")
    if len(scores) == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    hits = tp[order].astype(np.float64)
    recall = np.cumsum(hits) / n_gt
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float((steps * envelope).sum())


class MaskMatchEvaluator:
    """Accumulates per-class matches of predicted instances against KITTI MOTS id maps over many frames."""

    def __init__(self, classes: Sequence[int], iou_thresh: float = 0.5, ignore_overlap: float = 0.5) -> None:
        self.classes = [int(c) for c in classes]
        self.iou_thresh, self.ignore_overlap = float(iou_thresh), float(ignore_overlap)
        self.reset()

    def reset(self) -> None:
        self._scores: dict[int, list[np.ndarray]] = {c: [] for c in self.classes}
        self._tp: dict[int, list[np.ndarray]] = {c: [] for c in self.classes}
        self._n_gt: dict[int, int] = {c: 0 for c in self.classes}

    @torch.no_grad()
    def update(
        self, masks: torch.Tensor, classes: torch.Tensor, scores: torch.Tensor, ids: torch.Tensor
    ) -> None:
        """One frame: predicted `masks (N, H, W)` bool, their KITTI `classes` and `scores`; ground truth `ids (H, W)`."""
        with torch.autocast(masks.device.type, enabled=False):  # pixel counts need float32 matmuls, not bf16
            self._update(masks, classes, scores, ids)

    def _update(
        self, masks: torch.Tensor, classes: torch.Tensor, scores: torch.Tensor, ids: torch.Tensor
    ) -> None:
        ids = ids.to(masks.device).long().reshape(-1)
        preds = masks.flatten(1).float()
        ignore = (ids == IGNORE_ID).float()
        cls = torch.div(ids, 1000, rounding_mode="floor")
        for c in self.classes:
            gt_ids = torch.unique(ids[(cls == c) & (ids != IGNORE_ID)])
            self._n_gt[c] += len(gt_ids)
            mine = classes.to(masks.device) == c
            if not bool(mine.any()):
                continue
            p = preds[mine]
            gt = (ids.unsqueeze(0) == gt_ids.unsqueeze(1)).float()  # (M, HW)
            inter = p @ gt.T  # (N, M)
            area_p, area_g = p.sum(1), gt.sum(1)
            iou = inter / (area_p[:, None] + area_g[None, :] - inter).clamp(min=1.0)
            tp = (
                (iou > self.iou_thresh).any(1)
                if len(gt_ids)
                else torch.zeros(len(p), dtype=torch.bool, device=p.device)
            )
            ignored = ~tp & ((p @ ignore) / area_p.clamp(min=1.0) > self.ignore_overlap)
            self._scores[c].append(scores.to(masks.device)[mine][~ignored].float().cpu().numpy())
            self._tp[c].append(tp[~ignored].cpu().numpy())

    def compute(self) -> dict[str, float]:
        aps: list[float] = []
        tp_all = fp_all = gt_all = 0
        for c in self.classes:
            scores = np.concatenate(self._scores[c]) if self._scores[c] else np.zeros(0)
            tp = np.concatenate(self._tp[c]) if self._tp[c] else np.zeros(0, dtype=bool)
            if self._n_gt[c]:
                aps.append(average_precision(scores, tp, self._n_gt[c]))
            tp_all += int(tp.sum())
            fp_all += int((~tp).sum())
            gt_all += self._n_gt[c]
        precision = tp_all / max(tp_all + fp_all, 1)
        recall = tp_all / max(gt_all, 1)
        f1 = 2 * precision * recall / max(precision + recall, 1e-12)
        return {
            "AP50": float(np.mean(aps)) if aps else 0.0,
            "precision": precision,
            "recall": recall,
            "F1": f1,
        }
