"""`make demo` / `python -m citytrack.demo`: render a small synthetic scene and draw a contact sheet.

The sheet is read back through the project's own AI City 2024 readers (videos, calibration,
ground truth), so it shows what a tracker would get: every camera at a few frames with the
ground-truth boxes and ids (one colour per id), and a bird's-eye view of the plaza with the
camera positions, their ground footprints (view frustums) and every person's world track.
Later issues make this run the full pipeline.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from omegaconf import OmegaConf

from citytrack.data.formats import aicity
from citytrack.data.synth import build_world, ensure_synthetic_dataset
from citytrack.data.synth.config import scene_spec
from citytrack.multicam.calibration import CameraCalibration
from citytrack.utils.io import atomic_path
from citytrack.visualize import (
    WorldToPixel,
    camera_colour,
    camera_footprint,
    draw_cameras,
    draw_footprints,
    draw_label,
    draw_tracks,
    id_colour,
)
from citytrack.visualize.draw import FONT

DEMO_SCENE = dict(scenes=1, cameras=4, people=12, frames=60, fps=10, width=640, height=360, seed=0)


def read_frames(video: Path, frames: list[int]) -> dict[int, np.ndarray]:
    cap = cv2.VideoCapture(str(video))
    out: dict[int, np.ndarray] = {}
    i = 0
    want = set(frames)
    while want - out.keys():
        ok, img = cap.read()
        if not ok:
            break
        if i in want:
            out[i] = img
        i += 1
    cap.release()
    missing = want - out.keys()
    if missing:
        raise RuntimeError(f"{video}: could not decode frames {sorted(missing)}")
    return out


def camera_tiles(scene: aicity.Aic24Scene, gt: np.ndarray, frames: list[int], tile_w: int) -> np.ndarray:
    rows = []
    for f in frames:
        tiles = []
        for cam in scene.cameras:
            img = read_frames(cam.video, [f])[f]
            s = tile_w / img.shape[1]
            img = cv2.resize(img, (tile_w, int(round(img.shape[0] * s))), interpolation=cv2.INTER_AREA)
            sel = gt[(gt[:, 0] == cam.camera_id) & (gt[:, 2] == f)]
            draw_tracks(img, sel[:, 3:7], sel[:, 1], scale=s)
            draw_label(img, f"camera {cam.camera_id}  frame {f}", (6, 20), camera_colour(cam.camera_id - 1), 0.5)
            cv2.rectangle(img, (0, 0), (img.shape[1] - 1, img.shape[0] - 1), (30, 30, 30), 2)
            tiles.append(img)
        rows.append(np.hstack(tiles))
    return np.vstack(rows)


def birds_eye(meta: dict, scene: aicity.Aic24Scene, gt: np.ndarray, size: int) -> np.ndarray:
    """Top-down view: ground texture, occluders, cameras with footprints, tracks coloured by id."""
    cfg = OmegaConf.create(meta["config"])
    spec = scene_spec(cfg)
    world = build_world(spec, int(meta["seed"]), 0)
    cals = [CameraCalibration.from_projection(aicity.read_aic24_calibration(c.calibration).projection,
                                              (spec.width, spec.height)) for c in scene.cameras]
    centres = np.array([c.camera_center for c in cals])
    half = max(np.abs(centres[:, :2]).max(), spec.area[0] / 2, spec.area[1] / 2) + 3.0
    px = WorldToPixel.fit((-half, half, -half, half), (size, size))
    g = world.ground
    canvas = cv2.warpPerspective(g.image, px.matrix @ g.world_from_texture(), (size, size), flags=cv2.INTER_AREA,
                                 borderMode=cv2.BORDER_REFLECT)
    canvas = (canvas * 0.75).astype(np.uint8)
    # Camera footprints: the image border mapped to the ground, cut at 30 m.
    sizes = [(spec.width, spec.height)] * len(cals)
    colours = [camera_colour(c) for c in range(len(cals))]
    footprints = [camera_footprint(cal, wh, max_range=30.0) for cal, wh in zip(cals, sizes, strict=True)]
    draw_footprints(canvas, footprints, px, colours)
    for occ in world.occluders:
        cv2.fillConvexPoly(canvas, np.round(px(occ.corners()[:4, :2])).astype(np.int32), (60, 60, 60), cv2.LINE_AA)
    # Tracks: world foot points of the ground truth, one polyline per id.
    for pid in np.unique(gt[:, 1]).astype(int):
        rows = gt[gt[:, 1] == pid]
        _, first = np.unique(rows[:, 2], return_index=True)
        pts = px(rows[first][:, 7:9])
        col = id_colour(pid)
        cv2.polylines(canvas, [np.round(pts).astype(np.int32)], False, col, 2, cv2.LINE_AA)
        cv2.circle(canvas, tuple(np.round(pts[-1]).astype(int)), 5, col, -1, cv2.LINE_AA)
        draw_label(canvas, str(pid), (int(pts[-1][0]) + 6, int(pts[-1][1]) - 4), col, 0.4)
    draw_cameras(canvas, cals, sizes, px, [f"cam {c + 1}" for c in range(len(cals))], colours, max_range=30.0)
    draw_label(canvas, "bird's-eye view: cameras, footprints, world tracks", (8, 22), (255, 255, 255), 0.55)
    return canvas


def contact_sheet(data: Path, frames: list[int] | None = None, tile_w: int = 400) -> np.ndarray:
    meta = json.loads((data / "meta.json").read_text())
    if meta.get("layout") != "aic24":
        raise ValueError(f"{data}: the demo reads the aic24 layout, this dataset is {meta.get('layout')!r}")
    scene = aicity.load_aic24_scene(data / meta["scenes"][0]["dir"])
    assert scene.ground_truth is not None
    gt = aicity.read_aic24_ground_truth(scene.ground_truth)
    n = int(meta["frames"])
    frames = frames or [int(n * q) for q in (0.15, 0.5, 0.85)]
    grid = camera_tiles(scene, gt, frames, tile_w)
    bev = birds_eye(meta, scene, gt, grid.shape[0])
    title = np.full((36, grid.shape[1] + bev.shape[1], 3), 25, dtype=np.uint8)
    cv2.putText(title, f"citytrack synthetic scene: {len(scene.cameras)} cameras, {len(np.unique(gt[:, 1]))} people, "
                f"{n} frames @ {meta['fps']} fps; ground-truth boxes coloured by id",
                (10, 24), FONT, 0.6, (235, 235, 235), 1, cv2.LINE_AA)
    return np.vstack([title, np.hstack([grid, bev])])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/synth/demo", help="synthetic dataset folder (rendered when missing)")
    parser.add_argument("--out", default="outputs/demo/contact_sheet.png")
    args = parser.parse_args(argv)
    data = ensure_synthetic_dataset(Path(args.data), **DEMO_SCENE)
    sheet = contact_sheet(data)
    out = Path(args.out)
    with atomic_path(out) as tmp:
        if not cv2.imwrite(str(tmp), sheet):
            raise OSError(f"cannot write {out}")
    print(f"contact sheet written to {out.resolve()} ({sheet.shape[1]}x{sheet.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
