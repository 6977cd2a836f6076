"""KITTI MOTS / MOTS20 masks and KITTI tracking labels on the real shared files."""

from __future__ import annotations

import dataclasses
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from citytrack.data.formats.errors import FormatError
from citytrack.data.formats.kitti_mots import (
    IGNORE_ID,
    MotsRecord,
    check_frame,
    decode_masks,
    encode_mask,
    find_overlap,
    group_by_frame,
    mask_areas,
    mask_boxes,
    mask_record,
    png_to_records,
    read_instance_png,
    read_instances_txt,
    read_instances_zip,
    read_kitti_tracking_labels,
    records_to_png,
    rle_run_lengths,
    write_instance_png,
    write_instances_txt,
    write_kitti_tracking_labels,
)

MOTS20_GT = "mots20/MOTS20-05/gt/gt.txt"


def _tight_box(mask: np.ndarray) -> list[float]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return [cols[0], rows[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1]


def _check_masks(records: list[MotsRecord]) -> None:
    masks = decode_masks(records)
    assert masks.dtype == bool and masks.shape == (len(records), records[0].height, records[0].width)
    np.testing.assert_array_equal(masks.sum(axis=(1, 2)), mask_areas(records))
    boxes = mask_boxes(records)
    for record, mask, box in zip(records, masks, boxes, strict=True):
        np.testing.assert_array_equal(box, _tight_box(mask))
        assert encode_mask(mask) == record.rle
    # MOTS masks never overlap within a frame
    assert masks.sum(axis=0).max() <= 1


def test_mots20_gt_parses_with_independent_counts(shared_data: Path) -> None:
    path = shared_data / MOTS20_GT
    lines = [line.split(" ") for line in path.read_text().splitlines() if line]
    records = read_instances_txt(path)
    assert len(records) == len(lines) == 7372
    assert len({r.frame for r in records}) == len({line[0] for line in lines})
    assert {(r.height, r.width) for r in records} == {(480, 640)}
    assert all(r.obj_id // 1000 == r.class_id for r in records)
    assert sum(r.obj_id == IGNORE_ID for r in records) == sum(line[1] == "10000" for line in lines)
    # every RLE covers the whole image and its odd runs are the foreground pycocotools counts
    areas = mask_areas(records)
    for record, area in zip(records, areas, strict=True):
        runs = rle_run_lengths(record.rle)
        assert runs.sum() == 480 * 640 and runs[1::2].sum() == area


def test_mots20_masks_of_some_frames(shared_data: Path) -> None:
    groups = group_by_frame(read_instances_txt(shared_data / MOTS20_GT))
    for frame in list(groups)[::80]:
        _check_masks(groups[frame])


@pytest.mark.slow
def test_mots20_every_mask_decodes_consistently(shared_data: Path) -> None:
    for records in group_by_frame(read_instances_txt(shared_data / MOTS20_GT)).values():
        _check_masks(records)


@pytest.mark.parametrize(("archive", "class_id"), [("car_testset.zip", 1), ("person_testset.zip", 2)])
def test_pointtrack_prediction_zips(shared_data: Path, archive: str, class_id: int) -> None:
    zip_path = shared_data / "mots_predictions" / archive
    sequences = read_instances_zip(zip_path)
    assert sorted(sequences) == [f"{i:04d}" for i in range(29)]
    with zipfile.ZipFile(zip_path) as handle:
        for name, records in sequences.items():
            text = handle.read(f"{name}.txt").decode()
            assert len(records) == sum(1 for line in text.splitlines() if line.strip())
            # PointTrack writes plain track numbers as obj_id (not class*1000+instance, as
            # the ground truth does); the class column alone names the class
            assert all(r.class_id == class_id and 0 < r.obj_id < 1000 for r in records)
        # a member read straight from the zip as a file object, text or binary
        with handle.open("0001.txt") as member:
            direct = read_instances_txt(member)
        assert direct == sequences["0001"]
        assert read_instances_txt(io.StringIO(handle.read("0001.txt").decode())) == direct
    first = next(records for records in sequences.values() if records)
    _check_masks([r for r in first if r.frame == first[0].frame])


def test_instances_txt_round_trip(tmp_path: Path) -> None:
    ids = np.zeros((12, 20), dtype=np.uint16)
    ids[2:5, 3:9] = 1001
    ids[6:11, 10:18] = 2003
    ids[0, :] = IGNORE_ID
    records = png_to_records(ids, frame=4)
    assert [(r.obj_id, r.class_id) for r in records] == [(1001, 1), (2003, 2), (IGNORE_ID, 10)]
    write_instances_txt(tmp_path / "0000.txt", records)
    back = read_instances_txt(tmp_path / "0000.txt")
    assert back == records
    np.testing.assert_array_equal(records_to_png(back), ids)
    np.testing.assert_array_equal(mask_boxes(back)[1], [10, 6, 8, 5])


def test_instance_png_round_trip(tmp_path: Path) -> None:
    ids = np.zeros((7, 9), dtype=np.uint16)
    ids[1:3, 1:4] = 2001
    ids[4:6, 5:8] = IGNORE_ID
    path = tmp_path / "instances" / "000000.png"
    write_instance_png(path, ids)
    back = read_instance_png(path)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, ids)
    cv2_8bit = tmp_path / "eight.png"
    import cv2

    cv2.imwrite(str(cv2_8bit), ids.astype(np.uint8))
    with pytest.raises(FormatError, match="16-bit"):
        read_instance_png(cv2_8bit)
    with pytest.raises(FormatError, match="cannot read"):
        read_instance_png(tmp_path / "missing.png")


def test_overlapping_masks_rejected() -> None:
    a = np.zeros((4, 4), bool)
    a[:2] = True
    b = np.zeros((4, 4), bool)
    b[1:3] = True
    with pytest.raises(FormatError, match="overlap"):
        records_to_png([mask_record(0, 1001, a), mask_record(0, 1002, b)])


def test_short_rle_rejected_before_decoding() -> None:
    small = mask_utils.encode(np.asfortranarray(np.ones((2, 2), np.uint8)))["counts"].decode()
    record = MotsRecord(0, 1001, 1, 40, 50, small)
    with pytest.raises(FormatError, match="covers 4 pixels"):
        decode_masks([record])


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        ("0 1001 1 10 10 T3\n0 1002 1 10 10\n", 2, "expected 6 fields"),
        # run lengths must sum to height*width: named at read time, with the line
        (
            "0 1001 1 10 10 T3\n0 1002 1 10 10 P128000V1\n1 1001 1 10 10 4\n",
            3,
            "covers 4 pixels, image has 100",
        ),
        ("0 1001 1 10 10 T3\n0 1002 1 10 10 P128000V2\n", 2, "covers 132 pixels, image has 100"),
        ("0 1001 1 10 10 P\n", 1, "ends inside a number"),
        ("x 1001 1 10 10 4\n", 1, "frame"),
        ("0 1001 1 0 10 4\n", 1, "positive"),
        ("0 1001 1 10 10 a~b\n", 1, "alphabet"),
    ],
)
def test_malformed_instances_txt(tmp_path: Path, content: str, line: int, reason: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(FormatError) as err:
        read_instances_txt(path)
    assert err.value.line == line and reason in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize("seq", [f"{i:04d}" for i in range(10)])
def test_kitti_tracking_labels(shared_data: Path, seq: str, tmp_path: Path) -> None:
    path = shared_data / "kitti_tracking" / "label_02" / f"{seq}.txt"
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    labels = read_kitti_tracking_labels(path)
    assert len(labels) == len(lines)
    assert np.count_nonzero(labels["type"] == "DontCare") == sum(line[2] == "DontCare" for line in lines)
    assert np.all(labels["track_id"][labels["type"] == "DontCare"] == -1)
    assert len(np.unique(labels["track_id"])) == len({line[1] for line in lines})
    assert np.all(labels["x2"] >= labels["x1"]) and np.all(np.isnan(labels["score"]))
    np.testing.assert_allclose(labels["rotation_y"], [float(line[16]) for line in lines])
    write_kitti_tracking_labels(tmp_path / "out.txt", labels)
    assert (tmp_path / "out.txt").read_text() == path.read_text()


def test_kitti_tracking_results_with_score(tmp_path: Path) -> None:
    path = tmp_path / "0000.txt"
    path.write_text("3 7 Car 0 1 -1.5 10 20 30 40 1.5 1.6 3.9 1 2 10 0.1 0.875\n")
    labels = read_kitti_tracking_labels(path)
    assert labels["score"][0] == 0.875 and labels["track_id"][0] == 7 and labels["type"][0] == "Car"
    write_kitti_tracking_labels(tmp_path / "out.txt", labels)
    assert read_kitti_tracking_labels(tmp_path / "out.txt") == labels
    path.write_text("3 7 Car 0 1 -1.5 10 20 30 40\n")
    with pytest.raises(FormatError, match="17 or 18"):
        read_kitti_tracking_labels(path)
    path.write_text("3 7 Car 0 1 -1.5 10 twenty 30 40 1.5 1.6 3.9 1 2 10 0.1\n")
    with pytest.raises(FormatError, match="twenty"):
        read_kitti_tracking_labels(path)
    path.write_text("3 4 DontCare 0 1 -1.5 10 20 30 40 1.5 1.6 3.9 1 2 10 0.1\n")
    with pytest.raises(FormatError, match="DontCare"):
        read_kitti_tracking_labels(path)


def _line(frame: int, obj_id: int, mask: np.ndarray, class_id: int | None = None) -> str:
    r = mask_record(frame, obj_id, mask)
    return f"{frame} {obj_id} {r.class_id if class_id is None else class_id} {r.height} {r.width} {r.rle}\n"


def _mask(rows: slice, cols: slice, shape: tuple[int, int] = (6, 8)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[rows, cols] = True
    return mask


TOP, BOTTOM, MIDDLE = (
    _mask(slice(0, 2), slice(None)),
    _mask(slice(4, 6), slice(None)),
    _mask(slice(1, 3), slice(2, 4)),
)


@pytest.mark.parametrize(
    ("lines", "line", "reason"),
    [
        # overlapping masks of one frame: both lines named, the error at the second
        ([_line(0, 1001, TOP), _line(1, 1001, MIDDLE), _line(0, 2001, BOTTOM), _line(0, 2002, MIDDLE)], 4,
         "frame 0: masks overlap (line 1 obj_id 1001 and line 4 obj_id 2002)"),
        # an ignore region may not overlap an object either
        ([_line(3, 2001, MIDDLE), _line(3, IGNORE_ID, TOP)], 2, "masks overlap (line 1 obj_id 2001 and line 2"),
        ([_line(0, 1001, TOP), _line(0, 1002, _mask(slice(0, 1), slice(0, 1), (7, 8)))], 2,
         "frame 0: image size 7x8 disagrees with line 1 (6x8)"),
        ([_line(0, 1001, TOP), _line(0, 1001, BOTTOM)], 2, "frame 0: obj_id 1001 appears twice (line 1 and line 2)"),
        ([_line(0, 1001, TOP), _line(0, 3001, BOTTOM)], 2, "class_id 3 is not one of the known classes [1, 2, 10]"),
    ],
)  # fmt: skip
def test_inconsistent_frames_rejected(tmp_path: Path, lines: list[str], line: int, reason: str) -> None:
    path = tmp_path / "0000.txt"
    path.write_text("".join(lines))
    with pytest.raises(FormatError) as err:
        read_instances_txt(path)
    assert err.value.line == line and str(path) in str(err.value) and reason in str(err.value)


def test_known_image_size_and_classes_are_parameters(tmp_path: Path) -> None:
    path = tmp_path / "0000.txt"
    path.write_text(_line(0, 1001, TOP) + _line(0, 3001, BOTTOM) + _line(1, 3001, BOTTOM))
    records = read_instances_txt(path, image_size=(6, 8), classes={1, 3})
    assert [r.class_id for r in records] == [1, 3, 3]
    with pytest.raises(FormatError, match=r"0000.txt:1: RLE size 6x8 disagrees with the image size 8x6"):
        read_instances_txt(path, image_size=(8, 6), classes={1, 3})
    with pytest.raises(FormatError, match=r"0000.txt:1: class_id 1 is not one of the known classes \[3\]"):
        read_instances_txt(path, classes=[3])
    # several ignore regions in a frame are fine (evaluators merge them), disjoint as ever
    centre = _mask(slice(2, 4), slice(2, 4))  # touches neither TOP nor BOTTOM
    path.write_text(_line(0, IGNORE_ID, TOP) + _line(0, IGNORE_ID, BOTTOM) + _line(0, 2001, centre))
    assert [r.obj_id for r in read_instances_txt(path)] == [IGNORE_ID, IGNORE_ID, 2001]
    archive = tmp_path / "preds.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.write(path, "0000.txt")
        handle.writestr("0001.txt", _line(0, 1, TOP, class_id=1))
    assert set(read_instances_zip(archive, image_sizes={"0000": (6, 8)})) == {"0000", "0001"}
    with pytest.raises(FormatError, match=r"preds.zip:0001.txt:1: RLE size 6x8 disagrees"):
        read_instances_zip(archive, image_sizes={"0001": (375, 1242)})


def test_check_frame_and_find_overlap_in_memory() -> None:
    records = [mask_record(2, 2001, TOP), mask_record(2, 2002, BOTTOM), mask_record(2, 2003, MIDDLE)]
    assert find_overlap(records) == (0, 2)
    assert find_overlap(records[:2]) is None and find_overlap(records[:1]) is None
    with pytest.raises(FormatError) as err:
        check_frame(records, where="seq prediction")
    assert (
        str(err.value)
        == ("seq prediction: frame 2: masks overlap (record 0 obj_id 2001 and record 2 obj_id 2003)")
        and err.value.line is None
    )
    check_frame(records[:2])


def test_mots20_frames_have_no_overlap_by_the_fast_path(shared_data: Path) -> None:
    groups = group_by_frame(read_instances_txt(shared_data / MOTS20_GT, image_size=(480, 640)))
    frame = next(recs for recs in groups.values() if len(recs) > 5)
    assert find_overlap(frame) is None
    # the same masks, one moved onto another: found and named
    moved = dataclasses.replace(frame[1], rle=frame[0].rle, obj_id=2999)
    assert find_overlap([*frame, moved]) == (0, len(frame))
