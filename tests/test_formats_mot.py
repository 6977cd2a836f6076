"""MOTChallenge reader/writer on every real MOT15/MOT17 file and on malformed input."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from citytrack.data.formats.errors import FormatError
from citytrack.data.formats.mot import (
    MOT_COLUMNS,
    SeqInfo,
    frame_groups,
    has_class_info,
    list_sequences,
    load_sequence,
    read_mot,
    read_seqinfo,
    write_mot,
    write_seqinfo,
)

MOT15 = ["ADL-Rundle-8", "ETH-Pedcross2", "ETH-Sunnyday", "KITTI-17", "PETS09-S2L1", "TUD-Campus", "Venice-2"]
ALL_SEQS = [f"mot15/{s}" for s in MOT15] + ["mot17/MOT17-02-FRCNN"]


def _plain_count(path: Path) -> tuple[int, int, int, int]:
    """Rows, distinct frames, distinct ids, fields per row, counted without numpy."""
    rows = [line.split(",") for line in path.read_text().splitlines() if line.strip()]
    widths = {len(r) for r in rows}
    assert len(widths) == 1
    return len(rows), len({int(r[0]) for r in rows}), len({int(float(r[1])) for r in rows}), widths.pop()


def _ini_value(path: Path, key: str) -> str:
    for line in path.read_text().splitlines():
        if line.startswith(key + "="):
            return line.split("=", 1)[1]
    raise AssertionError(key)


@pytest.mark.parametrize("seq", ALL_SEQS)
def test_real_sequence_loads_with_independent_counts(shared_data: Path, seq: str, tmp_path: Path) -> None:
    seq_dir = shared_data / seq
    sequence = load_sequence(seq_dir)
    ini = seq_dir / "seqinfo.ini"
    assert sequence.info.name == _ini_value(ini, "name")
    assert sequence.info.seq_length == int(_ini_value(ini, "seqLength"))
    assert sequence.info.im_width == int(_ini_value(ini, "imWidth"))
    assert sequence.info.frame_rate == float(_ini_value(ini, "frameRate"))
    for table, kind in ((sequence.det, "det"), (sequence.gt, "gt")):
        assert table is not None and table.dtype == np.float64 and table.shape[1] == len(MOT_COLUMNS)
        rows, frames, ids, width = _plain_count(seq_dir / kind / f"{kind}.txt")
        assert table.shape[0] == rows
        assert len(np.unique(table[:, 0])) == frames
        assert len(np.unique(table[:, 1])) == ids
        assert table[:, 0].min() >= 1 and table[:, 0].max() <= sequence.info.seq_length
        if width == 7:  # MOT17 det: cls/vis/z filled
            assert np.all(table[:, 7] == -1) and np.all(table[:, 8] == 1) and np.all(table[:, 9] == -1)
        if width == 9:  # MOT17 gt: z filled
            assert np.all(table[:, 9] == -1)
        out = tmp_path / f"{kind}.txt"
        write_mot(out, table, kind=kind)
        back = read_mot(out, kind=kind)
        np.testing.assert_allclose(back[:, 2:6], table[:, 2:6], atol=0.005 + 1e-9)
        np.testing.assert_array_equal(back[:, :2], table[:, :2])
        np.testing.assert_allclose(back[:, 6:], table[:, 6:], rtol=1e-5, atol=1e-6)
    # SORT's MOT15 det files are frame-ordered; the official MOT17 det file is not
    # (frame 436 follows 517 on line 30), so trackers must group with frame_groups
    if seq.startswith("mot15"):
        read_mot(seq_dir / "det" / "det.txt", kind="det", check_sorted=True)
    else:
        with pytest.raises(FormatError, match="out of order"):
            read_mot(seq_dir / "det" / "det.txt", kind="det", check_sorted=True)


def test_mot17_gt_columns_and_class_info(shared_data: Path) -> None:
    gt = read_mot(shared_data / "mot17/MOT17-02-FRCNN/gt/gt.txt", kind="gt")
    first = [
        float(v)
        for v in (shared_data / "mot17/MOT17-02-FRCNN/gt/gt.txt").read_text().split("\n", 1)[0].split(",")
    ]
    np.testing.assert_array_equal(gt[0, :9], first)
    assert has_class_info(gt)
    assert set(np.unique(gt[:, 6])) <= {0.0, 1.0}
    # MOT15 ground truth carries world coordinates, not classes
    assert not has_class_info(read_mot(shared_data / "mot15/PETS09-S2L1/gt/gt.txt", kind="gt"))


def test_mot17_loads_fast(shared_data: Path) -> None:
    start = time.perf_counter()
    read_mot(shared_data / "mot17/MOT17-02-FRCNN/gt/gt.txt", kind="gt")
    read_mot(shared_data / "mot17/MOT17-02-FRCNN/det/det.txt", kind="det")
    assert time.perf_counter() - start < 1.0


def test_list_sequences(shared_data: Path) -> None:
    assert [p.name for p in list_sequences(shared_data / "mot15")] == sorted(MOT15)


def test_result_written_in_submission_layout(tmp_path: Path) -> None:
    table = np.array(
        [[1, 3, 10.123, 20.0, 5.5, 8.0, 0.9, 1, 0.7, 2.0], [2, 4, 1.0, 2.0, 3.0, 4.0, 1.0, 1, 1, -1]]
    )
    path = tmp_path / "res.txt"
    write_mot(path, table)
    assert path.read_text().splitlines() == [
        "1,3,10.12,20.00,5.50,8.00,0.9,-1,-1,-1",
        "2,4,1.00,2.00,3.00,4.00,1,-1,-1,-1",
    ]
    back = read_mot(path)
    np.testing.assert_allclose(back[:, :7], np.round(table[:, :7], 2))
    assert np.all(back[:, 7:] == -1)


def test_gt_round_trip_keeps_class_and_visibility(tmp_path: Path) -> None:
    table = np.array([[1, 1, 1.0, 2.0, 3.0, 4.0, 0, 7, 0.25, -1], [1, 2, 5.0, 6.0, 7.0, 8.0, 1, 1, 1.0, -1]])
    path = tmp_path / "gt.txt"
    write_mot(path, table, kind="gt")
    assert path.read_text().splitlines()[0] == "1,1,1.00,2.00,3.00,4.00,0,7,0.25"
    np.testing.assert_array_equal(read_mot(path, kind="gt"), table)


def test_whitespace_separated_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "det.txt"
    path.write_text("1 -1 10 20 30 40\n\n2\t-1\t1 2 3 4 0.5\n")
    table = read_mot(path, kind="det")
    np.testing.assert_array_equal(table[0], [1, -1, 10, 20, 30, 40, 1, -1, 1, -1])
    np.testing.assert_array_equal(table[1], [2, -1, 1, 2, 3, 4, 0.5, -1, 1, -1])
    assert read_mot(path, kind="gt")[0, 7] == 1  # class defaults to 1 outside det files


def test_empty_file_gives_zero_rows(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("")
    assert read_mot(path).shape == (0, 10)
    write_mot(tmp_path / "out.txt", np.zeros((0, 10)))
    assert read_mot(tmp_path / "out.txt").shape == (0, 10)
    assert frame_groups(np.zeros((0, 10))) == {}


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        ("1,1,1,2,3,4,1\n2,1,1,2,3\n", 2, "at least 6"),
        ("1,1,1,2,3,4\n2,1,a,2,3,4\n", 2, "non-numeric"),
        ("1,1,1,2,3,4\n2,1,,2,3,4\n", 2, "non-numeric"),
        ("1,1,1,2,3,4\n1,2,1,2,-3,4\n", 2, "width"),
        ("1,1,1,2,3,4\n1,2,1,2,3,0\n", 2, "height"),
        ("1.5,1,1,2,3,4\n", 1, "integer"),
        ("0,1,1,2,3,4\n", 1, ">= 1"),
        ("-2,1,1,2,3,4\n", 1, ">= 1"),
        ("1,1,1,2,3,4,1,1,1,1,1\n", 1, "at most 10"),
        ("1,1,1,2,nan,4\n", 1, "non-finite"),
    ],
)
def test_malformed_lines_are_named(tmp_path: Path, content: str, line: int, reason: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(FormatError) as err:
        read_mot(path)
    assert err.value.line == line and err.value.path == str(path)
    assert reason in str(err.value)


def test_check_sorted(tmp_path: Path) -> None:
    path = tmp_path / "det.txt"
    path.write_text("1,-1,1,2,3,4,1\n3,-1,1,2,3,4,1\n2,-1,1,2,3,4,1\n")
    assert read_mot(path, kind="det").shape == (3, 10)  # unsorted is fine by default
    with pytest.raises(FormatError, match="out of order") as err:
        read_mot(path, kind="det", check_sorted=True)
    assert err.value.line == 3


def test_frame_groups_split_by_frame() -> None:
    table = np.array(
        [[2, 1, 0, 0, 1, 1, 1, 1, 1, -1], [1, 5, 0, 0, 1, 1, 1, 1, 1, -1], [2, 7, 0, 0, 1, 1, 1, 1, 1, -1]],
        float,
    )
    groups = frame_groups(table)
    assert list(groups) == [1, 2]
    np.testing.assert_array_equal(groups[2][:, 1], [1, 7])
    np.testing.assert_array_equal(groups[1][:, 1], [5])


def test_seqinfo_round_trip_and_missing_key(tmp_path: Path) -> None:
    info = SeqInfo(name="S", frame_rate=12.5, seq_length=10, im_width=64, im_height=48, im_ext=".png")
    write_seqinfo(tmp_path / "seqinfo.ini", info)
    assert read_seqinfo(tmp_path / "seqinfo.ini") == info
    (tmp_path / "bad.ini").write_text("[Sequence]\nname=S\nframeRate=10\nseqLength=4\nimWidth=3\n")
    with pytest.raises(FormatError, match="imHeight"):
        read_seqinfo(tmp_path / "bad.ini")
    (tmp_path / "nosec.ini").write_text("[Other]\nname=S\n")
    with pytest.raises(FormatError, match="Sequence"):
        read_seqinfo(tmp_path / "nosec.ini")


def test_sequence_without_seqinfo_is_derived(tmp_path: Path) -> None:
    seq = tmp_path / "SEQ-01"
    write_mot(
        seq / "det" / "det.txt",
        np.array([[1, -1, 1, 2, 3, 4, 0.9, -1, -1, -1], [7, -1, 1, 2, 3, 4, 0.8, -1, -1, -1]]),
        "det",
    )
    sequence = load_sequence(seq)
    assert sequence.info.name == "SEQ-01" and sequence.info.seq_length == 7 and sequence.gt is None
    assert list_sequences(tmp_path) == [seq]
    assert sequence.image_path(3) == seq / "img1" / "000003.jpg"


def test_binary_files_are_format_errors(tmp_path: Path) -> None:
    path = tmp_path / "seqinfo.ini"
    path.write_bytes(b"[Sequence]\nname=\xff\xfe\n")
    with pytest.raises(FormatError, match="not a UTF-8 text file") as err:
        read_seqinfo(path)
    assert err.value.path == str(path) and err.value.line == 2
    det = tmp_path / "det.txt"
    det.write_bytes(b"1,-1,1,2,3,4,0.9\n\x89PNG\x00\xff")
    with pytest.raises(FormatError, match="not a UTF-8 text file") as err:
        read_mot(det, kind="det")
    assert err.value.path == str(det)
