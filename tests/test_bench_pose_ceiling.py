"""`bench pose_ceiling`: AP of the true joints under source-pixel noise, on a tiny crops dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from citytrack.bench.pose_ceiling import main, noisy_truth_ap
from citytrack.data.formats.coco import (
    build_coco_keypoints_dataset,
    keypoint_annotation,
    write_coco_keypoints,
)
from citytrack.data.formats.errors import FormatError


def _crops(path: Path, crop_boxes: list[list[int] | None]) -> Path:
    kp = np.zeros((17, 3))
    kp[:, 0], kp[:, 1], kp[:, 2] = np.linspace(20, 100, 17), np.linspace(20, 230, 17), 2
    images, anns = [], []
    for i, box in enumerate(crop_boxes, start=1):
        img = {"id": i, "file_name": f"{i}.jpg", "width": 128, "height": 256}
        if box is not None:
            img["crop_box"] = box
        images.append(img)
        anns.append(keypoint_annotation(i, [10, 10, 100, 230], kp, 12000.0))
    write_coco_keypoints(path, build_coco_keypoints_dataset(images, anns))
    return path


def test_noise_in_source_pixels_costs_small_people_more(tmp_path: Path) -> None:
    """The same crops cut from a 4x smaller frame region (people 4x smaller in the source) lose more
    AP to the same source-pixel noise; no noise is AP 1; heights are read back in source pixels."""
    many = 40
    small = noisy_truth_ap(_crops(tmp_path / "s.json", [[0, 0, 32, 64]] * many), [0.0, 1.0], seed=1)
    large = noisy_truth_ap(_crops(tmp_path / "l.json", [[0, 0, 128, 256]] * many), [0.0, 1.0], seed=1)
    assert small["ap"][0.0]["AP"] == pytest.approx(1.0) and large["ap"][0.0]["AP"] == pytest.approx(1.0)
    assert small["ap"][1.0]["AP"] < large["ap"][1.0]["AP"] - 0.2
    assert small["height_px"]["median"] == pytest.approx(230 / 4) and large["height_px"]["median"] == pytest.approx(230)
    # 12000 crop px^2 is 750 source px^2 for the small crops (COCO small), 12000 for the large (medium)
    assert small["ap"][1.0]["AP_M"] == -1 and large["ap"][1.0]["AP_S"] == -1


def test_needs_crops_with_their_source_region(tmp_path: Path) -> None:
    path = _crops(tmp_path / "frames.json", [None])
    with pytest.raises(FormatError, match="frames.json.*crop_box"):
        noisy_truth_ap(path, [1.0])


def test_cli_writes_the_result(tmp_path: Path) -> None:
    (tmp_path / "d" / "pose").mkdir(parents=True)
    _crops(tmp_path / "d" / "pose" / "person_keypoints_train.json", [[0, 0, 64, 128]] * 3)
    assert main(["--data", str(tmp_path / "d"), "--noise", "0,2", "--json", str(tmp_path / "out.json")]) == 0
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["people"] == 3 and set(out["ap"]) == {"0.0", "2.0"} and out["ap"]["0.0"]["AP"] == pytest.approx(1.0)
