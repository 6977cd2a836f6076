"""`python -m citytrack.bench pose`: what body keypoints change on held-out synthetic scenes.

    python -m citytrack.bench pose [--scenes 2] [--frames 100] [--boxes detector,gt] [--variants none,foot,full]
        [--device auto] [--max-frames N] [--no-hota] [--override KEY=VALUE ...] [--json OUT]
    python -m citytrack.bench pose --pets-picture OUT.png [--pets-boxes gt|detector] [--pets-frames 4]
    python -m citytrack.bench pose ... --foot-picture OUT.png [--foot-frame 50]

Two measurements, both on synthetic AI City 2024 scenes rendered on first use under
`<data>/synth/bench_pose_<parameters>/` (seed 2024, split `test`: the held-out seed of `python infer.py`):

1. **World foot-point error** (metres) of `BoxBottomCentre` and of the pose foot point
   (`pose=<name>`'s `foot_point`, keypoints from its `extractor`) against `ground_truth.txt`'s world
   foot positions, per box, for all people and for people whose feet are hidden. Boxes:
   - `detector`: the config's detector (`detector=synthetic_cpu`), each detection matched one to
     one to a ground-truth box (Hungarian, IoU >= `--match-iou` with the box clipped to the image);
   - `gt`: the ground-truth boxes clipped to the image, what an ideal detector of the visible
     frame sees. (Unclipped, the synthetic ground-truth box is the body's amodal extent, whose
     bottom centre lies a few percent of the box height below the projected foot point, as on
     real annotations: the box baseline errs by that much even when nothing is cut.)
   "Feet hidden": where a camera has `camera_XXXX/keypoints.json` (COCO keypoints, full-frame,
   `track_id` = the ground truth's object id) neither ankle is marked visible (v = 2). Otherwise,
   from the ground truth alone: the foot point lies outside the image (cut by the frame edge) or
   a nearer person's box (lower bottom edge) covers at least half of the lowest quarter of the
   box (static occluders are then not counted). The definition used is reported.
2. **AI City 2024 HOTA / AssA** of `multicam=online` per box source and pose variant, through the
   scene runner's own pieces (`ScenePipeline` built from `conf/infer.yaml`, `submission_rows`,
   `evaluate_scene`): `none` (`pose=none`), `foot` (pose foot points, association without pose),
   `full` (foot points, pose reliability, part-weighted appearance). With `detector=gt` the
   runner's boxes are the unclipped ground truth (see above): no person is cut, so the box
   baseline is at its best there; the detector rows are the ones that say what pose brings.
   Each run also reports the runner's own foot-point error (`runner_foot_error`): its tracked
   boxes' world points, matched to the visible ground truth as in 1. Unlike 1, this sees what
   depends on tracks (`pose.foot_point.track_stature`) and the tracker's smoothed boxes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from citytrack.utils.boxes import clip_xywh
from citytrack.utils.io import atomic_open
from citytrack.utils.paths import config_dir

CONF_DIR = config_dir()
SCENE = {"seed": 2024, "split": "test", "scenes": 2, "cameras": 4, "people": 14, "frames": 100, "fps": 10,
         "width": 640, "height": 360}
"""The benchmark scenes (`ensure_synthetic_dataset` arguments); the flags change them."""
VARIANTS: dict[str, list[str]] = {
    "none": ["pose=none"],
    "foot": ["pose=synthetic", "pose.association.seed_min_joints=0", "pose.association.part_weighting=false",
             "pose.association.bank_min_joints=0"],
    "full": ["pose=synthetic", "pose.association.seed_min_joints=7", "pose.association.part_weighting=true",
             "pose.association.bank_min_joints=10"],
}
"""Pose variant -> overrides of `conf/infer.yaml` (the `synthetic` name is replaced by `--pose`)."""
BOX_SOURCES: dict[str, list[str]] = {"detector": [], "gt": ["detector=gt"]}
OCCLUDED_STRIP, OCCLUDED_COVER = 0.25, 0.5
"""Ground-truth-only "feet occluded": a nearer box covers >= OCCLUDED_COVER of the lowest OCCLUDED_STRIP of the box."""


def scene_root(data_dir: Path, scene: dict[str, Any]) -> Path:
    """`<data_dir>/synth/bench_pose_...`: one folder per parameter set (an existing one is reused)."""
    key = (f"s{scene['seed']}_n{scene['scenes']}_c{scene['cameras']}_{scene['width']}x{scene['height']}"
           f"_p{scene['people']}_f{scene['frames']}_fps{scene['fps']}")
    return Path(data_dir) / "synth" / f"bench_pose_{key}"


def compose_config(device: str, overrides: list[str], conf_dir: Path = CONF_DIR) -> Any:
    """`conf/infer.yaml` as `python infer.py` composes it (the scene benchmark's composition)."""
    from citytrack.bench.scene import compose_config as compose

    return compose(Path(conf_dir), device, overrides)


# ----------------------------------------------------------------------------- feet hidden
def feet_hidden_from_boxes(full: np.ndarray, size: tuple[int, int], margin: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth-only definition for the people of one camera frame (`full` amodal xywh boxes; their
    bottom centre stands for the feet, as the boxes are all that is known): `(cut, occluded)` bool arrays."""
    foot = np.c_[full[:, 0] + full[:, 2] / 2, full[:, 1] + full[:, 3]]
    cut = (foot[:, 1] > size[1] - margin) | (foot[:, 0] < margin) | (foot[:, 0] > size[0] - margin)
    bottom = full[:, 1] + full[:, 3]
    strip = np.c_[full[:, 0], bottom - OCCLUDED_STRIP * full[:, 3], full[:, 2], OCCLUDED_STRIP * full[:, 3]]
    occluded = np.zeros(len(full), dtype=bool)
    for i in range(len(full)):
        nearer = bottom > bottom[i]
        if not nearer.any():
            continue
        o = full[nearer]
        ix = np.clip(np.minimum(strip[i, 0] + strip[i, 2], o[:, 0] + o[:, 2]) - np.maximum(strip[i, 0], o[:, 0]), 0, None)
        iy = np.clip(np.minimum(strip[i, 1] + strip[i, 3], o[:, 1] + o[:, 3]) - np.maximum(strip[i, 1], o[:, 1]), 0, None)
        occluded[i] = (ix * iy).max() >= OCCLUDED_COVER * max(strip[i, 2] * strip[i, 3], 1e-9)
    return cut, occluded


def _image_frame(image: dict[str, Any]) -> int | None:
    for key in ("frame_id", "frame"):
        if isinstance(image.get(key), int):
            return int(image[key])
    digits = re.findall(r"\d+", str(image.get("file_name", "")))
    return int(digits[-1]) if digits else None


def load_feet_visibility(path: Path) -> dict[tuple[int, int], bool] | None:
    """`{(frame, track_id): an ankle is visible}` from a camera's `keypoints.json`, or None when the
    file is absent or does not name frames and track ids (then the box definition is used)."""
    if not path.is_file():
        return None
    from citytrack.data.formats.coco import load_coco_keypoints

    coco = load_coco_keypoints(path)
    out: dict[tuple[int, int], bool] = {}
    for ann in coco.dataset["annotations"]:
        frame = _image_frame(coco.imgs[ann["image_id"]])
        tid = ann.get("track_id")
        if frame is None or not isinstance(tid, int) or tid < 0:
            return None
        v = ann["keypoints"][2::3]
        out[(frame, tid)] = v[15] == 2 or v[16] == 2
    return out


# ----------------------------------------------------------------------------- foot-point error
def match_to_truth(dets: np.ndarray, truth: np.ndarray, min_iou: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one detection -> ground-truth pairs `(det_index, truth_index)` with IoU >= min_iou."""
    from citytrack.tracking.matching import iou_matrix, linear_assignment

    if not len(dets) or not len(truth):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    matches, _, _ = linear_assignment(1.0 - iou_matrix(dets, truth), 1.0 - min_iou)
    matches = np.asarray(matches, dtype=np.int64).reshape(-1, 2)
    return matches[:, 0], matches[:, 1]


def visible_truth(gt: np.ndarray, camera: int, frame: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth rows of one camera frame with at least a pixel on the image, and their boxes
    clipped to it (what the `gt` box source and the foot picture use)."""
    from citytrack.data.formats.aicity import BH, BX, CAMERA_ID, FRAME_ID

    rows = gt[(gt[:, CAMERA_ID] == camera) & (gt[:, FRAME_ID] == frame)]
    truth = clip_xywh(rows[:, BX : BH + 1], size)
    keep = (truth[:, 2] >= 1) & (truth[:, 3] >= 1)
    return rows[keep], truth[keep]


def extractor_boxes(boxes: np.ndarray) -> np.ndarray:
    """Boxes as the keypoint extractor takes them: at least one pixel wide and tall."""
    return np.c_[boxes[:, :2], np.maximum(boxes[:, 2:], 1.0)]


def feet_hidden(gt: np.ndarray, vis: dict[tuple[int, int], bool] | None, camera: int, frame: int, rows: np.ndarray,
                size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per ground-truth row of one camera frame: feet hidden, cut by the frame, occluded by a nearer
    person, and whether `hidden` comes from the camera's keypoints file (`vis`) rather than the boxes."""
    from citytrack.data.formats.aicity import BH, BX, CAMERA_ID, FRAME_ID, OBJ_ID

    all_rows = gt[(gt[:, CAMERA_ID] == camera) & (gt[:, FRAME_ID] == frame)]
    cut_all, occ_all = feet_hidden_from_boxes(all_rows[:, BX : BH + 1], size)
    index = {int(o): k for k, o in enumerate(all_rows[:, OBJ_ID])}
    k = np.array([index[int(o)] for o in rows[:, OBJ_ID]], dtype=np.int64)
    cut, occ = cut_all[k], occ_all[k]
    known = np.array([vis is not None and (frame, int(o)) in vis for o in rows[:, OBJ_ID]], dtype=bool)
    hidden = cut | occ
    if vis is not None:
        hidden = np.where(known, [not vis.get((frame, int(o)), True) for o in rows[:, OBJ_ID]], hidden)
    return np.asarray(hidden, bool), cut, occ, known


def runner_foot_errors(scene: Any, table: np.ndarray, match_iou: float = 0.5) -> dict[str, np.ndarray]:
    """World error (m) of the scene runner's own ground points: every tracked box of its table
    (tracker boxes, world columns from its foot-point step) matched one to one to the visible
    ground truth of its camera frame, with the feet-hidden flags of `foot_errors`."""
    from citytrack.data.formats.aicity import XWORLD, YWORLD
    from citytrack.data.video import probe_video

    gt = scene.ground_truth
    out: dict[str, list[np.ndarray]] = {"err": [], "hidden": []}
    for cam in scene.cameras:
        c = cam.camera_id
        info = probe_video(cam.video)  # the frames' own size, as `foot_errors` reads it from its reader
        size = (info.width, info.height)
        vis = load_feet_visibility(cam.video.parent / "keypoints.json")
        mine = table[table[:, 0] == c]
        for frame in np.unique(mine[:, 2]).astype(int):
            rows_run = mine[mine[:, 2] == frame]
            rows, truth = visible_truth(gt, c, frame, size)
            di, ti = match_to_truth(clip_xywh(rows_run[:, 3:7], size), truth, match_iou)
            if not len(di):
                continue
            out["err"].append(np.linalg.norm(rows_run[di, 7:9] - rows[ti][:, [XWORLD, YWORLD]], axis=1))
            out["hidden"].append(feet_hidden(gt, vis, c, frame, rows[ti], size)[0])
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in out.items()}


def foot_errors(
    scene: Any, extractor: Any, foot_point: Any, boxes: str = "detector", detector: Any = None,
    device: str = "cpu", max_frames: int | None = None, match_iou: float = 0.5,
) -> dict[str, np.ndarray]:
    """Per matched box of every camera and frame: world error of the box bottom centre and of the
    pose foot point (metres), the pose rule used, and the feet-hidden flags."""
    import torch

    from citytrack.data.formats.aicity import XWORLD, YWORLD
    from citytrack.data.video import SyncedVideoReader
    from citytrack.multicam.foot import BoxBottomCentre
    from citytrack.utils.device import resolve_device

    dev = resolve_device(device)
    gt = scene.ground_truth
    calib = {c.camera_id: c.calibration for c in scene.cameras}
    vis_files = {c.camera_id: load_feet_visibility(c.video.parent / "keypoints.json") for c in scene.cameras}
    if detector is not None:
        detector.reset(scene)
    box_foot = BoxBottomCentre()
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("err_box", "err_pose", "rule", "hidden", "cut", "occluded", "from_file")}
    paths = {c.camera_id: c.video for c in scene.cameras}
    with SyncedVideoReader(paths, max_frames=max_frames) as reader:
        sizes = {int(k): (i.width, i.height) for k, i in reader.infos.items()}
        for frame, images in reader:
            cams = sorted(int(c) for c in images)
            groups: dict[tuple[int, ...], list[int]] = {}
            for c in cams:
                groups.setdefault(images[c].shape, []).append(c)
            per_cam: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # camera -> (boxes, ground-truth rows)
            kps: dict[int, np.ndarray] = {}
            for members in groups.values():
                x = torch.from_numpy(np.stack([images[c] for c in members])).to(dev).permute(0, 3, 1, 2)  # BGR
                dets = detector(x.flip(1), members, frame) if detector is not None else [None] * len(members)
                for c, d in zip(members, dets, strict=True):
                    rows, truth = visible_truth(gt, c, frame, sizes[c])
                    if boxes == "gt":
                        per_cam[c] = (truth, rows)
                    else:
                        d = np.asarray(d, dtype=np.float64).reshape(-1, 5)[:, :4]
                        di, ti = match_to_truth(d, truth, match_iou)
                        per_cam[c] = (d[di], rows[ti])
                found = extractor(x, [extractor_boxes(per_cam[c][0]) for c in members])
                kps.update(zip(members, (np.asarray(k, np.float32) for k in found), strict=True))
            for c in cams:
                b, rows = per_cam[c]
                if not len(b):
                    continue
                size = np.broadcast_to(np.asarray(sizes[c], np.float64), (len(b), 2))
                uv_pose, rule = foot_point.estimate(b, kps[c], size, [calib[c]] * len(b))
                world_gt = rows[:, [XWORLD, YWORLD]]
                for key, uv in (("err_box", box_foot(b)), ("err_pose", uv_pose)):
                    out[key].append(np.linalg.norm(calib[c].image_to_ground(uv) - world_gt, axis=1))
                hidden, cut, occ, known = feet_hidden(gt, vis_files[c], c, frame, rows, sizes[c])
                for key, v in (("rule", rule), ("hidden", hidden), ("cut", cut), ("occluded", occ), ("from_file", known)):
                    out[key].append(np.asarray(v))
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in out.items()}


def error_summary(res: dict[str, np.ndarray]) -> dict[str, Any]:
    """Median / mean / p90 error (m) of both foot points for all boxes, feet hidden, feet visible."""
    from citytrack.multicam.foot import ANKLES, BOX, EXTRAPOLATED, VERTICAL

    subsets = {"all": np.ones(len(res["err_box"]), bool), "feet_hidden": res["hidden"].astype(bool),
               "feet_visible": ~res["hidden"].astype(bool), "cut_by_frame": res["cut"].astype(bool)}
    out: dict[str, Any] = {}
    for name, sel in subsets.items():
        entry: dict[str, Any] = {"boxes": int(sel.sum())}
        for method in ("box", "pose"):
            e = res[f"err_{method}"][sel]
            e = e[np.isfinite(e)]
            entry[method] = ({"median": float(np.median(e)), "mean": float(np.mean(e)), "p90": float(np.percentile(e, 90)),
                              "unmapped": int(sel.sum() - len(e))} if len(e) else None)
        if entry["box"] and entry["pose"]:
            entry["median_ratio_pose_over_box"] = entry["pose"]["median"] / max(entry["box"]["median"], 1e-12)
        rules = res["rule"][sel]
        entry["rule_share"] = {n: float(np.mean(rules == r)) if len(rules) else 0.0
                               for n, r in (("box", BOX), ("ankles", ANKLES), ("extrapolated", EXTRAPOLATED),
                                            ("vertical", VERTICAL))}
        out[name] = entry
    out["hidden_definition"] = ("keypoints.json ankles" if res["from_file"].all() and len(res["from_file"])
                                else "ground-truth boxes (cut by the frame / nearer box over the lowest quarter)"
                                if not res["from_file"].any() else "keypoints.json where present, else boxes")
    return out


# ----------------------------------------------------------------------------- HOTA
def hota_runs(scenes: list[Any], device: str, variants: list[str], boxes: list[str], pose: str,
              extra: list[str], max_frames: int | None) -> dict[str, dict[str, Any]]:
    """Scene-mean HOTA / DetA / AssA / LocA / multi-camera IDF1 of `multicam=online` per box source
    and pose variant (the runner's pipeline, submission rows and scoring)."""
    import hydra.utils

    from citytrack.inference.scene import evaluate_scene, submission_rows

    out: dict[str, dict[str, Any]] = {}
    for src in boxes:
        for var in variants:
            ov = [*BOX_SOURCES[src], *(o.replace("synthetic", pose, 1) if o.startswith("pose=") else o for o in VARIANTS[var]),
                  "multicam=online", f"task.pipeline.max_frames={max_frames if max_frames else 'null'}", *extra]
            pipeline = hydra.utils.instantiate(compose_config(device, ov).task.pipeline)
            per_scene, t0, errs = {}, time.perf_counter(), []
            for scene in scenes:
                run = pipeline.run(scene)
                m = evaluate_scene(scene, submission_rows(run.table, "aic24"), world=True)
                per_scene[scene.name] = {k: float(m[k]) for k in ("HOTA", "DetA", "AssA", "LocA", "mc_IDF1")}
                errs.append(runner_foot_errors(scene, run.table))
            keys = next(iter(per_scene.values())).keys()
            err, hidden = (np.concatenate([e[k] for e in errs]) for k in ("err", "hidden"))
            foot = {name: {"boxes": int(sel.sum()), "median": float(np.median(err[sel])) if sel.any() else float("nan")}
                    for name, sel in (("all", np.ones(len(err), bool)), ("feet_hidden", hidden.astype(bool)))}
            out[f"{src}/{var}"] = {**{k: float(np.mean([s[k] for s in per_scene.values()])) for k in keys},
                                   "runner_foot_error": foot, "scenes": per_scene,
                                   "seconds": time.perf_counter() - t0, "overrides": ov}
            print(f"multicam=online {src}/{var}: HOTA {100 * out[f'{src}/{var}']['HOTA']:.1f}, runner foot error "
                  f"median all {foot['all']['median']:.3f} m / feet hidden {foot['feet_hidden']['median']:.3f} m "
                  f"({out[f'{src}/{var}']['seconds']:.0f} s)", file=sys.stderr, flush=True)
    return out


# ----------------------------------------------------------------------------- real frames
CROP_HEIGHT, CROP_WIDTH, CROPS_PER_ROW, MAX_CROPS = 192, 128, 8, 32
"""The PETS picture: people enlarged to CROP_HEIGHT px, CROPS_PER_ROW per row, at most MAX_CROPS."""

def pets_picture(out: Path, extractor: Any, conf_thresh: float, boxes: str = "gt", detector: Any = None,
                 frames: int = 4, data: Path | None = None) -> dict[str, Any]:
    """Skeletons on real PETS09-S2L1 frames (no keypoint ground truth exists there: the picture is the
    evidence). Boxes are the MOT15 ground truth scaled to the clip (`gt`: the pose net alone) or our
    detector's at score >= 0.5 (`detector`: what the scene runner would see). `frames` evenly spaced
    frames, each person enlarged with its skeleton, written atomically; returns what was drawn."""
    import cv2
    import torch

    from citytrack.bench.transfer import (
        DATA,
        PETS_SCALE,
        PETS_SEQ,
        PETS_VIDEO,
        split_ground_truth,
        video_frames,
    )
    from citytrack.data.formats.mot import read_mot
    from citytrack.visualize.draw import draw_skeletons

    root = Path(data) if data is not None else DATA
    gt, _ = split_ground_truth(read_mot(root / PETS_SEQ / "gt" / "gt.txt", kind="gt"), scale=PETS_SCALE)
    total = max(gt)
    wanted = {int(x) for x in np.rint(np.linspace(1, total, frames + 2)[1:-1])}
    tiles, people = [], 0
    for frame, image in video_frames(root / PETS_VIDEO, None, "PETS09-S2L1 pose"):
        if frame not in wanted:
            if frame > max(wanted):
                break
            continue
        if boxes == "detector":
            det = detector.predict_frames([image])[0]
            b = det[det[:, 4] >= 0.5, :4]
        else:
            b = gt.get(frame, np.zeros((0, 4)))
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
        kps = extractor(tensor, [b])[0]
        for box, kp in zip(b, kps):  # each person enlarged: the skeleton is legible at PETS's 40-90 px
            x, y, w, h = box
            cx, cy, half = x + w / 2, y + h / 2, 0.6 * max(h, 2 * w)
            x0, y0 = int(max(cx - half, 0)), int(max(cy - half, 0))
            x1, y1 = int(min(cx + half, image.shape[1])), int(min(cy + half, image.shape[0]))
            if x1 - x0 < 4 or y1 - y0 < 4:
                continue
            s = CROP_HEIGHT / (y1 - y0)
            crop = cv2.resize(image[y0:y1, x0:x1], (max(int((x1 - x0) * s), 1), CROP_HEIGHT))
            draw_skeletons(crop, kp[None], conf_thresh=conf_thresh, scale=s, offset=(-x0 * s, -y0 * s))
            cv2.putText(crop, str(frame), (3, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1)
            tile = np.zeros((CROP_HEIGHT, CROP_WIDTH, 3), np.uint8)
            cw = min(crop.shape[1], CROP_WIDTH)
            tile[:, (CROP_WIDTH - cw) // 2:(CROP_WIDTH - cw) // 2 + cw] = crop[:, :cw]
            tiles.append(tile)
        people += len(b)
    tiles = tiles[:MAX_CROPS] or [np.zeros((CROP_HEIGHT, CROP_WIDTH, 3), np.uint8)]
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % CROPS_PER_ROW)
    grid = np.vstack([np.hstack(tiles[i:i + CROPS_PER_ROW]) for i in range(0, len(tiles), CROPS_PER_ROW)])
    ok, buf = cv2.imencode(".png", grid)
    if not ok:
        raise RuntimeError(f"{out}: could not encode the picture")
    with atomic_open(out, "wb") as fh:
        fh.write(buf.tobytes())
    return {"picture": str(out), "frames": sorted(wanted), "people": people, "boxes": boxes}


# ----------------------------------------------------------------------------- foot-point picture
BOX_FOOT, POSE_FOOT, TRUE_FOOT = (0, 0, 255), (0, 220, 0), (255, 255, 255)
"""BGR colours of the foot-point picture: box bottom centre, pose foot point, ground truth."""


def foot_picture(out: Path, scene: Any, extractor: Any, foot_point: Any, frame: int = 50,
                 conf_thresh: float = 0.3) -> dict[str, Any]:
    """One frame of every camera (ground-truth boxes clipped to the image, as the `gt` rows), 2 per row,
    each enlarged 2x: skeletons, the box bottom centre (red), the pose foot point (green) and the true
    foot point (white ring, the world point projected); written atomically. Returns the median errors."""
    import cv2
    import torch

    from citytrack.data.formats.aicity import XWORLD, YWORLD
    from citytrack.data.video import VideoReader
    from citytrack.multicam.foot import BoxBottomCentre
    from citytrack.visualize.draw import draw_skeletons

    gt, tiles, errors = scene.ground_truth, [], {"box": [], "pose": []}
    for cam in sorted(scene.cameras, key=lambda c: c.camera_id):
        with VideoReader(cam.video) as reader:
            image = next((img for f, img in reader if f == frame), None)
        if image is None:
            raise ValueError(f"{cam.video}: no frame {frame}")
        size = (image.shape[1], image.shape[0])
        rows, boxes = visible_truth(gt, cam.camera_id, frame, size)
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
        kps = np.asarray(extractor(tensor, [extractor_boxes(boxes)])[0], np.float64)
        calib = cam.calibration
        uv_box = BoxBottomCentre()(boxes)
        uv_pose = foot_point.estimate(boxes, kps, np.tile(size, (len(boxes), 1)), [calib] * len(boxes))[0]
        uv_true = calib.ground_to_image(rows[:, [XWORLD, YWORLD]])
        for key, uv in (("box", uv_box), ("pose", uv_pose)):
            errors[key] += np.linalg.norm(calib.image_to_ground(uv) - rows[:, [XWORLD, YWORLD]], axis=1).tolist()
        big = cv2.resize(image, (2 * size[0], 2 * size[1]), interpolation=cv2.INTER_LINEAR)
        draw_skeletons(big, kps, conf_thresh=conf_thresh, scale=2.0, thickness=1, radius=2)
        for uv, colour in ((uv_true, TRUE_FOOT), (uv_box, BOX_FOOT), (uv_pose, POSE_FOOT)):
            for u, v in np.rint(2 * uv[np.isfinite(uv).all(axis=1)]).astype(int).tolist():
                cv2.circle(big, (u, v), 6 if colour == TRUE_FOOT else 3, colour, 1 if colour == TRUE_FOOT else -1,
                           cv2.LINE_AA)
        cv2.putText(big, f"camera {cam.camera_id}, frame {frame}", (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(big)
    tiles += [np.zeros_like(tiles[0])] * (len(tiles) % 2)
    grid = np.vstack([np.hstack(tiles[i : i + 2]) for i in range(0, len(tiles), 2)])
    legend = np.zeros((30, grid.shape[1], 3), np.uint8)
    for k, (text, colour) in enumerate((("box bottom centre", BOX_FOOT), ("pose foot point", POSE_FOOT),
                                         ("true foot point", TRUE_FOOT))):
        cv2.circle(legend, (14 + 220 * k, 15), 5, colour, -1 if colour != TRUE_FOOT else 1, cv2.LINE_AA)
        cv2.putText(legend, text, (26 + 220 * k, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    ok, buf = cv2.imencode(".png", np.vstack([grid, legend]))
    if not ok:
        raise RuntimeError(f"{out}: could not encode the picture")
    with atomic_open(out, "wb") as fh:
        fh.write(buf.tobytes())
    return {"picture": str(out), "scene": scene.name, "frame": frame, "people": len(errors["box"]),
            **{f"median_error_{k}": float(np.median(v)) if v else None for k, v in errors.items()}}


# ----------------------------------------------------------------------------- entry
def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    import hydra.utils

    from citytrack.data.scenes import find_scene_dirs, load_scene
    from citytrack.data.synth import ensure_synthetic_dataset

    params = {**SCENE, **{k: getattr(args, k) for k in ("seed", "scenes", "cameras", "people", "frames", "width", "height")}}
    cfg = compose_config(args.device, [f"pose={args.pose}", *args.override])
    root = scene_root(Path(args.data) if args.data else Path(cfg.paths.data_dir), params)
    ensure_synthetic_dataset(root, progress=False, **params)
    scenes = [load_scene(d) for d in find_scene_dirs(root / params["split"])]
    extractor = hydra.utils.instantiate(cfg.pose.extractor)
    foot_point = hydra.utils.instantiate(cfg.pose.foot_point)
    if args.pets_picture is not None:
        detector = hydra.utils.instantiate(cfg.detector) if args.pets_boxes == "detector" else None
        return {"benchmark": "pose", "pose": args.pose,
                "pets": pets_picture(args.pets_picture, extractor, float(cfg.pose.foot_point.conf_thresh),
                                     args.pets_boxes, detector, args.pets_frames)}
    result: dict[str, Any] = {"benchmark": "pose", "scene": {**params, "dir": str(root)}, "pose": args.pose,
                              "foot_point": foot_point.__class__.__name__, "foot_error": {}}
    if args.foot_picture is not None:
        result["foot_picture"] = foot_picture(args.foot_picture, scenes[0], extractor, foot_point, args.foot_frame,
                                              float(cfg.pose.foot_point.conf_thresh))
    for src in args.boxes:
        detector = hydra.utils.instantiate(cfg.detector) if src == "detector" else None
        t0 = time.perf_counter()
        res = [foot_errors(s, extractor, foot_point, src, detector, args.device, args.max_frames, args.match_iou)
               for s in scenes]
        merged = {k: np.concatenate([r[k] for r in res]) for k in res[0]}
        result["foot_error"][src] = error_summary(merged)
        print(f"foot points, {src} boxes: {len(merged['err_box'])} boxes ({time.perf_counter() - t0:.0f} s)",
              file=sys.stderr, flush=True)
    if args.hota:
        result["hota"] = hota_runs(scenes, args.device, args.variants, args.boxes, args.pose, args.override, args.max_frames)
    return result


def format_table(result: dict[str, Any]) -> str:
    if "pets" in result:
        pets = result["pets"]
        return (f"PETS09-S2L1 skeletons ({pets['boxes']} boxes), frames {pets['frames']}, {pets['people']} people: "
                f"{pets['picture']}")
    sc = result["scene"]
    head = (f"pose benchmark: {sc['scenes']} scene(s) x {sc['cameras']} cameras {sc['width']}x{sc['height']}, "
            f"{sc['frames']} frames, {sc['people']} people (seed {sc['seed']}); pose={result['pose']}")
    columns = (f"{'world foot-point error (m)':<34}{'boxes':>7}{'box med':>9}{'pose med':>9}{'box mean':>9}"
               f"{'pose mean':>10}{'ratio':>7}  rule share box/ankles/extrap/vertical")
    lines = [head, "", columns]
    if "foot_picture" in result:
        fp = result["foot_picture"]
        lines.insert(1, f"foot-point picture: {fp['picture']} ({fp['scene']}, frame {fp['frame']}, {fp['people']} people)")
    for src, summ in result["foot_error"].items():
        for name in ("all", "feet_hidden", "feet_visible", "cut_by_frame"):
            e = summ[name]
            if not e["box"] or not e["pose"]:
                lines.append(f"{src + ' / ' + name:<34}{e['boxes']:7d}{'-':>9}")
                continue
            r = e["rule_share"]
            lines.append(f"{src + ' / ' + name:<34}{e['boxes']:7d}{e['box']['median']:9.3f}{e['pose']['median']:9.3f}"
                         f"{e['box']['mean']:9.3f}{e['pose']['mean']:10.3f}{e['median_ratio_pose_over_box']:7.2f}"
                         f"  {r['box']:.2f}/{r['ankles']:.2f}/{r['extrapolated']:.2f}/{r['vertical']:.2f}")
        lines.append(f"  feet hidden by: {summ['hidden_definition']}")
    if "hota" in result:
        lines += ["", f"{'multicam=online':<20}{'HOTA':>7}{'DetA':>7}{'AssA':>7}{'LocA':>7}{'IDF1':>7}{'s':>7}"]
        for name, m in result["hota"].items():
            lines.append(f"{name:<20}" + "".join(f"{100 * m[k]:7.1f}" for k in ("HOTA", "DetA", "AssA", "LocA", "mc_IDF1"))
                         + f"{m['seconds']:7.0f}")
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m citytrack.bench pose", description=__doc__.splitlines()[0])
    for key in ("seed", "scenes", "cameras", "people", "frames", "width", "height"):
        p.add_argument(f"--{key}", type=int, default=SCENE[key])
    p.add_argument("--pose", default="synthetic", help="the conf/pose/ config measured (default synthetic)")
    p.add_argument("--boxes", default="detector,gt", help="box sources, comma-separated: detector, gt")
    p.add_argument("--variants", default="none,foot,full", help="HOTA pose variants: none, foot, full")
    p.add_argument("--no-hota", dest="hota", action="store_false", help="foot-point error only")
    p.add_argument("--max-frames", type=int, default=None, help="frames per camera (default: all)")
    p.add_argument("--match-iou", type=float, default=0.5, help="detection <-> ground truth IoU for the foot error")
    p.add_argument("--device", default="auto")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE", help="Hydra override (repeatable)")
    p.add_argument("--data", type=Path, default=None, help="data folder (default: the config's paths.data_dir)")
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="write the full result here (atomically)")
    p.add_argument("--pets-picture", type=Path, default=None, metavar="OUT.png",
                   help="only draw skeletons on real PETS09-S2L1 frames (../shared/data) into OUT.png")
    p.add_argument("--pets-boxes", choices=("gt", "detector"), default="gt", help="boxes for --pets-picture")
    p.add_argument("--pets-frames", type=int, default=4, help="frames in --pets-picture")
    p.add_argument("--foot-picture", type=Path, default=None, metavar="OUT.png",
                   help="also draw one frame of the first scene's cameras: skeletons, box / pose / true foot points")
    p.add_argument("--foot-frame", type=int, default=50, help="the frame of --foot-picture (0-based)")
    args = p.parse_args(argv)
    args.boxes = [b for b in args.boxes.split(",") if b]
    args.variants = [v for v in args.variants.split(",") if v]
    if not set(args.boxes) <= set(BOX_SOURCES) or not args.boxes:
        p.error(f"--boxes must name some of {sorted(BOX_SOURCES)}")
    if not set(args.variants) <= set(VARIANTS) or not args.variants:
        p.error(f"--variants must name some of {sorted(VARIANTS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    result = run_benchmark(args)
    print(format_table(result))
    if args.json is not None:
        with atomic_open(args.json) as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
