"""CLEAR / identity / HOTA evaluation: py-motmetrics' published values, TrackEval on the same
inputs, MOTChallenge preprocessing on hand-built cases, sequence combination, bad input."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from citytrack.eval import box_iou, evaluate_mot, evaluate_sequences, format_table, preprocess_sequence
from citytrack.eval.mot_metrics import METRIC_KEYS

HAS_TRACKEVAL = importlib.util.find_spec("trackeval") is not None
REF_SEQS = ("TUD-Campus", "TUD-Stadtmitte")

# py-motmetrics 1.4.0, motmetrics/tests/test_metrics.py::test_motchallenge_files (atol 1e-3 there):
# idf1, idp, idr, recall, precision, num_unique_objects, MT, PT, ML, FP, FN, IDs, Frag, mota, motp(distance)
PUBLISHED = {
    "TUD-Campus": [0.557659, 0.729730, 0.451253, 0.582173, 0.941441, 8, 1, 6, 1, 13, 150, 7, 7, 0.526462, 0.277201],
    "TUD-Stadtmitte": [0.644619, 0.819760, 0.531142, 0.608997, 0.939920, 10, 5, 4, 1, 45, 452, 7, 6, 0.564014, 0.345904],
    "OVERALL": [0.624296, 0.799176, 0.512211, 0.602640, 0.940268, 18, 6, 10, 2, 58, 602, 14, 13, 0.555116, 0.330177],
}  # fmt: skip
# TrackEval 1.3.0 (MotChallenge2DBox, BENCHMARK=MOT15) on the same files, HOTA/DetA/AssA/LocA in %.
TRACKEVAL_HOTA = {
    "TUD-Campus": (39.139744, 41.804703, 36.912068, 77.005223),
    "TUD-Stadtmitte": (39.784902, 39.226757, 40.884075, 73.752118),
    "OVERALL": (39.995709, 39.768329, 41.244953, 73.248026),
}


def _load(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", ndmin=2)


@pytest.fixture(scope="module")
def reference(shared_data: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    root = shared_data / "motmetrics_reference"
    gts = {s: _load(root / s / "gt.txt") for s in REF_SEQS}
    preds = {s: _load(root / s / "test.txt") for s in REF_SEQS}
    return gts, preds


def _row(n: int, frame: int, tid: int, box: tuple[float, float, float, float], conf: float = 1, cls: float = 1):
    return [frame, tid, *box, conf, cls, 1, -1][:n]


# --------------------------------------------------------------------------- published references
def test_reproduces_py_motmetrics_published_values(reference) -> None:
    df = evaluate_sequences(*reference)
    for name, exp in PUBLISHED.items():
        row = df.loc[name]
        ours = [
            row["IDF1"] / 100, row["IDP"] / 100, row["IDR"] / 100, row["Recall"] / 100, row["Precision"] / 100,
            row["num_gt_ids"], row["MT"], row["PT"], row["ML"], row["FP"], row["FN"], row["IDs"], row["Frag"],
            row["MOTA"] / 100, 1 - row["MOTP"] / 100,
        ]  # fmt: skip
        np.testing.assert_allclose(ours, exp, rtol=0, atol=2e-6, err_msg=name)


def test_hota_matches_trackeval_published_run(reference) -> None:
    df = evaluate_sequences(*reference)
    for name, exp in TRACKEVAL_HOTA.items():
        got = df.loc[name, ["HOTA", "DetA", "AssA", "LocA"]].to_numpy(dtype=float)
        np.testing.assert_allclose(got, exp, rtol=0, atol=2e-6, err_msg=name)


def test_auto_mode_on_mot15_files_and_single_sequence_api(reference) -> None:
    gts, preds = reference
    single = evaluate_mot(gts["TUD-Campus"], preds["TUD-Campus"])
    assert list(single) == list(METRIC_KEYS)
    assert preprocess_sequence(gts["TUD-Campus"], preds["TUD-Campus"]).mode == "mot15"
    assert single["MOTA"] == pytest.approx(52.6462, abs=1e-3)
    assert single["IDs"] == 7 and single["num_gt"] == 359


# --------------------------------------------------------------------------- TrackEval on the same input
def _greedy_link(det: np.ndarray, thr: float = 0.3) -> np.ndarray:
    """A deliberately simple frame-to-frame IoU linker: a real-looking tracker output with switches."""
    out, prev, prev_ids, next_id = [], None, None, 1
    for f in np.unique(det[:, 0]):
        d = det[det[:, 0] == f]
        ids = np.zeros(len(d), dtype=int)
        if prev is not None and len(d) and len(prev):
            s = box_iou(prev[:, 2:6], d[:, 2:6])
            r, c = linear_sum_assignment(-s)
            ok = s[r, c] >= thr
            ids[c[ok]] = prev_ids[r[ok]]
        for i in np.flatnonzero(ids == 0):
            ids[i] = next_id
            next_id += 1
        t = np.full((len(d), 10), -1.0)
        t[:, 0], t[:, 1], t[:, 2:7] = f, ids, d[:, 2:7]
        out.append(t)
        prev, prev_ids = d, ids
    return np.concatenate(out)


def _run_trackeval(root: Path, gts: dict, preds: dict, lengths: dict, benchmark: str) -> dict:
    """Run TrackEval's full MotChallenge2DBox pipeline on files written under `root`."""
    import trackeval

    split = "train"
    gt_fol, tr_fol = root / "gt", root / "trackers"
    seqmap = root / "seqmap.txt"
    seqmap.write_text("name\n" + "\n".join(gts) + "\n")
    for seq, gt in gts.items():
        d = gt_fol / f"{benchmark}-{split}" / seq
        (d / "gt").mkdir(parents=True)
        np.savetxt(d / "gt" / "gt.txt", gt, delimiter=",", fmt="%.6f")
        (d / "seqinfo.ini").write_text(f"[Sequence]\nname={seq}\nseqLength={lengths[seq]}\n")
        t = tr_fol / f"{benchmark}-{split}" / "trk" / "data"
        t.mkdir(parents=True, exist_ok=True)
        np.savetxt(t / f"{seq}.txt", preds[seq], delimiter=",", fmt="%.6f")
    eval_cfg = trackeval.Evaluator.get_default_eval_config()
    eval_cfg.update(PRINT_RESULTS=False, PRINT_CONFIG=False, OUTPUT_SUMMARY=False, OUTPUT_DETAILED=False,
                    PLOT_CURVES=False, TIME_PROGRESS=False, USE_PARALLEL=False)  # fmt: skip
    data_cfg = trackeval.datasets.MotChallenge2DBox.get_default_dataset_config()
    data_cfg.update(GT_FOLDER=str(gt_fol), TRACKERS_FOLDER=str(tr_fol), BENCHMARK=benchmark, SPLIT_TO_EVAL=split,
                    SEQMAP_FILE=str(seqmap), TRACKERS_TO_EVAL=["trk"], PRINT_CONFIG=False)  # fmt: skip
    cfg = {"PRINT_CONFIG": False}
    metrics = [trackeval.metrics.HOTA(cfg), trackeval.metrics.CLEAR(cfg), trackeval.metrics.Identity(cfg)]
    res, _ = trackeval.Evaluator(eval_cfg).evaluate([trackeval.datasets.MotChallenge2DBox(data_cfg)], metrics)
    out = {}
    for seq, v in res["MotChallenge2DBox"]["trk"].items():
        p = v["pedestrian"]
        out["OVERALL" if seq == "COMBINED_SEQ" else seq] = {
            "HOTA": 100 * np.mean(p["HOTA"]["HOTA"]), "DetA": 100 * np.mean(p["HOTA"]["DetA"]),
            "AssA": 100 * np.mean(p["HOTA"]["AssA"]), "LocA": 100 * np.mean(p["HOTA"]["LocA"]),
            "MOTA": 100 * p["CLEAR"]["MOTA"], "MOTP": 100 * p["CLEAR"]["MOTP"], "IDs": p["CLEAR"]["IDSW"],
            "FP": p["CLEAR"]["CLR_FP"], "FN": p["CLEAR"]["CLR_FN"], "Frag": p["CLEAR"]["Frag"],
            "IDF1": 100 * p["Identity"]["IDF1"], "num_gt": p["CLEAR"]["CLR_TP"] + p["CLEAR"]["CLR_FN"],
        }  # fmt: skip
    return out


def _compare_with_trackeval(ours, theirs) -> None:
    for seq, ref in theirs.items():
        row = ours.loc[seq]
        for key in ("HOTA", "DetA", "AssA", "LocA", "IDF1"):
            assert row[key] == pytest.approx(ref[key], abs=1e-6), (seq, key)
        for key in ("FP", "FN", "num_gt"):
            assert row[key] == ref[key], (seq, key)
        # motmetrics carries the last match of a gt id forward over gaps, TrackEval (and the
        # MATLAB devkit) only the previous frame's: the matched pairs, hence IDs, MOTP and Frag,
        # may differ slightly (documented in mot_metrics.py).
        assert abs(row["IDs"] - ref["IDs"]) <= max(2, 0.01 * ref["IDs"]), seq
        assert row["MOTA"] == pytest.approx(ref["MOTA"], abs=0.1), seq
        assert row["MOTP"] == pytest.approx(ref["MOTP"], abs=0.2), seq
        assert row["Frag"] == pytest.approx(ref["Frag"], rel=0.05, abs=1), seq


@pytest.mark.skipif(not HAS_TRACKEVAL, reason="trackeval (dev extra) is not installed")
def test_matches_trackeval_on_mot17_with_distractors(shared_data: Path, tmp_path: Path) -> None:
    from citytrack.data.formats.mot import read_mot

    seq_dir = shared_data / "mot17" / "MOT17-02-FRCNN"
    gt = read_mot(seq_dir / "gt" / "gt.txt", kind="gt")
    pred = _greedy_link(read_mot(seq_dir / "det" / "det.txt", kind="det"))
    name = "MOT17-02-FRCNN"
    data = preprocess_sequence(gt, pred, name=name)
    assert data.mode == "mot17" and data.num_removed_pred > 0
    theirs = _run_trackeval(tmp_path, {name: _load(seq_dir / "gt" / "gt.txt")}, {name: pred}, {name: 600}, "MOT17")
    _compare_with_trackeval(evaluate_sequences({name: gt}, {name: pred}), theirs)


@pytest.mark.skipif(not HAS_TRACKEVAL, reason="trackeval (dev extra) is not installed")
def test_matches_trackeval_on_mot15_with_zero_marked_rows(shared_data: Path, tmp_path: Path) -> None:
    from citytrack.data.formats.mot import read_mot, read_seqinfo

    names = ("ETH-Pedcross2", "KITTI-17")
    gts, preds, raw, lengths = {}, {}, {}, {}
    for name in names:
        seq_dir = shared_data / "mot15" / name
        gts[name] = read_mot(seq_dir / "gt" / "gt.txt", kind="gt")
        raw[name] = _load(seq_dir / "gt" / "gt.txt")
        preds[name] = _greedy_link(read_mot(seq_dir / "det" / "det.txt", kind="det"))
        lengths[name] = read_seqinfo(seq_dir / "seqinfo.ini").seq_length
        assert np.any(gts[name][:, 6] == 0)  # these sequences have zero-marked gt rows
    theirs = _run_trackeval(tmp_path, raw, preds, lengths, "MOT15")
    _compare_with_trackeval(evaluate_sequences(gts, preds), theirs)


# --------------------------------------------------------------------------- preprocessing rules
A, B, C, D, E = (0, 0, 10, 20), (100, 0, 10, 20), (200, 0, 10, 20), (300, 0, 10, 20), (400, 0, 10, 20)


def test_mot17_distractor_and_zero_marked_handling() -> None:
    gt = np.array([
        _row(10, 1, 1, A, conf=1, cls=1),  # pedestrian: the only real gt
        _row(10, 1, 2, B, conf=1, cls=7),  # static person (distractor)
        _row(10, 1, 3, C, conf=0, cls=7),  # zero-marked static person (how MOT17 marks them)
        _row(10, 1, 4, D, conf=0, cls=4),  # zero-marked bicycle: not a distractor class
    ], dtype=float)  # fmt: skip
    pred = np.array([_row(10, 1, i + 1, box, conf=0.9, cls=-1) for i, box in enumerate((A, B, C, D, E))])
    data = preprocess_sequence(gt, pred, distractor_handling="mot17")
    assert data.num_removed_pred == 2  # the predictions on B and C are dropped
    assert data.gt_ids[0].tolist() == [1]
    res = evaluate_mot(gt, pred)  # auto -> mot17
    assert res["num_gt"] == 1 and res["TP"] == 1 and res["FN"] == 0
    assert res["FP"] == 2  # on the bicycle and on empty ground; not on the static persons
    assert res["num_pred"] == 3


def test_zero_marked_pedestrian_is_dropped_from_gt_but_predictions_on_it_count() -> None:
    # TrackEval / MOT devkit: only distractor classes remove predictions; a zero-marked class-1
    # row is simply not ground truth.
    gt = np.array([_row(10, 1, 1, A, conf=0, cls=1), _row(10, 1, 2, B, conf=1, cls=1)], dtype=float)
    pred = np.array([_row(10, 1, 1, A, cls=-1), _row(10, 1, 2, B, cls=-1)], dtype=float)
    res = evaluate_mot(gt, pred, distractor_handling="mot17")
    assert res["num_gt"] == 1 and res["FP"] == 1 and res["FN"] == 0


def test_distractor_matching_is_one_to_one() -> None:
    gt = np.array([_row(10, 1, 1, A, cls=1), _row(10, 1, 2, B, cls=8)], dtype=float)
    pred = np.array([_row(10, 1, 1, A, cls=-1), _row(10, 1, 2, B, cls=-1), _row(10, 1, 3, B, cls=-1)])
    res = evaluate_mot(gt, pred)
    assert res["FP"] == 1  # one of the two predictions on the distractor is removed, the other is an FP


def test_mot15_and_none_modes() -> None:
    gt = np.array([_row(10, 1, 1, A, conf=1, cls=-1), _row(10, 1, 2, B, conf=0, cls=-1)], dtype=float)
    pred = np.array([_row(10, 1, 5, A, cls=-1)], dtype=float)
    mot15 = evaluate_mot(gt, pred)  # auto: no classes -> mot15, zero-marked row dropped
    assert mot15["num_gt"] == 1 and mot15["MOTA"] == pytest.approx(100.0)
    none = evaluate_mot(gt, pred, distractor_handling="none")
    assert none["num_gt"] == 2 and none["FN"] == 1 and none["MOTA"] == pytest.approx(50.0)


def test_perfect_and_switched_tracks_hand_computed() -> None:
    frames = np.arange(1, 11)
    gt = np.array([_row(10, f, 1, A) for f in frames], dtype=float)
    perfect = evaluate_mot(gt, gt.copy())
    for key in ("HOTA", "DetA", "AssA", "LocA", "MOTA", "MOTP", "IDF1", "Recall", "Precision"):
        assert perfect[key] == pytest.approx(100.0), key
    switched = gt.copy()
    switched[5:, 1] = 2  # id switch halfway
    res = evaluate_mot(gt, switched)
    assert res["IDs"] == 1 and res["MOTA"] == pytest.approx(90.0)
    assert res["IDF1"] == pytest.approx(50.0)  # IDTP 5, IDFP 5, IDFN 5
    assert res["AssA"] == pytest.approx(50.0) and res["HOTA"] == pytest.approx(100 * np.sqrt(0.5))
    assert res["MT"] == 1 and res["Frag"] == 0


def test_iou_threshold_is_respected() -> None:
    gt = np.array([_row(10, 1, 1, (0, 0, 100, 100))], dtype=float)
    pred = np.array([_row(10, 1, 1, (0, 0, 100, 60), cls=-1)], dtype=float)  # IoU 0.6
    assert evaluate_mot(gt, pred, iou_threshold=0.5)["TP"] == 1
    strict = evaluate_mot(gt, pred, iou_threshold=0.7)
    assert strict["TP"] == 0 and strict["FP"] == 1 and strict["FN"] == 1


def test_box_iou_matches_hand_values() -> None:
    iou = box_iou(np.array([[0, 0, 10, 10], [0, 0, 0, 5]]), np.array([[5, 0, 10, 10], [0, 0, 10, 10]]))
    np.testing.assert_allclose(iou, [[50 / 150, 1.0], [0.0, 0.0]])


# --------------------------------------------------------------------------- combining sequences
def test_overall_row_is_consistent_with_summed_counts(reference) -> None:
    gts, preds = reference
    gts = {**gts, "empty-pred": gts["TUD-Campus"]}
    df = evaluate_sequences(gts, preds)  # "empty-pred" has no predictions: all misses
    assert df.loc["empty-pred", "FN"] == df.loc["empty-pred", "num_gt"] and df.loc["empty-pred", "HOTA"] == 0
    seqs, overall = df.drop(index="OVERALL"), df.loc["OVERALL"]
    for key in ("IDs", "FP", "FN", "MT", "PT", "ML", "Frag", "num_gt", "TP", "IDTP", "IDFP", "IDFN"):
        assert overall[key] == seqs[key].sum(), key
    s = seqs.sum()
    assert overall["MOTA"] == pytest.approx(100 * (1 - (s["FN"] + s["FP"] + s["IDs"]) / s["num_gt"]))
    assert overall["IDF1"] == pytest.approx(100 * 2 * s["IDTP"] / (2 * s["IDTP"] + s["IDFP"] + s["IDFN"]))
    assert overall["MOTP"] == pytest.approx((seqs["MOTP"] * seqs["TP"]).sum() / s["TP"])
    assert seqs["HOTA"].min() <= overall["HOTA"] <= seqs["HOTA"].max()
    table = format_table(df)
    assert table.splitlines()[0].split()[:3] == ["sequence", "HOTA", "DetA"]
    assert "OVERALL" in table.splitlines()[-1]


# --------------------------------------------------------------------------- bad input
def test_bad_input_raises_clear_errors() -> None:
    gt = np.array([_row(10, 1, 1, A, cls=1)], dtype=float)
    with pytest.raises(ValueError, match="seqX: ground truth .* at least 6 columns"):
        evaluate_mot(gt[:, :4], gt, name="seqX")
    dup = np.array([_row(10, 1, 3, A), _row(10, 1, 3, B)], dtype=float)
    with pytest.raises(ValueError, match="seqX: prediction id 3 appears twice in frame 1"):
        evaluate_mot(gt, dup, name="seqX")
    neg = np.array([_row(10, 1, 1, (0, 0, -5, 10))], dtype=float)
    with pytest.raises(ValueError, match="negative box size"):
        evaluate_mot(gt, neg)
    nan = gt.copy()
    nan[0, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        evaluate_mot(gt, nan)
    with pytest.raises(ValueError, match="only valid for pedestrians"):
        evaluate_mot(gt, np.array([_row(10, 1, 1, A, cls=3)], dtype=float), distractor_handling="mot17")
    with pytest.raises(ValueError, match="not a MOTChallenge class"):
        evaluate_mot(np.array([_row(10, 1, 1, A, cls=14)], dtype=float), gt, distractor_handling="mot17")
    with pytest.raises(ValueError, match="distractor_handling"):
        evaluate_mot(gt, gt, distractor_handling="mot99")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="without ground truth"):
        evaluate_sequences({"a": gt}, {"b": gt})
