"""`python infer.py task=mot`: track every MOTChallenge sequence from its detection file.

    python infer.py task=mot data.root=../shared/data/mot15 tracker=sort out=outputs/sort
    python infer.py task=mot data.root=../shared/data/mot15 'data.sequences=[TUD-Campus]' tracker=bytetrack out=o

For each sequence folder under `data.root` (or those in `data.sequences`) the tracker of
`cfg.tracker` runs frame by frame over `det/det.txt`, the result is written atomically
to `<out>/<sequence>.txt` (MOTChallenge format), and where `gt/gt.txt` exists a metrics
table per sequence and overall is printed (`citytrack.eval.mot_metrics`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig
from tqdm import tqdm

from citytrack.data.formats.errors import FormatError
from citytrack.data.formats.mot import (
    CONF,
    FRAME,
    MotSequence,
    frame_groups,
    list_sequences,
    load_sequence,
    write_mot,
)
from citytrack.tracking.base import Tracker

log = logging.getLogger(__name__)


def check_frame_order(path: str | Path, table: np.ndarray, strict: bool = False) -> None:
    """Raise FormatError (file, line) when a frame's detections are split across the file.

    Each frame's rows must form one block; blocks out of order are accepted (the shipped
    MOT17 det files are ordered by frame only within a block) unless `strict`, which
    requires non-decreasing frames. Line numbers count blank lines as the reader does.
    """
    if len(table) < 2:
        return
    lines = np.array(
        [n for n, raw in enumerate(Path(path).read_text().splitlines(), start=1) if raw.strip()], dtype=np.int64
    )
    frames = table[:, FRAME]
    change = np.flatnonzero(np.diff(frames) != 0) + 1  # first row of each block after the first
    if strict:
        back = change[frames[change] < frames[change - 1]]
        if len(back):
            i = int(back[0])
            raise FormatError(
                path,
                f"frame {int(frames[i])} comes after frame {int(frames[i - 1])}: frames out of order",
                int(lines[i]),
            )
        return
    block_frames = frames[np.r_[0, change]]
    values, counts = np.unique(block_frames, return_counts=True)
    if (counts > 1).any():
        # the second block of a repeated frame is where the file goes out of order
        repeated = values[counts > 1]
        starts = np.r_[0, change]
        seen: set[float] = set()
        for b, f in enumerate(block_frames):
            if f in repeated and f in seen:
                i = int(starts[b])
                raise FormatError(
                    path,
                    f"frame {int(f)} appears again after frame {int(frames[i - 1])}: "
                    "frames out of order (a frame's detections must be contiguous)",
                    int(lines[i]),
                )
            seen.add(f)


def normalise_scores(scores: np.ndarray, mode: str, name: str) -> np.ndarray:
    """Bring detection scores to [0, 1], which every tracker threshold assumes.

    `mode`: "none" keeps them; "auto" min-max rescales only when they leave [0, 1] (e.g.
    the MOT15 ACF files, scores up to ~100), with a warning; "minmax" always rescales.
    """
    if mode == "none" or len(scores) == 0:
        return scores
    lo, hi = float(scores.min()), float(scores.max())
    if mode == "auto" and lo >= 0.0 and hi <= 1.0:
        return scores
    if mode not in ("auto", "minmax"):
        raise ValueError(f"data.normalize_scores must be auto, minmax or none, got {mode!r}")
    log.warning("%s: detection scores span [%.3g, %.3g]; rescaling to [0, 1]", name, lo, hi)
    return (scores - lo) / (hi - lo) if hi > lo else np.ones_like(scores)


@dataclass
class TrackingRun:
    """Result of tracking one sequence."""

    name: str
    table: np.ndarray  # (N, 10) MOT result
    frames: int
    seconds: float  # association time only


def track_sequence(
    tracker: Tracker,
    det: np.ndarray,
    num_frames: int,
    frame_rate: float,
    min_score: float | None = None,
    image_loader: Callable[[int], np.ndarray | None] | None = None,
    progress: bool = False,
    name: str = "",
) -> tuple[np.ndarray, float]:
    """Run `tracker` over frames 1..num_frames of a det table; returns (result table, seconds).

    The result has one row per reported box: `frame, id, x, y, w, h, score, -1, -1, -1`.
    """
    tracker.reset(frame_rate=frame_rate)
    groups = frame_groups(det)
    empty = np.zeros((0, 5))
    last = max(num_frames, max(groups, default=0))
    chunks: list[np.ndarray] = []
    elapsed = 0.0
    for frame in tqdm(range(1, last + 1), desc=name, disable=not progress, leave=False):
        rows = groups.get(frame)
        dets = empty if rows is None else rows[:, [2, 3, 4, 5, CONF]]
        if min_score is not None and len(dets):
            dets = dets[dets[:, 4] >= min_score]
        image = image_loader(frame) if image_loader is not None else None
        start = time.perf_counter()
        out = tracker.update(dets, frame=frame, image=image)
        elapsed += time.perf_counter() - start
        if len(out):
            block = np.full((len(out), 10), -1.0)
            block[:, 0] = frame
            block[:, 1] = out[:, 4]
            block[:, 2:6] = out[:, :4]
            block[:, 6] = out[:, 5]
            chunks.append(block)
    table = np.concatenate(chunks) if chunks else np.zeros((0, 10))
    return table, elapsed


def _select_sequences(root: Path, wanted: list[str] | None) -> list[Path]:
    folders = list_sequences(root)
    if not wanted:
        if not folders:
            raise FormatError(root, "no MOTChallenge sequence folders (with seqinfo.ini or det/det.txt) found")
        return folders
    by_name = {p.name: p for p in folders}
    missing = [w for w in wanted if w not in by_name]
    if missing:
        raise FormatError(root, f"sequences not found: {missing}; available: {sorted(by_name)}")
    return [by_name[w] for w in wanted]


def _image_loader(seq: MotSequence) -> Callable[[int], np.ndarray | None]:
    import cv2

    def load(frame: int) -> np.ndarray | None:
        path = seq.image_path(frame)
        return cv2.imread(str(path)) if path.is_file() else None

    return load


def run(
    cfg: DictConfig,
    tracker: Tracker,
    *,
    sequences: Sequence[str] | None,
    min_score: float | None,
    normalize_scores: str,
    strict_frame_order: bool,
    load_images: bool,
    postprocess: Callable[..., np.ndarray] | None,
    evaluate: bool,
    iou_threshold: float,
    distractor_handling: str,
) -> dict[str, Any]:
    """Track the sequences under `cfg.data.root`; write results under `cfg.out`; print and return metrics.

    Built by Hydra from `conf/task/mot.yaml`: `tracker` is `cfg.tracker` (reset per sequence),
    `postprocess(table, image_size=(w, h))` the `citytrack.tracking.postprocess.postprocess` partial
    (None: off); the `data.*` options select and check the detections.
    """
    root = Path(str(cfg.data.root))
    out_dir = Path(str(cfg.out))
    folders = _select_sequences(root, list(sequences or []))
    gts: dict[str, np.ndarray] = {}
    preds: dict[str, np.ndarray] = {}
    total_frames, total_seconds = 0, 0.0
    for folder in tqdm(folders, desc="sequences", disable=len(folders) < 2):
        seq = load_sequence(folder)
        name = folder.name  # the folder, as MOTChallenge names result files and as data.sequences selects
        det_path = folder / "det" / "det.txt"
        if seq.det is None:
            raise FormatError(det_path, "missing detection file")
        check_frame_order(det_path, seq.det, strict=strict_frame_order)
        det = seq.det.copy()
        det[:, CONF] = normalise_scores(det[:, CONF], normalize_scores, name)
        table, seconds = track_sequence(
            tracker,
            det,
            seq.info.seq_length,
            seq.info.frame_rate,
            min_score=min_score,
            image_loader=_image_loader(seq) if load_images else None,
            progress=True,
            name=name,
        )
        if postprocess is not None:
            table = postprocess(table, image_size=(seq.info.im_width, seq.info.im_height))
        write_mot(out_dir / f"{name}.txt", table, kind="result")
        frames = int(max(seq.info.seq_length, det[:, FRAME].max() if len(det) else 0))
        total_frames += frames
        total_seconds += seconds
        log.info(
            "%s: %d boxes, %d tracks, %.0f association fps -> %s",
            name,
            len(table),
            len(np.unique(table[:, 1])) if len(table) else 0,
            frames / max(seconds, 1e-9),
            out_dir / f"{name}.txt",
        )
        preds[name] = table
        if seq.gt is not None and evaluate:
            gts[name] = seq.gt
    result: dict[str, Any] = {
        "sequences": list(preds),
        "fps": total_frames / max(total_seconds, 1e-9),
        "out": str(out_dir),
    }
    target = f"{type(tracker).__module__}.{type(tracker).__qualname__}"
    print(f"tracker {target}: {len(preds)} sequences, {result['fps']:.0f} association fps")
    if gts:
        from citytrack.eval.mot_metrics import evaluate_sequences, format_table

        df = evaluate_sequences(
            gts,
            {k: v for k, v in preds.items() if k in gts},
            iou_threshold=iou_threshold,
            distractor_handling=distractor_handling,  # type: ignore[arg-type]
        )
        print(format_table(df))
        result["metrics"] = {str(k): {c: float(v) for c, v in row.items()} for k, row in df.iterrows()}
    return result
