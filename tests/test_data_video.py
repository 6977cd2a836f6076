"""`citytrack.data.video`: probing, reading (start/stride/skip), cameras in step, atomic writing.

The reader is checked against plain OpenCV on the real PETS09-S2L1 clip; the multi-camera reader on
tiny videos written here, one shorter, one missing, one garbage and one broken mid-way.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from citytrack.data.formats.errors import FormatError
from citytrack.data.video import (
    AtomicVideoWriter,
    SyncedVideoReader,
    VideoError,
    VideoInfo,
    VideoReader,
    probe_video,
    read_frames,
)

PETS = Path("video") / "pets09_s2l1_view001.avi"
SIZE = (32, 24)  # (w, h) of the tiny test videos


def _cv2_frames(path: Path, n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    for _ in range(n):
        ok, image = cap.read()
        assert ok
        out.append(image)
    cap.release()
    return out


def _tiny(path: Path, frames: int, level: int = 0) -> Path:
    """An MJPG video whose frame i is a flat image of value `level + 20 * i`."""
    with AtomicVideoWriter(path, 10, SIZE, "MJPG") as writer:
        for i in range(frames):
            writer.write(np.full((SIZE[1], SIZE[0], 3), level + 20 * i, np.uint8))
    return path


def _frame_value(image: np.ndarray) -> int:
    """The flat value a `_tiny` frame was written with (JPEG moves it by a level or two)."""
    return round(float(image.mean()) / 5) * 5


def _break_frame(path: Path, frame: int) -> Path:
    """Overwrite the JPEG data of one frame of an MJPG AVI so that it no longer decodes."""
    data = bytearray(path.read_bytes())
    pos = data.index(b"movi")
    for _ in range(frame + 1):
        pos = data.index(b"00dc", pos + 4)
    data[pos + 8 : pos + 208] = b"\x55" * 200
    path.write_bytes(bytes(data))
    return path


# ---------------------------------------------------------------------------- probe, VideoReader
def test_probe_real_clip(shared_data: Path) -> None:
    info = probe_video(shared_data / PETS)
    assert info == VideoInfo(shared_data / PETS, 480, 360, 10.0, 795)
    assert info.size == (480, 360)


def test_probe_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match=r"nope\.mp4: video file does not exist"):
        probe_video(tmp_path / "nope.mp4")
    (tmp_path / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(FormatError, match=r"garbage\.mp4"):  # VideoError is a FormatError
        probe_video(tmp_path / "garbage.mp4")
    (tmp_path / "empty.avi").write_bytes(b"")
    with pytest.raises(VideoError, match=r"empty\.avi"):
        VideoReader(tmp_path / "empty.avi")


def test_reader_gives_what_opencv_gives(shared_data: Path) -> None:
    expected = _cv2_frames(shared_data / PETS, 12)
    with VideoReader(shared_data / PETS, max_frames=12) as reader:
        assert reader.info.frame_count == 795 and reader.frames_left == 12
        got = list(reader)
        assert reader.read() is None and reader.frames_read == 12 and reader.frames_left == 0
    assert [i for i, _ in got] == list(range(12))
    for (_, image), ref in zip(got, expected, strict=True):
        assert image.dtype == np.uint8 and image.shape == (360, 480, 3)
        np.testing.assert_array_equal(image, ref)


def test_start_stride_skip_match_reading_everything(shared_data: Path) -> None:
    with VideoReader(shared_data / PETS, max_frames=40) as reader:
        every = [image for _, image in reader]
    with VideoReader(shared_data / PETS, start=3, stride=4, max_frames=8) as reader:
        assert reader.frames_left == 8
        got = list(reader)
    assert [i for i, _ in got] == list(range(3, 40, 4))[:8]
    for index, image in got:
        np.testing.assert_array_equal(image, every[index])
    with VideoReader(shared_data / PETS, stride=3) as reader:
        assert reader.frames_left == 265  # ceil(795 / 3)
        np.testing.assert_array_equal(reader.read(), every[0])
        assert reader.skip(5) == 5  # after the stride gap: frames 3..7
        np.testing.assert_array_equal(reader.read(), every[8])
        np.testing.assert_array_equal(reader.read(), every[11])  # the stride goes on
        np.testing.assert_array_equal(reader.read_at(30), every[30])
        assert reader.index == 30 and reader.position == 31
        with pytest.raises(ValueError, match="behind"):
            reader.read_at(31)
    with pytest.raises(ValueError, match="closed"):
        reader.read()


def test_reader_end_and_broken_frame(tmp_path: Path) -> None:
    video = _tiny(tmp_path / "a.avi", 5)
    with VideoReader(video, start=2) as reader:
        assert [i for i, _ in reader] == [2, 3, 4]
        assert reader.stop_reason == "video ends at frame 5" and not reader.broken
    with VideoReader(video) as reader:
        assert reader.skip(3) == 3 and reader.skip(10) == 2 and reader.read() is None
    with VideoReader(video, start=9) as reader:
        assert list(reader) == [] and reader.frames_left == 0
    assert sorted(read_frames(video, [4, 1])) == [1, 4]
    with pytest.raises(VideoError, match=r"a\.avi: video ends at frame 5, but frame 7 is requested"):
        read_frames(video, [1, 7])
    broken = _break_frame(_tiny(tmp_path / "b.avi", 6), 3)
    with VideoReader(broken) as reader:
        assert [_frame_value(image) for _, image in reader] == [0, 20, 40]
        assert reader.stop_reason == "cannot decode frame 3 (the container says 6 frames)" and reader.broken


# ---------------------------------------------------------------------------- SyncedVideoReader
def test_synced_reader_drops_missing_corrupt_and_short_cameras(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(1).bytes(5000))
    paths = {
        "a": _tiny(tmp_path / "a.avi", 6, level=0),
        "short": _tiny(tmp_path / "short.avi", 4, level=5),
        "missing": tmp_path / "missing.avi",
        "c": _tiny(tmp_path / "c.avi", 6, level=10),
        "garbage": garbage,
    }
    with caplog.at_level(logging.WARNING, logger="citytrack.data.video"):
        reader = SyncedVideoReader(paths)
    assert reader.keys == ["a", "short", "c"]
    assert set(reader.infos) == {"a", "short", "c"} and reader.infos["short"].frame_count == 4
    assert set(reader.dropped) == {"missing", "garbage"}
    opening = caplog.text
    for key in ("missing", "garbage"):
        assert f"camera '{key}'" in opening and str(paths[key]) in opening
    caplog.clear()
    assert reader.frames_left == 4  # the shortest camera, for progress bars
    with caplog.at_level(logging.WARNING, logger="citytrack.data.video"), reader:
        steps = [(index, {k: _frame_value(v) for k, v in frames.items()}) for index, frames in reader]
    assert [index for index, _ in steps] == list(range(6))
    assert steps[3][1] == {"a": 60, "short": 65, "c": 70}
    assert steps[4][1] == {"a": 80, "c": 90}  # the others go on without the short camera
    assert "short" in reader.dropped and "frame 4" in reader.dropped["short"]
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "'short'" in warned[0] and "short.avi" in warned[0] and "frame 4" in warned[0]
    assert reader.keys == []  # every camera has ended
    assert set(reader.dropped) == {"missing", "garbage", "short"}  # a and c ended together: the normal end


def test_synced_reader_stride_max_frames_and_broken_camera(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    paths = {1: _tiny(tmp_path / "one.avi", 7), 2: _break_frame(_tiny(tmp_path / "two.avi", 7, level=10), 4)}
    with SyncedVideoReader(paths, stride=2) as reader:
        assert reader.frames_left == 4
        with caplog.at_level(logging.WARNING, logger="citytrack.data.video"):
            steps = [(index, sorted(frames)) for index, frames in reader]
    assert steps == [(0, [1, 2]), (2, [1, 2]), (4, [1]), (6, [1])]
    assert reader.dropped == {2: "frame 4: cannot decode frame 4 (the container says 7 frames)"}
    assert "camera 2" in caplog.text and "two.avi" in caplog.text
    with SyncedVideoReader(paths, max_frames=3) as reader:
        assert reader.frames_left == 3
        assert [index for index, _ in reader] == [0, 1, 2]
        assert reader.keys == [1, 2] and reader.dropped == {}


def test_synced_reader_without_any_readable_camera_names_every_file(tmp_path: Path) -> None:
    (tmp_path / "bad.mp4").write_bytes(b"not a video at all")
    with pytest.raises(VideoError) as err:
        SyncedVideoReader({"x": tmp_path / "gone.mp4", "y": tmp_path / "bad.mp4"})
    message = str(err.value)
    assert "gone.mp4: video file does not exist" in message
    assert "bad.mp4: OpenCV cannot open this video" in message


# ---------------------------------------------------------------------------- AtomicVideoWriter
def test_atomic_writer_writes_a_readable_video_in_the_container_of_its_name(tmp_path: Path) -> None:
    for name, fourcc in (("out.mp4", "mp4v"), ("out.avi", "MJPG")):
        path = tmp_path / name
        with AtomicVideoWriter(path, 12.5, SIZE, fourcc) as writer:
            for i in range(5):
                writer.write(np.full((SIZE[1], SIZE[0], 3), 40 * i, np.uint8))
        info = probe_video(path)
        assert (info.width, info.height, info.frame_count, info.fps) == (32, 24, 5, 12.5)
        head = path.read_bytes()[:12]
        assert head[4:8] == b"ftyp" if name.endswith(".mp4") else head[:4] == b"RIFF"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.avi", "out.mp4"]  # no temporary files


def test_atomic_writer_leaves_nothing_when_the_body_raises(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    with pytest.raises(RuntimeError, match="boom"), AtomicVideoWriter(path, 10, SIZE) as writer:
        writer.write(np.zeros((SIZE[1], SIZE[0], 3), np.uint8))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    path.write_bytes(b"old")  # an existing file is left as it was
    with pytest.raises(RuntimeError, match="boom"), AtomicVideoWriter(path, 10, SIZE):
        raise RuntimeError("boom")
    assert path.read_bytes() == b"old" and list(tmp_path.iterdir()) == [path]


def test_atomic_writer_checks_frames_and_fourcc(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    swapped = np.zeros((SIZE[0], SIZE[1], 3), np.uint8)  # (w, h) for (h, w)
    with pytest.raises(ValueError, match=r"clip\.mp4: frames must be \(24, 32, 3\) uint8"), \
            AtomicVideoWriter(path, 10, SIZE) as writer:
        writer.write(swapped)
    with pytest.raises(ValueError, match="float32"), AtomicVideoWriter(path, 10, SIZE) as writer:
        writer.write(np.zeros((SIZE[1], SIZE[0], 3), np.float32))
    with pytest.raises(ValueError, match=r"\(24, 32\)"), AtomicVideoWriter(path, 10, SIZE) as writer:
        writer.write(np.zeros((SIZE[1], SIZE[0]), np.uint8))
    with pytest.raises(OSError, match=r"clip\.mp4: OpenCV cannot open a ZZZZ video writer"):
        AtomicVideoWriter(path, 10, SIZE, "ZZZZ")
    assert list(tmp_path.iterdir()) == []
