"""COCO detection and person-keypoints json: ground-truth writers, validated loaders (pycocotools), helpers.

Boxes are `x, y, w, h` pixels as everywhere in the package (also COCO's own convention).
Detection results for `COCO.loadRes` / `COCOeval` are written by `write_coco_results`.
Keypoints follow person_keypoints_*.json: 17 joints (`COCO_KEYPOINTS`) as flat `x, y, v` with
v = 0 not labelled (written as 0, 0, 0), 1 labelled but occluded, 2 visible.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pycocotools.coco import COCO

from citytrack.data.formats.errors import FormatError, read_json_file
from citytrack.utils.io import atomic_open

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class CocoImage:
    """One `images` entry."""

    id: int
    file_name: str
    width: int
    height: int


def build_coco_dataset(
    images: Sequence[CocoImage],
    boxes: Mapping[int, tuple[np.ndarray, np.ndarray]],
    categories: Mapping[int, str],
    iscrowd: Mapping[int, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Assemble a COCO detection dict from per-image `(boxes xywh (N,4), labels (N,))`.

    Annotation ids are 1-based in image order (COCOeval treats id 0 as missing); `area`
    is the box area, as for box-only datasets. Images without boxes are kept.
    """
    known = {img.id for img in images}
    unknown = set(boxes) - known
    if unknown:
        raise ValueError(f"boxes given for unknown image ids {sorted(unknown)[:5]}")
    annotations: list[dict[str, Any]] = []
    for image in images:
        if image.id not in boxes:
            continue
        xywh, labels = boxes[image.id]
        xywh = np.asarray(xywh, dtype=np.float64).reshape(-1, 4)
        labels = np.asarray(labels).reshape(-1)
        crowd = np.zeros(len(xywh), dtype=int) if iscrowd is None else np.asarray(iscrowd.get(image.id, 0))
        crowd = np.broadcast_to(crowd, (len(xywh),))
        if len(labels) != len(xywh):
            raise ValueError(f"image {image.id}: {len(xywh)} boxes but {len(labels)} labels")
        for box, label, is_crowd in zip(xywh.tolist(), labels.tolist(), crowd.tolist(), strict=True):
            if int(label) not in categories:
                raise ValueError(f"image {image.id}: label {label} is not a category")
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": int(image.id),
                    "category_id": int(label),
                    "bbox": [float(v) for v in box],
                    "area": float(box[2] * box[3]),
                    "iscrowd": int(is_crowd),
                }
            )
    return {
        "images": [
            {"id": int(i.id), "file_name": i.file_name, "width": int(i.width), "height": int(i.height)}
            for i in images
        ],
        "annotations": annotations,
        "categories": [{"id": int(k), "name": str(v)} for k, v in sorted(categories.items())],
    }


def _is_int(value: Any) -> bool:
    """An integer, or an integral float; not a bool."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or (bool(np.isfinite(value)) and float(value).is_integer())


def validate_coco_dataset(data: Any, path: PathLike = "<dataset>") -> None:
    """Structure checks COCO() does not do: keys, unique ids, references, box shapes.

    Also the fields that readers index without a default: `images[].file_name/width/height`,
    `categories[].name` and `annotations[].area` (COCOeval).
    """
    if not isinstance(data, dict):
        raise FormatError(path, "COCO json must be an object")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise FormatError(path, f"missing list {key!r}")
    image_ids = [img.get("id") if isinstance(img, dict) else None for img in data["images"]]
    if None in image_ids or len(set(image_ids)) != len(image_ids):
        raise FormatError(path, "every image needs a unique 'id'")
    for img in data["images"]:
        if not isinstance(img.get("file_name"), str) or not img["file_name"]:
            raise FormatError(path, f"image {img['id']} has no 'file_name' string")
        for key in ("width", "height"):
            if not _is_int(img.get(key)) or img[key] <= 0:  # integral floats (1920.0) pass too
                raise FormatError(path, f"image {img['id']} {key!r} must be a positive integer, got {img.get(key)!r}")
    for k, cat in enumerate(data["categories"]):
        if not isinstance(cat, dict) or "id" not in cat:
            raise FormatError(path, f"category #{k} is not an object with an 'id'")
        if not isinstance(cat.get("name"), str):
            raise FormatError(path, f"category {cat['id']} has no 'name' string")
    category_ids = {cat["id"] for cat in data["categories"]}
    images, ann_ids = set(image_ids), set()
    for k, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            raise FormatError(path, f"annotation #{k} is not an object")
        for key in ("id", "image_id", "category_id", "bbox", "area"):
            if key not in ann:
                raise FormatError(path, f"annotation #{k} has no {key!r}")
        if ann["id"] in ann_ids:
            raise FormatError(path, f"annotation id {ann['id']} is repeated")
        ann_ids.add(ann["id"])
        if ann["image_id"] not in images:
            raise FormatError(path, f"annotation {ann['id']} refers to unknown image {ann['image_id']}")
        if ann["category_id"] not in category_ids:
            raise FormatError(path, f"annotation {ann['id']} refers to unknown category {ann['category_id']}")
        bbox = ann["bbox"]
        if (
            not isinstance(bbox, list)
            or len(bbox) != 4
            or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in bbox)
            or bbox[2] < 0
            or bbox[3] < 0
        ):
            raise FormatError(path, f"annotation {ann['id']} bbox {bbox!r} is not [x, y, w>=0, h>=0]")
        area = ann["area"]
        if not isinstance(area, (int, float)) or isinstance(area, bool) or not np.isfinite(area) or area < 0:
            raise FormatError(path, f"annotation {ann['id']} area {area!r} is not a number >= 0")


def write_coco(path: PathLike, dataset: Mapping[str, Any]) -> None:
    """Validate and write a COCO detection json atomically."""
    data = dict(dataset)
    validate_coco_dataset(data, path)
    with atomic_open(path) as handle:
        json.dump(data, handle)


def coco_from_dict(data: dict[str, Any], path: PathLike = "<dataset>") -> COCO:
    """A `pycocotools.coco.COCO` indexed over `data` (validated), without its console chatter."""
    validate_coco_dataset(data, path)
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def load_coco(path: PathLike) -> COCO:
    """Load a COCO detection json as `pycocotools.coco.COCO`; malformed files raise FormatError."""
    return coco_from_dict(read_json_file(path), path)


def coco_to_frame_boxes(coco: COCO, include_crowd: bool = False) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """`{image_id: (boxes xywh (N,4) float64, labels (N,) int64)}` for every image, in id order."""
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for image_id in sorted(coco.getImgIds()):
        anns = [a for a in coco.imgToAnns.get(image_id, []) if include_crowd or not a.get("iscrowd", 0)]
        boxes = np.asarray([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
        labels = np.asarray([a["category_id"] for a in anns], dtype=np.int64)
        out[int(image_id)] = (boxes, labels)
    return out


def write_coco_results(
    path: PathLike,
    detections: Mapping[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> None:
    """Write detections `{image_id: (boxes xywh, scores, labels)}` as the COCO results list."""
    results = []
    for image_id, (boxes, scores, labels) in sorted(detections.items()):
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores, labels = np.asarray(scores).reshape(-1), np.asarray(labels).reshape(-1)
        if not len(boxes) == len(scores) == len(labels):
            raise ValueError(f"image {image_id}: boxes, scores and labels differ in length")
        results.extend(
            {
                "image_id": int(image_id),
                "category_id": int(c),
                "bbox": [float(v) for v in b],
                "score": float(s),
            }
            for b, s, c in zip(boxes.tolist(), scores.tolist(), labels.tolist(), strict=True)
        )
    with atomic_open(path) as handle:
        json.dump(results, handle)


# ---------------------------------------------------------------------------- keypoints
# The COCO-17 person keypoints: names in COCO's order, the limbs drawn between them (0-based
# index pairs; the json's `skeleton` is COCO's 1-based form), and which joint each one becomes
# under a horizontal flip. One home for every user: the synthetic ground truth, the keypoint
# network, the scene runner, the drawing.
COCO_KEYPOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
COCO_SKELETON: tuple[tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
    (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)  # fmt: skip
COCO_FLIP_INDEX: tuple[int, ...] = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)
NUM_KEYPOINTS = len(COCO_KEYPOINTS)
PERSON_CATEGORY_ID = 1


def person_keypoints_category() -> dict[str, Any]:
    """COCO's `person` category with its keypoint names and 1-based skeleton, as in person_keypoints_*.json."""
    return {
        "id": PERSON_CATEGORY_ID,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(COCO_KEYPOINTS),
        "skeleton": [[a + 1, b + 1] for a, b in COCO_SKELETON],
    }


def keypoint_annotation(
    image_id: int, bbox: Sequence[float], keypoints: np.ndarray, area: float, decimals: int = 3, **extra: Any
) -> dict[str, Any]:
    """One COCO keypoint annotation (without `id`) from `(17, 3)` x, y, v.

    Unlabelled joints (v = 0) are written as `0, 0, 0`, COCO's convention; `num_keypoints`
    counts the labelled ones (v > 0). `extra` keys (a track id, a visibility ratio) are kept.
    """
    kp = np.asarray(keypoints, dtype=np.float64).reshape(NUM_KEYPOINTS, 3)
    v = kp[:, 2].astype(int)
    flat: list[float | int] = []
    for (x, y), vis in zip(np.round(kp[:, :2], decimals).tolist(), v.tolist(), strict=True):
        flat += [x, y, vis] if vis > 0 else [0, 0, 0]
    return {
        "image_id": int(image_id),
        "category_id": PERSON_CATEGORY_ID,
        "bbox": [round(float(b), decimals) for b in bbox],
        "area": round(float(area), decimals),
        "iscrowd": 0,
        "keypoints": flat,
        "num_keypoints": int((v > 0).sum()),
        **extra,
    }


def build_coco_keypoints_dataset(images: Sequence[Mapping[str, Any]], annotations: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A person_keypoints dict: `images` as given (each with id, file_name, width, height and any
    extra keys), `annotations` from `keypoint_annotation` numbered 1.. in the given order."""
    return {
        "images": [dict(img) for img in images],
        "annotations": [{"id": k + 1, **ann} for k, ann in enumerate(annotations)],
        "categories": [person_keypoints_category()],
    }


def validate_coco_keypoints(data: Any, path: PathLike = "<dataset>") -> None:
    """`validate_coco_dataset` plus the keypoint fields: 17 x (x, y, v) with v in {0, 1, 2} and a
    matching `num_keypoints` (COCOeval skips people whose `num_keypoints` is 0)."""
    validate_coco_dataset(data, path)
    for ann in data["annotations"]:
        kp = ann.get("keypoints")
        if not isinstance(kp, list) or len(kp) != 3 * NUM_KEYPOINTS or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x) for x in kp
        ):
            raise FormatError(path, f"annotation {ann['id']} keypoints must be {3 * NUM_KEYPOINTS} numbers (x, y, v per joint)")
        vis = kp[2::3]
        if any(v not in (0, 1, 2) for v in vis):
            raise FormatError(path, f"annotation {ann['id']} keypoint visibilities must be 0, 1 or 2, got {vis}")
        if ann.get("num_keypoints") != sum(v > 0 for v in vis):
            raise FormatError(path, f"annotation {ann['id']} num_keypoints {ann.get('num_keypoints')!r} != labelled joints")


def write_coco_keypoints(path: PathLike, dataset: Mapping[str, Any]) -> None:
    """Validate and write a person_keypoints json atomically."""
    data = dict(dataset)
    validate_coco_keypoints(data, path)
    with atomic_open(path) as handle:
        json.dump(data, handle)


def load_coco_keypoints(path: PathLike) -> COCO:
    """Load a person_keypoints json as `pycocotools.coco.COCO` (ready for `COCOeval(iouType='keypoints')`)."""
    data = read_json_file(path)
    validate_coco_keypoints(data, path)
    return coco_from_dict(data, path)


@dataclass(frozen=True)
class ImageKeypoints:
    """The people of one image: boxes `(N, 4)` xywh, keypoints `(N, 17, 3)` x, y, v, areas `(N,)`,
    track ids `(N,)` (-1 where the file has none) and annotation ids `(N,)`."""

    boxes: np.ndarray
    keypoints: np.ndarray
    areas: np.ndarray
    track_ids: np.ndarray
    ann_ids: np.ndarray


def coco_to_image_keypoints(coco: COCO) -> dict[int, ImageKeypoints]:
    """`{image_id: ImageKeypoints}` for every image, in id order; people in annotation id order."""
    out: dict[int, ImageKeypoints] = {}
    for image_id in sorted(coco.getImgIds()):
        anns = sorted(coco.imgToAnns.get(image_id, []), key=lambda a: a["id"])
        out[int(image_id)] = ImageKeypoints(
            boxes=np.asarray([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4),
            keypoints=np.asarray([a["keypoints"] for a in anns], dtype=np.float64).reshape(-1, NUM_KEYPOINTS, 3),
            areas=np.asarray([a["area"] for a in anns], dtype=np.float64),
            track_ids=np.asarray([a.get("track_id", -1) for a in anns], dtype=np.int64),
            ann_ids=np.asarray([a["id"] for a in anns], dtype=np.int64),
        )
    return out
