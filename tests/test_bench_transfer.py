"""`python -m citytrack.bench transfer`: ground-truth rules, ignore regions, PETS scaling, the public-det
path on MOT17-02 against hand-computed mAPs, tracking plumbing, and (slow) the whole run on a few frames."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from citytrack.bench import transfer
from citytrack.data.formats.mot import read_mot
from citytrack.data.video import probe_video
from citytrack.eval.mot_metrics import box_iou

REPO_ROOT = Path(__file__).resolve().parents[1]
DETECTOR_CKPT = REPO_ROOT / "checkpoints" / "detector_synthetic_cpu.pt"
REID_CKPT = REPO_ROOT / "checkpoints" / "reid_synthetic_osnet.ckpt"


def _mot17_gt_table() -> np.ndarray:
    """frame, id, x, y, w, h, mark, class, visibility (MOT17 layout) for one frame."""
    return np.array([
        [1, 1, 0, 0, 10, 20, 1, 1, 1.0, -1],     # visible pedestrian: gt
        [1, 2, 50, 0, 10, 20, 1, 1, 0.2, -1],    # hardly visible pedestrian: ignore
        [1, 3, 100, 0, 10, 20, 0, 7, 1.0, -1],   # static person: ignore
        [1, 4, 150, 0, 10, 20, 0, 12, 1.0, -1],  # reflection: ignore
        [1, 5, 200, 0, 40, 20, 0, 3, 1.0, -1],   # car: neither
        [1, 6, 300, 0, 10, 20, 0, 1, 1.0, -1],   # unmarked pedestrian: ignore
    ], dtype=np.float64)  # fmt: skip


def test_split_ground_truth_follows_mot17_and_mot15_rules() -> None:
    gt, ignore = transfer.split_ground_truth(_mot17_gt_table(), min_visibility=0.5)
    assert gt[1][:, 0].tolist() == [0]
    assert sorted(ignore[1][:, 0].tolist()) == [50, 100, 150, 300]  # the car is in neither
    gt, _ = transfer.split_ground_truth(_mot17_gt_table(), min_visibility=0.1)
    assert sorted(gt[1][:, 0].tolist()) == [0, 50]
    mot15 = np.array([[3, 1, 100, 40, 10, 20, 1, -4.1, -7.3, 0], [3, 2, 160, 40, 10, 20, 0, 3.7, -8.1, 0]])
    gt, ignore = transfer.split_ground_truth(mot15, scale=0.5)  # no class columns: the zero mark decides
    assert gt[3].tolist() == [[50, 20, 5, 10]] and ignore[3].tolist() == [[80, 20, 5, 10]]


def test_ignore_regions_suppress_false_positives_by_intersection_over_detection() -> None:
    gt = {1: np.array([[0.0, 0, 10, 20]])}
    ignore = {1: np.array([[100.0, 0, 40, 80]])}
    # a confident detection of the real person, and a more confident one on the visible half of the ignored one
    dets = {1: np.array([[0.0, 0, 10, 20, 0.8], [100.0, 0, 40, 40, 0.9]])}
    assert transfer.evaluate(dets, [1], gt, ignore)["mAP50"] == pytest.approx(1.0)
    # without the ignore region the first-ranked detection is a FP: precision 1/2 at full recall
    assert transfer.evaluate(dets, [1], gt)["mAP50"] == pytest.approx(0.5)
    # the detection covers the region's top half: IoU 0.5 but IoA 1.0, ignored up to IoU .95 too
    assert transfer.evaluate(dets, [1], gt, ignore)["mAP"] == pytest.approx(1.0)
    far = {1: np.array([[0.0, 0, 10, 20, 0.8], [300.0, 0, 40, 40, 0.9]])}  # nowhere near the region: still a FP
    assert transfer.evaluate(far, [1], gt, ignore)["mAP50"] == pytest.approx(0.5)


def _mot17_data_with_det(tmp_path: Path, shared_data: Path, det_rows: np.ndarray) -> Path:
    """A --data tree whose MOT17-02 links to the real images, gt and seqinfo but has `det_rows` as det.txt."""
    real = shared_data / transfer.MOT17_SEQ
    seq = tmp_path / "data" / transfer.MOT17_SEQ
    (seq / "det").mkdir(parents=True)
    for name in ("img1", "gt", "seqinfo.ini"):
        (seq / name).symlink_to(real / name)
    lines = [f"{int(r[0])},-1,{r[2]:.2f},{r[3]:.2f},{r[4]:.2f},{r[5]:.2f},1" for r in det_rows]
    (seq / "det" / "det.txt").write_text("\n".join(lines) + "\n")
    return tmp_path / "data"


def _public_map(tmp_path: Path, data: Path) -> dict[str, float]:
    out = tmp_path / "r.json"
    argv = ["--data", str(data), "--parts", "detection", "--datasets", "mot17", "--detectors", "frcnn",
            "--json", str(out)]
    assert transfer.main(argv) == 0
    row = json.loads(out.read_text())["detection"]["MOT17-02"]
    assert row["frames"] == 4  # the frames in img1/
    return row["frcnn"]


def test_public_path_on_mot17_scores_ground_truth_and_shifted_ground_truth(tmp_path: Path, shared_data: Path) -> None:
    gt = read_mot(shared_data / transfer.MOT17_SEQ / "gt" / "gt.txt", kind="gt")
    people = gt[(gt[:, 0] <= 4) & np.isin(gt[:, 7], [1, 2, 7, 8, 12])]
    # every pedestrian and distractor as a detection: the less visible ones land on ignore regions
    exact = _public_map(tmp_path / "a", _mot17_data_with_det(tmp_path / "a", shared_data, people))
    assert exact["mAP50"] == pytest.approx(1.0) and exact["mAP"] == pytest.approx(1.0)
    # shifted right by 10 % of the width: IoU 0.9 / 1.1 = 0.82 with its own box, so AP 1 at the seven
    # thresholds .5 ... .8 and 0 at .85, .9, .95: mAP@[.5:.95] = 0.7
    shifted = people.copy()
    shifted[:, 2] += 0.1 * shifted[:, 4]
    moved = _public_map(tmp_path / "b", _mot17_data_with_det(tmp_path / "b", shared_data, shifted))
    assert moved["mAP50"] == pytest.approx(1.0) and moved["mAP"] == pytest.approx(0.7)


def test_pets_scaling_lines_gt_and_public_detections_up_with_the_clip(shared_data: Path) -> None:
    seq = shared_data / transfer.PETS_SEQ
    gt, _ = transfer.split_ground_truth(read_mot(seq / "gt" / "gt.txt", kind="gt"), scale=transfer.PETS_SCALE)
    scaled = transfer.public_detections(seq / "det" / "det.txt", transfer.PETS_SCALE)
    raw = transfer.public_detections(seq / "det" / "det.txt")

    def mean_best_iou(dets: dict[int, np.ndarray]) -> float:
        return float(np.mean([box_iou(dets[f][:, :4], gt[f]).max(axis=1).mean() for f in range(1, 21)]))

    assert mean_best_iou(scaled) > 0.5 and mean_best_iou(raw) < 0.1  # 0.63 and 0.01
    width, height = probe_video(shared_data / transfer.PETS_VIDEO).size
    boxes = np.concatenate(list(gt.values()))
    assert (boxes[:, 0] + boxes[:, 2]).max() <= width + 1 and (boxes[:, 1] + boxes[:, 3]).max() <= height + 1
    assert (boxes[:, 0] + boxes[:, 2]).max() > 0.9 * width  # people walk to the right edge of the clip


def test_score_tracking_truncates_the_ground_truth_to_the_frames_tracked(shared_data: Path) -> None:
    gt = read_mot(shared_data / transfer.PETS_SEQ / "gt" / "gt.txt", kind="gt")
    perfect = gt[(gt[:, 0] <= 30) & (gt[:, 6] != 0)]
    m = transfer.score_tracking(gt, {"oracle": perfect}, frames=30)["oracle"]
    assert m["MOTA"] == pytest.approx(100.0) and m["IDF1"] == pytest.approx(100.0) and m["HOTA"] > 99


class SameEmbedding:
    """Test double: every crop looks alike, so appearance never vetoes a motion match (nor tells people apart)."""

    def embed(self, image: np.ndarray, boxes_xywh: np.ndarray) -> np.ndarray:
        return np.full((len(boxes_xywh), 4), 0.5, dtype=np.float32)


def test_track_video_tracks_ground_truth_boxes_in_every_mode(shared_data: Path) -> None:
    gt_table = read_mot(shared_data / transfer.PETS_SEQ / "gt" / "gt.txt", kind="gt")
    gt, _ = transfer.split_ground_truth(gt_table, scale=transfer.PETS_SCALE)
    dets = {f: np.c_[b, np.ones(len(b))] for f, b in gt.items()}
    tables = transfer.track_video(shared_data / transfer.PETS_VIDEO, dets, SameEmbedding(), ["deepsort", "botsort"], 30)
    assert set(tables) == {"deepsort motion only", "deepsort with ReID", "botsort motion only", "botsort with ReID"}
    assert all(t[:, 0].max() <= 30 for t in tables.values())
    gt_table[:, 2:6] *= transfer.PETS_SCALE
    scores = transfer.score_tracking(gt_table, tables, frames=30)
    for label, m in scores.items():  # boxes from the wrong frame or scale would not reach this
        assert m["MOTA"] > 80, (label, m)
    assert scores["deepsort motion only"]["IDs"] == scores["botsort motion only"]["IDs"] == 0


def test_tracker_overrides_go_to_one_tracker_or_all_and_reach_the_tracker() -> None:
    out = transfer.tracker_overrides(["tracker.appearance_max_cover=0.5", "botsort:tracker.appearance_fusion=gate"],
                                     ["deepsort", "botsort"])
    assert out == {"deepsort": ["tracker.appearance_max_cover=0.5"],
                   "botsort": ["tracker.appearance_max_cover=0.5", "tracker.appearance_fusion=gate"]}
    for bad in ("novalue", "sort:tracker.x=1"):
        with pytest.raises(SystemExit, match="tracker-override"):
            transfer.tracker_overrides([bad], ["deepsort", "botsort"])
    tracker = transfer.build_tracker("botsort", out["botsort"])
    assert tracker.appearance_max_cover == 0.5 and tracker.appearance_fusion == "gate"


@pytest.mark.skipif(not (DETECTOR_CKPT.is_file() and REID_CKPT.is_file()), reason="checkpoints/ lacks the detector or ReID checkpoint")
def test_img_size_argument_reads_native_checkpoint_one_or_several_sizes() -> None:
    assert transfer.img_size_arg("native") == "native"
    assert transfer.img_size_arg("checkpoint") is None
    assert transfer.img_size_arg("640") == 640
    assert transfer.img_size_arg("416,832") == [416, 832]
    for bad in ("big", "416,", "16"):
        with pytest.raises(argparse.ArgumentTypeError):
            transfer.img_size_arg(bad)


def test_score_sizes_scores_each_test_size_on_synthetic_street_frames(tmp_path: Path) -> None:
    out = transfer.score_sizes(DETECTOR_CKPT, [None, 416, [320, 416], "native"], frame_stride=2,
                               resolution=(320, 180), data_dir=tmp_path, scenes=1, cameras=1, frames=4)
    assert list(out) == ["checkpoint", "416", "320+416", "native"]
    assert out["checkpoint"] == out["416"]  # the checkpoint was trained at 416
    assert all(0.0 <= m["mAP"] <= m["mAP50"] <= 1.0 for m in out.values())
    assert out["native"] != out["416"]  # native runs these 320 px frames at 320


def test_transfer_end_to_end_on_a_few_frames(tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture) -> None:
    out, picture = tmp_path / "t.json", tmp_path / "t.png"
    argv = ["--data", str(shared_data), "--max-frames", "3", "--hog-upscale", "1.0", "--threads", "1",
            "--ckpt", str(DETECTOR_CKPT), "--reid-ckpt", str(REID_CKPT), "--device", "cpu",
            "--json", str(out), "--picture", str(picture)]
    assert transfer.main(argv) == 0
    res = json.loads(out.read_text())
    assert set(res["detection"]) == {"PETS09-S2L1", "MOT17-02"}
    assert res["detector_img_size"] == 416  # the checkpoint's own input size by default
    for row in res["detection"].values():
        assert row["frames"] == 3
        assert {"ours", "hog", "frcnn"} <= set(row)
        assert all(0.0 <= row[d][k] <= 1.0 for d in ("ours", "hog", "frcnn") for k in ("mAP50", "mAP"))
        assert row["ours"]["mAP"] <= row["ours"]["mAP50"]
    assert res["detection"]["PETS09-S2L1"]["frcnn"]["mAP50"] > 0.7  # the scaled public dets fit the scaled gt
    assert set(res["tracking"]) == {"deepsort motion only", "deepsort with ReID", "botsort motion only", "botsort with ReID"}
    assert res["tracking_frames"] == 3 and all({"IDF1", "MOTA", "HOTA"} <= set(m) for m in res["tracking"].values())
    table = capsys.readouterr().out
    assert "| MOT17-02 | 3 | public Faster R-CNN |" in table and "| botsort with ReID |" in table
    image = cv2.imread(str(picture))
    assert image.shape[1] == 3 * transfer.PICTURE_TILE_WIDTH  # one column per detector
    assert image.shape[0] == 3 * 360 + 270  # three PETS frames and one MOT17 frame at 480 px wide
