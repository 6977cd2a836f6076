"""Keypoint evaluation: OKS keypoint AP with pycocotools (COCO's own evaluator) and PCK@0.2.

AP / AP50 / AP75 are `COCOeval(iouType="keypoints")` over the images that were predicted (so a
`limit_val_batches` subset evaluates that subset), with COCO's per-joint sigmas and each person's
`area` as the OKS scale. AP_M / AP_L are COCO's medium (32^2-96^2 px of area) and large people
only (-1 when there are none), as COCO's own summary reports them, by the person's area in the
pixels of the image it was seen in: for top-down crops whose images carry `crop_box` (the synthetic
crops, `data/synth/pose_crops.py`) the crop-pixel `area` is scaled back to the source frame, so a
person 56 px tall in a 640x360 frame is "small" however large its crop. Crop datasets also get AP_S
(people COCO leaves unannotated: under 32^2 px) and AP_ML (medium and large: the people COCO's
keypoint benchmark scores). PCK@0.2: share of labelled
joints (v > 0) predicted within 0.2 torso diameters (left shoulder to right hip, Andriluka et al.'s
PCK) of the truth; people without both joints labelled use 0.3 x their box height, about a torso.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from citytrack.data.formats.coco import COCO_KEYPOINTS, PERSON_CATEGORY_ID

_LSHO, _RHIP = COCO_KEYPOINTS.index("left_shoulder"), COCO_KEYPOINTS.index("right_hip")


def instance_score(conf: np.ndarray, thresh: float = 0.2) -> np.ndarray:
    """Per-person score `(N,)` from joint confidences `(N, J)`: the mean over joints above `thresh`
    (SimpleBaseline's rescoring), 0 when none is."""
    above = conf > thresh
    return np.where(above.any(1), (conf * above).sum(1) / np.maximum(above.sum(1), 1), 0.0)


def pck(pred: np.ndarray, gt: np.ndarray, boxes: np.ndarray, alpha: float = 0.2) -> tuple[int, int]:
    """(correct, labelled) joint counts of PCK@alpha: `pred`, `gt` `(N, J, >=2)`, gt v in `gt[..., 2]`."""
    labelled = gt[..., 2] > 0
    torso = np.linalg.norm(gt[:, _LSHO, :2] - gt[:, _RHIP, :2], axis=1)
    has = labelled[:, _LSHO] & labelled[:, _RHIP] & (torso > 0)
    ref = np.where(has, torso, 0.3 * boxes[:, 3])
    err = np.linalg.norm(pred[..., :2] - gt[..., :2], axis=-1)
    ok = (err <= alpha * ref[:, None]) & labelled
    return int(ok.sum()), int(labelled.sum())


class KeypointEvaluator:
    """Collects predictions per image (one person per crop, or many per frame) and computes AP and PCK."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.results: list[dict] = []
        self.pck_hits = 0
        self.pck_total = 0

    def update(self, image_ids: np.ndarray, pred: np.ndarray, gt: np.ndarray | None = None, boxes: np.ndarray | None = None) -> None:
        """`pred` `(N, J, 3)` x, y, confidence in the ground truth's pixels; `gt`/`boxes` for PCK."""
        scores = instance_score(pred[..., 2])
        for img, kp, s in zip(np.asarray(image_ids).tolist(), pred, scores.tolist(), strict=True):
            flat = np.c_[kp[:, :2], kp[:, 2]].ravel().tolist()
            self.results.append({"image_id": int(img), "category_id": PERSON_CATEGORY_ID, "keypoints": flat, "score": float(s)})
        if gt is not None and boxes is not None:
            hit, tot = pck(pred, gt, boxes)
            self.pck_hits += hit
            self.pck_total += tot

    def compute(self, coco: COCO | None) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.pck_total:
            out["PCK@0.2"] = self.pck_hits / self.pck_total
        if coco is None or not self.results:
            return out
        with contextlib.redirect_stdout(io.StringIO()):
            dets = coco.loadRes(self.results)
            ev = COCOeval(coco, dets, iouType="keypoints")
            ev.params.imgIds = sorted({r["image_id"] for r in self.results})
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            out.update(AP=float(ev.stats[0]), AP50=float(ev.stats[1]), AP75=float(ev.stats[2]),
                       AP_M=float(ev.stats[3]), AP_L=float(ev.stats[4]))
            sizes = frame_areas(coco, ev.params.imgIds)
            if sizes is not None:  # one person per crop: a size class is a set of crops
                for key, (lo, hi) in SIZE_CLASSES.items():
                    ids = {i for i, a in sizes.items() if lo <= a < hi}
                    out[key] = _ap_over(ev, ids) if ids else -1.0
        return out


# COCO's size classes by area in source-frame pixels; AP_ML: the medium and large people COCO scores
SIZE_CLASSES = {"AP_S": (0.0, 32.0**2), "AP_M": (32.0**2, 96.0**2), "AP_L": (96.0**2, float("inf")),
                "AP_ML": (32.0**2, float("inf"))}


def frame_areas(coco: COCO, image_ids: list[int]) -> dict[int, float] | None:
    """Per crop image, its one person's `area` in the source frame's pixels (via the image's
    `crop_box`), or None when an image has no `crop_box` or not exactly one person."""
    out = {}
    for i in image_ids:
        img, anns = coco.imgs[i], coco.imgToAnns.get(i, [])
        if "crop_box" not in img or len(anns) != 1:
            return None
        sx, sy = source_scale(img)
        out[i] = float(anns[0]["area"]) * sx * sy
    return out


def source_scale(image: dict) -> tuple[float, float]:
    """Source-frame pixels per crop pixel (x, y) of a crop image entry with a `crop_box`."""
    x0, y0, x1, y1 = image["crop_box"]
    return (x1 - x0) / image["width"], (y1 - y0) / image["height"]


def _ap_over(ev: COCOeval, image_ids: set[int]) -> float:
    """AP@[.5:.95] of an evaluated `COCOeval` over `image_ids` only: its per-image matches are
    re-accumulated without the other images (no second OKS evaluation); `ev.eval` is left as that."""
    full = ev.evalImgs
    ev.evalImgs = [e if e is not None and e["image_id"] in image_ids else None for e in full]
    try:
        ev.accumulate()
    finally:
        ev.evalImgs = full
    precision = ev.eval["precision"][:, :, :, 0, -1]  # all IoU thresholds, recalls, classes; area "all", max dets
    kept = precision[precision > -1]
    return float(kept.mean()) if kept.size else -1.0
