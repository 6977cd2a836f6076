"""The MOTS sequence index: every layout users have on disk resolves to the same sequences and labels."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from citytrack.data.formats import kitti_mots
from citytrack.data.formats.errors import FormatError
from citytrack.data.mots_sequences import find_mots_sequences

H, W = 24, 32


def _masks() -> dict[int, np.ndarray]:
    """Two frames: a pedestrian moving right and, in frame 1, a car."""
    out = {}
    for f in range(2):
        ids = np.zeros((H, W), np.uint16)
        ids[4:14, 2 + 3 * f : 8 + 3 * f] = 2001
        if f == 1:
            ids[16:22, 20:30] = 1003
        out[f] = ids
    return out


def _write_images(folder: Path, frames: list[int], suffix: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for f in frames:
        cv2.imwrite(str(folder / f"{f:06d}{suffix}"), np.full((H, W, 3), 40 * f, np.uint8))


def _records(base: int = 0) -> list[kitti_mots.MotsRecord]:
    return [r for f, ids in _masks().items() for r in kitti_mots.png_to_records(ids, f + base)]


def test_kitti_split_with_txt_and_with_pngs(tmp_path: Path) -> None:
    split = tmp_path / "training"
    _write_images(split / "image_02" / "0001", [0, 1], ".png")
    _write_images(split / "image_02" / "0000", [0, 1], ".png")
    kitti_mots.write_instances_txt(split / "instances_txt" / "0001.txt", _records())
    for f, ids in _masks().items():
        kitti_mots.write_instance_png(split / "instances" / "0000" / f"{f:06d}.png", ids)
    seqs = find_mots_sequences(split)
    assert [s.name for s in seqs] == ["0000", "0001"]
    for s in seqs:
        assert s.frames == [0, 1] and s.size == (H, W) and s.labelled
        np.testing.assert_array_equal(s.instance_map(1), _masks()[1])
        assert {r.obj_id for r in s.frame_records(1)} == {2001, 1003}
    # the dataset root finds its training split; names select; one sequence folder alone works too
    assert [s.name for s in find_mots_sequences(tmp_path)] == ["0000", "0001"]
    assert [s.name for s in find_mots_sequences(tmp_path, names=["0001"])] == ["0001"]
    (single,) = find_mots_sequences(split / "image_02" / "0001")
    assert single.name == "0001" and single.labels == split / "instances_txt" / "0001.txt"


def test_kitti_download_layout_keeps_labels_beside_training(tmp_path: Path) -> None:
    _write_images(tmp_path / "training" / "image_02" / "0002", [0, 1], ".png")
    kitti_mots.write_instances_txt(tmp_path / "instances_txt" / "0002.txt", _records())
    (seq,) = find_mots_sequences(tmp_path, split="training")
    assert seq.labels == tmp_path / "instances_txt" / "0002.txt"
    assert len(seq.records) == 2


def test_mots20_layout_one_based(tmp_path: Path) -> None:
    seq_dir = tmp_path / "MOTS20-09"
    _write_images(seq_dir / "img1", [1, 2], ".jpg")
    (seq_dir / "gt").mkdir()
    kitti_mots.write_instances_txt(seq_dir / "gt" / "gt.txt", _records(base=1))
    for root in (tmp_path, seq_dir):
        (seq,) = find_mots_sequences(root)
        assert seq.name == "MOTS20-09" and seq.frames == [1, 2]
        np.testing.assert_array_equal(seq.instance_map(0), _masks()[0])


def test_unlabelled_sequence_and_errors(tmp_path: Path) -> None:
    _write_images(tmp_path / "image_02" / "0005", [0], ".png")
    (seq,) = find_mots_sequences(tmp_path)
    assert not seq.labelled
    with pytest.raises(FileNotFoundError, match="no ground truth"):
        seq.records
    with pytest.raises(FileNotFoundError, match=r"\['0009'\]"):
        find_mots_sequences(tmp_path, names=["0009"])
    with pytest.raises(FileNotFoundError, match="no MOTS sequences under"):
        find_mots_sequences(tmp_path / "image_02" / "0005" / "..")  # image_02 itself holds no layout
    (tmp_path / "image_02" / "0005" / "frame_a.png").write_bytes(b"")
    with pytest.raises(FormatError, match="frame_a.png"):
        find_mots_sequences(tmp_path)
    (tmp_path / "image_02" / "0005" / "frame_a.png").unlink()
    (tmp_path / "image_02" / "0005" / "000001.png").write_bytes(b"not a png")
    (seq,) = find_mots_sequences(tmp_path)
    with pytest.raises(FormatError, match="000001.png.*cannot read image"):
        seq.image(1)
    (tmp_path / "image_02" / "0005" / "000001.png").unlink()
    cv2.imwrite(str(tmp_path / "image_02" / "0005" / "000002.png"), np.zeros((H, W, 3), np.uint8))
    with pytest.raises(FormatError, match="000000.png is followed by 000002.png"):
        find_mots_sequences(tmp_path)
