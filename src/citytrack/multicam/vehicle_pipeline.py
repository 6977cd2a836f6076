"""City-scale multi-camera vehicle tracking of one AI City 2019 scenario (`infer.py task=vehicle_mtmc`).

Stages: every camera's frames in step (`SyncedVideoReader`); boxes from a detector checkpoint,
a det file of the camera or the ground truth (ablation); boxes whose bottom centre is outside
the camera's `roi.jpg` dropped (AI City 2019 annotates vehicles on the road only); appearance of
every box of every camera in one batch; per-camera DeepSORT with that appearance; tracklets on
the metric ground with scene times (`cam_timestamp` offsets applied); cross-camera linking under
the travel model and topology (`vehicle_link.py`). Output rows are the Track 1 submission columns
`camera_id obj_id frame_id xmin ymin width height xworld yworld` with the calibration's own ground
coordinates (GPS for the real dataset).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm.auto import tqdm

from citytrack.data.formats import mot
from citytrack.data.formats.aicity.aic19_scene import Aic19CameraSetup, read_aic19_scene
from citytrack.data.formats.errors import FormatError
from citytrack.data.video import SyncedVideoReader
from citytrack.multicam.topology import CameraTopology, TravelModel
from citytrack.multicam.vehicle_link import (
    LinkConfig,
    build_tracklets,
    global_rows,
    link_tracklets,
    scene_gps,
)
from citytrack.multicam.zones import ZoneConfig, ZoneMap
from citytrack.tracking.postprocess import linear_interpolation

log = logging.getLogger(__name__)

TRACK_COLUMNS = ("camera_id", "track_id", "frame_id", "x", "y", "w", "h", "xworld", "yworld")


@dataclass
class VehicleRun:
    """One scenario's result: per-camera tracks (`TRACK_COLUMNS`, local ids), linked rows (global ids),
    the per-row appearance and the stage times."""

    scene_dir: Path
    setups: list[Aic19CameraSetup]
    tracks: np.ndarray
    linked: np.ndarray
    features: np.ndarray | None
    tracklets: list
    labels: np.ndarray
    camera_frames: int
    seconds: dict[str, float] = field(default_factory=dict)
    dropped: dict[int, str] = field(default_factory=dict)
    zones: dict[int, ZoneMap] = field(default_factory=dict)


def roi_with_margin(roi: np.ndarray, margin: int) -> np.ndarray:
    """The ROI mask grown by `margin` pixels (square neighbourhood). A box's bottom centre is the
    nearest ground contact in the image, not the middle of the vehicle's footprint, and a far road
    is only a few pixels wide, so a box a pixel or two off a thin road mask is still on the road."""
    if margin <= 0:
        return roi
    size = 2 * int(margin) + 1
    return cv2.dilate(roi.astype(np.uint8), np.ones((size, size), np.uint8)) > 0


def in_roi(roi: np.ndarray, boxes_xywh: np.ndarray) -> np.ndarray:
    """Boolean per box: its bottom centre (clipped into the image) lies on the `(h, w)` ROI mask."""
    if len(boxes_xywh) == 0:
        return np.zeros(0, dtype=bool)
    h, w = roi.shape
    u = np.clip(np.rint(boxes_xywh[:, 0] + boxes_xywh[:, 2] / 2), 0, w - 1).astype(int)
    v = np.clip(np.rint(boxes_xywh[:, 1] + boxes_xywh[:, 3]), 0, h - 1).astype(int)
    return roi[v, u]


def interpolate_track_gaps(tracks: np.ndarray, features: np.ndarray | None, max_gap: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-camera tracks (`camera, id, frame, x, y, w, h`) with gaps of at most `max_gap` missing frames
    filled linearly (`tracking.postprocess.linear_interpolation`: frames where a track was coasting
    on its Kalman prediction unseen); filled rows get NaN features (no appearance seen there)."""
    if max_gap <= 0 or len(tracks) == 0:
        return tracks, features
    out_rows: list[np.ndarray] = []
    out_feats: list[np.ndarray] = []
    for cam in np.unique(tracks[:, 0]):
        sel = np.flatnonzero(tracks[:, 0] == cam)
        table = np.zeros((len(sel), 10))
        table[:, [mot.FRAME, mot.ID]] = tracks[sel][:, [2, 1]]
        table[:, mot.X : mot.H + 1] = tracks[sel, 3:7]
        table[:, mot.CONF] = np.arange(len(sel))  # the source row, copied into filled rows
        filled = linear_interpolation(table, max_gap)
        source = filled[:, mot.CONF].astype(np.int64)
        seen = filled[:, mot.FRAME] == table[source, mot.FRAME]  # a filled row keeps its earlier box's source
        out_rows.append(np.column_stack([np.full(len(filled), cam), filled[:, [mot.ID, mot.FRAME]], filled[:, mot.X : mot.H + 1]]))
        if features is not None:
            f = np.full((len(filled), features.shape[1]), np.nan)
            f[seen] = features[sel[source[seen]]]
            out_feats.append(f)
    return np.vstack(out_rows), (np.vstack(out_feats) if features is not None else None)


class FileDetections:
    """Boxes from each camera's `det/det_<name>.txt` (`name="gt"`: `gt/gt.txt`, the oracle ablation)."""

    def __init__(self, name: str = "gt", min_score: float = 0.0) -> None:
        self.name, self.min_score = str(name), float(min_score)
        self._by_camera: dict[int, dict[int, np.ndarray]] = {}

    def reset(self, setups: list[Aic19CameraSetup]) -> None:
        self._by_camera = {}
        for s in setups:
            if self.name == "gt":
                if s.camera.gt is None:
                    raise FormatError(s.camera.dir / "gt" / "gt.txt", "detections=gt needs this ground-truth file")
                table = mot.read_mot(s.camera.gt, kind="gt")
                table[:, 6] = 1.0
            else:
                if self.name not in s.camera.dets:
                    have = ", ".join(sorted(s.camera.dets)) or "none"
                    raise FormatError(s.camera.dir / "det" / f"det_{self.name}.txt",
                                      f"detection file missing (this camera has: {have})")
                table = mot.read_mot(s.camera.dets[self.name], kind="det")
            table = table[table[:, 6] >= self.min_score]
            frames = table[:, 0].astype(np.int64)
            self._by_camera[s.camera.camera_id] = {int(f): table[frames == f][:, [2, 3, 4, 5, 6]] for f in np.unique(frames)}

    def __call__(self, images: dict[int, np.ndarray], frame_id: int) -> dict[int, np.ndarray]:
        return {c: self._by_camera.get(c, {}).get(frame_id, np.zeros((0, 5))) for c in images}


class NetworkDetections:
    """A detector checkpoint run on every camera's frame at once; keeps the vehicle `classes`
    (class names of the checkpoint) above `min_score`, then suppresses boxes of different vehicle
    classes overlapping by `merge_iou` (the detector's NMS is per class).

    `img_sizes`: one pass per input size (multi-scale test), pooled before that suppression, which
    then also merges one vehicle found at two scales. City cameras see vehicles from ~10 px (far
    down the road) to a third of the frame: a larger input finds the far ones, the checkpoint's own
    size the near ones. None: one pass at the detector's `img_size`.

    `contain`: then drops a box when more than this share of the smaller of it and a surer box lies
    inside the other (`postprocess.suppress_contained`): part boxes that IoU-NMS keeps and that the
    tracker would follow as a second vehicle. None: off.
    """

    def __init__(self, detector: Any, classes: list[str] | None = None, min_score: float = 0.3,
                 merge_iou: float = 0.7, img_sizes: list[int] | None = None, contain: float | None = None) -> None:
        self.detector, self.classes, self.min_score, self.merge_iou = detector, classes, float(min_score), float(merge_iou)
        self.contain = None if contain is None else float(contain)
        self.img_sizes: list[int | None] = [int(s) for s in img_sizes] if img_sizes else [detector.img_size]

    def reset(self, setups: list[Aic19CameraSetup]) -> None:
        names = list(getattr(self.detector.module.hparams, "class_names", None) or ["person"])
        wanted = self.classes or [n for n in names if n != "person"]
        missing = [c for c in wanted if c not in names]
        if missing:
            raise ValueError(f"detector classes {names} lack {missing}: use a vehicle detector checkpoint")
        self._keep = np.array([names.index(c) for c in wanted])

    def __call__(self, images: dict[int, np.ndarray], frame_id: int) -> dict[int, np.ndarray]:
        import torch

        from citytrack.models.detector.postprocess import suppress_contained, suppress_xywh

        out: dict[int, np.ndarray] = {}
        groups: dict[tuple[int, ...], list[int]] = {}
        for c, img in images.items():
            groups.setdefault(img.shape, []).append(c)
        for members in groups.values():
            x = torch.from_numpy(np.stack([images[c] for c in members])).permute(0, 3, 1, 2).flip(1)
            passes = [self.detector.module.predict_images(x, self.detector.batch_size, self.detector.score_thresh,
                                                          size, self.detector.rect, classes=self._keep.tolist())
                      for size in self.img_sizes]
            for i, c in enumerate(members):
                d = np.vstack([np.asarray(p[i], dtype=np.float64).reshape(-1, 5) for p in passes])
                d = d[d[:, 4] >= self.min_score]
                if len(d) > 1:  # one vehicle, two class guesses (car / truck) or two scales: keep the surer box
                    d = d[suppress_xywh(d, self.merge_iou)]
                if self.contain is not None and len(d) > 1:
                    d = d[suppress_contained(d, self.contain)]
                out[c] = d
        return out


class VehiclePipeline:
    """Runs one scenario end to end (module docstring). `extractor`: a `FeatureExtractor` or None
    (motion-only tracking, linking by space-time alone, which cannot link); `tracker_factory`:
    a fresh per-camera tracker (DeepSORT)."""

    def __init__(
        self,
        detections: FileDetections | NetworkDetections,
        tracker: Callable[..., Any],
        extractor: Any | None,
        link: LinkConfig,
        travel_model: TravelModel | str | Path | None = None,
        topology: CameraTopology | None = None,
        zones: ZoneConfig | None = None,
        min_tracklet_length: int = 3,
        min_box_height: float = 0.0,
        roi_margin: int = 0,
        interpolate_max_gap: int = 0,
        max_frames: int | None = None,
        progress: bool = True,
    ) -> None:
        self.detections, self.tracker_factory, self.extractor = detections, tracker, extractor
        self.link = link
        if isinstance(travel_model, (str, Path)):
            travel_model = TravelModel.from_json(travel_model)
        self.travel_model = travel_model
        self.topology = topology
        self.zones = zones if zones is not None else ZoneConfig()
        self.min_tracklet_length = int(min_tracklet_length)
        self.min_box_height = float(min_box_height)
        self.roi_margin = int(roi_margin)
        self.interpolate_max_gap = int(interpolate_max_gap)
        self.max_frames = max_frames
        self.progress = progress

    def track_cameras(self, setups: list[Aic19CameraSetup], seconds: dict[str, float]) -> tuple[np.ndarray, np.ndarray | None, int, dict[int, str]]:
        """Per-camera tracks (rows of `camera, id, frame, x, y, w, h`) and the matched detections' features."""
        self.detections.reset(setups)
        by_cam = {s.camera.camera_id: s for s in setups}
        rois = {c: roi_with_margin(s.roi, self.roi_margin) for c, s in by_cam.items()}
        paths = {s.camera.camera_id: s.camera.video for s in setups}
        trackers = {c: self.tracker_factory() for c in paths}
        for c, t in trackers.items():
            t.reset(frame_rate=by_cam[c].fps)
        rows: list[np.ndarray] = []
        feats: list[np.ndarray] = []
        camera_frames = 0
        t0 = time.perf_counter()
        with SyncedVideoReader(paths, max_frames=self.max_frames) as reader:
            seconds["decode"] += time.perf_counter() - t0
            bar = tqdm(total=reader.frames_left, desc="vehicle tracking: frames", unit="frame", disable=not self.progress,
                       leave=False)
            it = iter(reader)
            while True:
                t0 = time.perf_counter()
                item = next(it, None)
                seconds["decode"] += time.perf_counter() - t0
                if item is None:
                    break
                index, images = item
                frame_id = index + 1
                images = {int(c): im for c, im in images.items()}
                camera_frames += len(images)
                t0 = time.perf_counter()
                dets = self.detections(images, frame_id)
                for c in list(dets):
                    d = dets[c]
                    keep = in_roi(rois[c], d[:, :4]) & (d[:, 3] >= self.min_box_height)
                    dets[c] = d[keep]
                seconds["detect"] += time.perf_counter() - t0
                t0 = time.perf_counter()
                cams = [c for c in images if len(dets.get(c, ()))]
                embeds: dict[int, np.ndarray | None] = {c: None for c in images}
                if self.extractor is not None and cams:
                    out = self.extractor([images[c] for c in cams], [dets[c][:, :4].astype(np.float32) for c in cams])
                    embeds.update({c: np.asarray(e, dtype=np.float64) for c, e in zip(cams, out, strict=True)})
                seconds["reid"] += time.perf_counter() - t0
                t0 = time.perf_counter()
                for c in images:
                    d = dets.get(c, np.zeros((0, 5)))
                    out = trackers[c].update(d, frame=frame_id, embeddings=embeds[c])
                    if len(out) == 0:
                        continue
                    rows.append(np.column_stack([np.full(len(out), c), out[:, 4], np.full(len(out), frame_id), out[:, :4]]))
                    if self.extractor is not None:
                        f = np.full((len(out), self.extractor.dim), np.nan)
                        matched = out[:, 6] >= 0
                        if embeds[c] is not None and matched.any():
                            f[matched] = embeds[c][out[matched, 6].astype(int)]
                        feats.append(f)
                seconds["track"] += time.perf_counter() - t0
                bar.update(1)
            bar.close()
            dropped = {int(k): v for k, v in reader.dropped.items()}
        table = np.vstack(rows) if rows else np.zeros((0, 7))
        features = (np.vstack(feats) if feats else np.zeros((0, self.extractor.dim))) if self.extractor is not None else None
        return table, features, camera_frames, dropped

    def run(self, scene_dir: str | Path) -> VehicleRun:
        scene_dir = Path(scene_dir)
        seconds: dict[str, float] = {k: 0.0 for k in ("decode", "detect", "reid", "track", "link")}
        setups = read_aic19_scene(scene_dir)  # every file checked before decoding
        tracks, features, camera_frames, dropped = self.track_cameras(setups, seconds)
        t0 = time.perf_counter()
        tracks, features = interpolate_track_gaps(tracks, features, self.interpolate_max_gap)
        gps = scene_gps(setups)
        zone_maps = self.zones.maps(setups)
        tracklets = build_tracklets(tracks, setups, features, self.min_tracklet_length, gps, zone_maps)
        labels = link_tracklets(tracklets, self.link, self.travel_model, self.topology)
        linked = global_rows(tracks, tracklets, labels, self.link.min_cameras)
        seconds["link"] += time.perf_counter() - t0
        return VehicleRun(scene_dir, setups, with_world(tracks, setups), with_world(linked, setups), features,
                          tracklets, labels, camera_frames, seconds, dropped, zone_maps)


def with_world(rows: np.ndarray, setups: list[Aic19CameraSetup]) -> np.ndarray:
    """`rows` (`camera, id, frame, x, y, w, h`) plus `xworld, yworld`: the box bottom centre through
    the camera's calibration, in its own ground units (GPS degrees for the real dataset)."""
    out = np.zeros((len(rows), 9))
    out[:, :7] = rows[:, :7]
    out[:, 7:] = -1.0
    for s in setups:
        sel = rows[:, 0] == s.camera.camera_id if len(rows) else np.zeros(0, dtype=bool)
        if sel.any():
            b = rows[sel, 3:7]
            uv = np.column_stack([b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3]])
            with np.errstate(invalid="ignore", divide="ignore"):
                g = s.calibration.image_to_ground(uv)
            out[sel, 7:] = np.where(np.isfinite(g), g, -1.0)
    return out
