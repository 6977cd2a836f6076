"""The multi-camera tracking pipeline of one scene, one batched step per frame index.

Per step (`ScenePipeline.run`):

1. decode the frame of every camera in step (`SyncedVideoReader`; a camera whose video is
   missing, corrupt or shorter drops out with a warning and the rest go on);
2. upload: the frames of each image size become one uint8 tensor on the device, used by
   both networks (the crops are cut from the same tensor, nothing goes back to the host);
3. detect: one detector batch over all cameras;
4. ReID: one `roi_align` over every box of every camera, one embedding batch;
5. per-camera tracking (BoT-SORT with `embeddings=`);
6. pose (`pose=...`, off with `pose=none`): one keypoint-extractor call over every tracked box of
   every camera (the rows' own boxes, so rows kept from motion alone get a pose too);
7. foot points (from the keypoints when there are any) to the ground plane of every camera in one
   ragged batched call;
8. cross-camera association (`update` per frame for online methods, with the rows' keypoints for
   associators that read them; `finish` at the end).

Timing per stage is kept (with CUDA synchronisation at stage boundaries when `sync_timing`),
so the benchmark can report camera-frames per second end to end and per stage.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from tqdm import tqdm

from citytrack.data.scenes import SceneInput
from citytrack.data.video import SyncedVideoReader
from citytrack.multicam.calibration import image_to_ground_ragged, stack_calibrations
from citytrack.multicam.tracks import (
    CAM,
    GLOBAL_ID,
    NUM_KEYPOINTS,
    SCT_COLUMNS,
    CameraInfo,
    CrossCameraAssociator,
    SceneTracks,
    empty_keypoints,
    empty_table,
)
from citytrack.tracking.base import Tracker
from citytrack.utils.device import resolve_device, synchronize

log = logging.getLogger(__name__)

STAGES: tuple[str, ...] = ("decode", "upload", "detect", "reid", "track", "pose", "project", "associate")


class FrameDetector(Protocol):
    def reset(self, scene: SceneInput) -> None: ...

    def __call__(self, images: torch.Tensor, camera_ids: list[int], frame: int) -> list[np.ndarray]: ...


class KeypointExtractor(Protocol):
    """`models.pose.extractor.KeypointExtractor`: uint8 `(B, 3, H, W)` BGR images on the device and
    per image `(N_i, 4)` xywh boxes -> per image `(N_i, 17, 3)` x, y (image pixels), confidence."""

    def __call__(self, images: torch.Tensor, boxes: list[np.ndarray]) -> list[np.ndarray]: ...


@dataclass
class SceneRun:
    """What one scene's run produced: the final table, the per-camera tracks, timings, dropouts."""

    scene: SceneInput
    table: np.ndarray  # (M, 11) SCT_COLUMNS, global ids set
    tracks: SceneTracks
    seconds: dict[str, float]
    camera_frames: int
    frames: int
    dropped: dict[int, str] = field(default_factory=dict)
    image_sizes: dict[int, tuple[int, int]] = field(default_factory=dict)
    fps: float = 30.0


class ScenePipeline:
    """Detector, ReID extractor, per-camera tracker factory, foot-point step and associator, batched.

    Args:
        detector: `FrameDetector` (network or ground-truth oracle).
        extractor: ReID `FeatureExtractor` (anything with `crops` and `embed_crops`), or None (ReID off).
        tracker: factory of one per-camera tracker (Hydra `_partial_`), called once per camera and scene.
        associator: cross-camera method (`multicam=online|offline|none`), a factory or an instance.
        foot_point: `boxes (N, 4) -> (N, 2)` image foot points; with a keypoint extractor it is called
            with `keypoints=(N, 17, 3)`, `image_sizes=(N, 2)`, `calibrations` (each box's camera) and
            `tracks=(N, 2)` (camera, track id) too (`multicam.foot`); its `reset()`, if any, runs per scene.
        reid_min_score: boxes below this score get no embedding (zeros): the trackers use
            appearance for their high-score detections only (BoT-SORT's first association).
        max_frames / stride: frames of each video to run on.
        batch_cameras: False runs the networks camera after camera (the benchmark's peer).
        keypoint_extractor: body keypoints of every tracked box (`pose=...`), or None (pose off:
            no pose stage, foot points from the boxes alone, exactly as without pose support).
    """

    def __init__(
        self,
        detector: FrameDetector,
        extractor: Any | None,
        tracker: Callable[..., Tracker],
        associator: CrossCameraAssociator | Callable[[], CrossCameraAssociator],
        foot_point: Callable[[np.ndarray], np.ndarray],
        device: str = "auto",
        reid_min_score: float = 0.0,
        max_frames: int | None = None,
        stride: int = 1,
        progress: bool = True,
        sync_timing: bool = True,
        batch_cameras: bool = True,
        keypoint_extractor: KeypointExtractor | None = None,
    ) -> None:
        self.detector = detector
        self.extractor = extractor
        self.tracker_factory = tracker
        self._associator = associator
        self.foot_point = foot_point
        self.keypoint_extractor = keypoint_extractor
        self.device = resolve_device(device)
        self.reid_min_score = float(reid_min_score)
        self.max_frames, self.stride = max_frames, int(stride)
        self.progress, self.sync_timing, self.batch_cameras = progress, sync_timing, batch_cameras

    def make_associator(self) -> CrossCameraAssociator:
        a = self._associator
        return a if isinstance(a, CrossCameraAssociator) else a()

    # ------------------------------------------------------------------ one scene
    def run(self, scene: SceneInput) -> SceneRun:
        seconds: dict[str, float] = defaultdict(float)

        @contextmanager
        def stage(name: str):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            yield
            if self.sync_timing:
                synchronize(self.device)
            seconds[name] += time.perf_counter() - t0

        self.detector.reset(scene)
        if hasattr(self.foot_point, "reset"):  # per-track state (pooled statures): track ids start over
            self.foot_point.reset()
        calib = {c.camera_id: c.calibration for c in scene.cameras}
        paths = {c.camera_id: c.video for c in scene.cameras}
        rows_all: list[np.ndarray] = []
        feats_all: list[np.ndarray] = []
        kps_all: list[np.ndarray] = []
        camera_frames = frames = 0
        with stage("decode"):
            reader = SyncedVideoReader(paths, max_frames=self.max_frames, stride=self.stride)
        with reader:
            sizes = {k: (info.width, info.height) for k, info in reader.infos.items()}
            fps = float(np.median([i.fps for i in reader.infos.values()])) / self.stride or 30.0
            cam_ids = [int(c) for c in reader.keys]
            H_inv = stack_calibrations([calib[c] for c in cam_ids], device=self.device, dtype=torch.float64)["H_inv"]
            cam_pos = {c: i for i, c in enumerate(cam_ids)}
            trackers = {c: self.tracker_factory() for c in cam_ids}
            for t in trackers.values():
                t.reset(frame_rate=fps)
            associator = self.make_associator()
            cameras = {c: CameraInfo(c, sizes[c], calib[c].homography) for c in cam_ids}
            associator.reset(cameras, fps)
            last_feat: dict[tuple[int, int], np.ndarray] = {}
            bar = tqdm(total=reader.frames_left, desc=f"{scene.name}: cameras x frames", unit="frame",
                       disable=not self.progress, leave=False)
            it = iter(reader)
            while True:
                with stage("decode"):
                    item = next(it, None)
                if item is None:
                    break
                frame, images = item
                cams = [int(c) for c in images]
                # 2. upload: one uint8 tensor per image size, RGB, (B, 3, H, W)
                with stage("upload"):
                    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
                    for c in cams:  # sequential mode: every camera its own batch of one
                        groups[images[c].shape if self.batch_cameras else (c,)].append(c)
                    tensors, bgr = {}, {}
                    for shape, members in groups.items():
                        x = torch.from_numpy(np.stack([images[c] for c in members]))
                        if self.device.type == "cuda":
                            x = x.pin_memory().to(self.device, non_blocking=True)
                        bgr[shape] = x.permute(0, 3, 1, 2)  # a view: the keypoint extractor's input
                        tensors[shape] = bgr[shape].flip(1)
                # 3. detect
                dets: dict[int, np.ndarray] = {}
                with stage("detect"):
                    for shape, members in groups.items():
                        for c, d in zip(members, self.detector(tensors[shape], members, frame), strict=True):
                            dets[c] = np.asarray(d, dtype=np.float64).reshape(-1, 5)
                # 4. ReID: every box of every camera in one batch
                feats: dict[int, np.ndarray | None] = {c: None for c in cams}
                if self.extractor is not None:
                    with stage("reid"):
                        keep = {c: dets[c][:, 4] >= self.reid_min_score for c in cams}
                        crops = [self.extractor.crops(tensors[s], [dets[c][keep[c], :4] for c in m])
                                 for s, m in groups.items()]
                        if self.batch_cameras:
                            emb = self.extractor.embed_crops(torch.cat(crops)).float().cpu().numpy()
                        else:
                            emb = np.concatenate([self.extractor.embed_crops(x).float().cpu().numpy() for x in crops])
                        order = [c for m in groups.values() for c in m]
                        splits = np.split(emb, np.cumsum([int(keep[c].sum()) for c in order])[:-1])
                        for c, e in zip(order, splits, strict=True):
                            feats[c] = np.zeros((len(dets[c]), emb.shape[1]), np.float32)
                            feats[c][keep[c]] = e
                # 5. per-camera tracking
                frame_rows = []
                frame_feats = []
                with stage("track"):
                    for c in cams:
                        out = trackers[c].update(dets[c], frame=frame, embeddings=feats[c])
                        if not len(out):
                            continue
                        rows = np.full((len(out), len(SCT_COLUMNS)), -1.0)
                        rows[:, 0], rows[:, 1], rows[:, 2] = c, out[:, 4], frame
                        rows[:, 3:7], rows[:, 9] = out[:, :4], out[:, 5]
                        frame_rows.append(rows)
                        if feats[c] is not None:
                            f = np.zeros((len(out), feats[c].shape[1]), np.float32)
                            for j, (tid, di) in enumerate(zip(out[:, 4].astype(int), out[:, 6].astype(int), strict=True)):
                                if di >= 0 and feats[c][di].any():
                                    last_feat[(c, tid)] = feats[c][di]
                                f[j] = last_feat.get((c, tid), 0.0)
                            frame_feats.append(f)
                if frame_rows:
                    rows = np.concatenate(frame_rows)
                    # 6. pose: every tracked box of every camera in one extractor call per image size
                    kps = None
                    if self.keypoint_extractor is not None:
                        with stage("pose"):
                            kps = self._keypoints(rows, groups, bgr)
                    # 7. foot points -> ground, all cameras in one call
                    with stage("project"):
                        if kps is None:
                            foot = self.foot_point(rows[:, 3:7])
                        else:
                            foot = self.foot_point(rows[:, 3:7], keypoints=kps,
                                                   image_sizes=np.array([sizes[int(c)] for c in rows[:, 0]], np.float64),
                                                   calibrations=[calib[int(c)] for c in rows[:, 0]],
                                                   tracks=rows[:, 0:2].astype(np.int64))
                        uv = torch.as_tensor(foot, dtype=torch.float64, device=self.device)
                        index = torch.as_tensor([cam_pos[int(c)] for c in rows[:, 0]], device=self.device)
                        rows[:, 7:9] = image_to_ground_ragged(H_inv, uv, index).cpu().numpy()
                    f_rows = np.concatenate(frame_feats) if frame_feats else None
                    # 8. online association sees this frame only
                    with stage("associate"):
                        if kps is not None and getattr(associator, "uses_keypoints", False):
                            rows[:, GLOBAL_ID] = associator.update(frame, rows, f_rows, keypoints=kps)
                        else:
                            rows[:, GLOBAL_ID] = associator.update(frame, rows, f_rows)
                    rows_all.append(rows)
                    if f_rows is not None:
                        feats_all.append(f_rows)
                    if kps is not None:
                        kps_all.append(kps)
                camera_frames += len(cams)
                frames += 1
                bar.update(1)
            bar.close()
            dropped = {int(k): v for k, v in reader.dropped.items()}
        table = np.concatenate(rows_all) if rows_all else empty_table()
        features = np.concatenate(feats_all) if feats_all and self.extractor is not None else None
        keypoints = None
        if self.keypoint_extractor is not None:
            keypoints = np.concatenate(kps_all) if kps_all else empty_keypoints()
        tracks = SceneTracks(table, features, cameras, fps, keypoints=keypoints)
        with stage("associate"):
            final = associator.finish(tracks)
        return SceneRun(scene, final, tracks, dict(seconds), camera_frames, frames, dropped, sizes, fps)

    def _keypoints(
        self, rows: np.ndarray, groups: dict[tuple[int, ...], list[int]], bgr: dict[tuple[int, ...], torch.Tensor]
    ) -> np.ndarray:
        """Row-aligned `(N, 17, 3)` keypoints of the rows' boxes: one extractor call per image-size
        group (one per step when the cameras share a size; camera after camera when not batching)."""
        assert self.keypoint_extractor is not None
        out = empty_keypoints(len(rows))
        cam = rows[:, CAM].astype(np.int64)
        for shape, members in groups.items():
            sel = [np.flatnonzero(cam == c) for c in members]
            if not sum(len(s) for s in sel):
                continue
            boxes = [np.c_[rows[s, 3:5], np.maximum(rows[s, 5:7], 1.0)] for s in sel]  # positive sizes
            for s, k in zip(sel, self.keypoint_extractor(bgr[shape], boxes), strict=True):
                k = np.asarray(k, dtype=np.float32)
                if k.shape != (len(s), NUM_KEYPOINTS, 3):
                    raise ValueError(f"keypoint extractor returned {k.shape} for {len(s)} boxes")
                out[s] = k
        return out
