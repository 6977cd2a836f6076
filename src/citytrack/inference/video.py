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
import hydra
import numpy as np
from omegaconf import DictConfig
from tqdm import tqdm

from citytrack.data.formats.errors import FormatError
from citytrack.data.formats.mot import CONF, frame_groups, read_mot, write_mot
from citytrack.data.video import AtomicVideoWriter, VideoReader
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


def run(cfg: DictConfig) -> dict[str, Any]:
    """Track the configured video with its scaled detections; write video, result and metrics.

    The detections get the same checks as `task=mot` (frame order, score range). Frames are read
    until the video ends (or `max_frames`): container frame counts are not trusted, and only the
    frames actually tracked are scored.
    """
    from citytrack.inference.mot import check_frame_order, normalise_scores

    task = cfg.task
    video = Path(str(task.video))
    det_path = str(task.detections)
    det = read_mot(det_path, kind="det")
    check_frame_order(det_path, det, strict=bool(task.get("strict_frame_order", False)))
    det[:, CONF] = normalise_scores(det[:, CONF], str(task.get("normalize_scores", "auto")), det_path)
    det[:, 2:6] *= float(task.det_scale)
    groups = frame_groups(det)
    tracker = hydra.utils.instantiate(cfg.tracker)
    max_frames = int(task.max_frames) if task.get("max_frames") else None
    out_dir = Path(str(cfg.out))
    name = str(task.name)
    rows: list[np.ndarray] = []
    processed = 0
    with VideoReader(video, max_frames=max_frames) as reader:
        fps = reader.info.fps or float(task.get("fps", 10))
        tracker.reset(frame_rate=fps)
        with AnnotatedVideoWriter(out_dir / f"{name}.mp4", fps, reader.info.size, str(task.fourcc), int(task.trail_length)) as writer:
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
                raise FormatError(video, "the video has no readable frames")
    table = np.concatenate(rows) if rows else np.zeros((0, 10))
    write_mot(out_dir / f"{name}.txt", table, kind="result")
    print(f"wrote {out_dir / (name + '.mp4')} and {out_dir / (name + '.txt')} ({processed} frames)")
    result: dict[str, Any] = {"video": str(out_dir / f"{name}.mp4"), "frames": processed}
    if task.get("gt"):
        from citytrack.eval.mot_metrics import evaluate_sequences, format_table

        gt = read_mot(str(task.gt), kind="gt")
        gt[:, 2:6] *= float(task.det_scale)
        gt = gt[gt[:, 0] <= processed]
        df = evaluate_sequences({name: gt}, {name: table})
        print(format_table(df))
        result["metrics"] = {c: float(v) for c, v in df.loc["OVERALL"].items()}
    return result
