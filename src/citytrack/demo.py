"""`make demo` / `python -m citytrack.demo`: render a small synthetic scene and draw a contact sheet.

The sheet is read back through the project's own AI City 2024 readers (videos, calibration,
ground truth), so it shows what a tracker would get: every camera at a few frames with the
ground-truth boxes and ids (one colour per id), and a bird's-eye view of the plaza with the
camera positions, their ground footprints (view frustums) and every person's world track.
Later issues make this run the full pipeline.
"""

from __future__ import annotations

import argparse
import colorsys
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

DEMO_SCENE = dict(scenes=1, cameras=4, people=12, frames=60, fps=10, width=640, height=360, seed=0)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def id_colour(i: int) -> tuple[int, int, int]:
    """A bright, stable colour per id (golden-ratio hues)."""
    h = (i * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def cam_colour(c: int) -> tuple[int, int, int]:
    return [(255, 200, 60), (60, 200, 255), (120, 255, 120), (255, 120, 220), (200, 200, 200), (80, 140, 255)][c % 6]


def _label(img: np.ndarray, text: str, org: tuple[int, int], colour: tuple[int, int, int], scale: float = 0.45) -> None:
    (w, h), base = cv2.getTextSize(text, FONT, scale, 1)
    x, y = org
    cv2.rectangle(img, (x, y - h - base - 1), (x + w + 3, y + 1), (20, 20, 20), -1)
    cv2.putText(img, text, (x + 2, y - base + 1), FONT, scale, colour, 1, cv2.LINE_AA)


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
            for row in sel[np.argsort(-(sel[:, 4] + sel[:, 6]))]:
                x, y, w, h = row[3:7] * s
                col = id_colour(int(row[1]))
                cv2.rectangle(img, (int(x), int(y)), (int(x + w), int(y + h)), col, 2, cv2.LINE_AA)
                _label(img, str(int(row[1])), (int(x), max(int(y), 14)), col, 0.4)
            _label(img, f"camera {cam.camera_id}  frame {f}", (6, 20), cam_colour(cam.camera_id - 1), 0.5)
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
    ppm = size / (2 * half)

    def px(xy: np.ndarray) -> np.ndarray:  # world (x, y) -> image, y up
        return np.c_[(xy[:, 0] + half) * ppm, (half - xy[:, 1]) * ppm]

    g = world.ground
    M = np.array([[ppm / g.ppm, 0, (g.x0 + half) * ppm], [0, -ppm / g.ppm, (half - g.y0) * ppm], [0, 0, 1]])
    canvas = cv2.warpPerspective(g.image, M, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
    canvas = (canvas * 0.75).astype(np.uint8)
    overlay = canvas.copy()
    # Camera footprints: the image border mapped to the ground, cut at 30 m.
    W, H = spec.width, spec.height
    border = np.concatenate([
        np.c_[np.linspace(0, W, 40), np.full(40, H)], np.c_[np.full(40, W), np.linspace(H, 0, 40)],
        np.c_[np.linspace(W, 0, 40), np.zeros(40)], np.c_[np.zeros(40), np.linspace(0, H, 40)],
    ])
    for c, (cal, centre) in enumerate(zip(cals, centres, strict=True)):
        ground = cal.image_to_ground(border)
        far = ~np.isfinite(ground).all(axis=1)
        d = ground - centre[:2]
        dist = np.linalg.norm(d, axis=1)
        too_far = far | (dist > 30)
        # Rays above the horizon or far away: clamp to 30 m along the image column direction.
        for i in np.flatnonzero(too_far):
            u, v = border[i]
            v_clamped = v
            for _ in range(60):
                v_clamped += H / 60
                q = cal.image_to_ground([[u, min(v_clamped, H)]])[0]
                if np.isfinite(q).all() and np.linalg.norm(q - centre[:2]) <= 30:
                    break
            ground[i] = q
        poly = np.round(px(ground[np.isfinite(ground).all(axis=1)])).astype(np.int32)
        cv2.fillPoly(overlay, [poly], cam_colour(c))
        cv2.polylines(canvas, [poly], True, cam_colour(c), 1, cv2.LINE_AA)
    canvas = cv2.addWeighted(overlay, 0.18, canvas, 0.82, 0)
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
        _label(canvas, str(pid), (int(pts[-1][0]) + 6, int(pts[-1][1]) - 4), col, 0.4)
    for c, centre in enumerate(centres):
        p = tuple(np.round(px(centre[None, :2])[0]).astype(int))
        look = cals[c].image_to_ground([[W / 2, H / 2]])[0]
        q = tuple(np.round(px(look[None])[0]).astype(int))
        cv2.arrowedLine(canvas, p, q, cam_colour(c), 2, cv2.LINE_AA, tipLength=0.08)
        cv2.circle(canvas, p, 7, cam_colour(c), -1, cv2.LINE_AA)
        text = f"cam {c + 1} ({centre[2]:.1f} m high)"
        tw = cv2.getTextSize(text, FONT, 0.45, 1)[0][0]
        x = p[0] + 9 if p[0] + 9 + tw < size - 4 else p[0] - 12 - tw
        _label(canvas, text, (x, p[1] + 5), cam_colour(c), 0.45)
    _label(canvas, "bird's-eye view: cameras, footprints, world tracks", (8, 22), (255, 255, 255), 0.55)
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
