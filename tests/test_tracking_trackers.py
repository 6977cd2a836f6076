"""Trackers on synthetic scenarios (crossing, occlusion, life cycle) and SORT on real MOT15 data."""

from __future__ import annotations

from pathlib import Path

import hydra
import numpy as np
import pytest
from omegaconf import OmegaConf

from citytrack.tracking.base import OUTPUT_COLUMNS, Tracker
from citytrack.tracking.botsort import BotSort
from citytrack.tracking.bytetrack import ByteTrack
from citytrack.tracking.deepsort import DeepSort
from citytrack.tracking.sort import Sort

TRACKERS = ("sort", "deepsort", "bytetrack", "botsort")


def _build(config_dir: Path, name: str) -> Tracker:
    return hydra.utils.instantiate(OmegaConf.load(config_dir / "tracker" / f"{name}.yaml"))


def _crossing(frames: int = 40, gap: tuple[int, int] | None = None) -> list[np.ndarray]:
    """Two people crossing (A left->right, B right->left, B 30 px lower), B hidden during `gap`."""
    out = []
    for f in range(frames):
        a = [50 + 8 * f, 100, 40, 100, 0.9]
        b = [370 - 8 * f, 130, 40, 100, 0.9]
        dets = [a] if gap and gap[0] <= f < gap[1] else [a, b]
        out.append(np.array(dets, dtype=float))
    return out


def _run(tracker: Tracker, seq: list[np.ndarray], **kw) -> list[np.ndarray]:
    tracker.reset(frame_rate=30)
    return [tracker.update(d, frame=i + 1, **({k: v[i] for k, v in kw.items()})) for i, d in enumerate(seq)]


def _id_of(out: np.ndarray, det_row: int) -> int | None:
    hit = out[out[:, 6] == det_row]
    return int(hit[0, 4]) if len(hit) else None


@pytest.mark.parametrize("name", TRACKERS)
def test_configs_build_and_keep_ids_through_a_crossing(config_dir: Path, name: str) -> None:
    tracker = _build(config_dir, name)
    assert isinstance(tracker, Tracker)
    outs = _run(tracker, _crossing())
    assert all(o.shape[1] == len(OUTPUT_COLUMNS) for o in outs)
    late = [(_id_of(o, 0), _id_of(o, 1)) for o in outs[5:]]
    ids_a = {a for a, _ in late if a is not None}
    ids_b = {b for _, b in late if b is not None}
    assert len(ids_a) == 1 and len(ids_b) == 1 and ids_a != ids_b


@pytest.mark.parametrize("name", ["deepsort", "bytetrack", "botsort"])
def test_occluded_track_is_recovered_with_its_id(config_dir: Path, name: str) -> None:
    outs = _run(_build(config_dir, name), _crossing(gap=(20, 24)))
    before = {_id_of(o, 1) for o in outs[8:20]} - {None}
    after = {_id_of(o, 1) for o in outs[26:]} - {None}
    assert len(before) == 1 and before == after


def test_sort_life_cycle() -> None:
    sort = Sort(max_age=1, min_hits=3)
    box = np.array([[100.0, 100.0, 40.0, 100.0, 0.9]])
    empty = np.zeros((0, 5))
    seq = [empty] * 5 + [box] * 5 + [empty] * 2 + [box] * 5
    reported = [o[:, 4].tolist() for o in _run(sort, seq)]
    assert reported[5:10] == [[], [], [], [1.0], [1.0]]  # born at frame 6, reported after 3 more hits
    assert reported[10:12] == [[], []]
    assert reported[12:15] == [[], [], []] and reported[15] == [2.0]  # deleted after 2 misses: new id
    assert len(Sort().update(box)) == 1  # the first min_hits frames report at once


def test_bytetrack_life_cycle() -> None:
    bt = ByteTrack(track_buffer=3)
    box = np.array([[100.0, 100.0, 40.0, 100.0, 0.9]])
    empty = np.zeros((0, 5))
    seq = [empty, box, box, empty, empty, box, empty, empty, empty, empty, empty, box, box]
    reported = [o[:, 4].tolist() for o in _run(bt, seq)]
    assert reported[1] == [] and reported[2] == [1.0]  # activated on the second match
    assert reported[3:5] == [[], []] and reported[5] == [1.0]  # lost, then re-found
    assert reported[11] == [] and reported[12] == [2.0]  # removed after the buffer: new id
    low = np.array([[100.0, 100.0, 40.0, 100.0, 0.3]])
    outs = _run(ByteTrack(), [box, box, low, low])  # low-score boxes keep a track alive
    assert [o[:, 4].tolist() for o in outs] == [[1.0]] * 4
    assert _run(ByteTrack(), [low, low])[-1].shape == (0, 7)  # but never start one


def test_deepsort_life_cycle_and_degraded_mode() -> None:
    ds = DeepSort(n_init=3, max_age=2, max_report_misses=0)
    box = np.array([[100.0, 100.0, 40.0, 100.0, 0.9]])
    empty = np.zeros((0, 5))
    reported = [o[:, 4].tolist() for o in _run(ds, [box, box, box, empty, empty, box, empty, empty, empty, box])]
    assert reported[:3] == [[], [], [1.0]] and reported[5] == [1.0]
    assert reported[9] == []  # deleted after more than max_age misses; new tentative track
    assert len(ds.tracks) == 1 and ds.tracks.track_id[0] == 2


def _bounce(frames: int = 30) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Two look-alike boxes meet and turn back; embeddings tell them apart."""
    dets, embs = [], []
    for f in range(frames):
        x = 4.0 * (f if f < 15 else 30 - f)
        a = [100 + x, 100, 40, 100, 0.9]
        b = [220 - x, 100, 40, 100, 0.9]
        dets.append(np.array([a, b]))
        embs.append(np.array([[1.0, 0.05, 0.0], [0.0, 0.05, 1.0]]))
    return dets, embs


def _identity_kept(outs: list[np.ndarray]) -> bool:
    ids_a = {_id_of(o, 0) for o in outs[3:]} - {None}
    ids_b = {_id_of(o, 1) for o in outs[3:]} - {None}
    return len(ids_a) == 1 and len(ids_b) == 1


def test_deepsort_embeddings_fix_the_swap_iou_gets_wrong() -> None:
    dets, embs = _bounce()
    assert not _identity_kept(_run(DeepSort(), dets))  # motion alone carries them through each other
    assert _identity_kept(_run(DeepSort(), dets, embeddings=embs))


def _look_alikes_side_by_side(frames: int = 30) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Two people who look the same walk side by side 16 px apart (inside each other's Kalman gate);
    the detector lists them in alternating order. Returns the frames and identical embeddings."""
    dets, embs = [], []
    for f in range(frames):
        a, b = [50 + 4.0 * f, 100, 40, 100, 0.9], [50 + 4.0 * f, 116, 40, 100, 0.9]
        dets.append(np.array([a, b] if f % 2 == 0 else [b, a]))
        embs.append(np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    return dets, embs


def test_deepsort_motion_weight_lets_position_separate_look_alikes() -> None:
    def ids_of_first_person(tracker: DeepSort) -> set[int | None]:
        dets, embs = _look_alikes_side_by_side()
        outs = _run(tracker, dets, embeddings=embs)
        return {_id_of(o, 0 if f % 2 == 0 else 1) for f, o in enumerate(outs) if f >= 3}

    assert len(ids_of_first_person(DeepSort())) == 2  # appearance alone (lambda = 0) ties: ids follow list order
    assert ids_of_first_person(DeepSort(motion_weight=0.02)) == {1}
    with pytest.raises(ValueError, match="motion_weight"):
        DeepSort(motion_weight=1.0)


def _crossing_with_mixed_crops(frames: int = 40) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Two people cross 20 px apart in height; while their boxes overlap, each crop shows the other
    (the embeddings swap), as a ReID net sees two people in one box."""
    dets, embs = [], []
    for f in range(frames):
        d = np.array([[50 + 8 * f, 100, 40, 100, 0.9], [370 - 8 * f, 120, 40, 100, 0.9]])
        e = np.array([[1.0, 0.05, 0.0], [0.0, 0.05, 1.0]])
        overlap = abs(d[0, 0] - d[1, 0]) < 40
        dets.append(d)
        embs.append(e[::-1].copy() if overlap else e)
    return dets, embs


@pytest.mark.parametrize("make", [lambda **kw: DeepSort(**kw), lambda **kw: BotSort(cmc=None, **kw)], ids=["deepsort", "botsort"])
def test_crowded_boxes_carry_no_appearance(make) -> None:
    dets, embs = _crossing_with_mixed_crops()
    assert _identity_kept(_run(make(), dets))  # motion alone is right here
    assert not _identity_kept(_run(make(), dets, embeddings=embs))  # the mixed crops swap them
    tracker = make(appearance_max_cover=0.3)
    assert _identity_kept(_run(tracker, dets, embeddings=embs))
    # the tracks' appearance is still each person's own: no mixed crop was blended in
    feats = tracker.tracks.feature[np.argsort(tracker.tracks.track_id)][:2]
    np.testing.assert_allclose(np.abs(feats[:, [0, 2]]).argmax(axis=1), [0, 1])


def test_botsort_appearance_gate_forbids_unlike_pairs_motion_would_link() -> None:
    dets, embs = _bounce()  # look-alike in motion, unlike in appearance: motion swaps them at the turn
    assert not _identity_kept(_run(BotSort(cmc=None), dets))
    assert _identity_kept(_run(BotSort(cmc=None, appearance_fusion="gate"), dets, embeddings=embs))
    with pytest.raises(ValueError, match="appearance_fusion"):
        BotSort(appearance_fusion="max")


def _hidden_and_slowed(unlike: bool = False) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A person walks right, is hidden for 8 frames and comes out 32 px behind where constant velocity
    puts them (they slowed down): too far for IoU, inside the Kalman gate. A second person stands apart.
    `unlike`: the box that comes out looks like someone else."""
    dets, embs = [], []
    for f in range(30):
        rows, feats = [[400.0, 300, 40, 100, 0.9]], [[0.0, 1.0, 0.0]]
        if f < 10 or f >= 18:
            rows.append([50.0 + 8 * f - (32 if f >= 18 else 0), 100, 40, 100, 0.9])
            feats.append([0.0, 0.0, 1.0] if unlike and f >= 18 else [1.0, 0.0, 0.0])
        dets.append(np.array(rows))
        embs.append(np.array(feats))
    return dets, embs


def test_botsort_relinks_a_lost_track_by_appearance_inside_its_kalman_gate() -> None:
    def walker_ids(tracker: BotSort, unlike: bool = False) -> set[int | None]:
        dets, embs = _hidden_and_slowed(unlike)
        return {_id_of(o, 1) for o in _run(tracker, dets, embeddings=embs)[3:]} - {None}

    assert len(walker_ids(BotSort(cmc=None))) == 2  # published: appearance only where boxes overlap
    assert len(walker_ids(BotSort(cmc=None, relink_lost=True))) == 1
    assert len(walker_ids(BotSort(cmc=None, relink_lost=True), unlike=True)) == 2  # appearance decides


def test_deepsort_and_botsort_use_an_embedder_callback() -> None:
    calls = []

    def embedder(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        calls.append(len(boxes))
        return np.c_[boxes[:, 0] < 160, np.full(len(boxes), 0.05), boxes[:, 0] >= 160].astype(float)

    dets, _ = _bounce(6)
    image = np.zeros((240, 320, 3), np.uint8)
    for tracker in (DeepSort(embedder=embedder), BotSort(embedder=embedder, cmc=None)):
        calls.clear()
        _run(tracker, dets, image=[image] * len(dets))
        assert calls == [2] * len(dets)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match=r"\(N, 5\+\)"):
        ByteTrack().update(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="embeddings"):
        DeepSort().update(np.ones((2, 5)), embeddings=np.ones((3, 8)))


@pytest.mark.slow
def test_sort_reproduces_the_paper_on_tud_campus(shared_data: Path) -> None:
    from citytrack.data.formats.mot import load_sequence
    from citytrack.eval.mot_metrics import evaluate_mot
    from citytrack.inference.mot import track_sequence

    seq = load_sequence(shared_data / "mot15" / "TUD-Campus")
    table, _ = track_sequence(Sort(), seq.det, seq.info.seq_length, seq.info.frame_rate)
    metrics = evaluate_mot(seq.gt, table)
    assert abs(metrics["MOTA"] - 62.7) <= 1.0
    assert abs(metrics["IDs"] - 6) <= 2
