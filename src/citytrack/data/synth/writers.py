"""Write rendered scenes in the real datasets' layouts, through the project's format writers.

Which box the ground truth holds (see `render.py` for the exact definitions):

- `aic24` (`ground_truth.txt`) and `aic23` (`label.txt`): the FULL box of the person, the
  extent of the whole body as if unoccluded and not cut by the image border (amodal, as the
  real datasets annotate); `(xworld, yworld)` is the world foot point, whose exact projection
  through the written `calibration.json` lies near the box's bottom centre, a few percent of
  the box height above its bottom edge (`render.py` says by how much and why). Beside them, per
  camera, `keypoints.json`: COCO person keypoints (17 joints, `keypoints.py`) of the same people
  in full-frame pixels: one `images` entry per frame (`id` = `frame` = the frame number in the
  layout's base, `file_name` = `video.mp4`), one annotation per ground-truth row (`bbox` = the
  full box, `area` = the unoccluded silhouette's pixel count, `track_id` = the person id,
  `visibility` = the visible share; per joint v = 0 outside the frame, 1 occluded, 2 visible).
- `mot` (`gt/gt.txt`): the same full box plus the visibility ratio (visible pixels / pixels
  of the unoccluded person), class 1, consider-flag 1; `det/det.txt` is made from it with
  misses, box noise and false positives.
- `kitti_mots`: instance masks of the visible pixels (class 2, ids `2000 + person id`);
  people with fewer than `gt.min_visible_pixels` visible pixels become ignore regions (10000).

A person appears in a camera's ground truth only where at least `gt.min_visible_pixels` of
them are visible, so somebody hidden in every camera (or outside every view) has no box.
Frames are 0-based in AI City 2024 and KITTI MOTS, 1-based in MOTChallenge and the
MOT-style AI City 2023 `label.txt`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
from omegaconf import DictConfig, OmegaConf

from citytrack.data.formats import aicity, coco, kitti_mots, mot, reid
from citytrack.data.synth.render import FrameRender
from citytrack.data.synth.world import World
from citytrack.data.video import AtomicVideoWriter
from citytrack.utils.io import atomic_open, atomic_path

PEDESTRIAN = kitti_mots.PEDESTRIAN_CLASS


def calibration_record(world: World, c: int) -> aicity.Aic24Calibration:
    """The camera's `calibration.json` content: AI City 2024 keys plus intrinsics/extrinsics."""
    cam = world.cameras[c]
    return aicity.Aic24Calibration(
        projection=cam.projection,
        homography=cam.calibration.homography,
        extras={
            "intrinsic matrix": cam.K,
            "extrinsic matrix": np.hstack([cam.R, cam.t[:, None]]),
            "camera coordinates": cam.center,
            "image size": [cam.width, cam.height],
            "horizontal fov": cam.hfov,
        },
    )


def camera_meta(world: World, c: int) -> dict[str, Any]:
    cam = world.cameras[c]
    return {
        "index": c,
        "width": cam.width,
        "height": cam.height,
        "hfov": cam.hfov,
        "K": cam.K.tolist(),
        "R": cam.R.tolist(),
        "t": cam.t.tolist(),
        "center": cam.center.tolist(),
        "gain": cam.gain,
        "noise_sigma": cam.noise_sigma,
    }


def write_image(path: Path, image: np.ndarray, params: list[int] | None = None) -> None:
    """Write one of the many small per-frame images (MOT frames, ReID crops) straight to its name.

    Unlike the ground truth, calibration and videos these are not written through a temporary
    file: a dataset is only complete once `meta.json` is written (last), an incomplete one is
    regenerated from scratch, and skipping the temporary file and rename halves the file-system
    cost of a crop, which at 640x360 with 30 people is a large part of the dataset command's time.
    """
    if not cv2.imwrite(str(path), image, params or []):
        raise OSError(f"cannot write {path}")


class CameraSink:
    """The files of one camera of a scene in one layout; fed every `FrameRender` of that camera.

    Runs wherever the camera is rendered (this process or a worker process): it writes the
    per-frame files (video, images, instance maps) itself and returns what the scene needs
    from it (ground-truth rows, records) from `close`, as a picklable value.
    """

    def __init__(self, world: World, root: Path, split: str, cfg: DictConfig, cam_offset: int, c: int) -> None:
        self.world, self.root, self.split, self.cfg, self.cam_offset, self.c = world, root, split, cfg, cam_offset, c
        self.stack = contextlib.ExitStack()

    def global_ids(self, fr: FrameRender, keep: np.ndarray) -> np.ndarray:
        return np.array([self.world.agents[a].global_id for a in fr.agents[keep]], dtype=np.float64)

    def add(self, fr: FrameRender, keep: np.ndarray) -> None:
        raise NotImplementedError

    def result(self) -> Any:
        raise NotImplementedError

    def close(self) -> Any:
        """Finish (rename) this camera's files; returns its part of the scene's ground truth."""
        self.stack.close()
        return self.result()

    def abort(self) -> None:
        """Remove the temporary files of an unfinished camera."""
        self.stack.__exit__(RuntimeError, RuntimeError("aborted"), None)


class SceneSink:
    """Scene-level part of a layout: set-up before the cameras are rendered and the scene's
    files (ground truth, calibration) from the cameras' `CameraSink.close` results."""

    camera_sink: type[CameraSink]

    def __init__(self, world: World, root: Path, split: str, cfg: DictConfig, cam_offset: int) -> None:
        self.world, self.root, self.split, self.cfg, self.cam_offset = world, root, split, cfg, cam_offset

    def camera(self, c: int) -> CameraSink:
        return self.camera_sink(self.world, self.root, self.split, self.cfg, self.cam_offset, c)

    def close(self, results: list[Any]) -> dict[str, Any]:
        """Write the scene files from the per-camera results (camera order); returns the scene's meta.json entry."""
        raise NotImplementedError

    def camera_entry(self, c: int, **extra: Any) -> dict[str, Any]:
        return {**camera_meta(self.world, c), "camera_id": self.cam_offset + c + 1, **extra}


# scene and camera folder names of the AI City layouts the synthetic writers produce
_AIC_DIRNAMES: dict[str, tuple[Callable[[int], str], Callable[[int], str]]] = {
    "aic24": (aicity.aic24_scene_dirname, aicity.aic24_camera_dirname),
    "aic23": (aicity.aic23_scene_dirname, aicity.aic23_camera_dirname),
}


def aic_scene_dir(layout: str, root: Path, split: str, world: World) -> Path:
    """`root/split/scene_XXX` (2024) or `root/split/S0XX` (2023) of this world's scene."""
    return root / split / _AIC_DIRNAMES[layout][0](world.scene_index + 1)


def aic_camera_dir(layout: str, root: Path, split: str, world: World, camera_id: int) -> Path:
    """A camera folder inside `aic_scene_dir` (`camera_XXXX` or `c0XX`)."""
    return aic_scene_dir(layout, root, split, world) / _AIC_DIRNAMES[layout][1](camera_id)


def mot_sequence_dir(root: Path, split: str, world: World, c: int) -> Path:
    return root / split / f"SYNTH-{world.scene_index + 1:02d}-{c + 1:02d}"


class _VideoCameraWriter(CameraSink):
    """AI City 2023/2024 camera: `video.mp4` and `keypoints.json` plus ground-truth rows
    `camera, id, frame (0-based), x, y, w, h, xworld, yworld, visibility`."""

    layout: ClassVar[str]
    frame_base: ClassVar[int]  # of the layout's labels, and so of keypoints.json

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        cam = self.world.cameras[self.c]
        self.rows: list[np.ndarray] = []
        self.keypoint_anns: list[dict[str, Any]] = []
        try:
            self.video = self.stack.enter_context(AtomicVideoWriter(  # renamed into place on close
                self.camera_dir() / "video.mp4", self.world.spec.fps, (cam.width, cam.height), self.cfg.video.fourcc
            ))
        except BaseException:
            self.abort()
            raise

    def camera_dir(self) -> Path:
        return aic_camera_dir(self.layout, self.root, self.split, self.world, self.cam_offset + self.c + 1)

    def add(self, fr: FrameRender, keep: np.ndarray) -> None:
        self.video.write(fr.image)
        n = int(keep.sum())
        if n:
            ids = self.global_ids(fr, keep)
            self.rows.append(np.column_stack([
                np.full(n, self.cam_offset + self.c + 1.0), ids, np.full(n, float(fr.frame)),
                fr.full_boxes[keep], fr.foot_world[keep], fr.visibility[keep],
            ]))
            image_id = fr.frame + self.frame_base
            self.keypoint_anns += [
                coco.keypoint_annotation(image_id, box, kp, px, track_id=int(pid), visibility=round(float(v), 4))
                for box, kp, px, pid, v in zip(fr.full_boxes[keep], fr.keypoints[keep], fr.full_pixels[keep].tolist(),
                                               ids.tolist(), fr.visibility[keep].tolist(), strict=True)
            ]

    def close(self) -> np.ndarray:
        """The video is renamed into place, then `keypoints.json` is written; returns the ground-truth rows."""
        rows = super().close()
        cam = self.world.cameras[self.c]
        images = [{"id": f + self.frame_base, "file_name": "video.mp4", "width": cam.width, "height": cam.height,
                   "frame": f + self.frame_base} for f in range(self.world.frames)]
        coco.write_coco_keypoints(self.camera_dir() / "keypoints.json", coco.build_coco_keypoints_dataset(images, self.keypoint_anns))
        return rows

    def result(self) -> np.ndarray:
        return np.vstack(self.rows) if self.rows else np.zeros((0, 10))


class Aic24CameraWriter(_VideoCameraWriter):
    layout = "aic24"
    frame_base = 0


class Aic23CameraWriter(_VideoCameraWriter):
    layout = "aic23"
    frame_base = 1


class _VideoSceneWriter(SceneSink):
    """AI City 2023/2024: one video per camera plus calibration and ground truth."""

    layout: ClassVar[str]

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        for c in range(len(self.world.cameras)):
            aicity.write_aic24_calibration(self.camera_dir(c) / "calibration.json", calibration_record(self.world, c))

    @property
    def scene_dir(self) -> Path:
        return aic_scene_dir(self.layout, self.root, self.split, self.world)

    def camera_dir(self, c: int) -> Path:
        return aic_camera_dir(self.layout, self.root, self.split, self.world, self.cam_offset + c + 1)


class Aic24SceneWriter(_VideoSceneWriter):
    """`scene_XXX/camera_XXXX/{video.mp4, calibration.json, keypoints.json}` and the scene's `ground_truth.txt`."""

    layout = "aic24"
    camera_sink = Aic24CameraWriter

    def close(self, results: list[np.ndarray]) -> dict[str, Any]:
        t = np.vstack(results) if results else np.zeros((0, 10))
        order = np.lexsort((t[:, 1], t[:, 2], t[:, 0])) if len(t) else np.zeros(0, dtype=np.int64)
        aicity.write_aic24_ground_truth(self.scene_dir / "ground_truth.txt", t[order, :9])
        return {
            "scene_id": self.world.scene_index + 1,
            "dir": str(self.scene_dir.relative_to(self.root)),
            "cameras": [self.camera_entry(c, dir=str(self.camera_dir(c).relative_to(self.root)))
                        for c in range(len(self.world.cameras))],
        }


class Aic23SceneWriter(_VideoSceneWriter):
    """`S0XX/c0XX/{video.mp4, calibration.json, label.txt, keypoints.json}` (MOT-style labels, frames 1-based)."""

    layout = "aic23"
    camera_sink = Aic23CameraWriter

    def close(self, results: list[np.ndarray]) -> dict[str, Any]:
        cams = []
        for c, rows in enumerate(results):
            rows = rows[np.lexsort((rows[:, 1], rows[:, 2]))]
            table = np.column_stack([rows[:, 2] + 1, rows[:, 1], rows[:, 3:7], np.ones(len(rows)), np.ones(len(rows)),
                                     rows[:, 9], np.full(len(rows), -1.0)])
            mot.write_mot(self.camera_dir(c) / "label.txt", table.reshape(-1, 10), kind="gt")
            cams.append(self.camera_entry(c, dir=str(self.camera_dir(c).relative_to(self.root))))
        return {"scene_id": self.world.scene_index + 1, "dir": str(self.scene_dir.relative_to(self.root)),
                "cameras": cams, "label_frame_base": 1}


class DetectionSimulator:
    """Detections from ground truth the way a real detector errs: misses (more for occluded or
    small people), box noise (towards the visible part when occluded), scores that follow
    visibility, and false positives of person-like shape."""

    def __init__(self, cfg: DictConfig, rng: np.random.Generator, size: tuple[int, int]) -> None:
        self.cfg, self.rng, self.W, self.H = cfg, rng, size[0], size[1]

    def __call__(self, frame1: int, full: np.ndarray, visible: np.ndarray, vis: np.ndarray) -> np.ndarray:
        cfg, rng = self.cfg, self.rng
        n = len(full)
        h = full[:, 3]
        p = cfg.recall * np.clip((vis - cfg.min_visibility) / 0.4, 0, 1) ** 0.7
        p *= np.where(h < cfg.small_height, 0.6, 1.0)
        hit = rng.random(n) < p
        base = np.where((vis < 0.5)[:, None], visible, full)[hit]
        m = len(base)
        ctr = base[:, :2] + base[:, 2:] / 2 + rng.normal(0, cfg.jitter, (m, 2)) * base[:, 2:]
        wh = base[:, 2:] * np.exp(rng.normal(0, cfg.jitter, (m, 2)))
        boxes = np.column_stack([ctr - wh / 2, wh])
        score = np.clip(rng.normal(0.55 + 0.4 * vis[hit], 0.08), 0.05, 0.99)
        k = rng.poisson(cfg.fp_per_frame)
        fh = rng.uniform(0.08, 0.4, k) * self.H
        fw = fh * rng.uniform(0.3, 0.5, k)
        fp = np.column_stack([rng.uniform(0, self.W - fw), rng.uniform(0, self.H - fh), fw, fh])
        boxes = np.vstack([boxes, fp])
        score = np.concatenate([score, rng.uniform(0.05, 0.55, k)])
        out = np.full((len(boxes), 10), -1.0)
        out[:, 0] = frame1
        out[:, 2:6] = boxes
        out[:, 6] = score
        return out


class MotCameraWriter(CameraSink):
    """One MOTChallenge sequence: `img1/*.jpg` here; gt and simulated detections go back to the scene."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.seq_dir = mot_sequence_dir(self.root, self.split, self.world, self.c)
        lay = self.cfg.layout
        self.jpeg = [int(cv2.IMWRITE_JPEG_QUALITY), int(lay.jpeg_quality)]
        (self.seq_dir / "img1").mkdir(parents=True, exist_ok=True)
        # Seeded by (seed, scene, camera): the same detections whichever process renders the camera.
        ss = np.random.SeedSequence([int(self.cfg.seed), self.world.scene_index, 7]).spawn(len(self.world.cameras))[self.c]
        cam = self.world.cameras[self.c]
        self.dets = DetectionSimulator(lay.det, np.random.default_rng(ss), (cam.width, cam.height))
        self.gt: list[np.ndarray] = []
        self.det: list[np.ndarray] = []

    def add(self, fr: FrameRender, keep: np.ndarray) -> None:
        write_image(self.seq_dir / "img1" / f"{fr.frame + 1:06d}.jpg", fr.image, self.jpeg)
        n = int(keep.sum())
        vis = fr.visibility[keep]
        self.gt.append(np.column_stack([np.full(n, fr.frame + 1.0), self.global_ids(fr, keep), fr.full_boxes[keep],
                                        np.ones(n), np.ones(n), vis, np.full(n, -1.0)]))
        self.det.append(self.dets(fr.frame + 1, fr.full_boxes[keep], fr.visible_boxes[keep], vis))

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        gt = np.vstack(self.gt) if self.gt else np.zeros((0, 10))
        det = np.vstack(self.det) if self.det else np.zeros((0, 10))
        return gt[np.lexsort((gt[:, 1], gt[:, 0]))], det


class MotSceneWriter(SceneSink):
    """One MOTChallenge sequence folder per camera."""

    camera_sink = MotCameraWriter

    def close(self, results: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
        cams = []
        for c, (gt, det) in enumerate(results):
            d = mot_sequence_dir(self.root, self.split, self.world, c)
            cam = self.world.cameras[c]
            mot.write_mot(d / "gt" / "gt.txt", gt, kind="gt")
            mot.write_mot(d / "det" / "det.txt", det, kind="det")
            mot.write_seqinfo(d / "seqinfo.ini", mot.SeqInfo(d.name, self.world.spec.fps, self.world.spec.frames, cam.width, cam.height))
            aicity.write_aic24_calibration(d / "calibration.json", calibration_record(self.world, c))
            cams.append(self.camera_entry(c, sequence=d.name, dir=str(d.relative_to(self.root))))
        return {"scene_id": self.world.scene_index + 1, "cameras": cams}


class KittiMotsCameraWriter(CameraSink):
    """KITTI MOTS sequence: PNG frames and 16-bit instance maps here; the RLE records go back to the scene."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.base = self.root / self.split
        self.seq = f"{self.cam_offset + self.c:04d}"
        self.records: list[kitti_mots.MotsRecord] = []
        self.lut = np.zeros(len(self.world.agents) + 1, dtype=np.uint16)
        self.min_height = float(self.cfg.layout.get("min_height", 0))

    def add(self, fr: FrameRender, keep: np.ndarray) -> None:
        seq, name = self.seq, f"{fr.frame:06d}.png"
        with atomic_path(self.base / "image_02" / seq / name) as tmp:
            if not cv2.imwrite(str(tmp), fr.image):
                raise OSError(f"cannot write {tmp}")
        lut = self.lut
        lut[:] = 0
        # KITTI MOTS labels only objects KITTI tracking annotates: shorter ones are DontCare, an ignore region
        keep = keep & (fr.visible_boxes[:, 3] >= self.min_height)
        for a, k in zip(fr.agents.tolist(), keep.tolist(), strict=True):
            lut[a + 1] = PEDESTRIAN * 1000 + self.world.agents[a].global_id if k else kitti_mots.IGNORE_ID
        ids = lut[fr.id_map]
        kitti_mots.write_instance_png(self.base / "instances" / seq / name, ids)
        self.records += kitti_mots.png_to_records(ids, fr.frame)

    def result(self) -> list[kitti_mots.MotsRecord]:
        return self.records


class KittiMotsSceneWriter(SceneSink):
    """KITTI MOTS: PNG frames, 16-bit instance maps and the instances_txt RLE file per camera."""

    camera_sink = KittiMotsCameraWriter

    def close(self, results: list[list[kitti_mots.MotsRecord]]) -> dict[str, Any]:
        cams = []
        for c, records in enumerate(results):
            seq = f"{self.cam_offset + c:04d}"
            kitti_mots.write_instances_txt(self.root / self.split / "instances_txt" / f"{seq}.txt", records)
            cams.append(self.camera_entry(c, sequence=seq))
        return {"scene_id": self.world.scene_index + 1, "cameras": cams}


SINKS: dict[str, type[SceneSink]] = {
    "aic24": Aic24SceneWriter, "aic23": Aic23SceneWriter, "mot": MotSceneWriter, "kitti_mots": KittiMotsSceneWriter
}


class ReidWriter:
    """Market-1501 crops: `bounding_box_train`, `bounding_box_test`, `query` under `DIR/reid`.

    Identities are split between train and test by id (a seeded permutation); query holds one
    crop per test identity and camera, moved out of the test gallery at the end. Each camera's
    crops are written by a `ReidCameraWriter` (in whichever process renders the camera), whose
    `result()` is merged here.
    """

    FOLDERS = ("bounding_box_train", "bounding_box_test", "query")

    def __init__(self, root: Path, cfg: DictConfig, total_ids: int, seed: int) -> None:
        self.root, self.cfg = root, cfg
        for f in self.FOLDERS:
            shutil.rmtree(root / f, ignore_errors=True)  # stale crops of a half-finished run
            (root / f).mkdir(parents=True, exist_ok=True)
        perm = np.random.default_rng([int(seed), 1501]).permutation(np.arange(1, total_ids + 1))
        n_test = round(cfg.test_fraction * total_ids)
        self.test_ids = frozenset(perm[:n_test].tolist())
        self.test_crops: dict[tuple[int, int], list[str]] = defaultdict(list)
        self.counts = {f: 0 for f in self.FOLDERS}

    def camera(self, world: World, c: int) -> ReidCameraWriter:
        return ReidCameraWriter(self.root, self.cfg, self.test_ids, world, c)

    def merge(self, result: tuple[dict[str, int], dict[tuple[int, int], list[str]]]) -> None:
        counts, crops = result
        for f, n in counts.items():
            self.counts[f] += n
        for key, names in crops.items():
            self.test_crops[key] += names

    def finish(self) -> dict[str, Any]:
        """Move one crop per (test identity, camera) to `query` (the middle one in time)."""
        for (_pid, _cam), names in sorted(self.test_crops.items()):
            name = sorted(names)[len(names) // 2]
            os.replace(self.root / "bounding_box_test" / name, self.root / "query" / name)
            self.counts["bounding_box_test"] -= 1
            self.counts["query"] += 1
        return {"counts": dict(self.counts), "test_ids": sorted(self.test_ids)}


class ReidCameraWriter:
    """The Market-1501 crops of one camera of one scene."""

    def __init__(self, root: Path, cfg: DictConfig, test_ids: frozenset[int], world: World, c: int) -> None:
        self.root, self.cfg, self.test_ids, self.world, self.c = root, cfg, test_ids, world, c
        self.size = (int(cfg.size[0]), int(cfg.size[1]))
        self.counts = {f: 0 for f in ReidWriter.FOLDERS}
        self.test_crops: dict[tuple[int, int], list[str]] = defaultdict(list)

    def add(self, fr: FrameRender, keep: np.ndarray) -> None:
        if fr.frame % self.cfg.stride:
            return
        world, c = self.world, self.c
        H, W = fr.image.shape[:2]
        vis = fr.visibility
        for r in np.flatnonzero(keep & (vis >= self.cfg.min_visibility) & (fr.full_boxes[:, 3] >= self.cfg.min_height)):
            x, y, w, h = fr.full_boxes[r]
            x0, y0 = max(int(np.floor(x)), 0), max(int(np.floor(y)), 0)
            x1, y1 = min(int(np.ceil(x + w)), W), min(int(np.ceil(y + h)), H)
            if x1 - x0 < 4 or y1 - y0 < 8:
                continue
            crop = cv2.resize(fr.image[y0:y1, x0:x1], self.size, interpolation=cv2.INTER_AREA)
            pid = world.agents[int(fr.agents[r])].global_id
            name = reid.format_market1501_name(pid, c + 1, world.scene_index + 1, fr.frame, 1)
            folder = "bounding_box_test" if pid in self.test_ids else "bounding_box_train"
            write_image(self.root / folder / name, crop)
            self.counts[folder] += 1
            if folder == "bounding_box_test":
                self.test_crops[(pid, c + 1 + 1000 * world.scene_index)].append(name)

    def result(self) -> tuple[dict[str, int], dict[tuple[int, int], list[str]]]:
        return dict(self.counts), dict(self.test_crops)


WORLD_VERSION = 3
"""Bumped whenever the same config renders a different world (2: amodal body-extent boxes, clutter,
camera imaging, people realism; 3: shapes drawn where they project, not half a pixel right and below,
`raster.fixed_point`); `ensure_synthetic_dataset` regenerates folders of another version."""


def write_meta(out: Path, cfg: DictConfig, scenes: list[dict[str, Any]], reid_info: dict[str, Any],
               pose_info: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> None:
    """`DIR/meta.json`, written last: its presence marks a complete dataset."""
    meta = {
        "generator": "citytrack.data.synth",
        "world_version": WORLD_VERSION,
        "layout": cfg.layout.name,
        "split": cfg.split,
        "seed": cfg.seed,
        "fps": cfg.fps,
        "width": cfg.width,
        "height": cfg.height,
        "frames": cfg.frames,
        "frame_base": {"aic24": 0, "aic23": 1, "mot": 1, "kitti_mots": 0, "aic19": 1}[cfg.layout.name],
        # `workers` only says how the dataset was computed, not what it holds: left out so that
        # the output is byte-identical whatever the number of worker processes.
        "config": {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k != "workers"},  # type: ignore[union-attr]
        "scenes": scenes,
        "reid": reid_info,
        "pose": pose_info,
        **(extra or {}),
    }
    with atomic_open(out / "meta.json") as fh:
        json.dump(meta, fh, indent=2)
        fh.write("\n")
