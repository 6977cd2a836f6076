"""AI City 2019 Track 1 evaluation: multi-camera IDF1/IDP/IDR checked by hand, the ground truth read
from the `SXX/cXXX/gt/gt.txt` layout, and `python -m citytrack.eval.mtmc --aic19`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from citytrack.data.formats.aicity import read_aic19_ground_truth, write_track1
from citytrack.data.formats.errors import FormatError
from citytrack.data.formats.mot import write_mot
from citytrack.eval.mtmc import AIC19_KEYS, evaluate_aic19_mtmc, main

BOX = {1: (10.0, 10.0, 20.0, 40.0), 2: (100.0, 10.0, 20.0, 40.0)}  # where each vehicle is, in every camera
FRAMES = {1: range(1, 11), 2: range(1, 7)}  # camera -> its frames (1-based): 10 in camera 1, 6 in camera 2


def _rows(ids: dict[tuple[int, int], int]) -> np.ndarray:
    """Rows `camera obj frame x y w h xworld yworld` of vehicles 1 and 2 in cameras 1 and 2;
    `ids[(camera, vehicle)]` is the id written for that vehicle in that camera."""
    rows = [
        [cam, ids[(cam, v)], f, *BOX[v], -1.0, -1.0] for cam in (1, 2) for f in FRAMES[cam] for v in (1, 2)
    ]
    return np.array(rows, dtype=np.float64)


GT = _rows({(1, 1): 1, (1, 2): 2, (2, 1): 1, (2, 2): 2})
PERFECT = _rows({(1, 1): 10, (1, 2): 20, (2, 1): 10, (2, 2): 20})
SWAPPED = _rows({(1, 1): 10, (1, 2): 20, (2, 1): 20, (2, 2): 10})  # camera 2 swaps the two vehicles


def test_perfect_prediction_scores_one() -> None:
    scores = evaluate_aic19_mtmc(GT, PERFECT)
    assert tuple(scores) == AIC19_KEYS
    assert scores["IDF1"] == scores["IDP"] == scores["IDR"] == 1.0
    assert (scores["IDTP"], scores["IDFP"], scores["IDFN"], scores["num_gt"]) == (32, 0, 0, 32)


def test_identity_swapped_across_two_cameras() -> None:
    # One id correspondence for all cameras: 1<->10, 2<->20 keeps camera 1 (2 x 10 boxes = 20 IDTP);
    # the other pairing would keep camera 2 (2 x 6 = 12). Camera 2's 12 boxes become IDFP and IDFN.
    scores = evaluate_aic19_mtmc(GT, SWAPPED)
    assert (scores["IDTP"], scores["IDFP"], scores["IDFN"]) == (20, 12, 12)
    assert scores["IDF1"] == pytest.approx(2 * 20 / (2 * 20 + 12 + 12)) == pytest.approx(0.625)
    assert scores["IDP"] == pytest.approx(20 / 32) and scores["IDR"] == pytest.approx(20 / 32)


def test_dropped_rows_lower_recall_not_precision() -> None:
    dropped = PERFECT[~((PERFECT[:, 0] == 2) & (PERFECT[:, 2] >= 4))]  # camera 2 loses frames 4-6: 6 boxes
    scores = evaluate_aic19_mtmc(GT, dropped)
    assert (scores["IDTP"], scores["IDFP"], scores["IDFN"]) == (26, 0, 6)
    assert scores["IDP"] == 1.0 and scores["IDR"] == pytest.approx(26 / 32)
    assert scores["IDF1"] == pytest.approx(52 / 58)


def test_single_camera_vehicle_only_adds_false_positives() -> None:
    # the ground truth holds vehicles seen by >= 2 cameras only: a parked car tracked in camera 1 is IDFP
    parked = np.array([[1, 99, f, 300, 200, 30, 20, -1, -1] for f in range(1, 5)], dtype=np.float64)
    scores = evaluate_aic19_mtmc(GT, np.concatenate([PERFECT, parked]))
    assert (scores["IDTP"], scores["IDFP"], scores["IDFN"]) == (32, 4, 0)
    assert scores["IDP"] == pytest.approx(32 / 36) and scores["IDR"] == 1.0


def test_duplicate_prediction_rows_are_refused() -> None:
    repeated = np.concatenate([PERFECT, PERFECT[5:6]])
    with pytest.raises(ValueError, match=r"repeats \(camera, frame, id\) \[1, 3, 20\]"):
        evaluate_aic19_mtmc(GT, repeated)
    elsewhere = np.concatenate([PERFECT, [[7, 1, 1, 0, 0, 5, 5, -1, -1]] * 2])
    assert evaluate_aic19_mtmc(GT, elsewhere, cameras=[1, 2])["IDF1"] == 1.0  # camera 7 is not evaluated


# --------------------------------------------------------------------------- files and command line
def _scenario(root: Path, name: str, cameras: dict[str, int]) -> Path:
    """`root/SXX/cXXX/gt/gt.txt` (MOTChallenge rows) for `cameras`: folder name -> camera id of `GT`."""
    for folder, cam in cameras.items():
        rows = GT[GT[:, 0] == cam]
        mot = np.column_stack(
            [rows[:, 2], rows[:, 1], rows[:, 3:7], np.tile([1, -1, -1, -1], (len(rows), 1))]
        )
        write_mot(root / name / folder / "gt" / "gt.txt", mot, kind="gt")
    return root / name


def test_ground_truth_from_the_dataset_layout(tmp_path: Path) -> None:
    scene = _scenario(tmp_path / "train", "S01", {"c001": 1})
    _scenario(tmp_path / "train", "S02", {"c002": 2})
    (tmp_path / "train" / "S02" / "c003").mkdir()  # a camera without ground truth
    table, scenes = read_aic19_ground_truth(scene)
    np.testing.assert_array_equal(table, GT[GT[:, 0] == 1])
    assert scenes == {"S01": [1]}
    table, scenes = read_aic19_ground_truth(tmp_path)  # the dataset root: every split's scenarios
    np.testing.assert_array_equal(
        table[np.lexsort(table[:, [1, 2, 0]].T)], GT[np.lexsort(GT[:, [1, 2, 0]].T)]
    )
    assert scenes == {"S01": [1], "S02": [2]}

    write_track1(tmp_path / "gt.txt", GT)
    table, scenes = read_aic19_ground_truth(tmp_path / "gt.txt")
    np.testing.assert_array_equal(table, GT)
    assert scenes == {"gt": [1, 2]}

    _scenario(tmp_path / "test", "S05", {"c001": 1})
    with pytest.raises(FormatError, match="camera c001 also belongs to .*S0[15]"):
        read_aic19_ground_truth(tmp_path)
    (tmp_path / "empty" / "S04" / "c020").mkdir(parents=True)
    with pytest.raises(FormatError, match="no cXXX/gt/gt.txt") as err:
        read_aic19_ground_truth(tmp_path / "empty" / "S04")
    assert err.value.path == str(tmp_path / "empty" / "S04")


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scene = _scenario(tmp_path / "train", "S01", {"c001": 1, "c002": 2})
    write_track1(tmp_path / "track1.txt", SWAPPED)
    out = tmp_path / "scores.json"
    assert (
        main([str(scene), str(tmp_path / "track1.txt"), "--aic19", "--per-camera", "--json", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    assert "AI City 2019" in printed and "62.50" in printed and "HOTA" in printed  # per-camera table has HOTA
    report = json.loads(out.read_text())
    assert report["aic19"]["IDF1"] == pytest.approx(0.625) and report["scenes"] == {"S01": [1, 2]}
    assert "aic24" not in report  # the vehicles' world columns are GPS placeholders: no ground-plane HOTA

    write_track1(tmp_path / "dup.txt", np.concatenate([PERFECT, PERFECT[:1]]))
    assert main([str(scene), str(tmp_path / "dup.txt"), "--aic19"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path / "dup.txt") in err[0] and "duplicate" in err[0]
    with pytest.raises(SystemExit):
        main([str(scene), str(tmp_path / "track1.txt"), "--aic19", "--aic23"])
