"""Colours and drawing primitives shared by every picture and video the project makes.

One colour per id, stable across runs and cameras: the same global id has the same colour in
every camera tile and in the bird's-eye view. Colours are OpenCV BGR tuples of ints.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
Colour = tuple[int, int, int]

_GOLDEN = 0.618033988749895
_CAMERA_PALETTE: tuple[Colour, ...] = (
    (255, 200, 60),
    (60, 200, 255),
    (120, 255, 120),
    (255, 120, 220),
    (200, 200, 200),
    (80, 140, 255),
)
LABEL_BACKGROUND: Colour = (20, 20, 20)


def id_colour(i: int) -> Colour:
    """A bright, stable BGR colour per id: golden-ratio hue steps, so neighbouring ids differ most."""
    h = (int(i) * _GOLDEN) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def camera_colour(c: int) -> Colour:
    """The colour of camera index `c` (0-based position in a scene's camera list), from a 6-colour palette."""
    return _CAMERA_PALETTE[int(c) % len(_CAMERA_PALETTE)]


def draw_label(
    img: np.ndarray, text: str, org: tuple[int, int], colour: Colour, scale: float = 0.45, thickness: int = 1
) -> None:
    """`text` in `colour` on a dark chip whose bottom-left corner is `org` (in place)."""
    (w, h), base = cv2.getTextSize(text, FONT, scale, thickness)
    x, y = int(org[0]), int(org[1])
    cv2.rectangle(img, (x, y - h - base - 1), (x + w + 3, y + 1), LABEL_BACKGROUND, -1)
    cv2.putText(img, text, (x + 2, y - base + 1), FONT, scale, colour, thickness, cv2.LINE_AA)


def draw_tracks(
    img: np.ndarray,
    boxes: np.ndarray,
    ids: np.ndarray,
    *,
    scale: float = 1.0,
    offset: tuple[float, float] = (0.0, 0.0),
    thickness: int = 2,
    label_scale: float = 0.4,
    labels: bool = True,
) -> np.ndarray:
    """Draw `boxes` `(N, 4)` xywh with their `ids` `(N,)`, box and label in `id_colour(id)` (in place).

    Boxes are scaled by `scale` then shifted by `offset` (to draw on a resized tile). Farther
    people (smaller box bottom) are drawn last, so their labels are not hidden behind near
    boxes. Returns `img`.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) * scale
    ids = np.asarray(ids).reshape(-1)
    if len(boxes) != len(ids):
        raise ValueError(f"draw_tracks: {len(boxes)} boxes but {len(ids)} ids")
    boxes[:, :2] += offset
    for k in np.argsort(-(boxes[:, 1] + boxes[:, 3]), kind="stable"):
        if not np.isfinite(boxes[k]).all():
            continue
        x0, y0, x1, y1 = np.rint(boxes[k] + [0, 0, boxes[k, 0], boxes[k, 1]]).astype(int).tolist()
        tid = int(ids[k])
        col = id_colour(tid)
        cv2.rectangle(img, (x0, y0), (x1, y1), col, thickness, cv2.LINE_AA)
        if labels:
            draw_label(img, str(tid), (x0, max(y0, 14)), col, label_scale)
    return img


def draw_masks(
    img: np.ndarray,
    masks: np.ndarray,
    ids: np.ndarray,
    *,
    alpha: float = 0.5,
    contours: bool = True,
    labels: bool = True,
    label_scale: float = 0.45,
) -> np.ndarray:
    """Blend instance `masks` `(N, H, W)` bool into `img` in `id_colour(id)`, outline them and label
    each at its top-most pixel (in place). Returns `img`."""
    masks = np.asarray(masks, dtype=bool).reshape(-1, *img.shape[:2])
    ids = np.asarray(ids).reshape(-1)
    if len(masks) != len(ids):
        raise ValueError(f"draw_masks: {len(masks)} masks but {len(ids)} ids")
    if not len(masks):
        return img
    # one colour layer for all masks: each pixel takes its instance's colour, then one blend
    layer = img.copy()
    painted = np.zeros(img.shape[:2], dtype=bool)
    for mask, tid in zip(masks, ids.tolist(), strict=True):
        layer[mask] = id_colour(tid)
        painted |= mask
    img[painted] = (img[painted] * (1.0 - alpha) + layer[painted] * alpha).astype(np.uint8)
    for mask, tid in zip(masks, ids.tolist(), strict=True):
        if not mask.any():
            continue
        col = id_colour(tid)
        if contours:
            found, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(img, found, -1, col, 1, cv2.LINE_AA)
        if labels:
            ys, xs = np.nonzero(mask)
            top = int(np.argmin(ys))
            draw_label(img, str(tid), (int(xs[top]), max(int(ys[top]), 14)), col, label_scale)
    return img


# COCO-17 limb colours by body side: left limbs, right limbs, the centre line (BGR)
_SIDE_COLOURS: dict[str, Colour] = {"left": (255, 160, 40), "right": (40, 120, 255), "centre": (80, 230, 80)}


def draw_skeletons(
    img: np.ndarray,
    keypoints: np.ndarray,
    *,
    conf_thresh: float = 0.3,
    ids: np.ndarray | None = None,
    thickness: int = 2,
    radius: int = 3,
    scale: float = 1.0,
    offset: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Draw COCO-17 skeletons `(N, 17, 3)` (x, y, confidence or COCO visibility) in place; returns `img`.

    Joints and limbs whose confidence is below `conf_thresh` are left out. Limbs are coloured by
    side (left blue, right orange, centre green) unless `ids` is given, then by `id_colour(id)`;
    joints are dots, hollow where the confidence is under 0.75 (an occluded joint: the keypoint
    network gives ~0.5 there; pass COCO's v / 2 to draw ground truth the same way). Points are
    scaled by `scale`, then shifted by `offset` (to draw on a resized tile).
    """
    from citytrack.data.formats.coco import COCO_KEYPOINTS, COCO_SKELETON

    kps = np.asarray(keypoints, dtype=np.float64).reshape(-1, len(COCO_KEYPOINTS), 3)
    if ids is not None and len(np.asarray(ids).reshape(-1)) != len(kps):
        raise ValueError(f"draw_skeletons: {len(kps)} skeletons but {len(np.asarray(ids).reshape(-1))} ids")
    side = ["left" if n.startswith("left") else "right" if n.startswith("right") else "centre" for n in COCO_KEYPOINTS]
    for k, kp in enumerate(kps):
        xy = kp[:, :2] * scale + offset
        ok = (kp[:, 2] >= conf_thresh) & np.isfinite(xy).all(1)
        pts = np.rint(np.where(ok[:, None], xy, 0)).astype(int).tolist()
        own = id_colour(int(np.asarray(ids).reshape(-1)[k])) if ids is not None else None
        for a, b in COCO_SKELETON:
            if ok[a] and ok[b]:
                s = side[a] if side[a] == side[b] else "centre"
                cv2.line(img, tuple(pts[a]), tuple(pts[b]), own or _SIDE_COLOURS[s], thickness, cv2.LINE_AA)
        for j in np.flatnonzero(ok):
            col = own or _SIDE_COLOURS[side[j]]
            cv2.circle(img, tuple(pts[j]), radius, col, -1 if kp[j, 2] >= 0.75 else 1, cv2.LINE_AA)
    return img
