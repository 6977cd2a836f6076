"""`make demo` / `python -m citytrack.demo`: the multi-camera pipeline end to end on the embedded scene.

It is `python infer.py` with the output folder fixed: the held-out synthetic AI City 2024 scene
(generated on first use) runs through the shipped detector and ReID checkpoints, per-camera
BoT-SORT and the online cross-camera association; the demo prints HOTA and IDF1, and says where
the submission, the scene video (all cameras tiled, one colour per global id, bird's-eye view)
and a still picture of a few frames are. Extra arguments are Hydra overrides of `conf/infer.yaml`
(`python -m citytrack.demo multicam=offline detector=gt`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from hydra import compose, initialize_config_dir

from citytrack.data.formats import aicity
from citytrack.data.scenes import load_scene
from citytrack.data.video import read_frames
from citytrack.inference import run_task
from citytrack.utils.io import atomic_path
from citytrack.utils.paths import config_dir, project_root
from citytrack.visualize import scene_snapshot


def snapshot(scene_dir: Path, rows: np.ndarray, out: Path, n_frames: int = 3) -> Path:
    """A still of `n_frames` frames across the result: every camera with its boxes, and the bird's-eye view."""
    scene = load_scene(scene_dir)
    frames_all = np.unique(rows[:, 2]).astype(int) if len(rows) else np.array([0])
    picks = [int(frames_all[int(q * (len(frames_all) - 1))]) for q in np.linspace(0.2, 0.8, n_frames)]
    images = {c.camera_id: read_frames(c.video, picks) for c in scene.cameras if c.video.is_file()}
    frames = {f: {cam: imgs[f] for cam, imgs in images.items()} for f in picks}
    sizes = {cam: (imgs[picks[0]].shape[1], imgs[picks[0]].shape[0]) for cam, imgs in images.items()}
    calib = {c.camera_id: c.calibration for c in scene.cameras if c.camera_id in images}
    picture = scene_snapshot(list(images), sizes, calib, frames, rows, title=f"{scene.name}: tracks by global id")
    with atomic_path(out) as tmp:
        if not cv2.imwrite(str(tmp), picture):
            raise OSError(f"cannot write {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/demo", help="output folder")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of conf/infer.yaml, e.g. multicam=offline")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    with initialize_config_dir(str(config_dir()), version_base="1.3", job_name="demo"):
        cfg = compose("infer", overrides=[f"out={out}", f"paths.root_dir={project_root()}", *args.overrides])
    metrics = run_task(cfg)
    import json

    summary = json.loads((out / "summary.json").read_text())
    for name, entry in summary["scenes"].items():
        rows = aicity.read_track1(out / f"{name}.txt")
        still = snapshot(Path(entry["dir"]), rows, out / f"{name}.png")
        print(f"{name}: video {entry.get('video', '(off)')}, picture {still}")
    if metrics:
        print(f"HOTA {100 * metrics['HOTA']:.1f}  DetA {100 * metrics['DetA']:.1f}  AssA {100 * metrics['AssA']:.1f}  "
              f"multi-camera IDF1 {100 * metrics['mc_IDF1']:.1f}")
    print(f"submission (AI City 2024 track1.txt): {out / 'track1.txt'}")
    return 0


if __name__ == "__main__":
    from citytrack.utils.cli import run_cli

    sys.exit(run_cli(main))  # user errors as one `error:` line; --debug for the traceback
