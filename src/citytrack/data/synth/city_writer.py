"""Write the vehicle world (`layout=aic19`) in the AI City 2019 Track 1 layout, through the
project's AIC19 and MOT writers, so that `aicity.read_aic19_scene` and
`aicity.read_aic19_ground_truth` read it back:

    DIR/<split>/SXX/cXXX/vdo.avi
    DIR/<split>/SXX/cXXX/calibration.txt   Homography matrix: ground (x, y, 1) in metres -> image; Reprojection error: 0.0
    DIR/<split>/SXX/cXXX/roi.jpg           white where road is visible, the video's size
    DIR/<split>/SXX/cXXX/gt/gt.txt         frame,id,x,y,w,h,1,-1,-1,-1 (1-based frames; full, amodal boxes
                                           clipped to the image, as the real annotation is drawn)
    DIR/<split>/SXX/cXXX/det/det_gt_jitter.txt
    DIR/<split>/SXX/gt_world.txt           every camera's exact ground truth (columns in `WORLD_COLUMNS`, last
                                           `orientation`: camera-relative heading bin 0..7, 0 front, 2 moving
                                           to the camera's right, 4 rear, 6 left; see `vehicles_render`)
    DIR/<split>/SXX/vehicles.json          id -> type, colour name, size (l, w, h)
    DIR/cam_timestamp/SXX.txt              per-camera clock offsets (beside the splits, as the dataset
                                           keeps it and `aic19.default_timestamps_path` looks for it)

The real dataset's homography maps GPS (latitude, longitude); the synthetic one maps the world's
metric ground plane, which the readers treat the same way. As the AIC19 rule says, `gt.txt`
holds only vehicles seen (at least `gt.min_visible_pixels` visible pixels) by two or more
cameras of the scene; `gt_world.txt` keeps every vehicle drawn, with its unclipped full box. `det_gt_jitter.txt` is the
ground truth through `writers.DetectionSimulator` (misses for occluded and small vehicles, box
noise, scores), standing in for a vehicle detector we do not have yet.

With `layout.mots=true` the same render pass also writes every camera as a KITTI MOTS sequence
(`city_mots.py`: `DIR/<split>/{image_02,instances,instances_txt}`, cars `1000 + id`);
`layout.id_offset` shifts every vehicle id (a second city whose ids do not meet the first's).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
from omegaconf import DictConfig

from citytrack.data.formats import mot
from citytrack.data.formats.aicity.aic19 import (
    Aic19Calibration,
    write_aic19_calibration,
    write_cam_timestamps,
)
from citytrack.data.synth.city import CITY_VERSION, City, CitySpec, build_city
from citytrack.data.synth.city_mots import CityMotsCameraWriter, clear_mots
from citytrack.data.synth.vehicles_render import CityRenderer
from citytrack.data.synth.world import SynthConfigError
from citytrack.data.synth.writers import DetectionSimulator, write_meta
from citytrack.data.video import AtomicVideoWriter
from citytrack.utils.boxes import clip_xywh
from citytrack.utils.io import atomic_open, atomic_path

log = logging.getLogger(__name__)

WORLD_COLUMNS = ("camera", "id", "frame", "x", "y", "w", "h", "vis_x", "vis_y", "vis_w", "vis_h",
                 "visibility", "xworld", "yworld", "heading", "orientation")
"""`gt_world.txt` columns; `orientation` is the camera-relative bin 0..7 of `vehicles_render.orientation_bins`
(0 front: driving at the camera, 2 driving to its right, 4 rear: driving away, 6 driving to its left)."""


def scene_dir(root: Path, split: str, scene_index: int) -> Path:
    return root / split / f"S{scene_index + 1:02d}"


def write_roi(path: Path, roi: np.ndarray) -> None:
    """`roi.jpg`: white road, black elsewhere (lossless enough: the reader thresholds at 127)."""
    with atomic_path(path, suffix=".jpg") as tmp:
        if not cv2.imwrite(str(tmp), np.where(roi, 255, 0).astype(np.uint8)):
            raise OSError(f"cannot write {path}")


def render_city_camera(city: City, c: int, cam_dir: Path, cfg: DictConfig, root: Path | None = None) -> np.ndarray:
    """Render every frame of camera `c` into `vdo.avi` (and, with `layout.mots`, its KITTI MOTS sequence
    under `root/<split>`); returns its `WORLD_COLUMNS` rows of every vehicle with at least
    `gt.min_visible_pixels` visible pixels."""
    renderer = CityRenderer(city, c)
    cam = city.cameras[c]
    min_px = int(cfg.gt.min_visible_pixels)
    mots = None
    if cfg.layout.mots:
        if root is None:
            raise ValueError("render_city_camera: layout.mots needs the dataset root")
        mots = CityMotsCameraWriter(city, c, root / str(cfg.split), min_px, float(cfg.layout.mots_min_height))
    rows = []
    with AtomicVideoWriter(cam_dir / "vdo.avi", city.spec.fps, (cam.width, cam.height), str(cfg.layout.fourcc)) as video:
        for f in range(city.spec.frames):
            fr = renderer.render(f)
            video.write(fr.image)
            if mots is not None:
                mots.add(fr)
            keep = fr.visible_pixels >= min_px
            n = int(keep.sum())
            ids = np.array([city.vehicles[k].global_id for k in fr.vehicles[keep]], dtype=np.float64)
            rows.append(np.column_stack([
                np.full(n, cam.camera_id + city.scene_index * city.spec.cameras, dtype=np.float64), ids,
                np.full(n, f + 1.0), fr.full_boxes[keep], fr.visible_boxes[keep],
                np.minimum(fr.visibility[keep], 1.0), fr.world[keep], fr.heading[keep], fr.orientation[keep],
            ]))
    if mots is not None:
        mots.close()
    write_roi(cam_dir / "roi.jpg", renderer.roi)
    write_aic19_calibration(cam_dir / "calibration.txt",
                            Aic19Calibration(homography=cam.calibration.homography, reprojection_error=0.0))
    return np.vstack(rows) if rows else np.zeros((0, len(WORLD_COLUMNS)))


def write_city_scene(city: City, root: Path, cfg: DictConfig) -> dict:
    """All files of one scene (see the module docstring); returns its `meta.json` entry."""
    split = str(cfg.split)
    sdir = scene_dir(root, split, city.scene_index)
    first = city.scene_index * city.spec.cameras
    names = [f"c{first + c + 1:03d}" for c in range(city.spec.cameras)]
    tables = []
    for c, name in enumerate(names):
        (sdir / name / "gt").mkdir(parents=True, exist_ok=True)
        (sdir / name / "det").mkdir(parents=True, exist_ok=True)
        tables.append(render_city_camera(city, c, sdir / name, cfg, root))
    table = np.vstack(tables)
    cams_per_id: dict[int, set[int]] = {}
    for cam_id, vid in table[:, :2].astype(int).tolist():
        cams_per_id.setdefault(vid, set()).add(cam_id)
    multi = sorted(v for v, cams in cams_per_id.items() if len(cams) >= 2)
    size = (city.spec.width, city.spec.height)
    for c, name in enumerate(names):
        rows = tables[c][np.isin(tables[c][:, 1], multi)]
        rows = rows[np.lexsort((rows[:, 1], rows[:, 2]))]
        gt = np.full((len(rows), 10), -1.0)
        gt[:, :2] = rows[:, [2, 1]]
        gt[:, 2:6] = clip_xywh(rows[:, 3:7], size)  # a vehicle entering the frame is annotated where it is seen
        gt[:, 6] = 1.0
        mot.write_mot(sdir / name / "gt" / "gt.txt", gt, kind="result")  # frame,id,x,y,w,h,1,-1,-1,-1
        ss = np.random.SeedSequence([int(cfg.seed), city.scene_index, 23]).spawn(city.spec.cameras)[c]
        sim = DetectionSimulator(cfg.layout.det, np.random.default_rng(ss), size)
        frames, seen = tables[c][:, 2], clip_xywh(tables[c][:, 3:7], size)
        dets = [sim(f + 1, seen[frames == f + 1], tables[c][frames == f + 1, 7:11], tables[c][frames == f + 1, 11])
                for f in range(city.spec.frames)]
        mot.write_mot(sdir / name / "det" / "det_gt_jitter.txt", np.vstack(dets), kind="det")
    write_cam_timestamps(root / "cam_timestamp" / f"{sdir.name}.txt",
                         {name: float(city.time_offsets[c]) for c, name in enumerate(names)})
    with atomic_open(sdir / "gt_world.txt") as fh:
        fh.write("# " + ",".join(WORLD_COLUMNS) + "\n")
        np.savetxt(fh, table, fmt="%.6g", delimiter=",")
    with atomic_open(sdir / "vehicles.json") as fh:
        json.dump({str(v.global_id): {"type": v.kind, "colour": v.colour_name, "size": [round(float(s), 3) for s in v.size]}
                   for v in city.vehicles}, fh, indent=1)
    return {"scene": sdir.name, "cameras": names, "vehicles": len(city.vehicles), "multi_camera_ids": len(multi),
            "time_offsets": [float(o) for o in city.time_offsets]}


def generate_city(cfg: DictConfig, root: Path) -> Path:
    """The `layout=aic19` dataset: previous scenes of the split and all `cam_timestamp/SXX.txt` removed, every scene
    rendered here (one process), `meta.json` last."""
    wall0 = time.perf_counter()
    spec = CitySpec.from_config(cfg)
    id_offset = int(cfg.layout.id_offset)
    if id_offset < 0:
        raise SynthConfigError(f"synth config: layout.id_offset must be >= 0, got {id_offset}")
    if cfg.layout.mots and id_offset + cfg.scenes * spec.vehicles > 999:
        raise SynthConfigError("synth config: KITTI MOTS car ids are 1000 + vehicle id, so layout.id_offset + "
                               f"scenes * layout.city.vehicles must be <= 999, got {id_offset + cfg.scenes * spec.vehicles}")
    (root / "meta.json").unlink(missing_ok=True)
    base = root / str(cfg.split)
    if base.is_dir():
        for entry in base.iterdir():
            if entry.is_dir() and not entry.is_symlink() and entry.name[:1] == "S" and entry.name[1:].isdigit():
                shutil.rmtree(entry)
    for stale in (root / "cam_timestamp").glob("S*.txt"):
        stale.unlink()
    clear_mots(base)
    scenes = []
    for s in range(cfg.scenes):
        city = build_city(spec, int(cfg.seed), s, id_offset=id_offset + s * spec.vehicles)
        scenes.append(write_city_scene(city, root, cfg))
    write_meta(root, cfg, scenes, reid_info={}, extra={"city_version": CITY_VERSION})
    log.info("synthetic aic19 city written to %s in %.1f s", root, time.perf_counter() - wall0)
    return root
