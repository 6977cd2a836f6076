"""`python infer.py task=mot_video`: track a real video from its detection file and write an
annotated video (boxes, ids, trails), plus the MOT result and metrics where gt is given.

    python infer.py task=mot_video tracker=botsort out=outputs/pets

The default is the PETS09-S2L1 clip of `../shared/data/video` (480x360) with the MOT15
PETS09-S2L1 detections and ground truth (768x576) scaled by 0.625. Frames are passed to
the tracker, so BoT-SORT's camera-motion compensation runs.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from pathlib import Path
from typing import Any, Self

import cv2
import numpy as np
from omegaconf import DictConfig
from tqdm import tqdm

from citytrack.data.formats.errors import FormatError
from citytrack.data.formats.mot import CONF, frame_groups, read_mot, write_mot
from citytrack.data.video import AtomicVideoWriter, VideoReader
from citytrack.tracking.base import Tracker
from citytrack.visualize import id_colour as id_color  # the one id colour of every picture we draw

log = logging.getLogger(__name__)


class AnnotatedVideoWriter:
    """Draws tracks (box, id, trail of recent centres) and writes frames atomically.

    Use as a context manager; the file appears at `path` only when the block ends
    without error (`citytrack.data.video.AtomicVideoWriter`).
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], fourcc: str = "mp4v", trail: int = 20):
        self.path = Path(path)
        self.fps = fps
        self.size = size
        self.fourcc = fourcc
        self.trail = trail
        self._trails: dict[int, deque[tuple[int, int]]] = defaultdict(lambda: deque(maxlen=self.trail))

    def __enter__(self) -> Self:
        self._writer = AtomicVideoWriter(self.path, self.fps, self.size, self.fourcc)
        return self

    def write(self, image: np.ndarray, tracks: np.ndarray, frame: int | None = None) -> None:
        """Draw `tracks` `(M, 5+)` `[x, y, w, h, id, ...]` on a copy of `image` and append it."""
        canvas = image.copy()
        for x, y, w, h, tid in tracks[:, :5]:
            color = id_color(int(tid))
            p1, p2 = (int(x), int(y)), (int(x + w), int(y + h))
            cv2.rectangle(canvas, p1, p2, color, 2)
            cv2.putText(canvas, str(int(tid)), (p1[0], max(p1[1] - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 2)
            trail = self._trails[int(tid)]
            trail.append((int(x + w / 2), int(y + h)))
            if len(trail) > 1:
                cv2.polylines(canvas, [np.array(trail, dtype=np.int32)], False, color, 2)
        if frame is not None:
            cv2.putText(canvas, f"frame {frame}", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
        self._writer.write(canvas)

    def __exit__(self, exc_type, exc, tb) -> None:
        self._writer.__exit__(exc_type, exc, tb)


def run(
    cfg: DictConfig,
    tracker: Tracker,
    *,
    name: str,
    video: str,
    detections: str,
    gt: str | None,
    det_scale: float,
    fps: float,
    fourcc: str,
    trail_length: int,
    max_frames: int | None,
    normalize_scores: str,
    strict_frame_order: bool,
) -> dict[str, Any]:
    """Track `video` with its detections scaled by `det_scale`; write `<cfg.out>/<name>.{mp4,txt}`, metrics.

    Built by Hydra from `conf/task/mot_video.yaml` (`tracker` is `cfg.tracker`). The detections get
    the same checks as `task=mot` (frame order, score range). Frames are read until the video ends
    (or `max_frames`): container frame counts are not trusted, and only the frames actually tracked
    are scored. `fps` is used only where the container has no frame rate.
    """
    from citytrack.inference.mot import check_frame_order, normalise_scores

    video_path, det_path, name = Path(str(video)), str(detections), str(name)
    det = read_mot(det_path, kind="det")
    check_frame_order(det_path, det, strict=strict_frame_order)
    det[:, CONF] = normalise_scores(det[:, CONF], normalize_scores, det_path)
    det[:, 2:6] *= float(det_scale)
    groups = frame_groups(det)
    out_dir = Path(str(cfg.out))
    video_out, table_out = out_dir / f"{name}.mp4", out_dir / f"{name}.txt"
    rows: list[np.ndarray] = []
    processed = 0
    with VideoReader(video_path, max_frames=int(max_frames) if max_frames else None) as reader:
        frame_rate = reader.info.fps or float(fps)
        tracker.reset(frame_rate=frame_rate)
        size = reader.info.size
        with AnnotatedVideoWriter(video_out, frame_rate, size, str(fourcc), int(trail_length)) as writer:
            for index, image in tqdm(reader, total=reader.frames_left, desc=name):
                processed += 1
                frame = index + 1
                boxes = groups.get(frame)
                dets = np.zeros((0, 5)) if boxes is None else boxes[:, [2, 3, 4, 5, CONF]]
                out = tracker.update(dets, frame=frame, image=image)
                writer.write(image, out, frame)
                if len(out):
                    block = np.full((len(out), 10), -1.0)
                    block[:, 0], block[:, 1], block[:, 2:6], block[:, 6] = frame, out[:, 4], out[:, :4], out[:, 5]
                    rows.append(block)
            if processed == 0:
                raise FormatError(video_path, "the video has no readable frames")
    table = np.concatenate(rows) if rows else np.zeros((0, 10))
    write_mot(table_out, table, kind="result")
    print(f"wrote {video_out} and {table_out} ({processed} frames)")
    result: dict[str, Any] = {"video": str(video_out), "frames": processed}
    if gt:
        from citytrack.eval.mot_metrics import evaluate_sequences, format_table

        truth = read_mot(str(gt), kind="gt")
        truth[:, 2:6] *= float(det_scale)
        truth = truth[truth[:, 0] <= processed]
        df = evaluate_sequences({name: truth}, {name: table})
        print(format_table(df))
        result["metrics"] = {c: float(v) for c, v in df.loc["OVERALL"].items()}
    return result
