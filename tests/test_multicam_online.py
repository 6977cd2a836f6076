"""AIC24 online association (`multicam=online`) on hand-made multi-camera tracks."""

from __future__ import annotations

import numpy as np
import pytest

from citytrack.multicam.online import OnlineAssociator, half_cosine, minmax
from citytrack.multicam.percamera import PerCameraIds
from citytrack.multicam.tracks import CAM, FRAME, GLOBAL_ID, LOCAL_ID, SCT_COLUMNS, CameraInfo, SceneTracks

CAMERAS = {c: CameraInfo(c, (640, 360)) for c in (1, 2, 3)}


def walkers(n_people: int = 3, frames: int = 40, seed: int = 0, fragment: bool = True, feat_noise: float = 0.3):
    """People walking straight lines, each seen by every camera with its own local ids.

    Camera 2 fragments every track halfway (a new local id), as a per-camera tracker does after an
    occlusion. Features: one direction per person plus noise; world points with 5 cm noise.
    """
    rng = np.random.default_rng(seed)
    start = rng.uniform(-6, 6, (n_people, 2)) * np.array([1.0, 0.3]) + np.arange(n_people)[:, None] * np.array([0, 3.0])
    vel = rng.uniform(-0.1, 0.1, (n_people, 2))
    base = rng.normal(size=(n_people, 32))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    rows, feats, truth = [], [], []
    for f in range(frames):
        for cam in CAMERAS:
            for p in range(n_people):
                lid = 10 * cam + p + (100 if fragment and cam == 2 and f >= frames // 2 else 0)
                xy = start[p] + vel[p] * f + rng.normal(0, 0.05, 2)
                row = np.full(len(SCT_COLUMNS), -1.0)
                row[:10] = [cam, lid, f, 100 + 60 * p, 80, 40, 120, xy[0], xy[1], 0.9]
                rows.append(row)
                v = base[p] + feat_noise * rng.normal(size=32) / np.sqrt(32)
                feats.append(v / np.linalg.norm(v))
                truth.append(p)
    return np.array(rows), np.array(feats, np.float32), np.array(truth)


def replay(assoc, table: np.ndarray, feats: np.ndarray | None) -> np.ndarray:
    assoc.reset(CAMERAS, 10.0)
    t = table.copy()
    for f in np.unique(t[:, FRAME]):
        sel = t[:, FRAME] == f
        t[sel, GLOBAL_ID] = assoc.update(int(f), t[sel], None if feats is None else feats[sel])
    return t


def consistent(table: np.ndarray, truth: np.ndarray) -> bool:
    """Every person has one global id (on every row with an id), distinct per person."""
    ids = {}
    for p in np.unique(truth):
        g = np.unique(table[(truth == p) & (table[:, GLOBAL_ID] >= 1), GLOBAL_ID])
        if len(g) != 1:
            return False
        ids[p] = g[0]
    return len(set(ids.values())) == len(ids)


@pytest.mark.parametrize("use_features", [True, False])
def test_online_joins_fragmented_tracks_across_cameras(use_features: bool) -> None:
    table, feats, truth = walkers()
    out = replay(OnlineAssociator(min_hits=3), table, feats if use_features else None)
    assert consistent(out, truth)
    # from the frame a cluster is activated on, every row has an id (first frame: at once)
    assert (out[:, GLOBAL_ID] >= 1).mean() > 0.95


def test_online_uses_no_future_frames() -> None:
    """Ids of the first half are the same whether or not the second half exists."""
    table, feats, truth = walkers(seed=3)
    full = replay(OnlineAssociator(min_hits=3), table, feats)
    half = table[:, FRAME] < 20
    part = replay(OnlineAssociator(min_hits=3), table[half], feats[half])
    np.testing.assert_array_equal(full[half, GLOBAL_ID], part[:, GLOBAL_ID])


def test_online_finish_drops_rows_without_id() -> None:
    table, feats, _ = walkers(frames=5)
    t = replay(OnlineAssociator(), table, feats)
    t[0, GLOBAL_ID] = -1
    out = OnlineAssociator().finish(SceneTracks(t, feats, CAMERAS, 10.0))
    assert len(out) == len(t) - 1 and (out[:, GLOBAL_ID] >= 1).all()


def test_new_person_waits_for_min_hits() -> None:
    """After the first frame a new cluster gives ids only once confirmed (published: > min_hits updates)."""
    table, feats, truth = walkers(n_people=2, frames=30, fragment=False)
    late = (truth == 1) & (table[:, FRAME] < 10)  # person 1 appears at frame 10
    table, feats, truth = table[~late], feats[~late], truth[~late]
    out = replay(OnlineAssociator(min_hits=5, reference_fps=10.0), table, feats)  # counts taken at 10 fps
    p1 = truth == 1
    assert (out[p1 & (out[:, FRAME] < 15), GLOBAL_ID] < 1).all()
    assert (out[p1 & (out[:, FRAME] >= 16), GLOBAL_ID] >= 1).all()
    assert consistent(out, truth)


def test_two_people_in_one_camera_never_share_an_id() -> None:
    table, feats, _ = walkers(n_people=4, seed=5)
    out = replay(OnlineAssociator(min_hits=2), table, feats)
    for (cam, f) in {(int(r[CAM]), int(r[FRAME])) for r in out}:
        ids = out[(out[:, CAM] == cam) & (out[:, FRAME] == f), GLOBAL_ID]
        ids = ids[ids >= 1]
        assert len(ids) == len(np.unique(ids))


def test_per_camera_baseline_counts_every_camera_track() -> None:
    table, feats, truth = walkers()
    out = replay(PerCameraIds(), table, feats)
    n_tracks = len({(int(c), int(lid)) for c, lid in table[:, [CAM, LOCAL_ID]]})
    assert len(np.unique(out[:, GLOBAL_ID])) == n_tracks
    assert not consistent(out, truth)


def test_cost_helpers() -> None:
    a = np.eye(3)
    np.testing.assert_allclose(half_cosine(a, a), [[0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    np.testing.assert_allclose(minmax(np.array([[2.0, 4.0], [3.0, 6.0]])), [[0, 0.5], [0.25, 1]])
    assert not minmax(np.full((2, 2), 3.0)).any()
    with pytest.raises(ValueError, match="normalize"):
        OnlineAssociator(normalize="zscore")
