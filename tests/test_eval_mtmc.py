"""Multi-camera metrics: AI City 2024 ground-plane HOTA against TrackEval fed the organisers'
preprocessing, AI City 2023 multi-camera IDF1 on hand-computed cases and against Ristani's
definition, per-camera tables, ground-truth loading and the command line."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from citytrack.data.formats.aicity import write_aic24_ground_truth, write_track1
from citytrack.eval.hota import ALPHAS, HOTA_FIELDS
from citytrack.eval.mot_metrics import box_iou
from citytrack.eval.mtmc import (
    AIC23_KEYS,
    evaluate_aic23_idf1,
    evaluate_aic24,
    evaluate_per_camera,
    load_ground_truth,
    main,
    world_similarity,
)

HAS_TRACKEVAL = importlib.util.find_spec("trackeval") is not None
REPO_ROOT = Path(__file__).resolve().parents[1]


def _row(cam: int, oid: int, frame: int, x: float, y: float, box: tuple = (10, 10, 20, 40)) -> list[float]:
    return [cam, oid, frame, *box, x, y]


# --------------------------------------------------------------------------- random scenes
def _random_scenes(seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, list[int]]]:
    """Two scenes of people walking past several cameras, and a flawed multi-camera tracker's output.

    The prediction misses points, has noisy (sometimes grid-exact) positions, gives some people
    another id in one camera, switches ids mid-way, adds false positives, repeats rows, and writes
    rows on a camera outside every scene; rows are shuffled so keep-first depends on file order.
    """
    rng = np.random.default_rng(seed)
    scenes = {"scene_001": [1, 2, 3], "scene_002": [4, 5]}
    gt_rows: list[list[float]] = []
    pred_rows: list[list[float]] = []
    next_id = 100
    for s, cams in enumerate(scenes.values()):
        frames = 25
        for person in range(6):
            pid = 10 * s + person + 1
            start = rng.uniform(-5, 5, 2)
            velocity = rng.uniform(-0.3, 0.3, 2)
            seen = [c for c in cams if rng.uniform() < 0.7] or [cams[0]]
            other_id = {c: next_id + c for c in seen if rng.uniform() < 0.25}  # inconsistent camera
            next_id += 10
            switch_at = int(rng.integers(5, frames)) if rng.uniform() < 0.4 else frames
            for t in range(int(rng.integers(0, 5)), frames):
                xy = start + velocity * t
                for c in seen:
                    box = tuple(rng.integers(0, 500, 2)) + (30, 80)
                    gt_rows.append(_row(c, pid, t, *xy, box=box))
                    if rng.uniform() < 0.15:
                        continue  # missed
                    noise = (
                        rng.normal(0, 0.4, 2) if rng.uniform() < 0.7 else rng.choice([0.3, 0.4, 0.6, 0.8], 2)
                    )
                    oid = other_id.get(c, pid + (500 if t >= switch_at else 0))
                    pred_rows.append(_row(c, oid, t, *(xy + noise), box=box))
            if rng.uniform() < 0.5:
                pred_rows.append(_row(cams[0], pid, 3, *rng.uniform(-5, 5, 2)))  # duplicate (frame, id)
        for _ in range(15):  # false positives
            pred_rows.append(
                _row(int(rng.choice(cams)), 900 + s, int(rng.integers(0, frames)), *rng.uniform(-8, 8, 2))
            )
    pred_rows.append(_row(9, 1, 0, 0.0, 0.0))  # camera of no scene
    gt = np.asarray(gt_rows, dtype=float)
    pred = np.asarray(pred_rows, dtype=float)
    return gt[rng.permutation(len(gt))], pred[rng.permutation(len(pred))], scenes


_COLUMNS = ["CameraId", "Id", "FrameId", "X", "Y", "Width", "Height", "Xworld", "Yworld"]


def _organisers_scene(table: np.ndarray, cameras: list[int]) -> pd.DataFrame:
    """The organisers' pandas steps (aicityeval-track1.py): round, filter cameras, keep first, +1."""
    df = pd.DataFrame(table, columns=_COLUMNS).astype({"CameraId": int, "Id": int, "FrameId": int})
    df["Xworld"] = df["Xworld"].round(3)
    df["Yworld"] = df["Yworld"].round(3)
    df = df[df["CameraId"].isin(cameras)].drop_duplicates(subset=["FrameId", "Id"])
    df = df.sort_values(by="FrameId", kind="stable")
    df["FrameId"] += 1
    return df[df["FrameId"] >= 1]


def _trackeval_scene(gt: np.ndarray, pred: np.ndarray, cameras: list[int]) -> dict:
    """TrackEval's HOTA on the data dict its MOTChallenge datasets build, with euclidean similarity."""
    from trackeval.datasets._base_dataset import _BaseDataset
    from trackeval.metrics import HOTA

    g, p = _organisers_scene(gt, cameras), _organisers_scene(pred, cameras)
    length = int(max(g["FrameId"].max(), p["FrameId"].max()))
    ug, up = np.unique(g["Id"]), np.unique(p["Id"])
    data: dict = {"gt_ids": [], "tracker_ids": [], "similarity_scores": []}
    for t in range(1, length + 1):
        gt_t, tr_t = g[g["FrameId"] == t], p[p["FrameId"] == t]
        data["gt_ids"].append(np.searchsorted(ug, gt_t["Id"].to_numpy()))
        data["tracker_ids"].append(np.searchsorted(up, tr_t["Id"].to_numpy()))
        sim = _BaseDataset._calculate_euclidean_similarity(
            gt_t[["Xworld", "Yworld"]].to_numpy(), tr_t[["Xworld", "Yworld"]].to_numpy(), zero_distance=2.0
        )
        data["similarity_scores"].append(sim)
    data.update(num_gt_dets=len(g), num_tracker_dets=len(p), num_gt_ids=len(ug), num_tracker_ids=len(up))
    return HOTA({"PRINT_CONFIG": False}).eval_sequence(data)


@pytest.mark.skipif(not HAS_TRACKEVAL, reason="trackeval (dev extra) is not installed")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aic24_matches_trackeval_on_random_scenes(seed: int) -> None:
    gt, pred, scenes = _random_scenes(seed)
    ours = evaluate_aic24(gt, pred, scenes)
    assert ours["num_scenes"] == 2
    refs = {name: _trackeval_scene(gt, pred, cams) for name, cams in scenes.items()}
    for name, ref in refs.items():
        for field in HOTA_FIELDS:
            assert ours["scenes"][name][field] == pytest.approx(float(np.mean(ref[field])), abs=1e-9), (
                name,
                field,
            )
        assert ours["scenes"][name]["HOTA_TP"] == pytest.approx(float(np.mean(ref["HOTA_TP"])), abs=1e-9)
        assert 0.0 < ours["scenes"][name]["HOTA"] < 1.0
    for field in HOTA_FIELDS:  # the official headline: unweighted mean over scenes
        expected = np.mean([np.mean(r[field]) for r in refs.values()])
        assert ours[field] == pytest.approx(expected, abs=1e-9), field


@pytest.mark.skipif(not HAS_TRACKEVAL, reason="trackeval (dev extra) is not installed")
def test_world_similarity_is_trackevals() -> None:
    from trackeval.datasets._base_dataset import _BaseDataset

    rng = np.random.default_rng(3)
    a, b = np.round(rng.uniform(-20, 20, (7, 2)), 3), np.round(rng.uniform(-20, 20, (5, 2)), 3)
    b[0] = a[0] + [0.6, 0.8]  # exactly 1 m: similarity 0.5
    ref = _BaseDataset._calculate_euclidean_similarity(a, b, zero_distance=2.0)
    np.testing.assert_array_equal(world_similarity(a, b), ref)
    assert world_similarity(a, b)[0, 0] == pytest.approx(0.5)
    assert world_similarity(a[:0], b).shape == (0, 5)


# --------------------------------------------------------------------------- AI City 2024 by hand
def _two_camera_walk(frames: int = 10) -> np.ndarray:
    """One person (id 1) seen by cameras 1 and 2, another (id 2) by camera 2 only."""
    rows = []
    for t in range(frames):
        rows += [_row(1, 1, t, 0.1 * t, 0.0), _row(2, 1, t, 0.1 * t, 0.0), _row(2, 2, t, 5.0, 5.0 - 0.1 * t)]
    return np.asarray(rows)


def test_aic24_perfect_prediction_is_one() -> None:
    gt = _two_camera_walk()
    res = evaluate_aic24(gt, gt.copy())
    for field in HOTA_FIELDS:
        assert res[field] == pytest.approx(1.0), field
    # every frame holds the unique objects of the scene, not one point per camera
    assert res["scenes"]["all"]["num_gt"] == 20 and res["scenes"]["all"]["num_gt_ids"] == 2


def test_aic24_person_with_two_ids_in_two_cameras_is_penalised() -> None:
    gt = _two_camera_walk()
    pred = gt.copy()
    pred[(pred[:, 0] == 2) & (pred[:, 1] == 1), 1] = 7  # camera 2 calls person 1 "7"
    res = evaluate_aic24(gt, pred)["scenes"]["all"]
    # per frame: person 1 matched once (id 1 or 7), the other id a false positive; person 2 matched
    assert res["HOTA_TP"] == 20 and res["num_pred"] == 30
    assert res["DetRe"] == pytest.approx(1.0)
    assert res["DetPr"] == pytest.approx(20 / 30)
    assert res["DetA"] == pytest.approx(20 / 30)
    assert res["AssA"] == pytest.approx(1.0)
    assert res["HOTA"] == pytest.approx(np.sqrt(2 / 3))


def test_aic24_duplicate_rows_keep_the_first() -> None:
    gt = np.asarray([_row(1, 1, t, 0.0, 0.0) for t in range(4)])
    near = [_row(1, 1, t, 0.0, 0.0) for t in range(4)]
    far = [_row(2, 1, t, 1.5, 0.0) for t in range(4)]  # same (frame, id) on another camera, 1.5 m off
    first_near = evaluate_aic24(gt, np.asarray(near + far), scenes={"s": [1, 2]})
    assert first_near["HOTA"] == pytest.approx(1.0)
    first_far = evaluate_aic24(gt, np.asarray(far + near), scenes={"s": [1, 2]})
    # similarity 1 - 1.5/2 = 0.25: a match at alpha 0.05 .. 0.25 only (5 of 19 thresholds)
    assert first_far["DetA"] == pytest.approx(5 / 19)
    assert first_far["HOTA"] == pytest.approx(5 / 19)
    assert first_far["LocA"] == pytest.approx((5 * 0.25 + 14 * 1.0) / 19)  # LocA is 1 without TPs


def test_aic24_rounds_world_points_to_millimetres() -> None:
    gt = np.asarray([_row(1, 1, t, 0.0, 0.0) for t in range(3)])

    def shifted(dx: float) -> np.ndarray:
        pred = gt.copy()
        pred[:, 7] += dx
        return pred

    assert evaluate_aic24(gt, shifted(1.0004)) == evaluate_aic24(gt, shifted(1.0))
    assert evaluate_aic24(gt, shifted(1.0006))["LocA"] != evaluate_aic24(gt, shifted(1.0))["LocA"]


def test_aic24_scenes_filter_cameras_and_average_unweighted() -> None:
    walk = _two_camera_walk()
    other = walk.copy()
    other[:, 0] += 10  # scene b: cameras 11, 12
    gt = np.concatenate([walk, other])
    pred = np.concatenate([walk, [_row(99, 5, 0, 0.0, 0.0)]])  # nothing for scene b; camera 99 in no scene
    res = evaluate_aic24(gt, pred, scenes={"a": [1, 2], "b": [11, 12]})
    assert res["scenes"]["a"]["HOTA"] == pytest.approx(1.0)
    assert res["scenes"]["b"]["HOTA"] == 0.0 and res["scenes"]["b"]["LocA"] == 1.0  # TrackEval's convention
    assert res["HOTA"] == pytest.approx(0.5)
    assert res["LocA"] == pytest.approx(1.0)
    assert set(res) >= {*HOTA_FIELDS, "num_scenes", "scenes"}


def test_aic24_rejects_malformed_tables() -> None:
    gt = _two_camera_walk()
    with pytest.raises(ValueError, match=r"\(N, 9\)"):
        evaluate_aic24(gt[:, :7], gt)
    bad = gt.copy()
    bad[3, 7] = np.nan
    with pytest.raises(ValueError, match="prediction row 3"):
        evaluate_aic24(gt, bad)
    with pytest.raises(ValueError, match="no scenes"):
        evaluate_aic24(gt, gt, scenes={})


# --------------------------------------------------------------------------- AI City 2023
def _box_row(cam: int, oid: int, frame: int, x: float) -> list[float]:
    return [cam, oid, frame, x, 100.0, 50.0, 100.0, 0.0, 0.0]


def test_aic23_identity_swap_across_cameras_scores_lower() -> None:
    # people A (gt 1) and B (gt 2) in cameras 1 and 2, 10 frames each
    gt = np.asarray([_box_row(c, o, t, 100.0 * o) for c in (1, 2) for o in (1, 2) for t in range(10)])
    consistent = gt.copy()
    consistent[:, 1] += 10
    swapped = consistent.copy()
    cam2 = swapped[:, 0] == 2
    swapped[cam2, 1] = 33 - swapped[cam2, 1]  # 11 <-> 22 in camera 2 only
    good = evaluate_aic23_idf1(gt, consistent)
    bad = evaluate_aic23_idf1(gt, swapped)
    assert good["IDF1"] == pytest.approx(1.0) and good["IDs"] == 0
    # one correspondence over both cameras: A<->11 holds for 10 of A's 20 boxes
    assert (bad["IDTP"], bad["IDFP"], bad["IDFN"]) == (20, 20, 20)
    assert bad["IDF1"] == pytest.approx(0.5)
    assert bad["MOTA"] == pytest.approx(1 - 2 / 40)  # each person switches id at the camera change
    # each camera on its own is perfect: only the multi-camera metric sees the swap
    per_camera = evaluate_per_camera(gt, swapped)
    assert list(per_camera.index) == ["camera_0001", "camera_0002", "OVERALL"]
    assert per_camera.loc["camera_0002", "IDF1"] == pytest.approx(100.0)
    assert per_camera.loc["OVERALL", "HOTA"] == pytest.approx(100.0)


def test_aic23_hand_computed_counts() -> None:
    gt = np.asarray([_box_row(1, 1, t, 0.0) for t in range(4)] + [_box_row(2, 1, t, 0.0) for t in range(2)])
    pred = np.asarray(
        [_box_row(1, 5, t, 0.0) for t in range(3)]
        + [_box_row(1, 5, 3, 40.0)]  # IoU 10/90 < 0.5: a miss and a false positive
        + [_box_row(2, 6, t, 0.0) for t in range(2)]  # the person gets another id in camera 2
        + [_box_row(2, 5, 5, 0.0)]  # a frame without gt
        + [_box_row(2, 6, 0, 0.0)]  # duplicate (camera, frame, id): dropped
    )
    res = evaluate_aic23_idf1(gt, pred)
    assert set(res) == set(AIC23_KEYS)
    # gt 1 (6 boxes) <-> pred 5 (5 boxes, 3 overlapping); pred 6 (2 boxes) unmatched
    assert (res["IDTP"], res["IDFP"], res["IDFN"]) == (3, 4, 3)
    assert res["IDF1"] == pytest.approx(6 / 13)
    assert res["IDP"] == pytest.approx(3 / 7)
    assert res["IDR"] == pytest.approx(3 / 6)
    assert (res["TP"], res["FP"], res["FN"], res["IDs"]) == (5, 2, 1, 1)
    assert res["MOTA"] == pytest.approx(1 - 4 / 6)
    assert res["num_duplicates"] == 1 and res["num_frames"] == 7
    restricted = evaluate_aic23_idf1(gt, pred, cameras=[1])
    assert (restricted["IDTP"], restricted["IDFP"], restricted["IDFN"]) == (3, 1, 1)


def _ristani_idtp(gt: np.ndarray, pred: np.ndarray, threshold: float = 0.5) -> float:
    """IDTP by definition: co-occurrence at IoU >= threshold per (camera, frame), best one-to-one id map."""
    from scipy.optimize import linear_sum_assignment

    ug, up = np.unique(gt[:, 1]), np.unique(pred[:, 1])
    co = np.zeros((len(ug), len(up)))
    for cam, frame in {(r[0], r[2]) for r in gt.tolist()}:
        g = gt[(gt[:, 0] == cam) & (gt[:, 2] == frame)]
        p = pred[(pred[:, 0] == cam) & (pred[:, 2] == frame)]
        iou = box_iou(g[:, 3:7], p[:, 3:7])
        for i, j in zip(*np.nonzero(iou >= threshold), strict=True):
            co[np.searchsorted(ug, g[i, 1]), np.searchsorted(up, p[j, 1])] += 1
    rows, cols = linear_sum_assignment(-co)
    return float(co[rows, cols].sum())


def test_aic23_idtp_is_ristanis_global_assignment() -> None:
    gt, pred, _ = _random_scenes(4)  # the prediction copies each gt box; jitter it
    pred = pred[np.sort(np.unique(pred[:, :3], axis=0, return_index=True)[1])]  # duplicates: keep first
    pred[:, 3:5] += np.random.default_rng(4).normal(0, 6, (len(pred), 2))
    res = evaluate_aic23_idf1(gt, pred)
    idtp = _ristani_idtp(gt, pred)
    assert 0 < idtp < len(gt)
    assert res["IDTP"] == idtp
    assert res["IDFN"] == len(gt) - idtp and res["IDFP"] == len(pred) - idtp


def test_per_camera_covers_cameras_without_ground_truth() -> None:
    gt = np.asarray([_box_row(1, 1, t, 0.0) for t in range(3)])
    pred = np.concatenate([gt, [_box_row(3, 4, 0, 0.0)]])
    table = evaluate_per_camera(gt, pred)
    assert list(table.index) == ["camera_0001", "camera_0003", "OVERALL"]
    assert table.loc["camera_0001", "HOTA"] == pytest.approx(100.0)
    assert table.loc["camera_0003", "FP"] == 1 and table.loc["camera_0003", "num_gt"] == 0
    assert list(evaluate_per_camera(gt, pred, cameras=[1]).index) == ["camera_0001", "OVERALL"]


# --------------------------------------------------------------------------- files and command line
def _dataset(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """root/train/scene_001 (cameras 1, 2), scene_002 (cameras 3, 4, 4 has no gt), scene_003 (no gt)."""
    walk = _two_camera_walk(6)
    other = walk.copy()
    other[:, 0] += 2
    other = other[other[:, 0] == 3]
    for name, cams, gt in (
        ("scene_001", (1, 2), walk),
        ("scene_002", (3, 4), other),
        ("scene_003", (5,), None),
    ):
        scene = root / "train" / name
        for cam in cams:
            (scene / f"camera_{cam:04d}").mkdir(parents=True)
        if gt is not None:
            write_aic24_ground_truth(scene / "ground_truth.txt", gt)
    pred = np.concatenate([walk, other[: len(other) // 2], [_row(4, 9, 0, 1.0, 1.0)]])
    write_track1(root / "track1.txt", pred)
    return np.concatenate([walk, other]), pred


def test_load_ground_truth_from_file_scene_and_folder(tmp_path: Path) -> None:
    gt, _ = _dataset(tmp_path)
    table, scenes = load_ground_truth(tmp_path)
    assert scenes == {"train/scene_001": [1, 2], "train/scene_002": [3, 4]}
    np.testing.assert_allclose(table, gt, rtol=0, atol=1e-6)  # written with 6 decimals
    table, scenes = load_ground_truth(tmp_path / "train")
    assert list(scenes) == ["scene_001", "scene_002"]
    _, scenes = load_ground_truth(tmp_path / "train" / "scene_002")
    assert scenes == {"scene_002": [3, 4]}
    _, scenes = load_ground_truth(tmp_path / "train" / "scene_002" / "ground_truth.txt")
    assert scenes == {"scene_002": [3]}
    with pytest.raises(ValueError, match="scene has no ground_truth.txt"):
        load_ground_truth(tmp_path / "train" / "scene_003")
    with pytest.raises(FileNotFoundError):
        load_ground_truth(tmp_path / "nope")
    (tmp_path / "train" / "scene_003" / "camera_0003").mkdir()
    write_aic24_ground_truth(tmp_path / "train" / "scene_003" / "ground_truth.txt", gt[:1])
    with pytest.raises(ValueError, match="also belongs to scene"):
        load_ground_truth(tmp_path)


def test_cli_prints_tables_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt, pred = _dataset(tmp_path)
    out = tmp_path / "scores.json"
    rc = main(
        [str(tmp_path / "train"), str(tmp_path / "track1.txt"), "--aic23", "--per-camera", "--json", str(out)]
    )
    text = capsys.readouterr().out
    assert rc == 0
    for expected in ("MEAN", "scene_001", "scene_002", "IDF1", "camera_0004", "OVERALL"):
        assert expected in text
    report = json.loads(out.read_text())
    scenes = {"scene_001": [1, 2], "scene_002": [3, 4]}
    expected = evaluate_aic24(gt, pred, scenes)
    assert report["aic24"]["HOTA"] == pytest.approx(expected["HOTA"])
    assert report["scenes"] == scenes
    assert report["aic23"]["IDF1"] == pytest.approx(evaluate_aic23_idf1(gt, pred)["IDF1"])
    assert set(report["per_camera_percent"]) == {
        "camera_0001",
        "camera_0002",
        "camera_0003",
        "camera_0004",
        "OVERALL",
    }
    assert 0.0 < report["aic24"]["HOTA"] < 1.0


def test_cli_reports_bad_input_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _dataset(tmp_path)
    gt = str(tmp_path / "train")
    assert main([gt, str(tmp_path / "missing.txt")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.txt" in err[0]
    bad = tmp_path / "bad.txt"
    bad.write_text("1 1 0 10 10 20 40 0.0 0.0\n1 2 0 10 10 20 40 0.0 0.0\n1 3 x 10 10 20 40 0.0 0.0\n")
    assert main([gt, str(bad)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{bad}:3" in err[0]
    assert main([str(tmp_path / "nowhere"), str(bad)]) != 0
    assert "nowhere" in capsys.readouterr().err


def test_cli_runs_as_a_module(tmp_path: Path) -> None:
    _dataset(tmp_path)
    scene = tmp_path / "train" / "scene_001"
    proc = subprocess.run(
        [sys.executable, "-m", "citytrack.eval.mtmc", str(scene), str(tmp_path / "track1.txt")],
        capture_output=True,
        check=False,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr  # the package does not import the module before runpy runs it
    assert "MEAN" in proc.stdout and "100.00" in proc.stdout
    assert "prediction rows on cameras outside" in proc.stdout  # scene_002's and camera 4's rows


def test_package_exports() -> None:
    import citytrack.eval as ev

    assert ev.evaluate_aic24 is evaluate_aic24 and ev.load_ground_truth is load_ground_truth
    assert {"evaluate_aic24", "evaluate_aic23_idf1", "evaluate_per_camera"} <= set(ev.__all__)
    with pytest.raises(AttributeError):
        ev.no_such_metric  # noqa: B018
    assert len(ALPHAS) == 19  # the official thresholds 0.05 .. 0.95
