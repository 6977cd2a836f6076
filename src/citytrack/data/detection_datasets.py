"""Detection samples from AI City 2024 scenes (videos), AI City 2019 vehicle scenarios, MOTChallenge folders and COCO json.

Every source becomes a list of `FrameRecord`s (where the image is, its boxes in the
image's own pixels), and `DetectionDataset` letterboxes them to the network input.

Which boxes are trained on (targets `class, x1, y1, x2, y2`; class `-2` = ignore region):
- AI City gt boxes are FULL boxes (they extend behind occluders, as the official
  evaluation scores them), so they are kept as they are, clipped to the image. A box with
  less than `min_inside` of its area inside the image (a person walking out of view)
  becomes an ignore region: neither a positive nor a negative.
- MOT16/17/20 gt: class-1 (pedestrian) rows with the "consider" mark are positives; pedestrians
  without the mark or with visibility below `min_visibility`, and the distractor classes
  (person on vehicle 2, static person 7, distractor 8, reflection 12, all marked 0 in the
  files) become ignore regions; other classes (vehicles, occluders) are dropped. MOT15 has no
  class/visibility: all rows.
- AI City 2019 scenarios (the synthetic vehicle city): `SXX/gt_world.txt` holds every drawn
  vehicle of every camera (`gt.txt` only the multi-camera ones, so it would teach that single-camera
  vehicles are background); the full (amodal) box is the target, its class from `SXX/vehicles.json`
  (`VEHICLE_CLASSES`: car, suv and van are `car`). Vehicles below `min_visibility` (parked behind a
  truck, a sliver at the image border) or mostly outside the image become ignore regions, as do
  vehicle types whose class is not in the model's class list.
- Boxes smaller than `min_size` input pixels after letterboxing become ignore regions
  (too small to learn from at the network's strides).
Ignore regions are skipped by the objectness loss and count as COCO `iscrowd` in evaluation.
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from citytrack.data.formats.errors import FormatError
from citytrack.data.letterbox import Letterbox, letterbox_image
from citytrack.data.video import VideoError, VideoReader, probe_video
from citytrack.utils.boxes import clip_xywh, xywh_to_xyxy

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
IGNORE = -2
PAD = -1
# vehicle kinds of the synthetic city (vehicles.json `type`) -> detector class name
VEHICLE_CLASSES: dict[str, str] = {"car": "car", "suv": "car", "van": "car", "bus": "bus", "truck": "truck"}


@dataclass
class FrameRecord:
    """One image to train/evaluate on: a still image file or frame `frame` (0-based) of a video."""

    source: Path
    frame: int | None
    boxes: np.ndarray  # (N, 4) xyxy in image pixels
    labels: np.ndarray  # (N,) class index, IGNORE for ignore regions
    name: str = ""
    meta: dict[str, object] = field(default_factory=dict)


def sampled_frames(count: int, stride: int, max_frames: int | None) -> list[int]:
    """0-based frame indices `0, stride, 2 * stride, ...` below `count`, at most `max_frames`."""
    frames = list(range(0, count, max(1, stride)))
    return frames if max_frames is None else frames[:max_frames]


def _clip_and_mark(boxes_xywh: np.ndarray, labels: np.ndarray, width: int, height: int, min_inside: float) -> tuple[np.ndarray, np.ndarray]:
    """xywh -> clipped xyxy; boxes mostly outside the image become ignore regions, empty ones dropped."""
    b = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    area = np.maximum(b[:, 2] * b[:, 3], 1e-9)
    inside_box = clip_xywh(b, (width, height))
    inside = inside_box[:, 2] * inside_box[:, 3] / area
    clipped = xywh_to_xyxy(inside_box)
    labels = np.where(inside < min_inside, IGNORE, labels).astype(np.int64)
    keep = inside > 0
    return clipped[keep], labels[keep]


def video_size(path: Path) -> tuple[int, int, int]:
    """(width, height, frame count) of a video; a clear error when it cannot be read or has no frame count."""
    info = probe_video(path)
    if info.frame_count <= 0:
        raise VideoError(path, f"video is empty or unreadable ({info.width}x{info.height}, {info.frame_count} frames)")
    return info.width, info.height, info.frame_count


def aic24_scene_records(
    scene_dir: PathLike,
    stride: int = 10,
    max_frames: int | None = None,
    class_index: int = 0,
    min_inside: float = 0.5,
    include_empty: bool = True,
) -> list[FrameRecord]:
    """Frames `0, stride, 2*stride, ...` of every camera of an AI City 2024 scene with their gt boxes."""
    from citytrack.data.formats.aicity import BH, BW, BX, BY, CAMERA_ID, FRAME_ID, load_aic24_scene

    scene = load_aic24_scene(scene_dir)
    gt = scene.read_ground_truth()
    records: list[FrameRecord] = []
    for cam in scene.cameras:
        width, height, count = video_size(cam.video)
        rows = gt[gt[:, CAMERA_ID] == cam.camera_id]
        by_frame: dict[int, np.ndarray] = defaultdict(lambda: np.zeros((0, 9)))
        for f in np.unique(rows[:, FRAME_ID]).astype(int):
            by_frame[f] = rows[rows[:, FRAME_ID] == f]
        frames = sampled_frames(count, stride, max_frames)
        for f in frames:
            r = by_frame[f]
            if not len(r) and not include_empty:
                continue
            boxes, labels = _clip_and_mark(
                r[:, [BX, BY, BW, BH]], np.full(len(r), class_index), width, height, min_inside
            )
            records.append(FrameRecord(cam.video, f, boxes, labels, f"{scene.dir.name}/{cam.dir.name}/{f}"))
    return records


def read_gt_world(path: Path) -> dict[str, np.ndarray]:
    """Columns of an AI City 2019 synthetic `SXX/gt_world.txt` by the names in its `# a,b,c` header line."""
    if not path.is_file():
        raise FormatError(path, "no gt_world.txt (every drawn vehicle of the scenario) to train on")
    with path.open() as fh:
        header = fh.readline()
    if not header.startswith("#"):
        raise FormatError(path, "first line must name the columns (`# camera,id,frame,...`)", 1)
    names = [n.strip() for n in header.lstrip("#").split(",")]
    needed = ("camera", "id", "frame", "x", "y", "w", "h", "visibility")
    missing = [n for n in needed if n not in names]
    if missing:
        raise FormatError(path, f"header lacks columns {missing} (has {names})", 1)
    try:
        table = np.loadtxt(path, delimiter=",", comments="#", ndmin=2)
    except ValueError as err:
        raise FormatError(path, f"malformed rows: {err}") from err
    if table.size == 0:
        table = np.zeros((0, len(names)))
    if table.shape[1] != len(names):
        raise FormatError(path, f"rows have {table.shape[1]} columns, the header names {len(names)}")
    return {n: table[:, i] for i, n in enumerate(names)}


def read_vehicle_types(path: Path) -> dict[int, str]:
    """Vehicle id -> type (`car`, `suv`, `van`, `bus`, `truck`) from an AI City 2019 synthetic `SXX/vehicles.json`."""
    if not path.is_file():
        raise FormatError(path, "no vehicles.json (vehicle id -> type) to label the vehicles with")
    try:
        data = json.loads(path.read_text())
        return {int(k): str(v["type"]) for k, v in data.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise FormatError(path, f"expected {{id: {{type: ...}}}}: {err}") from err


def aic19_scene_records(
    scene_dir: PathLike,
    class_names: Sequence[str] = ("person", "car", "bus", "truck"),
    stride: int = 10,
    max_frames: int | None = None,
    min_visibility: float = 0.25,
    min_inside: float = 0.5,
    include_empty: bool = True,
) -> list[FrameRecord]:
    """Frames `0, stride, ...` of every camera of a synthetic AI City 2019 `SXX` scenario with every vehicle's box.

    Boxes and visibilities come from `SXX/gt_world.txt` (1-based frames: video frame i is frame
    i + 1; `camera` is the `cXXX` number), classes from `SXX/vehicles.json` through `VEHICLE_CLASSES`.
    """
    from citytrack.data.formats.aicity import load_aic19_scene

    scene = load_aic19_scene(scene_dir)
    world_path = scene.dir / "gt_world.txt"
    cols = read_gt_world(world_path)
    types = read_vehicle_types(scene.dir / "vehicles.json")
    index = {n: i for i, n in enumerate(class_names)}
    ids = cols["id"].astype(int)
    unknown = sorted({types.get(v, "?") for v in ids} - set(VEHICLE_CLASSES))
    if unknown:
        raise FormatError(world_path, f"vehicle types {unknown} (ids without one in vehicles.json: '?') "
                          f"have no detector class; known: {sorted(VEHICLE_CLASSES)}")
    # vehicles of a class the model does not have are ignore regions: neither object nor background
    label = np.array([index.get(VEHICLE_CLASSES[types[v]], IGNORE) for v in ids], dtype=np.int64)
    label[cols["visibility"] < min_visibility] = IGNORE
    boxes_all = np.stack([cols["x"], cols["y"], cols["w"], cols["h"]], 1)
    camera, frame = cols["camera"].astype(int), cols["frame"].astype(int) - 1
    records: list[FrameRecord] = []
    for cam in scene.cameras:
        width, height, count = video_size(cam.video)
        sel = camera == cam.camera_id
        by_frame: dict[int, np.ndarray] = defaultdict(lambda: np.zeros(0, dtype=np.int64))
        rows = np.flatnonzero(sel)
        for f in np.unique(frame[rows]):
            by_frame[int(f)] = rows[frame[rows] == f]
        frames = sampled_frames(count, stride, max_frames)
        for f in frames:
            r = by_frame[f]
            if not len(r) and not include_empty:
                continue
            boxes, labels = _clip_and_mark(boxes_all[r], label[r], width, height, min_inside)
            records.append(FrameRecord(cam.video, f, boxes, labels, f"{scene.dir.name}/{cam.name}/{f}"))
    return records


def mot_sequence_records(
    seq_dir: PathLike, stride: int = 1, max_frames: int | None = None, min_visibility: float = 0.25, class_index: int = 0
) -> list[FrameRecord]:
    """Frames of a MOTChallenge sequence folder (images in img1/) with their gt boxes."""
    from citytrack.data.formats.mot import FRAME, ground_truth_roles, load_sequence

    seq = load_sequence(seq_dir)
    if seq.gt is None:
        raise FormatError(Path(seq_dir) / "gt" / "gt.txt", "sequence has no ground truth to train or evaluate on")
    # distractor classes carry mark 0 in MOT16/17/20: they become ignore regions (not background), as do
    # less visible people and MOT15's zero-marked rows; other classes (vehicles, occluders) are dropped
    real, ignore = ground_truth_roles(seq.gt, min_visibility)
    gt, ignore = seq.gt[real | ignore], ignore[real | ignore]
    frames = list(range(1, seq.info.seq_length + 1, max(1, stride)))
    if max_frames is not None:
        frames = frames[:max_frames]
    w, h = seq.info.im_width, seq.info.im_height
    records = []
    for f in frames:
        sel = gt[:, FRAME] == f
        labels = np.where(ignore[sel], IGNORE, class_index)
        boxes, labels = _clip_and_mark(gt[sel, 2:6], labels, w, h, 0.5)
        records.append(FrameRecord(seq.image_path(f), None, boxes, labels, f"{seq.info.name}/{f}"))
    return records


def coco_records(json_path: PathLike, image_root: PathLike | None = None, class_names: Sequence[str] = ("person",)) -> list[FrameRecord]:
    """Images of a COCO detection json; categories named in `class_names` are the classes, crowds are ignored regions."""
    from citytrack.data.formats.coco import load_coco

    path = Path(json_path)
    if not path.is_file():
        raise FormatError(path, "COCO annotation file does not exist")
    coco = load_coco(path)  # validates the json, FormatError naming the file otherwise
    root = Path(image_root) if image_root is not None else path.parent
    name_to_class = {n: i for i, n in enumerate(class_names)}
    cat_to_class = {c["id"]: name_to_class[c["name"]] for c in coco.loadCats(coco.getCatIds()) if c["name"] in name_to_class}
    records = []
    for img_id in sorted(coco.getImgIds()):
        info = coco.loadImgs(img_id)[0]
        anns = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=img_id)) if a["category_id"] in cat_to_class]
        xywh = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
        labels = np.array([IGNORE if a.get("iscrowd", 0) else cat_to_class[a["category_id"]] for a in anns], dtype=np.int64)
        boxes, labels = _clip_and_mark(xywh, labels, int(info["width"]), int(info["height"]), 0.0)
        records.append(FrameRecord(root / info["file_name"], None, boxes, labels, str(info["file_name"])))
    return records


class DetectionDataset(Dataset):
    """Letterboxed RGB images `(3, S, S) uint8` and targets `(N, 5) class, x1, y1, x2, y2` in input pixels.

    Video frames are decoded once, sequentially (seeking in H.264 is slow and not exact),
    and kept letterboxed and JPEG-encoded in memory: a few hundred frames cost tens of MB.
    `jpeg_quality=(lo, hi)` (training) re-encodes every image at a random quality in that
    range, the blocking and ringing of real compressed video that the renders lack. The quality
    of a draw comes from `np.random.default_rng([seed, n, i])`, `i` the item and `n` how many
    times this process drew it before: reproducible by `seed`, different for every item, and
    not repeated by DataLoader workers (which would each get an identical copy of one shared
    generator). A fresh epoch in persistent workers or the main process draws anew; without a
    seed a random one is picked.
    """

    def __init__(
        self,
        records: Sequence[FrameRecord],
        img_size: int = 640,
        min_size: float = 4.0,
        jpeg_quality: Sequence[int] | None = None,
        seed: int | None = None,
    ) -> None:
        if not records:
            raise ValueError("DetectionDataset needs at least one frame record")
        self.records = list(records)
        self.img_size = int(img_size)
        self.min_size = float(min_size)
        if jpeg_quality is not None and not (len(jpeg_quality) == 2 and 1 <= jpeg_quality[0] <= jpeg_quality[1] <= 100):
            raise ValueError(f"jpeg_quality must be (lo, hi) within 1..100, got {jpeg_quality!r}")
        self.jpeg_quality = tuple(int(q) for q in jpeg_quality) if jpeg_quality is not None else None
        self.seed = int(seed) if seed is not None else int(np.random.SeedSequence().entropy % (1 << 63))
        self._draws: dict[int, int] = defaultdict(int)
        self._cache: dict[int, bytes] = {}
        self._letterbox: dict[int, Letterbox] = {}
        self._decode_videos()

    def _decode_videos(self) -> None:
        wanted: dict[Path, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
        for i, r in enumerate(self.records):
            if r.frame is not None:
                wanted[r.source][r.frame].append(i)
        for video, frames in wanted.items():
            last = max(frames)
            with VideoReader(video) as reader:
                for index in sorted(frames):
                    image = reader.read_at(index)  # the frames in between are grabbed, not decoded
                    if image is None:
                        raise VideoError(video, f"{reader.stop_reason}, but frame {last} is annotated/requested")
                    boxed, lb = letterbox_image(image, self.img_size)
                    _, buf = cv2.imencode(".jpg", boxed, [cv2.IMWRITE_JPEG_QUALITY, 95])
                    for i in frames[index]:
                        self._cache[i] = buf.tobytes()
                        self._letterbox[i] = lb

    def __len__(self) -> int:
        return len(self.records)

    def load(self, i: int) -> tuple[np.ndarray, Letterbox]:
        """Letterboxed BGR image of record `i` and its mapping."""
        if i in self._cache:
            image = cv2.imdecode(np.frombuffer(self._cache[i], np.uint8), cv2.IMREAD_COLOR)
            return image, self._letterbox[i]
        path = self.records[i].source
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FormatError(path, "image file is missing or cannot be decoded")
        return letterbox_image(image, self.img_size)

    def jpeg_quality_of(self, i: int) -> int:
        """The re-encoding quality of this draw of item `i` (advances the item's draw counter)."""
        assert self.jpeg_quality is not None
        n = self._draws[i]
        self._draws[i] = n + 1
        rng = np.random.default_rng([self.seed, n, int(i)])
        return int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1))

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        image, lb = self.load(i)
        if self.jpeg_quality is not None:
            q = self.jpeg_quality_of(i)
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, q])
            image = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else image
        r = self.records[i]
        boxes = lb.to_input(r.boxes.astype(np.float64).copy()) if len(r.boxes) else np.zeros((0, 4))
        labels = r.labels.copy()
        small = (boxes[:, 2] - boxes[:, 0] < self.min_size) | (boxes[:, 3] - boxes[:, 1] < self.min_size)
        labels[small] = IGNORE
        target = np.concatenate([labels[:, None].astype(np.float64), boxes], 1).astype(np.float32)
        return {
            "images": torch.from_numpy(np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1))),
            "targets": torch.from_numpy(target.reshape(-1, 5)),
            "index": torch.tensor(i),
        }


def collate_detection(samples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack images; pad targets to `(B, M, 5)` with class -1."""
    m = max(1, max(len(s["targets"]) for s in samples))
    targets = torch.full((len(samples), m, 5), float(PAD))
    for b, s in enumerate(samples):
        targets[b, : len(s["targets"])] = s["targets"]
    return {
        "images": torch.stack([s["images"] for s in samples]),
        "targets": targets,
        "index": torch.stack([s["index"] for s in samples]),
    }
