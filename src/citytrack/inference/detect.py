"""`python infer.py task=detect data.root=DIR ckpt=detector.ckpt out=DIR`: detections as MOT `det.txt`.

`data.root` may be an AI City 2024 scene (`scene_XXX/camera_XXXX/video.mp4`), an AI City 2019
scenario (`SXX/cXXX/vdo.avi`), a folder of such scenes or a dataset root with split folders
(`train/SXX`), a MOTChallenge sequence (`img1/` + `seqinfo.ini`), a folder of sequences, or a
single video file. Each camera/sequence gets `<out>/<name>/det/det.txt` (`<out>/<scene>/<camera>/...`
for scenes) in the MOTChallenge det layout (`frame, -1, x, y, w, h, score, class, -1, -1`, frames
1-based: video frame i is written as i + 1). `class` is the detector's class index (its
`class_names`, e.g. 0 person, 1 car, 2 bus, 3 truck) for a multi-class detector and -1 for a
one-class (person) detector, whose files stay as they were; `classes=[car, bus]` keeps only those
classes. Files are written atomically through `citytrack.data.formats.mot.write_mot`, beside a
`seqinfo.ini` (frame rate, length, image size) so `infer.py task=mot data.root=<out>` tracks the
result with the input's real frame rate and size.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from omegaconf import DictConfig

from citytrack.data.formats.errors import FormatError
from citytrack.data.formats.mot import SeqInfo, write_mot, write_seqinfo
from citytrack.data.video import VideoReader, probe_video

if TYPE_CHECKING:
    from citytrack.models.detector.module import DetectorModule

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov")
_AIC19_SCENE = re.compile(r"S\d+")
_AIC19_CAMERA = re.compile(r"c\d+")


def _is_scene(path: Path) -> bool:
    """An AI City 2024 `scene_XXX` or an AI City 2019 `SXX` folder."""
    return path.name.startswith("scene_") or bool(_AIC19_SCENE.fullmatch(path.name))


def _scene_videos(scene: Path) -> list[Path]:
    """Camera videos of a scene: `camera_XXXX/video.mp4` (AI City 2024) or `cXXX/vdo.avi` (AI City 2019)."""
    if scene.name.startswith("scene_"):
        return sorted(scene.glob("camera_*/video.mp4"))
    return sorted(p for p in scene.glob("c*/vdo.avi") if _AIC19_CAMERA.fullmatch(p.parent.name))


def find_inputs(root: Path) -> list[tuple[str, Path, str]]:
    """`(name, path, kind)` for every camera/sequence under `root`; kind is `video` or `mot`."""
    if not root.exists():
        raise FormatError(root, "input does not exist")
    if root.is_file():
        if root.suffix.lower() not in VIDEO_SUFFIXES:
            raise FormatError(root, f"not a video file (expected one of {VIDEO_SUFFIXES})")
        return [(root.stem, root, "video")]
    if (root / "img1").is_dir():
        return [(root.name, root, "mot")]
    if _is_scene(root):
        return [(f"{root.name}/{p.parent.name}", p, "video") for p in _scene_videos(root)]
    found: list[tuple[str, Path, str]] = []
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        if (child / "img1").is_dir():
            found.append((child.name, child, "mot"))
        elif _is_scene(child):
            found += find_inputs(child)
        else:  # a split folder (AI City `train/`, `validation/`) of scenes
            found += [f for s in sorted(child.iterdir()) if s.is_dir() and _is_scene(s) for f in find_inputs(s)]
    if not found:
        raise FormatError(root, "no AI City scenes, MOT sequences (img1/) or videos found")
    return found


def iter_frames(path: Path, kind: str, stride: int = 1, max_frames: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """`(frame number 1-based, BGR image)`; a clear error on an unreadable or empty input."""
    count = 0
    if kind == "mot":
        from citytrack.data.formats.mot import load_sequence

        seq = load_sequence(path)
        for f in range(1, seq.info.seq_length + 1, stride):
            image = cv2.imread(str(seq.image_path(f)))
            if image is None:
                raise FormatError(seq.image_path(f), "image is missing or cannot be decoded")
            yield f, image
            count += 1
            if max_frames is not None and count >= max_frames:
                return
        if count == 0:
            raise FormatError(path, "sequence has no frames")
        return
    with VideoReader(path, stride=stride, max_frames=max_frames) as reader:
        for index, image in reader:
            yield index + 1, image
            count += 1
    if count == 0:
        raise FormatError(path, "video has no decodable frames")


def detections_table(frames: list[int], dets: list[np.ndarray]) -> np.ndarray:
    """Per-frame `(N, 5) xywh score` or `(N, 6) xywh score class` -> MOT det table `(M, 10)`.

    The class index goes to the `cls` column (the 8th); without one it is -1, as in MOTChallenge det files.
    """
    rows = []
    for f, d in zip(frames, dets, strict=True):
        d = np.asarray(d, dtype=np.float64)
        d = d.reshape(-1, d.shape[-1] if d.ndim == 2 and d.shape[-1] in (5, 6) else 5)
        d = d[(d[:, 2] > 0) & (d[:, 3] > 0)]
        if len(d):
            cls = d[:, 5] if d.shape[1] == 6 else np.full(len(d), -1.0)
            rows.append(np.column_stack(
                [np.full(len(d), f), np.full(len(d), -1.0), d[:, :4], d[:, 4], cls, np.full((len(d), 2), -1.0)]
            ))
    return np.concatenate(rows) if rows else np.zeros((0, 10))


def detect_to_file(
    detector: Any, path: Path, kind: str, out_file: Path, batch_size: int = 8, stride: int = 1,
    max_frames: int | None = None, score_thresh: float | None = None, img_size: int | Sequence[int] | str | None = None,
    classes: Sequence[int] | None = None, with_class: bool = False,
) -> int:
    """Run `detector.predict_frames` over one input and write its det.txt; returns the number of detections.

    `classes`: class indices to keep (None: all); `with_class`: write each detection's class index in
    the `cls` column (a one-class detector writes -1 there, as before classes existed).
    """
    extra: dict[str, Any] = {}
    if classes is not None or with_class:
        extra = {"classes": classes, "return_class": with_class}
    frames: list[int] = []
    dets: list[np.ndarray] = []
    buf_f: list[int] = []
    buf_i: list[np.ndarray] = []

    first_shape: tuple[int, ...] | None = None

    def flush() -> None:
        dets.extend(detector.predict_frames(buf_i, batch_size=batch_size, score_thresh=score_thresh, img_size=img_size,
                                            **extra))
        frames.extend(buf_f)
        buf_f.clear()
        buf_i.clear()

    for f, image in iter_frames(path, kind, stride, max_frames):
        first_shape = first_shape or image.shape
        buf_f.append(f)
        buf_i.append(image)
        if len(buf_i) >= batch_size:
            flush()
    if buf_i:
        flush()
    table = detections_table(frames, dets)
    write_mot(out_file, table, kind="det")
    height, width = first_shape[:2] if first_shape else (0, 0)
    info = SeqInfo(
        name=out_file.parent.parent.name,
        frame_rate=source_frame_rate(path, kind),  # frame numbers keep the source timing, stride or not
        seq_length=max(frames) if frames else 0,
        im_width=int(width),
        im_height=int(height),
    )
    write_seqinfo(out_file.parent.parent / "seqinfo.ini", info)
    return len(table)


def source_frame_rate(path: Path, kind: str, default: float = 30.0) -> float:
    """Frames per second of a MOT sequence (seqinfo.ini) or a video (container header)."""
    if kind == "mot":
        from citytrack.data.formats.mot import load_sequence

        return float(load_sequence(path).info.frame_rate)
    fps = probe_video(path).fps
    if fps <= 0:
        log.warning("%s: no frame rate in the container; assuming %.0f fps", path, default)
        return default
    return fps


def load_checkpoint_detector(ckpt: str | Path | None, device: str, nms_thresh: float | None) -> DetectorModule:
    """The trained detector of `ckpt=` on `device` (`auto`: CUDA when available).

    `nms_thresh` replaces the checkpoint's NMS IoU threshold (None: the checkpoint's).
    """
    if not ckpt:
        raise ValueError("task=detect needs ckpt=<path to a detector checkpoint>")
    from citytrack.models.detector.module import load_detector
    from citytrack.utils.device import resolve_device

    detector = load_detector(ckpt, map_location=resolve_device(device))
    if nms_thresh is not None:
        detector.hparams.nms_thresh = float(nms_thresh)
    return detector


def class_indices(class_names: Sequence[str], wanted: Sequence[str | int] | None) -> list[int] | None:
    """Names (or indices) of `wanted` classes -> indices into `class_names`; an unknown one raises naming the choices."""
    if wanted is None:
        return None
    names = [str(c) for c in class_names]
    out = []
    for c in wanted:
        if isinstance(c, int) or str(c).lstrip("-").isdigit():
            i = int(c)
            if not 0 <= i < len(names):
                raise ValueError(f"task.classes: class index {i} out of range for the detector's classes {names}")
        elif str(c) in names:
            i = names.index(str(c))
        else:
            raise ValueError(f"task.classes: {c!r} is not a class of this detector (its classes: {names})")
        out.append(i)
    return out


def run(
    cfg: DictConfig,
    detector: DetectorModule,
    *,
    batch_size: int,
    img_size: int | Sequence[int] | str | None,
    score_thresh: float | None,
    frame_stride: int,
    max_frames: int | None,
    classes: Sequence[str | int] | None = None,
) -> dict[str, Any]:
    """Detect over every input under `cfg.data.root`, write det files under `cfg.out`; `{name: detections}`.

    Built by Hydra from `conf/task/detect.yaml` (`detector` from `load_checkpoint_detector`).
    A multi-class detector writes each detection's class index in the `cls` column; `classes` keeps some.
    """
    out = Path(cfg.out)
    names = list(detector.hparams.class_names)
    keep = class_indices(names, list(classes) if classes is not None else None)
    with_class = int(detector.hparams.num_classes) > 1
    if with_class:
        log.info("column 8 of det.txt is the class index: %s", ", ".join(f"{i} {n}" for i, n in enumerate(names)))
    summary: dict[str, Any] = {}
    for name, path, kind in find_inputs(Path(cfg.data.root)):
        out_file = out / name / "det" / "det.txt"
        n = detect_to_file(
            detector, path, kind, out_file, int(batch_size), int(frame_stride), max_frames, score_thresh, img_size,
            classes=keep, with_class=with_class,
        )
        log.info("%s: %d detections -> %s", name, n, out_file)
        summary[name] = n
    return summary
