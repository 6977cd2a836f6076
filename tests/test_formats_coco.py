"""COCO detection json: write, load with pycocotools, convert back, evaluate."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools.cocoeval import COCOeval

from citytrack.data.formats.coco import (
    CocoImage,
    build_coco_dataset,
    coco_to_frame_boxes,
    load_coco,
    write_coco,
    write_coco_results,
)
from citytrack.data.formats.errors import FormatError

IMAGES = [
    CocoImage(1, "000001.jpg", 64, 48),
    CocoImage(2, "000002.jpg", 64, 48),
    CocoImage(5, "000005.jpg", 64, 48),
]
BOXES = {
    1: (np.array([[1.0, 2.0, 10.0, 20.0], [30.5, 4.0, 8.0, 16.0]]), np.array([1, 2])),
    5: (np.array([[3.0, 3.0, 5.0, 5.0]]), np.array([1])),
}
CATEGORIES = {1: "person", 2: "car"}


def _write(tmp_path: Path) -> Path:
    path = tmp_path / "ann.json"
    write_coco(path, build_coco_dataset(IMAGES, BOXES, CATEGORIES))
    return path


def test_round_trip_through_pycocotools(tmp_path: Path) -> None:
    coco = load_coco(_write(tmp_path))
    assert sorted(coco.getImgIds()) == [1, 2, 5] and coco.loadCats(2)[0]["name"] == "car"
    ann = coco.loadAnns(coco.getAnnIds(imgIds=[1]))[1]
    assert ann["area"] == 8.0 * 16.0 and ann["iscrowd"] == 0 and ann["id"] == 2
    frames = coco_to_frame_boxes(coco)
    assert list(frames) == [1, 2, 5]
    for image_id, (boxes, labels) in BOXES.items():
        np.testing.assert_array_equal(frames[image_id][0], boxes)
        np.testing.assert_array_equal(frames[image_id][1], labels)
    assert frames[2][0].shape == (0, 4) and frames[2][1].shape == (0,)


def test_crowd_boxes_excluded_unless_asked(tmp_path: Path) -> None:
    data = build_coco_dataset(IMAGES, BOXES, CATEGORIES, iscrowd={1: np.array([0, 1])})
    write_coco(tmp_path / "a.json", data)
    coco = load_coco(tmp_path / "a.json")
    assert len(coco_to_frame_boxes(coco)[1][0]) == 1
    assert len(coco_to_frame_boxes(coco, include_crowd=True)[1][0]) == 2


def test_perfect_results_score_map_one(tmp_path: Path) -> None:
    coco = load_coco(_write(tmp_path))
    detections = {k: (b, np.full(len(b), 0.9), c) for k, (b, c) in BOXES.items()}
    write_coco_results(tmp_path / "res.json", detections)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(coco, coco.loadRes(str(tmp_path / "res.json")), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    assert evaluator.stats[1] == pytest.approx(1.0)  # AP@0.5


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d.pop("categories"), "categories"),
        (lambda d: d["annotations"][0].update(image_id=99), "unknown image"),
        (lambda d: d["annotations"][0].update(category_id=7), "unknown category"),
        (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), "bbox"),
        (lambda d: d["annotations"][0].update(bbox=[1, 2, -3, 4]), "bbox"),
        (lambda d: d["annotations"][1].update(id=1), "repeated"),
        (lambda d: d["images"].append({"id": 1}), "unique"),
        # fields that readers index without a default (KeyError downstream before)
        (lambda d: d["images"][0].pop("width"), "'width' must be a positive integer"),
        (lambda d: d["images"][0].update(height=0), "'height' must be a positive integer"),
        (lambda d: d["images"][0].update(height="160"), "'height' must be a positive integer"),
        (lambda d: d["images"][0].pop("file_name"), "file_name"),
        (lambda d: d["categories"][0].pop("name"), "'name'"),
        (lambda d: d["categories"].append("person"), "category #"),
        (lambda d: d["annotations"][0].pop("area"), "has no 'area'"),
        (lambda d: d["annotations"][0].update(area=-1.0), "area"),
    ],
)
def test_malformed_json(tmp_path: Path, mutate, reason: str) -> None:
    data = json.loads(_write(tmp_path).read_text())
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(FormatError, match=reason) as err:
        load_coco(path)
    assert str(path) in str(err.value)
    with pytest.raises(FormatError):
        write_coco(tmp_path / "never.json", data)
    assert not (tmp_path / "never.json").exists()


def test_invalid_json_names_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"images": [],\n "annotations": [,]}')
    with pytest.raises(FormatError) as err:
        load_coco(path)
    assert err.value.line == 2


def test_builder_rejects_inconsistent_input() -> None:
    with pytest.raises(ValueError, match="unknown image"):
        build_coco_dataset(IMAGES, {9: BOXES[1]}, CATEGORIES)
    with pytest.raises(ValueError, match="not a category"):
        build_coco_dataset(IMAGES, {1: (BOXES[1][0], np.array([1, 3]))}, CATEGORIES)
    with pytest.raises(ValueError, match="labels"):
        build_coco_dataset(IMAGES, {1: (BOXES[1][0], np.array([1]))}, CATEGORIES)


def test_integral_float_size_accepted(tmp_path: Path) -> None:
    data = json.loads(_write(tmp_path).read_text())
    data["images"][0].update(width=float(data["images"][0]["width"]))
    path = tmp_path / "float.json"
    path.write_text(json.dumps(data))
    assert len(load_coco(path).getImgIds()) == len(data["images"])


def test_binary_file_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "instances.json"
    path.write_bytes(b'{"images": []}\n\xff\xfe\x00binary')
    with pytest.raises(FormatError, match="not a UTF-8 text file") as err:
        load_coco(path)
    assert err.value.path == str(path) and err.value.line == 2
