"""`python -m citytrack.visualize SCENE_DIR`: draw an AI City 2024 scene's ground truth or a Track 1 result.

    python -m citytrack.visualize data/synth/demo/train/scene_001 --video outputs/scene.mp4
    python -m citytrack.visualize data/synth/demo/train/scene_001 --result track1.txt \\
        --snapshot docs/images/scene_snapshot.png --frames 9 30 51 --palette

`--video` writes every frame (`SceneVideoWriter`), `--snapshot` a still of `--frames`
(`scene_snapshot`); `--palette` stores the PNG with 256 colours (about 3x smaller, for docs).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from citytrack.data.formats import aicity
from citytrack.data.formats.aicity import CAMERA_ID, FRAME_ID, XWORLD, YWORLD
from citytrack.data.video import SyncedVideoReader, probe_video, read_frames
from citytrack.multicam.calibration import CameraCalibration
from citytrack.utils.io import atomic_path
from citytrack.visualize.birdseye import scene_extent
from citytrack.visualize.scene import SceneVideoWriter, scene_snapshot


def _write_png(path: Path, image: np.ndarray, palette: bool) -> None:
    with atomic_path(path) as tmp:
        if palette:
            from PIL import Image  # torchvision's dependency; only needed here

            Image.fromarray(image[:, :, ::-1]).quantize(
                256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
            ).save(tmp, optimize=True)
        elif not cv2.imwrite(str(tmp), image, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
            raise OSError(f"cannot write {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scene", type=Path, help="an AI City 2024 scene_XXX folder")
    parser.add_argument("--result", type=Path, help="a Track 1 file to draw instead of the ground truth")
    parser.add_argument("--video", type=Path, help="write the multi-camera video here")
    parser.add_argument("--snapshot", type=Path, help="write a still picture of --frames here")
    parser.add_argument("--frames", type=int, nargs="+", help="snapshot frames (default: 15%%, 50%%, 85%%)")
    parser.add_argument("--tile-width", type=int, help="camera tile width (default 480 video, 280 snapshot)")
    parser.add_argument("--trail", type=int, default=30, help="video trail length in frames")
    parser.add_argument("--palette", action="store_true", help="256-colour snapshot PNG")
    args = parser.parse_args(argv)
    if not (args.video or args.snapshot):
        parser.error("nothing to do: give --video and/or --snapshot")

    scene = aicity.load_aic24_scene(args.scene)
    table = aicity.read_track1(args.result) if args.result else scene.read_ground_truth()
    cams = [c.camera_id for c in scene.cameras]
    table = table[np.isin(table[:, CAMERA_ID], cams)]
    sizes = {c.camera_id: probe_video(c.video).size for c in scene.cameras}
    cals = {
        c.camera_id: CameraCalibration.from_projection(c.read_calibration().projection, sizes[c.camera_id])
        for c in scene.cameras
    }
    # Frame the tracks and cameras (not the far ends of the footprints): people stay large.
    extent = scene_extent(
        list(cals.values()), [sizes[c] for c in cals], points=table[:, [XWORLD, YWORLD]], footprints=False
    )
    title = f"scene {scene.scene_id}: {'result ' + args.result.name if args.result else 'ground truth'}"
    if args.video:
        fps = probe_video(scene.cameras[0].video).fps or 10.0
        with (
            SyncedVideoReader({c.camera_id: c.video for c in scene.cameras}) as reader,
            SceneVideoWriter(
                args.video,
                cams,
                sizes,
                cals,
                fps,
                tile_width=args.tile_width or 480,
                trail=args.trail,
                title=title,
                extent=extent,
            ) as video,
        ):
            for f, frames in reader:
                video.write(f, frames, table[table[:, FRAME_ID] == f])
        print(f"wrote {args.video} ({video.frames_written} frames, {video.size[0]}x{video.size[1]})")
    if args.snapshot:
        n = (
            int(table[:, FRAME_ID].max()) + 1
            if len(table)
            else probe_video(scene.cameras[0].video).frame_count
        )
        shown = args.frames or [int(n * q) for q in (0.15, 0.5, 0.85)]
        frames: dict[int, dict[int, np.ndarray]] = {f: {} for f in shown}
        for cam in scene.cameras:
            for f, image in read_frames(cam.video, shown).items():
                frames[f][cam.camera_id] = image
        picture = scene_snapshot(
            cams, sizes, cals, frames, table, tile_width=args.tile_width or 280, title=title, extent=extent
        )
        _write_png(args.snapshot, picture, args.palette)
        print(
            f"wrote {args.snapshot} ({picture.shape[1]}x{picture.shape[0]}, {args.snapshot.stat().st_size} bytes)"
        )
    return 0


if __name__ == "__main__":
    from citytrack.utils.cli import run_cli

    sys.exit(run_cli(main))  # user errors as one `error:` line; --debug for the traceback
