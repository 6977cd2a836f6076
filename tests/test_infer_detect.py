"""`task=detect` output is a complete MOTChallenge sequence (det.txt + seqinfo.ini)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from citytrack.data.formats.errors import FormatError
from citytrack.data.formats.mot import load_sequence
from citytrack.data.video import AtomicVideoWriter
from citytrack.inference.detect import detect_to_file


class _FixedDetector:
    """Stands in for DetectorModule.predict_frames: one box per frame, moving right."""

    def __init__(self) -> None:
        self.calls = 0

    def predict_frames(self, frames, batch_size=8, score_thresh=None, img_size=None):
        out = []
        for _ in frames:
            self.calls += 1
            out.append(np.array([[10.0 + self.calls, 20.0, 30.0, 60.0, 0.9]]))
        return out


def _clip(path: Path, frames: int, fps: float = 12.0, size: tuple[int, int] = (160, 96)) -> Path:
    with AtomicVideoWriter(path, fps, size, "MJPG") as writer:
        for i in range(frames):
            writer.write(np.full((size[1], size[0], 3), 20 * i % 255, np.uint8))
    return path


def test_detect_writes_det_and_seqinfo_that_task_mot_reads(tmp_path: Path) -> None:
    video = _clip(tmp_path / "cam.avi", frames=7)
    out_file = tmp_path / "out" / "cam" / "det" / "det.txt"
    n = detect_to_file(_FixedDetector(), video, "video", out_file, batch_size=3)
    assert n == 7
    seq = load_sequence(out_file.parent.parent)
    assert seq.info.frame_rate == pytest.approx(12.0)
    assert (seq.info.seq_length, seq.info.im_width, seq.info.im_height) == (7, 160, 96)
    assert seq.det[:, 0].tolist() == list(range(1, 8))
    assert seq.det[:, 2].tolist() == pytest.approx([11, 12, 13, 14, 15, 16, 17])


def test_detect_on_empty_video_names_the_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    with pytest.raises(FormatError, match="empty.avi"):
        detect_to_file(_FixedDetector(), empty, "video", tmp_path / "o" / "det" / "det.txt")
    assert not (tmp_path / "o" / "det" / "det.txt").exists()
