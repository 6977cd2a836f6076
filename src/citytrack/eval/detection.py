"""Detection metrics: COCO mAP through torchmetrics (pycocotools backend) and recall at score thresholds.

`DetectionEvaluator` wraps `torchmetrics.detection.MeanAveragePrecision(backend="pycocotools")`,
so mAP@[.5:.95] / mAP@.5 are exactly the official COCO numbers (101-point interpolation,
100 detections per image). Next to it, recall at the score thresholds the trackers use
(ByteTrack's low/high split 0.1 / 0.5, DeepSORT's 0.6): the share of gt boxes matched at
IoU >= 0.5 by a detection the tracker would actually see.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
from torchmetrics.detection import MeanAveragePrecision
from torchvision.ops import box_iou

from citytrack.utils.boxes import xywh_to_xyxy

TRACKER_THRESHOLDS: tuple[float, ...] = (0.1, 0.5, 0.6)


def _as_tensor(x: np.ndarray | torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return (x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))).to("cpu", dtype)


class DetectionEvaluator:
    """Accumulate predictions and gts image by image; `compute()` gives mAP, mAP50, mAP75 and recalls.

    Predictions: dicts with `boxes (N, 4) xyxy`, `scores (N,)`, `labels (N,)`; gts: `boxes`, `labels`
    and optionally `iscrowd` (ignore regions, COCO semantics).
    """

    def __init__(
        self, recall_thresholds: Sequence[float] = TRACKER_THRESHOLDS, recall_iou: float = 0.5, max_det: int = 100
    ) -> None:
        self.recall_thresholds = tuple(float(t) for t in recall_thresholds)
        self.recall_iou = recall_iou
        self.map = MeanAveragePrecision(
            box_format="xyxy", iou_type="bbox", backend="pycocotools", max_detection_thresholds=[1, 10, max_det]
        )
        self.reset()

    def reset(self) -> None:
        self.map.reset()
        self.num_gt = 0
        self.hits = np.zeros(len(self.recall_thresholds), dtype=np.int64)
        self.num_images = 0

    def update(self, preds: list[dict[str, torch.Tensor]], targets: list[dict[str, torch.Tensor]]) -> None:
        p = [
            {
                "boxes": _as_tensor(d["boxes"]).reshape(-1, 4),
                "scores": _as_tensor(d["scores"]).reshape(-1),
                "labels": _as_tensor(d["labels"], torch.long).reshape(-1),
            }
            for d in preds
        ]
        t = []
        for d in targets:
            boxes = _as_tensor(d["boxes"]).reshape(-1, 4)
            crowd = _as_tensor(d.get("iscrowd", torch.zeros(len(boxes))), torch.long).reshape(-1)
            t.append({"boxes": boxes, "labels": _as_tensor(d["labels"], torch.long).reshape(-1), "iscrowd": crowd})
        self.map.update(p, t)
        for pi, ti in zip(p, t, strict=True):
            self.num_images += 1
            real = ti["iscrowd"] == 0  # ignore regions count for neither recall nor mAP
            self.num_gt += int(real.sum())
            for k, thr in enumerate(self.recall_thresholds):
                keep = pi["scores"] >= thr
                self.hits[k] += matched_gt_count(
                    pi["boxes"][keep], pi["scores"][keep], pi["labels"][keep], ti["boxes"][real], ti["labels"][real],
                    self.recall_iou,
                )

    def compute(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.num_images:
            res = self.map.compute()
            out = {"mAP": float(res["map"]), "mAP50": float(res["map_50"]), "mAP75": float(res["map_75"])}
        else:
            out = {"mAP": 0.0, "mAP50": 0.0, "mAP75": 0.0}
        for thr, hits in zip(self.recall_thresholds, self.hits, strict=True):
            out[f"recall@{thr:g}"] = float(hits / self.num_gt) if self.num_gt else 0.0
        out["num_gt"] = float(self.num_gt)
        return out


def matched_gt_count(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    labels: torch.Tensor,
    gt_boxes: torch.Tensor,
    gt_labels: torch.Tensor,
    iou_thresh: float = 0.5,
) -> int:
    """Greedy COCO-style matching (highest score first, each gt at most once); number of matched gts."""
    if len(boxes) == 0 or len(gt_boxes) == 0:
        return 0
    ious = box_iou(boxes.float(), gt_boxes.float())
    ious[labels[:, None] != gt_labels[None, :]] = -1
    taken = torch.zeros(len(gt_boxes), dtype=torch.bool)
    for i in torch.argsort(scores, descending=True).tolist():
        row = ious[i].clone()
        row[taken] = -1
        j = int(row.argmax())
        if row[j] >= iou_thresh:
            taken[j] = True
    return int(taken.sum())


def mot_frames_to_coco(
    dets_by_frame: dict[int, np.ndarray],
    gt_by_frame: dict[int, np.ndarray],
    frames: Sequence[int],
    ignore_by_frame: dict[int, np.ndarray] | None = None,
) -> tuple[list[dict[str, torch.Tensor]], list[dict[str, torch.Tensor]]]:
    """Per-frame `(N, 5+) xywh score` detections and `(M, 4+) xywh` gts -> evaluator inputs (class 0).

    `ignore_by_frame` `(K, 4+) xywh` boxes become COCO crowd regions (`iscrowd=1`): a detection
    covered by one (intersection over the detection's area >= the IoU threshold) that matches no
    real gt is neither a true nor a false positive, which is how MOT17's distractors are scored.
    """
    preds, targets = [], []
    for f in frames:
        d = np.asarray(dets_by_frame.get(f, np.zeros((0, 5))), dtype=np.float64)
        d = d.reshape(-1, d.shape[-1] if d.size else 5)
        if d.shape[1] < 5:
            raise ValueError(f"frame {f}: detections must be (N, 5+) x, y, w, h, score; got {d.shape}")
        g = np.asarray(gt_by_frame.get(f, np.zeros((0, 4))), dtype=np.float64)
        g = g.reshape(-1, g.shape[-1] if g.size else 4)
        db = xywh_to_xyxy(d[:, :4])
        gb = xywh_to_xyxy(g[:, :4])
        preds.append(
            {"boxes": torch.as_tensor(db), "scores": torch.as_tensor(d[:, 4]), "labels": torch.zeros(len(d), dtype=torch.long)}
        )
        ig = np.asarray((ignore_by_frame or {}).get(f, np.zeros((0, 4))), dtype=np.float64)
        ib = xywh_to_xyxy(ig.reshape(-1, ig.shape[-1] if ig.size else 4)[:, :4])
        targets.append({
            "boxes": torch.as_tensor(np.concatenate([gb, ib])),
            "labels": torch.zeros(len(gb) + len(ib), dtype=torch.long),
            "iscrowd": torch.as_tensor(np.r_[np.zeros(len(gb)), np.ones(len(ib))], dtype=torch.long),
        })
    return preds, targets


def draw_predictions(
    images: Sequence[np.ndarray],
    preds: Sequence[np.ndarray],
    targets: Sequence[np.ndarray] | None = None,
    score_thresh: float = 0.3,
    columns: int = 4,
) -> np.ndarray:
    """A grid picture (BGR uint8): gts in green, predictions above `score_thresh` in red with scores.

    images: HxWx3 BGR uint8 (all the same size); preds: `(N, 5+)` xyxy score; targets: `(M, 4)` xyxy.
    """
    if not images:
        raise ValueError("draw_predictions needs at least one image")
    tiles = []
    for i, image in enumerate(images):
        canvas = np.ascontiguousarray(image.copy())
        if targets is not None:
            for x1, y1, x2, y2 in np.asarray(targets[i]).reshape(-1, 4)[:, :4]:
                cv2.rectangle(canvas, (int(x1), int(y1)), (int(x2), int(y2)), (0, 200, 0), 1)
        for row in np.asarray(preds[i]).reshape(-1, np.asarray(preds[i]).shape[-1] if np.asarray(preds[i]).size else 5):
            if row[4] < score_thresh:
                continue
            x1, y1, x2, y2 = (int(v) for v in row[:4])
            cv2.rectangle(canvas, (x1, y1), (x2, y2), (0, 0, 255), 1)
            cv2.putText(canvas, f"{row[4]:.2f}", (x1, max(y1 - 2, 8)), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 255), 1)
        tiles.append(canvas)
    h, w = tiles[0].shape[:2]
    cols = min(columns, len(tiles))
    rows = (len(tiles) + cols - 1) // cols
    grid = np.zeros((rows * h, cols * w, 3), dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        grid[r * h : (r + 1) * h, c * w : (c + 1) * w] = tile[:h, :w]
    return grid
