"""Person crops cut from AI City 2024 scenes (videos + `ground_truth.txt`) into a Market-1501 folder.

The ReID datamodules call `extract_aic24_reid_crops` once per set of parameters (`crops.json`
records them, so a changed split, seed or stride re-extracts); `box_visibility` is the
occlusion proxy that decides which boxes are worth a crop.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from citytrack.data.formats.errors import FormatError
from citytrack.data.formats.reid import LAYOUTS
from citytrack.data.video import VideoError, VideoReader
from citytrack.utils.io import atomic_open, atomic_path

log = logging.getLogger(__name__)


def scene_dirs_of(dataset_dir: Path) -> list[Path]:
    """Every `scene_XXX` folder under a dataset written in the AI City 2024 layout."""
    from citytrack.data.formats.aicity import list_aic24_scenes

    scenes = list_aic24_scenes(dataset_dir)
    if not scenes:
        raise FormatError(dataset_dir, "no scene_XXX folders found (expected the AI City 2024 layout)")
    return scenes


def box_visibility(boxes: np.ndarray, width: int, height: int, grid: int = 16) -> np.ndarray:
    """Visible fraction of each xywh box: inside the image and not covered by a box nearer the camera.

    A box is nearer when its bottom edge is lower in the image (ground-plane ordering of a
    camera looking down at a street), the usual occlusion proxy without depth.
    """
    n = len(boxes)
    vis = np.zeros(n, dtype=np.float64)
    if n == 0:
        return vis
    ts = (np.arange(grid) + 0.5) / grid
    x1, y1 = boxes[:, 0], boxes[:, 1]
    x2, y2 = x1 + boxes[:, 2], y1 + boxes[:, 3]
    for i in range(n):
        px = x1[i] + ts * boxes[i, 2]
        py = y1[i] + ts * boxes[i, 3]
        gx, gy = np.meshgrid(px, py)
        free = (gx >= 0) & (gx < width) & (gy >= 0) & (gy < height)
        for j in np.where(y2 > y2[i])[0]:
            free &= ~((gx >= x1[j]) & (gx < x2[j]) & (gy >= y1[j]) & (gy < y2[j]))
        vis[i] = free.mean()
    return vis


def crop_params_key(*params: Any) -> str:
    """Short stable hash of extraction parameters (names a crop cache folder)."""
    return hashlib.sha1(json.dumps([p if p is None or isinstance(p, str) else float(p) for p in params]).encode()).hexdigest()[:8]


def _crop_params(
    scene_dirs: Sequence[Path], frame_stride: int, min_visibility: float, min_height: float, eval_fraction: float, seed: int
) -> dict[str, Any]:
    """Everything that decides the content of a crop folder, as stored in `crops.json`.

    Each scene is identified by its resolved path and its ground truth's size and mtime, so a
    regenerated scene at the same path is also noticed.
    """
    scenes = []
    for s in scene_dirs:
        gt = Path(s) / "ground_truth.txt"
        st = gt.stat() if gt.is_file() else None
        scenes.append({"path": str(Path(s).resolve()), "gt_size": st.st_size if st else None,
                       "gt_mtime_ns": st.st_mtime_ns if st else None})
    return {"frame_stride": int(frame_stride), "min_visibility": float(min_visibility), "min_height": float(min_height),
            "eval_fraction": float(eval_fraction), "seed": int(seed), "scenes": scenes}


def _stored_params(marker: Path) -> dict[str, Any] | None:
    try:
        stored = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict):
        return None
    return {k: stored.get(k) for k in ("frame_stride", "min_visibility", "min_height", "eval_fraction", "seed", "scenes")}


def extract_aic24_reid_crops(
    scene_dirs: Sequence[Path],
    out_dir: str | Path,
    frame_stride: int = 5,
    min_visibility: float = 0.6,
    min_height: int = 24,
    eval_fraction: float = 0.5,
    seed: int = 0,
) -> Path:
    """Cut person crops from scene videos into a Market-1501 folder, once per set of parameters.

    `out_dir/crops.json` records the parameters and scenes (paths, ground-truth size and mtime) of
    the extraction; a later call with the same ones reuses the folder, any difference (another
    split's scenes, seed, fraction, stride, ...) deletes the old crops and extracts again.

    Every `frame_stride`-th frame is decoded (OpenCV); boxes with visibility >= `min_visibility`
    and height >= `min_height` are kept. Identities (per scene) are shuffled with `seed`;
    a fraction `eval_fraction` becomes evaluation identities: one crop per identity and camera
    goes to `query`, the others to `bounding_box_test`; the rest go to `bounding_box_train`.
    Names: `{pid:04d}_c{camera}s1_{frame:06d}_00.jpg`, pids numbered from 1 over all scenes.
    """
    from citytrack.data.formats.aicity import load_aic24_scene, read_aic24_ground_truth

    out = Path(out_dir)
    marker = out / "crops.json"
    partial = out / "crops.incomplete"
    if frame_stride < 1 or not 0.0 <= eval_fraction <= 1.0:
        raise ValueError(f"need frame_stride >= 1 and eval_fraction in [0, 1], got {frame_stride}, {eval_fraction}")
    params = _crop_params(scene_dirs, frame_stride, min_visibility, min_height, eval_fraction, seed)
    if marker.is_file():
        stored = _stored_params(marker)
        if stored == params:
            return out
        diff = sorted(k for k in params if stored is None or stored.get(k) != params[k])
        log.warning("%s holds crops extracted with other parameters (%s): extracting again", out, ", ".join(diff))
        marker.unlink()
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.touch()
    if partial.is_file():  # our own earlier or interrupted extraction: start from empty folders
        for sub in LAYOUTS["market1501"]:
            shutil.rmtree(out / sub, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    partial.touch()
    rng = np.random.default_rng(seed)
    next_pid = 1
    counts = {"train": 0, "query": 0, "gallery": 0}
    for sub in LAYOUTS["market1501"]:
        (out / sub).mkdir(parents=True, exist_ok=True)
    for scene_dir in scene_dirs:
        scene = load_aic24_scene(scene_dir)
        if scene.ground_truth is None:
            raise FormatError(scene.dir, "scene has no ground_truth.txt to cut ReID crops from")
        gt = read_aic24_ground_truth(scene.ground_truth)
        obj_ids = np.unique(gt[:, 1]).astype(int)
        order = rng.permutation(obj_ids)
        n_eval = int(round(eval_fraction * len(order)))
        eval_ids = set(order[:n_eval].tolist())
        pid_of = {int(o): next_pid + i for i, o in enumerate(sorted(obj_ids))}
        next_pid += len(obj_ids)
        crops: list[tuple[int, int, int, np.ndarray]] = []  # pid, cam, frame, image
        for cam in scene.cameras:
            rows = gt[gt[:, 0] == cam.camera_id]
            rows = rows[rows[:, 2] % frame_stride == 0]
            if len(rows) == 0:
                continue
            by_frame: dict[int, np.ndarray] = {int(f): rows[rows[:, 2] == f] for f in np.unique(rows[:, 2])}
            last = max(by_frame)
            with VideoReader(cam.video) as reader:
                for frame_idx in sorted(by_frame):
                    frame = reader.read_at(frame_idx)  # the frames in between are grabbed, not decoded
                    if frame is None:
                        raise VideoError(cam.video, f"{reader.stop_reason}, ground truth goes to {last}")
                    fr = by_frame[frame_idx]
                    h, w = frame.shape[:2]
                    vis = box_visibility(fr[:, 3:7], w, h)
                    for row, v in zip(fr, vis, strict=True):
                        x, y, bw, bh = row[3:7]
                        if v < min_visibility or bh < min_height:
                            continue
                        xa, ya = max(int(round(x)), 0), max(int(round(y)), 0)
                        xb, yb = min(int(round(x + bw)), w), min(int(round(y + bh)), h)
                        if xb - xa < 4 or yb - ya < 4:
                            continue
                        crops.append((pid_of[int(row[1])], cam.camera_id, frame_idx, frame[ya:yb, xa:xb].copy()))
        # query/gallery split by camera for evaluation identities
        chosen_query: dict[tuple[int, int], int] = {}
        eval_pids = {pid_of[o] for o in eval_ids}
        candidates: dict[tuple[int, int], list[int]] = {}
        for i, (pid, cam, _, _) in enumerate(crops):
            if pid in eval_pids:
                candidates.setdefault((pid, cam), []).append(i)
        cams_of: dict[int, set[int]] = {}
        for pid, cam in candidates:
            cams_of.setdefault(pid, set()).add(cam)
        for key, ix in candidates.items():
            if len(cams_of[key[0]]) >= 2:  # a query needs the identity in another camera to be findable
                chosen_query[key] = int(ix[rng.integers(len(ix))])
        query_set = set(chosen_query.values())
        for i, (pid, cam, frame_idx, img) in enumerate(crops):
            if pid in eval_pids:
                sub, key = ("query", "query") if i in query_set else ("bounding_box_test", "gallery")
            else:
                sub, key = "bounding_box_train", "train"
            path = out / sub / f"{pid:04d}_c{cam}s1_{frame_idx:06d}_00.jpg"
            with atomic_path(path) as tmp:
                if not cv2.imwrite(str(tmp), img):
                    raise OSError(f"{path}: cannot write the crop")
            counts[key] += 1
    with atomic_open(marker) as fh:
        json.dump({**params, "counts": counts}, fh, indent=2)
    partial.unlink(missing_ok=True)
    log.info("ReID crops written to %s: %s", out, counts)
    return out
