"""Reading and writing videos: the one place that opens `cv2.VideoCapture` / `cv2.VideoWriter`.

- `probe_video(path)`: size, frame rate and the container's frame count, checking that the first
  frame decodes.
- `VideoReader(path, start, stride, max_frames)`: `(0-based frame index, HxWx3 uint8 BGR)`; frames
  that are skipped (`start`, `stride`, `skip`, `read_at`) are only grabbed, not decoded.
- `SyncedVideoReader({camera: path})`: the cameras of a scene frame by frame in step. A camera that
  cannot be opened, or that ends or breaks before the others, is dropped with a warning naming it
  and the others go on.
- `AtomicVideoWriter(path, fps, size)`: written to a temporary file beside `path` and renamed onto it
  only when the block ends cleanly (`citytrack.utils.io.atomic_path`).

Every unreadable video raises `VideoError` (a `FormatError`) naming the file and the problem.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import cv2
import numpy as np

from citytrack.data.formats.errors import FormatError
from citytrack.utils.io import atomic_path

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


class VideoError(FormatError):
    """A video is missing, cannot be opened or cannot be decoded; the message names the file."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video. `frame_count` is 0 when the container does not say."""

    path: Path
    width: int
    height: int
    fps: float
    frame_count: int

    @property
    def size(self) -> tuple[int, int]:
        """`(width, height)`, as `AtomicVideoWriter` and OpenCV take it."""
        return self.width, self.height


def _open_capture(path: Path) -> tuple[cv2.VideoCapture, VideoInfo]:
    if not path.exists():
        raise VideoError(path, "video file does not exist")
    if not path.is_file():
        raise VideoError(path, "not a video file (a folder?)")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise VideoError(path, "OpenCV cannot open this video")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    count = float(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0)
    info = VideoInfo(
        path=path,
        width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        fps=fps if np.isfinite(fps) and fps > 0 else 0.0,
        frame_count=round(count) if np.isfinite(count) and count > 0 else 0,
    )
    return cap, info


def probe_video(path: PathLike) -> VideoInfo:
    """Size, frame rate and frame count of a video whose first frame decodes; else `VideoError`."""
    path = Path(path)
    cap, info = _open_capture(path)
    try:
        ok, image = cap.read()
    finally:
        cap.release()
    if not ok or image is None:
        raise VideoError(path, "the first frame cannot be decoded (empty or corrupt video)")
    if info.width <= 0 or info.height <= 0:  # some containers leave the size to the decoder
        info = VideoInfo(path, int(image.shape[1]), int(image.shape[0]), info.fps, info.frame_count)
    return info


class VideoReader:
    """Frames `start, start + stride, ...` of a video (at most `max_frames`), as `(index, image)`.

    Indices are 0-based positions in the video; images are `HxWx3 uint8` BGR. Frames in between are
    grabbed without being decoded. `read()` returns the next of these frames (None at the end),
    `skip(n)` and `read_at(index)` move forward. When a read stops, `stop_reason` says why: the
    video ended, or (`broken`) a frame inside the container's frame count could not be decoded.
    A context manager: `with VideoReader(path) as reader: for index, image in reader: ...`.
    """

    def __init__(self, path: PathLike, start: int = 0, stride: int = 1, max_frames: int | None = None) -> None:
        if start < 0 or stride < 1 or (max_frames is not None and max_frames < 0):
            raise ValueError(f"need start >= 0, stride >= 1, max_frames >= 0; got {start}, {stride}, {max_frames}")
        self.path = Path(path)
        self.stride = int(stride)
        self.max_frames = None if max_frames is None else int(max_frames)
        self._cap: cv2.VideoCapture | None
        self._cap, self.info = _open_capture(self.path)
        self.position = 0  # index of the next frame the capture returns
        self.frames_read = 0  # frames returned by read() / iteration
        self.index: int | None = None  # index of the last frame returned
        self.stop_reason: str | None = None
        self.broken = False  # the read stopped at a frame that does not decode, not at the end
        self._pending = 0  # frames still to grab before the next read (the stride gap)
        if start:
            self.skip(start)

    # ------------------------------------------------------------------ reading
    def _grab(self, n: int) -> int:
        assert self._cap is not None
        done = 0
        while done < n and self.stop_reason is None:
            if not self._cap.grab():
                self._stop()
                break
            done += 1
            self.position += 1
        return done

    def _stop(self, decoded: bool = False) -> None:
        n = self.info.frame_count
        self.broken = decoded or bool(n and self.position < n)
        if self.broken:
            said = f" (the container says {n} frames)" if n else ""
            self.stop_reason = f"cannot decode frame {self.position}{said}"
        else:
            self.stop_reason = f"video ends at frame {self.position}"

    def _check_open(self) -> cv2.VideoCapture:
        if self._cap is None:
            raise ValueError(f"{self.path}: the video reader is closed")
        return self._cap

    def read(self) -> np.ndarray | None:
        """The next frame (`HxWx3 uint8` BGR), or None when the video or `max_frames` ends."""
        cap = self._check_open()
        if self.stop_reason is not None or (self.max_frames is not None and self.frames_read >= self.max_frames):
            return None
        if self._pending:
            gap, self._pending = self._pending, 0
            if self._grab(gap) < gap:
                return None
        if not cap.grab():
            self._stop()
            return None
        ok, image = cap.retrieve()
        if not ok or image is None:
            self._stop(decoded=True)
            return None
        self.index = self.position
        self.position += 1
        self.frames_read += 1
        self._pending = self.stride - 1
        return image

    def skip(self, n: int) -> int:
        """Move `n` frames forward without decoding them; returns how many there were to skip."""
        self._check_open()
        if n < 0:
            raise ValueError(f"{self.path}: cannot skip backwards ({n} frames)")
        gap, self._pending = self._pending, 0
        return max(0, self._grab(gap + n) - gap)

    def read_at(self, index: int) -> np.ndarray | None:
        """Frame `index` (forward only: the frames before it are grabbed); None when the video ends first."""
        if index < self.position + self._pending:
            raise ValueError(f"{self.path}: frame {index} is behind the reader (next frame {self.position + self._pending})")
        self.skip(index - self.position - self._pending)
        return self.read()

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        while (image := self.read()) is not None:
            assert self.index is not None
            yield self.index, image

    @property
    def frames_left(self) -> int | None:
        """How many frames iteration will still give by the container's count (None when unknown)."""
        if self._cap is None or self.stop_reason is not None:
            return 0
        budget = None if self.max_frames is None else self.max_frames - self.frames_read
        if not self.info.frame_count:
            return budget
        ahead = self.info.frame_count - (self.position + self._pending)
        left = max(0, -(-ahead // self.stride))
        return left if budget is None else min(left, budget)

    def __length_hint__(self) -> int:
        left = self.frames_left
        return NotImplemented if left is None else left

    # ------------------------------------------------------------------ life cycle
    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VideoReader({str(self.path)!r}, position={self.position}, stride={self.stride})"


def read_frames(path: PathLike, indices: Iterable[int]) -> dict[int, np.ndarray]:
    """`{index: image}` for the given 0-based frames of one video; `VideoError` when one is missing."""
    wanted = sorted({int(i) for i in indices})
    out: dict[int, np.ndarray] = {}
    with VideoReader(path) as reader:
        for i in wanted:
            image = reader.read_at(i)
            if image is None:
                raise VideoError(path, f"{reader.stop_reason}, but frame {i} is requested")
            out[i] = image
    return out


class SyncedVideoReader:
    """Several cameras read in step: yields `(frame index, {camera: image})`.

    Cameras whose file is missing, cannot be opened or whose first frame does not decode are dropped
    at opening with a warning (`VideoError` listing every file when none is left). A camera that ends
    before the others, or stops decoding, is dropped with a warning naming it and the frame, and the
    others go on; iteration stops when every camera has ended (or after `max_frames` steps).
    `keys` are the cameras still active, `infos` the `VideoInfo` of every camera opened, `dropped`
    the reason each dropped camera stopped.
    """

    def __init__(self, paths: Mapping[Hashable, PathLike], max_frames: int | None = None, stride: int = 1) -> None:
        if not paths:
            raise ValueError("SyncedVideoReader needs at least one camera")
        if stride < 1 or (max_frames is not None and max_frames < 0):
            raise ValueError(f"need stride >= 1 and max_frames >= 0; got {stride}, {max_frames}")
        self.paths: dict[Hashable, Path] = {key: Path(p) for key, p in paths.items()}
        self.stride = int(stride)
        self.max_frames = None if max_frames is None else int(max_frames)
        self.keys: list[Hashable] = []
        self.infos: dict[Hashable, VideoInfo] = {}
        self.dropped: dict[Hashable, str] = {}
        self.steps = 0  # frame sets yielded
        self._readers: dict[Hashable, VideoReader] = {}
        self._first: dict[Hashable, np.ndarray] = {}  # first frames, decoded at opening to check the camera
        try:
            for key, path in self.paths.items():
                self._open(key, path)
        except BaseException:
            self.close()
            raise
        if not self.keys:
            listing = "; ".join(f"camera {key!r}: {self.paths[key]}: {why}" for key, why in self.dropped.items())
            where = os.path.commonpath([str(p.absolute()) for p in self.paths.values()])
            raise VideoError(where, f"no camera video can be read: {listing}")

    def _open(self, key: Hashable, path: Path) -> None:
        try:
            reader = VideoReader(path, stride=self.stride)
        except VideoError as err:
            self._drop(key, err.reason)
            return
        image = reader.read()
        if image is None:
            reader.close()
            self._drop(key, f"the first frame cannot be decoded ({reader.stop_reason})")
            return
        self._readers[key], self._first[key], self.infos[key] = reader, image, reader.info
        self.keys.append(key)

    def _drop(self, key: Hashable, reason: str, frame: int | None = None) -> None:
        at = "" if frame is None else f" at frame {frame}"
        log.warning("camera %r (%s) dropped%s: %s", key, self.paths[key], at, reason)
        self.dropped[key] = reason if frame is None else f"frame {frame}: {reason}"
        self._remove(key)

    def _remove(self, key: Hashable) -> None:
        if key in self.keys:
            self.keys.remove(key)
        reader = self._readers.pop(key, None)
        if reader is not None:
            reader.close()
        self._first.pop(key, None)

    def __iter__(self) -> Iterator[tuple[int, dict[Hashable, np.ndarray]]]:
        while self.keys and (self.max_frames is None or self.steps < self.max_frames):
            index = self.steps * self.stride
            frames: dict[Hashable, np.ndarray] = {}
            stopped: list[Hashable] = []
            for key in self.keys:
                image = self._first.pop(key, None)
                if image is None:
                    image = self._readers[key].read()
                if image is None:
                    stopped.append(key)
                else:
                    frames[key] = image
            for key in stopped:
                reader = self._readers[key]
                if frames or reader.broken:  # ended or broke while others go on
                    self._drop(key, reader.stop_reason or "video ends", index)
                else:
                    self._remove(key)  # the last cameras ended together: the normal end
            if not frames:
                return
            self.steps += 1
            yield index, frames

    @property
    def frames_left(self) -> int | None:
        """Frame sets still to come by the shortest active camera's container count (None when unknown)."""
        counts = []
        for key in self.keys:
            left = self._readers[key].frames_left
            if left is not None:
                counts.append(left + (key in self._first))
        budget = None if self.max_frames is None else self.max_frames - self.steps
        if not counts:
            return budget if self.keys else 0
        return min(counts) if budget is None else min(min(counts), budget)

    def __length_hint__(self) -> int:
        left = self.frames_left
        return NotImplemented if left is None else left

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()
        self._first.clear()
        self.keys = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class AtomicVideoWriter:
    """A video written to a temporary file beside `path` (same extension, so OpenCV picks the same
    container) and renamed onto `path` only when the `with` block ends without an exception; on an
    exception the temporary file is removed and `path` is left as it was.

    `size` is `(width, height)`; `write` takes `HxWx3 uint8` BGR images of exactly that size.
    `close()` finishes (renames) and `abort()` discards, for use without `with`.
    """

    def __init__(self, path: PathLike, fps: float, size: tuple[int, int], fourcc: str = "mp4v") -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.size = (int(size[0]), int(size[1]))
        self.fourcc = fourcc
        self.frames_written = 0
        if len(fourcc) != 4:
            raise ValueError(f"{self.path}: a fourcc is 4 characters, got {fourcc!r}")
        if self.size[0] <= 0 or self.size[1] <= 0 or not self.fps > 0:
            raise ValueError(f"{self.path}: need a positive size and frame rate, got {self.size} at {fps} fps")
        self._atomic = atomic_path(self.path, suffix=self.path.suffix)
        tmp = self._atomic.__enter__()
        self._writer: cv2.VideoWriter | None = cv2.VideoWriter(
            str(tmp), cv2.VideoWriter_fourcc(*fourcc), self.fps, self.size
        )
        if not self._writer.isOpened():
            error = OSError(f"{self.path}: OpenCV cannot open a {fourcc} video writer ({self.size[0]}x{self.size[1]})")
            self._finish(error)
            raise error

    def write(self, image: np.ndarray) -> None:
        """Append one `HxWx3 uint8` BGR frame of the writer's size."""
        if self._writer is None:
            raise ValueError(f"{self.path}: the video writer is closed")
        w, h = self.size
        if not isinstance(image, np.ndarray) or image.shape != (h, w, 3) or image.dtype != np.uint8:
            got = f"{image.shape} {image.dtype}" if isinstance(image, np.ndarray) else type(image).__name__
            raise ValueError(f"{self.path}: frames must be ({h}, {w}, 3) uint8, got {got}")
        self._writer.write(image)
        self.frames_written += 1

    def _finish(self, error: BaseException | None) -> None:
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        if error is None:
            self._atomic.__exit__(None, None, None)
        else:
            try:
                self._atomic.__exit__(type(error), error, error.__traceback__)
            except BaseException as raised:  # atomic_path re-raises what it was given after cleaning up
                if raised is not error:
                    raise

    def close(self) -> None:
        """Finish the video and rename it onto `path`."""
        self._finish(None)

    def abort(self) -> None:
        """Discard the video: remove the temporary file, leave `path` as it was."""
        self._finish(RuntimeError(f"{self.path}: video writing aborted"))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is None:
            self.close()
        else:
            self._finish(exc)
