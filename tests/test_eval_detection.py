"""COCO mAP inputs from MOT-style per-frame tables."""

from __future__ import annotations

import numpy as np
import pytest

from citytrack.eval.detection import mot_frames_to_coco


def test_extra_detection_columns_do_not_scramble_scores() -> None:
    dets = {1: np.array([[10, 20, 30, 40, 0.9, 7.0], [50, 60, 10, 20, 0.4, 7.0]])}  # a 6th column (e.g. class)
    gts = {1: np.array([[10, 20, 30, 40]])}
    preds, targets = mot_frames_to_coco(dets, gts, [1])
    assert preds[0]["scores"].tolist() == pytest.approx([0.9, 0.4])
    assert preds[0]["boxes"][0].tolist() == pytest.approx([10, 20, 40, 60])  # xywh -> xyxy
    assert targets[0]["boxes"].shape == (1, 4)


def test_frames_without_detections_and_bad_shapes() -> None:
    preds, _ = mot_frames_to_coco({}, {2: np.array([[0, 0, 5, 5]])}, [2])
    assert preds[0]["boxes"].shape == (0, 4)
    with pytest.raises(ValueError, match="frame 3"):
        mot_frames_to_coco({3: np.array([[1.0, 2.0, 3.0, 4.0]])}, {}, [3])
