"""MOTS metrics: hand-made cases with known answers, and agreement with TrackEval 1.3.0 on MOTS20-05."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import shutil
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from citytrack.data.formats import kitti_mots as km
from citytrack.data.formats.errors import FormatError
from citytrack.data.formats.kitti_mots import IGNORE_CLASS, IGNORE_ID, MotsRecord, mask_record
from citytrack.eval.mots import (
    METRIC_KEYS,
    evaluate_mots,
    evaluate_mots_folder,
    load_mots_ground_truth,
    main,
    read_mots_predictions,
    track_stats,
)

HAS_TRACKEVAL = importlib.util.find_spec("trackeval") is not None
MOTS20_SEQ = "mots20/MOTS20-05"
KITTI_LENGTH = 60  # frames per sequence in the two-class KittiMOTS comparison (pixel work is slow)
H, W = 20, 30


def _box(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros((H, W), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def _rec(frame: int, obj_id: int, mask: np.ndarray, class_id: int | None = None) -> MotsRecord:
    record = mask_record(frame, obj_id, mask)
    return record if class_id is None else dataclasses.replace(record, class_id=class_id)


# ------------------------------------------------------------------ definitions by hand
def test_counts_on_a_hand_made_sequence() -> None:
    a, b = _box(0, 10, 0, 10), _box(0, 10, 20, 30)  # 100 px each
    ignore = _box(12, 20, 0, 30)  # 240 px
    gt = [
        _rec(1, 2001, a), _rec(1, 2002, b), _rec(1, IGNORE_ID, ignore),
        _rec(2, 2001, a), _rec(2, 2002, b),
        _rec(3, 2001, a),
        _rec(4, 2001, a), _rec(4, IGNORE_ID, ignore),
    ]  # fmt: skip
    pred = [
        _rec(1, 7, a, 2),
        _rec(1, 8, _box(0, 10, 22, 30), 2),  # IoU 80/100 with b
        _rec(1, 9, _box(14, 18, 2, 8), 2),  # wholly inside the ignore region: ignored
        _rec(1, 11, _box(10, 14, 12, 18), 2),  # 12 of 24 px inside: IoA 0.5, not above 0.5: FP
        _rec(2, 8, a, 2),  # the gt track of 7 now matched by 8: switch; b missed
        _rec(3, 8, _box(0, 10, 4, 10), 2),  # IoU 0.6: still 8, no switch
        _rec(4, 7, _box(0, 10, 5, 10), 2),  # IoU 0.5, not above: FN, and a FP (outside the ignore region)
        _rec(4, 3, _box(13, 20, 10, 20), 1),  # a car, inside the ignore region: ignored for the car class
    ]  # fmt: skip
    res = evaluate_mots({"s": gt}, {"s": pred}, per_sequence=True)
    ped = res["pedestrian"]
    assert (ped["TP"], ped["FN"], ped["FP"], ped["IDS"], ped["num_ignored"]) == (4, 2, 2, 1, 1)
    tp_iou = 1 + 0.8 + 1 + 0.6
    assert ped["num_gt"] == 6 and ped["num_pred"] == 7
    assert ped["MOTSP"] == pytest.approx(tp_iou / 4)
    assert ped["sMOTSA"] == pytest.approx((tp_iou - 2 - 1) / 6)
    assert ped["MOTSA"] == pytest.approx(1 - (2 + 2 + 1) / 6)
    assert ped["MODSA"] == pytest.approx(1 - (2 + 2) / 6)
    # track 2001: [7, 8, 8, None] -> 3/4 tracked (PT); 2002: [8, None] -> 1/2 (PT)
    assert (ped["MT"], ped["PT"], ped["ML"]) == (0, 2, 0)
    assert ped["num_gt_tracks"] == 2 and ped["num_pred_tracks"] == 4
    assert res["pedestrian/s"] == ped
    # no car ground truth: the ratios are undefined, the ignored car is no FP
    car = res["car"]
    assert car["FP"] == 0 and car["num_ignored"] == 1 and car["num_gt"] == 0
    assert math.isnan(car["sMOTSA"]) and math.isnan(car["MOTSA"]) and math.isnan(car["MOTSP"])
    assert set(ped) == set(METRIC_KEYS)


def test_ids_count_against_the_last_matched_id_across_gaps() -> None:
    a = _box(0, 10, 0, 10)
    gt = [_rec(f, 1001, a) for f in range(5)]
    # 5, miss, 5, miss, 6: one switch (5 -> 6), the gaps themselves are none
    pred = [_rec(0, 5, a, 1), _rec(2, 5, a, 1), _rec(4, 6, a, 1)]
    car = evaluate_mots({"s": gt}, {"s": pred}, classes=["car"])["car"]
    assert (car["IDS"], car["TP"], car["FN"], car["FP"]) == (1, 3, 2, 0)
    assert list(evaluate_mots({"s": gt}, {"s": pred}, classes=[1])) == ["car"]


@pytest.mark.parametrize(
    ("track", "expected"),
    [
        ([7, 7, 7], (0, 0, 1.0)),
        ([7, None, 7, 7], (0, 1, 0.75)),  # resumed with the same id: a fragmentation, no switch
        ([7, 8, None, 8], (1, 1, 0.75)),
        ([5, None, 6], (1, 1, 2 / 3)),  # last non-missing id differs
        ([None, 5], (0, 1, 0.5)),  # mots_tools: first matched in the last frame counts one Frag
        ([None, 5, 5], (0, 0, 2 / 3)),
        ([5, 6, 5, 6], (3, 3, 1.0)),
        ([None, None], (0, 0, 0.0)),
        ([4], (0, 0, 1.0)),
    ],
)
def test_track_stats_follow_mots_tools(track: list[int | None], expected: tuple[int, int, float]) -> None:
    ids, frag, ratio = track_stats(track)
    assert (ids, frag) == expected[:2] and ratio == pytest.approx(expected[2])


def test_mostly_tracked_thresholds_are_strict() -> None:
    gt, pred = [], []
    for obj, matched in ((1, 9), (2, 8), (3, 2), (4, 1)):  # of 10 frames: 0.9 MT, 0.8 PT, 0.2 PT, 0.1 ML
        box = _box(0, 5, 6 * obj, 6 * obj + 5)
        gt += [_rec(f, 2000 + obj, box) for f in range(10)]
        pred += [_rec(f, obj, box, 2) for f in range(matched)]
    ped = evaluate_mots({"s": gt}, {"s": pred}, classes=[2])["pedestrian"]
    assert (ped["MT"], ped["PT"], ped["ML"]) == (1, 2, 1)


def test_sequences_are_summed_before_ratios() -> None:
    a = _box(0, 10, 0, 10)
    gt = {"x": [_rec(0, 2001, a)], "y": [_rec(f, 2001, a) for f in range(3)]}
    pred = {"x": [], "y": [_rec(f, 1, a, 2) for f in range(3)]}
    res = evaluate_mots(gt, pred, classes=[2], per_sequence=True)
    assert res["pedestrian/x"]["MOTSA"] == 0 and res["pedestrian/y"]["MOTSA"] == 1
    assert res["pedestrian"]["MOTSA"] == pytest.approx(0.75)  # 1 - 1/4, not the mean 0.5
    assert res["pedestrian"]["FN"] == 1 and res["pedestrian"]["TP"] == 3


def test_bad_inputs_are_named() -> None:
    a = _box(0, 10, 0, 10)
    gt = {"seq1": [_rec(0, 2001, a)], "seq2": [_rec(0, 2001, a)]}
    with pytest.raises(ValueError, match=r"no predictions for sequences \['seq2'\]"):
        evaluate_mots(gt, {"seq1": []})
    overlapping = [_rec(3, 1, a, 2), _rec(3, 2, _box(5, 15, 5, 15), 2)]
    with pytest.raises(FormatError, match="seq1 prediction: frame 3: masks overlap"):
        evaluate_mots(gt, {"seq1": overlapping, "seq2": []})
    small = MotsRecord(0, 1, 2, 10, 10, km.encode_mask(np.ones((10, 10), bool)))
    with pytest.raises(FormatError, match="frame 0: masks are 10x10, the ground truth's 20x30"):
        evaluate_mots(gt, {"seq1": [small], "seq2": []})
    with pytest.raises(ValueError, match="unknown MOTS class 'bus'"):
        evaluate_mots(gt, {"seq1": [], "seq2": []}, classes=["bus"])


# ------------------------------------------------------------------ folders and command line
def _kitti_root(root: Path, gt: Mapping[str, Sequence[MotsRecord]], images: bool) -> None:
    for seq, records in gt.items():
        km.write_instances_txt(root / "instances_txt" / f"{seq}.txt", records)
        if images:
            (root / "image_02" / seq).mkdir(parents=True)
            for f in sorted({r.frame for r in records}):
                (root / "image_02" / seq / f"{f:06d}.png").write_bytes(b"")  # only names are read


@pytest.mark.parametrize("images", [True, False])
def test_folder_zip_and_cli(tmp_path: Path, images: bool, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _box(0, 10, 0, 10), _box(0, 10, 15, 25)
    gt = {"0000": [_rec(0, 1001, a), _rec(0, 2001, b), _rec(1, 1001, a)], "0001": [_rec(0, 2002, a)]}
    _kitti_root(tmp_path / "gt", gt, images)
    assert load_mots_ground_truth(tmp_path / "gt") == gt
    pred_dir = tmp_path / "pred"
    km.write_instances_txt(pred_dir / "0000.txt", [_rec(0, 4, a, 1), _rec(0, 9, b, 2), _rec(1, 4, a, 1)])
    with pytest.raises(FileNotFoundError, match=r"no prediction file for sequences \['0001'\]"):
        evaluate_mots_folder(tmp_path / "gt", pred_dir)
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path / "gt"), str(pred_dir)])
    assert exit_.value.code == 2 and "no prediction file for sequences ['0001']" in capsys.readouterr().err
    (pred_dir / "0001.txt").write_text("")  # an empty result is not a missing one
    res = evaluate_mots_folder(tmp_path / "gt", pred_dir)
    assert res["car"]["MOTSA"] == 1 and res["pedestrian"]["MOTSA"] == 0.5
    assert res["pedestrian/0001"]["FN"] == 1 and res["car/0001"]["num_gt"] == 0
    archive = tmp_path / "pred.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for p in pred_dir.iterdir():
            handle.write(p, p.name)
    assert _same(evaluate_mots_folder(tmp_path / "gt", archive), res)
    # a prediction of another image size is named with its line
    km.write_instances_txt(
        pred_dir / "0001.txt", [MotsRecord(0, 1, 2, 5, 5, km.encode_mask(np.ones((5, 5))))]
    )
    with pytest.raises(FormatError, match="0001.txt:1: RLE size 5x5 disagrees with the image size 20x30"):
        read_mots_predictions(pred_dir, names=["0001"], image_sizes={"0001": (H, W)})
    (pred_dir / "0001.txt").write_text("")

    assert main([str(tmp_path / "gt"), str(pred_dir), "--json"]) == 0
    assert _same(json.loads(capsys.readouterr().out), res)
    assert main([str(tmp_path / "gt"), str(archive), "--classes", "pedestrian"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["sMOTSA", "MOTSA"]
    assert [line.split()[0] for line in lines[1:]] == ["pedestrian", "pedestrian/0000", "pedestrian/0001"]
    assert lines[1].split()[2] == "50.00"


def _same(x: Mapping[str, Mapping[str, float]], y: Mapping[str, Mapping[str, float]]) -> bool:
    return x.keys() == y.keys() and all(
        (math.isnan(v) and math.isnan(y[k][m])) or v == y[k][m]
        for k, row in x.items()
        for m, v in row.items()
    )


# ------------------------------------------------------------------ agreement with TrackEval
# Predictions are made from the ground truth. Each step maps records of many frames to records
# (ignore regions, class 10, ride along so later steps can use them; they are dropped at the end)
# and keeps the masks of a frame disjoint, as both evaluators require.
Step = Callable[[list[MotsRecord], np.random.Generator], list[MotsRecord]]


def _lag(records: list[MotsRecord], rng: np.random.Generator) -> list[MotsRecord]:
    """Each frame shows the masks of a frame 0-4 earlier: IoU anywhere, no pixel work."""
    frames = km.group_by_frame(records)
    out = []
    for frame in frames:
        source = frame - int(rng.choice([0, 1, 2, 4]))
        out += [dataclasses.replace(r, frame=frame) for r in frames.get(source, frames[frame])]
    return out


def _drop(records: list[MotsRecord], rng: np.random.Generator) -> list[MotsRecord]:
    return [r for r in records if r.class_id == IGNORE_CLASS or rng.random() > 0.15]


def _relabel(records: list[MotsRecord], rng: np.random.Generator) -> list[MotsRecord]:
    """PointTrack-style plain ids; per class, two tracks swap ids a third of the way in; one is renamed."""
    class_of = {r.obj_id: r.class_id for r in records if r.class_id != IGNORE_CLASS}
    objs = sorted(class_of)
    plain = {obj: k + 1 for k, obj in enumerate(objs)}
    frames = sorted({r.frame for r in records})
    swap_at, rename_at = frames[len(frames) // 3], frames[len(frames) // 2]
    spanning: dict[int, list[int]] = {}
    for obj in objs:  # tracks seen before and after the swap, so that the swap shows
        seen = [r.frame for r in records if r.obj_id == obj]
        if min(seen) < swap_at <= max(seen):
            spanning.setdefault(class_of[obj], []).append(obj)
    swap = {}
    for pair in spanning.values():
        if len(pair) >= 2:
            swap[pair[0]], swap[pair[1]] = plain[pair[1]], plain[pair[0]]
    renamed = int(rng.choice(objs))
    out = []
    for r in records:
        if r.class_id == IGNORE_CLASS:
            out.append(r)
            continue
        new = swap.get(r.obj_id, plain[r.obj_id]) if r.frame >= swap_at else plain[r.obj_id]
        if r.obj_id == renamed and r.frame >= rename_at:
            new = len(objs) + 1
        out.append(dataclasses.replace(r, obj_id=new))
    return out


def _shift(records: list[MotsRecord], rng: np.random.Generator) -> list[MotsRecord]:
    """Roll every mask of a frame by the same few pixels (the frame moves, masks stay disjoint)."""
    out = []
    for recs in km.group_by_frame(records).values():
        dy, dx = rng.choice([0, 1, 3, 6, 12, 25], size=2) * rng.choice([-1, 1], size=2)
        for r in recs:
            mask = np.roll(mask_utils.decode(r.coco_rle()), (dy, dx), axis=(0, 1))
            out.append(dataclasses.replace(r, rle=km.encode_mask(mask)))
    return out


def _ignore_as_fp(records: list[MotsRecord], rng: np.random.Generator) -> list[MotsRecord]:
    """Half of the ignore regions become predictions of a random class (ignored where they still cover one)."""
    out, next_id = [], 50000
    for r in records:
        if r.class_id == IGNORE_CLASS and rng.random() < 0.5:
            r = dataclasses.replace(r, obj_id=next_id, class_id=int(rng.choice([1, 2])))
            next_id += 1
        out.append(r)
    return out


def _boxes(records: list[MotsRecord], rng: np.random.Generator) -> list[MotsRecord]:
    """Boxes on pixels no prediction covers: some across an ignore region's edge, some anywhere."""
    out, next_id = list(records), 60000
    for frame, recs in km.group_by_frame(records).items():
        objects = [r for r in recs if r.class_id != IGNORE_CLASS]
        height, width = recs[0].height, recs[0].width
        taken = np.zeros((height, width), dtype=bool)
        if objects:
            taken = mask_utils.decode(mask_utils.merge([r.coco_rle() for r in objects])).astype(bool)
        boxes = []
        for _ in range(int(rng.integers(0, 3))):
            y, x = rng.integers(0, height - 40), rng.integers(0, width - 40)
            boxes.append((y, y + int(rng.integers(8, 40)), x, x + int(rng.integers(8, 40))))
        for region in (r for r in recs if r.class_id == IGNORE_CLASS):
            x, y = km.mask_boxes([region])[0][:2].astype(int)
            boxes.append((max(0, y - 6), y + 6, x, x + 10))  # across its top edge
        for y0, y1, x0, x1 in boxes:
            mask = np.zeros((height, width), dtype=bool)
            mask[y0:y1, x0:x1] = True
            mask &= ~taken
            if mask.sum() > 5:
                taken |= mask
                out.append(_rec(frame, next_id, mask, int(rng.choice([1, 2]))))
                next_id += 1
    return out


def _predict(gt: Sequence[MotsRecord], steps: Sequence[Step], seed: int) -> list[MotsRecord]:
    rng = np.random.default_rng(seed)
    records = list(gt)
    for step in steps:
        records = step(records, rng)
    return [r for r in records if r.class_id != IGNORE_CLASS]


def _run_trackeval(root: Path, dataset: str, lengths: Mapping[str, int], classes: Sequence[str]) -> dict:
    """TrackEval's full pipeline on `root/gt` and `root/trackers/trk/data` (written by the caller)."""
    import trackeval

    eval_cfg = trackeval.Evaluator.get_default_eval_config()
    eval_cfg.update(PRINT_RESULTS=False, PRINT_CONFIG=False, OUTPUT_SUMMARY=False, OUTPUT_DETAILED=False,
                    PLOT_CURVES=False, TIME_PROGRESS=False, USE_PARALLEL=False)  # fmt: skip
    cls = getattr(trackeval.datasets, dataset)
    data_cfg = cls.get_default_dataset_config()
    data_cfg.update(GT_FOLDER=str(root / "gt"), TRACKERS_FOLDER=str(root / "trackers"), OUTPUT_FOLDER=str(root / "out"),
                    TRACKERS_TO_EVAL=["trk"], SEQ_INFO=dict(lengths), CLASSES_TO_EVAL=list(classes),
                    PRINT_CONFIG=False)  # fmt: skip
    if dataset == "MOTSChallenge":
        data_cfg["SKIP_SPLIT_FOL"] = True
    metric_cfg = {"PRINT_CONFIG": False}
    # mots_tools matches at IoU > 0.5, TrackEval's CLEAR at >= 0.5; shifted masks do hit 0.5 exactly
    # (one pair in "shifted"). Any IoU above 0.5 is at least 0.5 + 1/(H*W), so this threshold is "> 0.5".
    clear_cfg = {"PRINT_CONFIG": False, "THRESHOLD": 0.5 + 1e-9}
    metrics = [trackeval.metrics.HOTA(metric_cfg), trackeval.metrics.CLEAR(clear_cfg)]
    res, messages = trackeval.Evaluator(eval_cfg).evaluate([cls(data_cfg)], metrics)
    assert messages[dataset]["trk"] == "Success", messages
    return res[dataset]["trk"]


AGREEMENT: dict[str, float] = {}
"""Largest |ours - TrackEval| per metric over the agreement tests (fractions), for the record."""

_PAIRS = {"sMOTSA": "sMOTA", "MOTSA": "MOTA", "MOTSP": "MOTP", "MODSA": "MODA"}
_COUNTS = {"TP": "CLR_TP", "FP": "CLR_FP", "FN": "CLR_FN", "IDS": "IDSW", "MT": "MT", "PT": "PT", "ML": "ML"}


def _compare(ours: Mapping[str, Mapping[str, float]], theirs: Mapping, classes: Sequence[str]) -> None:
    for seq, per_class in theirs.items():
        for name in classes:
            row = ours[name] if seq == "COMBINED_SEQ" else ours[f"{name}/{seq}"]
            clear, hota = per_class[name]["CLEAR"], per_class[name]["HOTA"]
            pairs = [(row[k], clear[v], k) for k, v in _PAIRS.items() if not math.isnan(row[k])]
            pairs += [(row[k], np.mean(hota[k]), k) for k in ("HOTA", "DetA", "AssA", "LocA")]
            for mine, ref, key in pairs:
                AGREEMENT[key] = max(AGREEMENT.get(key, 0.0), abs(mine - ref))
                assert mine == pytest.approx(ref, abs=1e-6), (seq, name, key)
            for key, ref_key in _COUNTS.items():
                AGREEMENT[key] = max(AGREEMENT.get(key, 0.0), abs(row[key] - clear[ref_key]))
                assert row[key] == clear[ref_key], (seq, name, key)
            if math.isnan(row["MOTSA"]):  # no gt masks: TrackEval divides by max(1, 0)
                assert row["num_gt"] == 0 and clear["CLR_TP"] + clear["CLR_FN"] == 0


@pytest.fixture(scope="module")
def mots20_gt(shared_data: Path) -> list[MotsRecord]:
    return km.read_instances_txt(shared_data / MOTS20_SEQ / "gt" / "gt.txt")


@pytest.fixture(scope="module")
def two_class_gt(mots20_gt: list[MotsRecord]) -> dict[str, list[MotsRecord]]:
    """Frames 1-120 of MOTS20-05 as two 0-based KITTI MOTS sequences, every third person a car."""
    out: dict[str, list[MotsRecord]] = {"0000": [], "0001": []}
    for r in mots20_gt:
        if r.frame > 2 * KITTI_LENGTH:
            continue
        seq = "0000" if r.frame <= KITTI_LENGTH else "0001"
        frame = (r.frame - 1) % KITTI_LENGTH
        if r.class_id == 2 and r.instance % 3 == 0:
            r = dataclasses.replace(r, obj_id=1000 + r.instance, class_id=1)
        out[seq].append(dataclasses.replace(r, frame=frame))
    return out


SCENARIOS: dict[str, list[Step]] = {
    "identical": [],
    "dropped": [_drop],
    "shifted": [_shift],
    "lagged": [_lag],
    "ids": [_relabel],
    "false_positives": [_ignore_as_fp, _boxes],
    "all": [_lag, _shift, _drop, _ignore_as_fp, _boxes, _relabel],
}


@pytest.mark.skipif(not HAS_TRACKEVAL, reason="trackeval (dev extra) is not installed")
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_agrees_with_trackeval_kitti_mots(two_class_gt: dict, tmp_path: Path, scenario: str) -> None:
    preds = {
        seq: _predict(gt, SCENARIOS[scenario], seed=i) for i, (seq, gt) in enumerate(two_class_gt.items())
    }
    for seq, gt in two_class_gt.items():
        km.write_instances_txt(tmp_path / "gt" / "label_02" / f"{seq}.txt", gt)
        km.write_instances_txt(tmp_path / "trackers" / "trk" / "data" / f"{seq}.txt", preds[seq])
    classes = ["car", "pedestrian"]
    theirs = _run_trackeval(tmp_path, "KittiMOTS", dict.fromkeys(two_class_gt, KITTI_LENGTH), classes)
    ours = evaluate_mots(two_class_gt, preds, per_sequence=True)
    _compare(ours, theirs, classes)
    for name in classes:  # the scenario does what it says
        row = ours[name]
        if scenario == "identical":
            assert row["sMOTSA"] == row["HOTA"] == 1 and row["FP"] == row["FN"] == 0
        elif scenario == "false_positives":
            assert row["FN"] == row["IDS"] == 0 and row["FP"] > 0 and row["num_ignored"] > 0
        elif scenario == "ids":
            assert row["IDS"] > 0 and row["FP"] == row["FN"] == 0 and row["AssA"] < 1
        else:
            assert row["FN"] > 0 and row["sMOTSA"] < 1


@pytest.mark.skipif(not HAS_TRACKEVAL, reason="trackeval (dev extra) is not installed")
@pytest.mark.parametrize("scenario", ["identical", "record_level"])
def test_agrees_with_trackeval_mots_challenge_on_the_real_file(
    shared_data: Path, mots20_gt: list[MotsRecord], tmp_path: Path, scenario: str
) -> None:
    seq = "MOTS20-05"
    (tmp_path / "gt" / seq / "gt").mkdir(parents=True)
    shutil.copy(shared_data / MOTS20_SEQ / "gt" / "gt.txt", tmp_path / "gt" / seq / "gt" / "gt.txt")
    steps = [] if scenario == "identical" else [_lag, _drop, _ignore_as_fp, _relabel]  # no pixel work
    pred = _predict(mots20_gt, steps, seed=7)
    km.write_instances_txt(tmp_path / "trackers" / "trk" / "data" / f"{seq}.txt", pred)
    theirs = _run_trackeval(tmp_path, "MOTSChallenge", {seq: 837}, ["pedestrian"])
    ours = evaluate_mots_folder(
        tmp_path / "gt", tmp_path / "trackers" / "trk" / "data", classes=["pedestrian"]
    )
    _compare(ours, theirs, ["pedestrian"])
    if scenario == "record_level":
        assert ours["pedestrian"]["IDS"] > 0 and ours["pedestrian"]["num_ignored"] > 0
