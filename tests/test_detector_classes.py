"""Multi-class detector: city records, person -> 4-class warm start, class-aware NMS and AP, det.txt class column."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from citytrack.data.detection_datamodule import _records_from_source
from citytrack.data.detection_datasets import IGNORE, VEHICLE_CLASSES, aic19_scene_records, read_gt_world
from citytrack.data.formats.errors import FormatError
from citytrack.data.formats.mot import read_mot
from citytrack.data.video import AtomicVideoWriter
from citytrack.inference.detect import class_indices, detect_to_file, find_inputs, run
from citytrack.models.detector.module import (
    DetectorModule,
    class_ap50,
    eval_targets,
    load_detector,
    per_class_ap50,
    save_inference_checkpoint,
)
from citytrack.models.detector.net import PRIOR_PROB, YoloxNet
from citytrack.models.detector.postprocess import postprocess

CLASSES = ["person", "car", "bus", "truck"]


# ----------------------------------------------------------------------------- city records
@pytest.fixture(scope="module")
def tiny_city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from citytrack.data.synth import generate

    out = tmp_path_factory.mktemp("city")
    generate(None, out=out, layout="aic19", cameras=2, frames=10, scenes=1, seed=5, split="train", progress=False,
             workers=1, **{"layout.city.vehicles": 30})
    return out / "train" / "S01"


def test_city_records_carry_classes_from_vehicles_json_and_ignore_hidden_vehicles(tiny_city: Path) -> None:
    cols = read_gt_world(tiny_city / "gt_world.txt")
    assert len(cols["id"]) > 0, "the tiny city must show some vehicle"
    # force every type so the mapping is tested: suv and van are cars
    types = json.loads((tiny_city / "vehicles.json").read_text())
    kinds = ["car", "suv", "van", "bus", "truck"]
    for i, vid in enumerate(sorted(types, key=int)):
        types[vid]["type"] = kinds[i % len(kinds)]
    (tiny_city / "vehicles.json").write_text(json.dumps(types))
    records = aic19_scene_records(tiny_city, CLASSES, stride=1, min_visibility=0.25, min_inside=0.0)
    assert len(records) == 2 * 10 and {r.name.split("/")[1] for r in records} == {"c001", "c002"}
    by_name = {r.name: r for r in records}
    expected_seen = set()
    for cam, vid, frame, vis, x, y in zip(cols["camera"].astype(int), cols["id"].astype(int), cols["frame"].astype(int),
                                          cols["visibility"], cols["x"], cols["y"], strict=True):
        rec = by_name[f"S01/c{cam:03d}/{frame - 1}"]  # gt_world frames are 1-based, records hold the video index
        want = CLASSES.index(VEHICLE_CLASSES[types[str(vid)]["type"]]) if vis >= 0.25 else IGNORE
        expected_seen.add(want)
        assert want in rec.labels.tolist()
    labels = np.concatenate([r.labels for r in records])
    assert 0 not in labels.tolist()  # no person in the city
    assert np.sum(labels >= 0) == np.sum(cols["visibility"] >= 0.25)
    assert {1} <= set(labels.tolist()) <= {1, 2, 3, IGNORE}

    # columns are read by name: an extra column and another order give the same records
    text = (tiny_city / "gt_world.txt").read_text().splitlines()
    names = [n.strip() for n in text[0].lstrip("#").split(",")]
    table = np.loadtxt(tiny_city / "gt_world.txt", delimiter=",", comments="#", ndmin=2)
    order = list(range(len(names)))[::-1]
    moved = tiny_city.parent / "S02"
    moved.mkdir()
    for cam in ("c001", "c002"):
        (moved / cam).mkdir()
        (moved / cam / "vdo.avi").symlink_to(tiny_city / cam / "vdo.avi")
    (moved / "vehicles.json").write_text(json.dumps(types))
    with (moved / "gt_world.txt").open("w") as fh:
        fh.write("# " + ",".join([names[i] for i in order] + ["orientation"]) + "\n")
        np.savetxt(fh, np.column_stack([table[:, order], np.zeros(len(table))]), fmt="%.6g", delimiter=",")
    again = aic19_scene_records(moved, CLASSES, stride=1, min_visibility=0.25, min_inside=0.0)
    for a, b in zip(records, again, strict=True):
        assert np.array_equal(a.labels, b.labels) and np.allclose(a.boxes, b.boxes)
    # the datamodule source gives the same records (split folder -> both scenarios)
    src = _records_from_source({"kind": "aic19", "root": tiny_city.parent.parent, "split": "train", "stride": 5},
                               CLASSES)
    assert len(src) == 2 * 2 * 2


def test_city_records_errors_name_the_file(tiny_city: Path, tmp_path: Path) -> None:
    bad = tmp_path / "S09"
    (bad / "c001").mkdir(parents=True)
    (bad / "c001" / "vdo.avi").symlink_to(tiny_city / "c001" / "vdo.avi")
    (bad / "gt_world.txt").write_text("1,2,3\n")
    (bad / "vehicles.json").write_text("{}")
    with pytest.raises(FormatError, match="gt_world.txt"):
        aic19_scene_records(bad, CLASSES)
    (bad / "gt_world.txt").write_text((tiny_city / "gt_world.txt").read_text())
    with pytest.raises(FormatError, match="vehicles.json"):  # ids without a type
        aic19_scene_records(bad, CLASSES)


def test_person_sources_take_the_index_of_person() -> None:
    with pytest.raises(ValueError, match="no 'person'"):
        _records_from_source({"kind": "mot", "root": "unused"}, ["car", "bus"])


# ----------------------------------------------------------------------------- warm start
def _tiny_net(num_classes: int) -> YoloxNet:
    return YoloxNet("resnet10t", num_classes=num_classes, neck_channels=16, head_depth=1)


def _person_checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    module = DetectorModule(_tiny_net(1), img_size=64)
    with torch.no_grad():  # a trained-looking person row, far from the prior
        for head in module.net.heads:
            head.cls_pred.bias.fill_(1.5)
    return save_inference_checkpoint(module, tmp_path / "person.pt")


def test_head_expansion_keeps_person_outputs_identical(tmp_path: Path) -> None:
    src_path = _person_checkpoint(tmp_path)
    person = load_detector(src_path).eval()
    torch.manual_seed(1)
    names = ["car", "person", "bus", "truck"]  # person not first: rows are matched by name
    module = DetectorModule(_tiny_net(4), num_classes=4, class_names=names, img_size=64, init_from=str(src_path)).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        ref, out = person(x), module(x)
    assert out.shape[-1] == 5 + 4
    assert torch.equal(out[..., :5], ref[..., :5])  # boxes and objectness
    # the person logit (a 1- and a 4-channel conv round differently in the last bits, nothing more)
    assert torch.allclose(out[..., 5 + 1], ref[..., 5], rtol=0, atol=1e-5)
    assert not torch.allclose(out[..., 5 + 0], ref[..., 5], atol=1e-2)  # car is not a copy of person
    prior = -math.log((1 - PRIOR_PROB) / PRIOR_PROB)
    for head in module.net.heads:
        assert head.cls_pred.bias[1].item() == pytest.approx(1.5, abs=1e-2)
        assert torch.allclose(head.cls_pred.bias[[0, 2, 3]], torch.full((3,), prior))
    # the export stores the class names and no init_from: it loads without the source checkpoint
    out_path = save_inference_checkpoint(module, tmp_path / "city.pt")
    src_path.unlink()
    loaded = load_detector(out_path)
    assert list(loaded.hparams.class_names) == names and loaded.hparams.init_from is None
    with torch.no_grad():
        assert torch.allclose(loaded(x), out, atol=2e-2)


def test_init_from_refuses_another_architecture(tmp_path: Path) -> None:
    src_path = _person_checkpoint(tmp_path)
    net = YoloxNet("resnet10t", num_classes=4, neck_channels=32, head_depth=1)
    with pytest.raises(ValueError, match="person.pt.*neck_channels"):
        DetectorModule(net, num_classes=4, class_names=CLASSES, init_from=str(src_path))
    with pytest.raises(ValueError, match="class_names"):
        DetectorModule(_tiny_net(4), num_classes=4, class_names=["person"])


# ----------------------------------------------------------------------------- NMS and AP per class
def _outputs(classes: list[int], num_classes: int = 4) -> torch.Tensor:
    """Two nearly identical boxes (IoU ~0.9), scores 0.9 and 0.8, in the given classes."""
    def logit(p: float) -> float:
        return math.log(p / (1 - p))

    rows = []
    for i, (c, p) in enumerate(zip(classes, (0.9, 0.8), strict=True)):
        cls = [-10.0] * num_classes
        cls[c] = logit(0.999)
        rows.append([50.0 + i, 50.0, 40.0, 40.0, logit(p), *cls])
    return torch.tensor([rows])


def test_nms_suppresses_within_a_class_only() -> None:
    (same,) = postprocess(_outputs([1, 1]), score_thresh=0.1, nms_thresh=0.5)
    assert len(same) == 1 and same[0, 5].item() == 1.0
    (diff,) = postprocess(_outputs([0, 1]), score_thresh=0.1, nms_thresh=0.5)
    assert len(diff) == 2 and sorted(diff[:, 5].tolist()) == [0.0, 1.0]


def test_per_class_ap50_and_ignore_regions_of_every_class() -> None:
    metric = per_class_ap50()
    # gt: a person, a car, and an ignore region; detections: the person, the car (low score), and a
    # high-score bus on the ignore region, which must count as neither true nor false positive
    targets = torch.tensor([[0, 10, 10, 30, 60], [1, 50, 50, 90, 80], [-2, 100, 10, 150, 50]], dtype=torch.float32)
    t = eval_targets(targets, 4)
    assert t["iscrowd"].tolist() == [0, 0, 1, 1, 1, 1] and t["labels"].tolist() == [0, 1, 0, 1, 2, 3]
    preds = {"boxes": torch.tensor([[10.0, 10, 30, 60], [50, 50, 90, 80], [100, 10, 150, 50]]),
             "scores": torch.tensor([0.9, 0.3, 0.95]), "labels": torch.tensor([0, 1, 2])}
    metric.update([preds], [t])
    ap = class_ap50(metric, CLASSES)
    assert ap["AP50_person"] == pytest.approx(1.0) and ap["AP50_car"] == pytest.approx(1.0)
    assert ap["AP50_bus"] == -1.0 and ap["AP50_truck"] == -1.0  # no gt of those classes
    # a car detected as a truck is a miss for car
    metric.update([{**preds, "labels": torch.tensor([0, 3, 2])}], [t])
    ap = class_ap50(metric, CLASSES)
    assert ap["AP50_car"] == pytest.approx(0.0) and ap["AP50_truck"] == -1.0


def test_predict_frames_returns_and_filters_classes() -> None:
    torch.manual_seed(0)
    module = DetectorModule(_tiny_net(4), num_classes=4, class_names=CLASSES, img_size=64).eval()
    frame = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    (plain,) = module.predict_frames([frame], score_thresh=0.0)
    (full,) = module.predict_frames([frame], score_thresh=0.0, return_class=True)
    assert plain.shape[1] == 5 and full.shape[1] == 6 and len(full) == len(plain) > 0
    assert np.allclose(full[:, :5], plain)
    (cars,) = module.predict_frames([frame], score_thresh=0.0, classes=[1, 3], return_class=True)
    assert set(cars[:, 5].tolist()) <= {1.0, 3.0}
    assert len(cars) == int(np.isin(full[:, 5], [1, 3]).sum())
    with pytest.raises(ValueError, match="out of range"):
        module.predict_frames([frame], classes=[4])


# ----------------------------------------------------------------------------- det.txt class column
class _ClassDetector:
    """Stands in for a 4-class DetectorModule: a person and a truck in every frame."""

    def __init__(self, names: list[str]) -> None:
        self.hparams = SimpleNamespace(class_names=names, num_classes=len(names))

    def predict_frames(self, frames, batch_size=8, score_thresh=None, img_size=None, classes=None, return_class=False):
        out = []
        for _ in frames:
            d = np.array([[10.0, 20.0, 30.0, 60.0, 0.9, 0.0], [40.0, 10.0, 50.0, 30.0, 0.8, 3.0]])
            if classes is not None:
                d = d[np.isin(d[:, 5], classes)]
            out.append(d if return_class else d[:, :5])
        return out


def _video(path: Path, frames: int = 3, size: tuple[int, int] = (96, 64)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with AtomicVideoWriter(path, 10.0, size, "MJPG") as writer:
        for i in range(frames):
            writer.write(np.full((size[1], size[0], 3), 30 * i, np.uint8))
    return path


def test_det_txt_class_column_on_an_aic19_layout(tmp_path: Path) -> None:
    root = tmp_path / "aic19"
    for cam in ("c001", "c002"):
        _video(root / "train" / "S01" / cam / "vdo.avi")
    (root / "train" / "S01" / "c003").mkdir()  # a camera folder without video is skipped
    # find_inputs recognises an SXX scenario, a split folder of them, and the dataset root
    names = [n for n, _, _ in find_inputs(root)]
    assert names == ["S01/c001", "S01/c002"]
    assert [n for n, _, _ in find_inputs(root / "train" / "S01")] == names
    cfg = SimpleNamespace(out=str(tmp_path / "out"), data=SimpleNamespace(root=str(root / "train")))
    summary = run(cfg, _ClassDetector(CLASSES), batch_size=2, img_size=None, score_thresh=None, frame_stride=1,
                  max_frames=None)
    assert summary == {"S01/c001": 6, "S01/c002": 6}
    det = read_mot(tmp_path / "out" / "S01" / "c001" / "det" / "det.txt", kind="det")
    assert det[:, 7].tolist() == [0, 3] * 3  # column 8: the class index
    line = (tmp_path / "out" / "S01" / "c001" / "det" / "det.txt").read_text().splitlines()[1]
    assert line.split(",")[7] == "3" and line.split(",")[8:] == ["-1", "-1"]
    run(cfg, _ClassDetector(CLASSES), batch_size=2, img_size=None, score_thresh=None, frame_stride=1, max_frames=None,
        classes=["car", "bus", "truck"])
    det = read_mot(tmp_path / "out" / "S01" / "c002" / "det" / "det.txt", kind="det")
    assert det[:, 7].tolist() == [3, 3, 3]
    with pytest.raises(ValueError, match="'bike'.*person"):
        class_indices(CLASSES, ["bike"])


def test_one_class_detector_keeps_minus_one_in_the_class_column(tmp_path: Path) -> None:
    video = _video(tmp_path / "cam.avi")
    out_file = tmp_path / "o" / "cam" / "det" / "det.txt"
    cfg = SimpleNamespace(out=str(tmp_path / "o"), data=SimpleNamespace(root=str(video)))
    run(cfg, _ClassDetector(["person"]), batch_size=8, img_size=None, score_thresh=None, frame_stride=1,
        max_frames=None)
    det = read_mot(out_file, kind="det")
    assert len(det) == 6 and np.all(det[:, 7] == -1)  # the one-class path asks for no class column
    # `classes` on a one-class detector filters and still writes -1
    run(cfg, _ClassDetector(["person"]), batch_size=8, img_size=None, score_thresh=None, frame_stride=1,
        max_frames=None, classes=["person"])
    det = read_mot(out_file, kind="det")
    assert len(det) == 3 and np.all(det[:, 7] == -1)
    n = detect_to_file(_ClassDetector(["person"]), video, "video", out_file)  # old callers: no class column
    assert n == 6 and np.all(read_mot(out_file, kind="det")[:, 7] == -1)
