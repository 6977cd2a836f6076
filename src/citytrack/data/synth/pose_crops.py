"""Top-down pose training crops of the synthetic people, with a COCO person_keypoints json.

`DIR/pose/` holds:

- `images/{train,test}/sSSS_cCCCC_fFFFFFF_pPPPPP.jpg`: one crop per (person, camera, sampled
  frame), `pose.size` (width, height) pixels: the person's FULL box (`render.py`) widened or
  heightened to the crop's aspect ratio about its centre, enlarged by `pose.pad` (context for
  the training-time scale and shift jitter), cut from the frame (black beyond the frame's
  border) and resized;
- `person_keypoints_train.json` / `person_keypoints_test.json`: COCO keypoints in CROP pixels,
  identities split between them by `pose.test_fraction` (seeded by the dataset seed).
  `images[].file_name` is relative to `images/`, with extra keys `scene`, `camera` (the AI City
  camera id), `frame` (0-based) and `crop_box` (the cut region `x0, y0, x1, y1` in frame pixels:
  crop = (frame - (x0, y0)) * (width / (x1 - x0), height / (y1 - y0))). Each annotation's `bbox`
  is the full box in crop pixels, `area` the unoccluded silhouette's pixel count scaled to the
  crop (the OKS scale), `track_id` the person's global id, `visibility` the visible share.

Which people: every `pose.stride`-th frame, people with a ground-truth box (enough visible
pixels), a full box at least `pose.min_height` pixels tall, at least `pose.min_visibility` of
the silhouette visible and at least `pose.min_keypoints` joints inside the frame.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from omegaconf import DictConfig

from citytrack.data.formats.coco import (
    build_coco_keypoints_dataset,
    keypoint_annotation,
    write_coco_keypoints,
)
from citytrack.data.synth.render import FrameRender
from citytrack.data.synth.world import World

SPLITS = ("train", "test")
# (image entry, annotation without image_id) of one crop, as a camera hands them back
CropRecord = tuple[dict[str, Any], dict[str, Any]]


def crop_region(box: np.ndarray, size: tuple[int, int], pad: float) -> tuple[int, int, int, int]:
    """Integer cut region `x0, y0, x1, y1` of a top-down crop: `box` (xywh) at the aspect ratio
    `size[0] / size[1]` about its centre, enlarged by `pad`."""
    x, y, w, h = (float(v) for v in box)
    cx, cy = x + 0.5 * w, y + 0.5 * h
    aspect = size[0] / size[1]
    w, h = (h * aspect, h) if w < h * aspect else (w, w / aspect)
    w, h = w * pad, h * pad
    x0, y0 = int(np.floor(cx - w / 2)), int(np.floor(cy - h / 2))
    return x0, y0, x0 + max(round(w), 1), y0 + max(round(h), 1)


def cut(image: np.ndarray, region: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """The region of `image` (zeros beyond its border) resized to `size` (width, height)."""
    x0, y0, x1, y1 = region
    H, W = image.shape[:2]
    out = np.zeros((y1 - y0, x1 - x0, image.shape[2]), dtype=image.dtype)
    ax0, ay0, ax1, ay1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    if ax1 > ax0 and ay1 > ay0:
        out[ay0 - y0 : ay1 - y0, ax0 - x0 : ax1 - x0] = image[ay0:ay1, ax0:ax1]
    shrink = (x1 - x0) > size[0]
    return cv2.resize(out, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


class PoseCropWriter:
    """All pose crops of a dataset: the identity split, the per-camera writers' results and the two jsons."""

    def __init__(self, root: Path, cfg: DictConfig, total_ids: int, seed: int) -> None:
        self.root, self.cfg = root, cfg
        shutil.rmtree(root / "images", ignore_errors=True)  # stale crops of a previous run
        for split in SPLITS:
            (root / "images" / split).mkdir(parents=True, exist_ok=True)
            (root / f"person_keypoints_{split}.json").unlink(missing_ok=True)
        perm = np.random.default_rng([int(seed), 17]).permutation(np.arange(1, total_ids + 1))
        self.test_ids = frozenset(perm[: round(cfg.test_fraction * total_ids)].tolist())
        self.records: dict[str, list[CropRecord]] = {s: [] for s in SPLITS}

    def merge(self, result: dict[str, list[CropRecord]]) -> None:
        for split, recs in result.items():
            self.records[split] += recs

    def finish(self) -> dict[str, Any]:
        """Write both jsons; image ids are 1.. in file-name order, so any number of workers gives the same files."""
        counts = {}
        for split in SPLITS:
            recs = sorted(self.records[split], key=lambda r: r[0]["file_name"])
            images = [{"id": k + 1, **img} for k, (img, _) in enumerate(recs)]
            anns = [{"image_id": k + 1, **ann} for k, (_, ann) in enumerate(recs)]
            write_coco_keypoints(self.root / f"person_keypoints_{split}.json", build_coco_keypoints_dataset(images, anns))
            counts[split] = len(recs)
        return {"counts": counts, "test_ids": sorted(self.test_ids)}


class PoseCameraWriter:
    """The pose crops of one camera of one scene (in whichever process renders the camera)."""

    def __init__(self, root: Path, cfg: DictConfig, test_ids: frozenset[int], world: World, camera_id: int) -> None:
        self.root, self.cfg, self.test_ids, self.world, self.camera_id = root, cfg, test_ids, world, camera_id
        self.size = (int(cfg.size[0]), int(cfg.size[1]))
        self.jpeg = [int(cv2.IMWRITE_JPEG_QUALITY), int(cfg.jpeg_quality)]
        self.records: dict[str, list[CropRecord]] = {s: [] for s in SPLITS}

    def add(self, fr: FrameRender, keep: np.ndarray) -> None:
        cfg = self.cfg
        if cfg.stride <= 0 or fr.frame % cfg.stride:
            return
        labelled = (fr.keypoints[..., 2] > 0).sum(axis=1)
        vis = fr.visibility
        pick = keep & (vis >= cfg.min_visibility) & (fr.full_boxes[:, 3] >= cfg.min_height) & (labelled >= cfg.min_keypoints)
        for r in np.flatnonzero(pick):
            box = fr.full_boxes[r]
            region = crop_region(box, self.size, float(cfg.pad))
            x0, y0, x1, y1 = region
            scale = np.array([self.size[0] / (x1 - x0), self.size[1] / (y1 - y0)])
            kp = fr.keypoints[r].copy()
            kp[:, :2] = (kp[:, :2] - (x0, y0)) * scale
            pid = self.world.agents[int(fr.agents[r])].global_id
            split = "test" if pid in self.test_ids else "train"
            name = f"{split}/s{self.world.scene_index + 1:03d}_c{self.camera_id:04d}_f{fr.frame:06d}_p{pid:05d}.jpg"
            path = self.root / "images" / name
            if not cv2.imwrite(str(path), cut(fr.image, region, self.size), self.jpeg):
                raise OSError(f"cannot write {path}")
            bbox = [(box[0] - x0) * scale[0], (box[1] - y0) * scale[1], box[2] * scale[0], box[3] * scale[1]]
            image = {"file_name": name, "width": self.size[0], "height": self.size[1], "scene": self.world.scene_index + 1,
                     "camera": self.camera_id, "frame": fr.frame, "crop_box": [x0, y0, x1, y1]}
            ann = keypoint_annotation(-1, bbox, kp, float(fr.full_pixels[r] * scale[0] * scale[1]),
                                      track_id=int(pid), visibility=round(float(vis[r]), 4))
            del ann["image_id"]
            self.records[split].append((image, ann))

    def result(self) -> dict[str, list[CropRecord]]:
        return self.records
