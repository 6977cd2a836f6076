"""AIC23 offline association (`multicam=offline`): each numbered step on a hand-made case, then end to end."""

from __future__ import annotations

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from citytrack.multicam.offline import (
    OfflineAssociator,
    drop_small_anchors,
    hungarian_labels,
    id_reassignment,
    interpolate_gaps,
    remove_boundary_boxes,
    sample_anchor_rows,
    temporal_vote,
    view_outliers_and_means,
    ward_anchors,
    world_guided_anchors,
)
from citytrack.multicam.tracks import (
    CAM,
    FRAME,
    GLOBAL_ID,
    LOCAL_ID,
    SCT_COLUMNS,
    XWORLD,
    YWORLD,
    CameraInfo,
    CrossCameraAssociator,
    SceneTracks,
)

PUBLISHED = {"anchor_world_weight": 0.0, "assignment_world_weight": 0.0, "anchor_min_boxes": 1}


def ids_of(out, cam):
    """{local id: global id} of one camera's rows."""
    rows = out[out[:, CAM] == cam]
    return {int(lid): int(gid) for lid, gid in rows[:, [LOCAL_ID, GLOBAL_ID]]}


def row(cam, lid, frame, x=100.0, y=100.0, w=40.0, h=100.0, xw=0.0, yw=0.0, score=0.9, gid=-1.0):
    return [cam, lid, frame, x, y, w, h, xw, yw, score, gid]


# ----------------------------------------------------------------------------- 2. anchors
def test_anchor_rows_sample_frames_score_and_relative_area():
    table = np.array([
        row(1, 1, 0), row(1, 1, 5), row(1, 1, 10),       # frames 0 and 10 are anchor frames (stride 10)
        row(1, 2, 10, score=0.5),                         # not confident
        row(2, 3, 10, w=10, h=20),                        # 200 px^2: 0.1% of 640x360, large enough below
    ], dtype=float)
    area = np.array([640 * 360.0] * 5)
    assert sample_anchor_rows(table, area, 10, 0.6, 0.0).tolist() == [0, 2, 4]
    assert sample_anchor_rows(table, area, 10, 0.6, 0.005).tolist() == [0, 2]  # 200 px^2 < 0.5% of the image
    assert sample_anchor_rows(table, area, 5, 0.6, 0.0).tolist() == [0, 1, 2, 4]
    # frames read with a stride of 3 (0, 3, 6, ...): the first frame of each 10-frame window is sampled
    strided = np.array([row(1, 1, f) for f in range(0, 30, 3)], dtype=float)
    anchors = sample_anchor_rows(strided, np.full(len(strided), 640 * 360.0), 10, 0.6, 0.0)
    assert strided[anchors, FRAME].tolist() == [0, 12, 21]


def test_ward_cut_counts_people_by_merge_distance():
    # two singletons: Ward merge distance = their Euclidean distance (sklearn/scipy convention)
    pts = np.array([[0.0, 0.0], [3.0, 0.0]])
    assert len(np.unique(ward_anchors(pts, 2.9))) == 2
    assert len(np.unique(ward_anchors(pts, 3.1))) == 1
    rng = np.random.default_rng(0)
    centres = np.eye(3) * 5
    feats = np.repeat(centres, 6, axis=0) + rng.normal(0, 0.1, (18, 3))
    labels = ward_anchors(feats, 3.0)
    assert [len(np.unique(labels[i * 6 : i * 6 + 6])) for i in range(3)] == [1, 1, 1]
    assert len(np.unique(labels)) == 3


def test_world_guided_anchors_join_colocated_and_split_apart():
    # boxes 0, 1: tracks seen together 0.1 m apart; box 2: seen 3 m from both; the same appearance for all
    feats = np.tile([1.0, 0.0], (3, 1))
    dist = np.array([[0.0, 0.1, 2.0], [0.1, 0.0, 2.0], [2.0, 2.0, 0.0]])
    labels = world_guided_anchors(feats, dist, 1.0, 0.6, 0.35)
    assert labels[0] == labels[1] != labels[2]
    # never seen together (NaN): appearance alone decides
    unknown = np.full((3, 3), np.nan)
    feats = np.array([[1.0, 0.0], [0.9, np.sqrt(1 - 0.81)], [0.0, 1.0]])
    labels = world_guided_anchors(feats, unknown, 1.0, 0.6, 0.35)
    assert labels[0] == labels[1] != labels[2]
    # ReID off: the world alone
    labels = world_guided_anchors(None, dist, 1.0, 0.6, 0.35)
    assert labels[0] == labels[1] != labels[2]


def test_small_anchors_are_dropped_and_the_rest_renumbered():
    rows, labels = drop_small_anchors(np.arange(10, 17), np.array([0, 0, 0, 1, 2, 2, 2]), 3)
    assert rows.tolist() == [10, 11, 12, 14, 15, 16] and labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert drop_small_anchors(np.arange(3), np.array([0, 1, 1]), 1)[1].tolist() == [0, 1, 1]  # published


# ----------------------------------------------------------------------------- 3. Hungarian
def test_hungarian_gives_distinct_anchors_and_respects_the_gate():
    cost = np.array([[0.1, 0.3], [0.2, 0.9], [0.15, 0.2]])
    labels = hungarian_labels(cost, None)
    assert sorted(labels[labels >= 0].tolist()) == [0, 1] and (labels == -1).sum() == 1  # 3 rows, 2 anchors
    assert labels.tolist() == [0, -1, 1]  # the minimum total cost 0.1 + 0.2, not each row's best anchor
    gated = hungarian_labels(np.array([[0.1, 0.8], [0.7, 0.9]]), 0.5)
    assert gated.tolist() == [0, -1]


# ----------------------------------------------------------------------------- 4. voting
def test_temporal_vote_chunks_and_trailing_chunk():
    labels = np.array([1, 1, 2, 2, 2, 1, 0, 0])
    # chunks of 3: [1 1 2] -> 1, [2 2 1] -> 2, trailing [0 0] inherits 2 although its own majority is 0
    assert temporal_vote(labels, 3).tolist() == [1, 1, 1, 2, 2, 2, 2, 2]
    # a lone partial chunk takes its own majority
    assert temporal_vote(np.array([3, 3, 1]), 5).tolist() == [3, 3, 3]
    # ties go to the label seen first (Counter.most_common); unlabelled rows do not vote
    assert temporal_vote(np.array([2, 1]), 2).tolist() == [2, 2]
    assert temporal_vote(np.array([-1, -1, -1, 4, -1, 4]), 3).tolist() == [4] * 6
    assert temporal_vote(np.array([-1, -1]), 3).tolist() == [-1, -1]


# ----------------------------------------------------------------------------- 5. STCRA
def views(frame, people, mislabel=None):
    """Cameras 1-4 each see the people {id: ground point}; `mislabel` = (cam, wrong id) for id 1's view."""
    rows = []
    for cam in (1, 2, 3, 4):
        for gid, (xw, yw) in people.items():
            label = mislabel[1] if mislabel and cam == mislabel[0] and gid == 1 else gid
            rows.append(row(cam, 10 * cam + gid, frame, x=100 * gid, xw=xw + 0.05 * cam, yw=yw, gid=label))
    return rows


def test_stcra_outliers_need_more_than_two_views_and_weighted_means():
    keys = np.array([[0, 1]] * 3 + [[0, 2]] * 2 + [[0, 3]] * 3, dtype=float)
    points = np.array([[0, 0], [0.2, 0], [4, 0],      # id 1: the third view is 4 m from both others
                       [5, 5], [9, 5],                # id 2: two views far apart, but only two
                       [0, 9], [3, 9], [6, 9]])       # id 3: every view is far from every other
    weights = np.array([3.0, 1, 1, 1, 1, 1, 1, 1])
    outlier, groups, means = view_outliers_and_means(keys, points.astype(float), weights, 1.5)
    assert outlier.tolist() == [False, False, True, False, False, False, False, False]
    assert groups.tolist() == [[0, 1], [0, 2], [0, 3]]
    assert np.allclose(means, [[0.05, 0], [7, 5], [3, 9]])  # id 1: (3 x 0 + 1 x 0.2) / 4, outlier left out


def test_stcra_moves_an_outlier_view_and_leaves_consistent_ones():
    people = {1: (0.0, 0.0), 2: (5.0, 0.0)}
    # camera 4 calls person 1 "2"; it does not see person 2, so (cam 4, id 2) is only that wrong box
    table = np.array(views(0, people, mislabel=(4, 2)))
    table = table[~((table[:, CAM] == 4) & (table[:, LOCAL_ID] == 42))]
    out = id_reassignment(table, dis_thr=1.5, conf_thr=0.75)
    assert len(out) == len(table)
    moved = out[(out[:, CAM] == 4)]
    assert moved[:, GLOBAL_ID].tolist() == [1]  # the outlier view now has the id of the people it stands with
    rest = out[out[:, CAM] != 4]
    assert np.array_equal(rest[:, GLOBAL_ID], table[table[:, CAM] != 4][:, GLOBAL_ID])
    # consistent views (all within dis_thr) stay as they are
    consistent = np.array(views(0, people))
    assert np.array_equal(id_reassignment(consistent, 1.5, 0.75)[:, GLOBAL_ID], consistent[:, GLOBAL_ID])


def test_stcra_does_not_move_an_outlier_onto_an_occupied_id():
    people = {1: (0.0, 0.0), 2: (5.0, 0.0), 3: (5.2, 3.0)}
    table = np.array(views(0, people))
    # camera 4 swaps persons 2 and 3: each wrong box's true id is taken in camera 4 by the other one
    table[(table[:, CAM] == 4) & (table[:, LOCAL_ID] == 42), GLOBAL_ID] = 3
    table[(table[:, CAM] == 4) & (table[:, LOCAL_ID] == 43), GLOBAL_ID] = 2
    out = id_reassignment(table, dis_thr=1.5, conf_thr=0.75)
    # both boxes are outliers, but each one's nearest id is held by the other box in camera 4 (and the
    # second-nearest is its own): the published rule moves neither, so a swap is never made
    assert ids_of(out, 4) == {41: 1, 42: 3, 43: 2}
    # without camera 4's box of person 3, id 2 is free there and the outlier moves to it
    out = id_reassignment(table[~((table[:, CAM] == 4) & (table[:, LOCAL_ID] == 43))], 1.5, 0.75)
    assert ids_of(out, 4) == {41: 1, 42: 2}


def test_stcra_duplicates_near_identical_keep_best_far_apart_reassigned():
    people = {1: (0.0, 0.0), 2: (5.0, 0.0)}
    table = views(0, people)
    table.append(row(1, 99, 0, x=102, xw=0.1, score=0.95, gid=1))  # near-identical 2nd box of id 1, better
    out = id_reassignment(np.array(table), 1.5, 0.75)
    assert len(out) == 8 and 99 in out[:, LOCAL_ID] and 11 not in out[:, LOCAL_ID]
    table = [r for r in views(0, people) if not (r[CAM] == 1 and r[LOCAL_ID] == 12)]
    table.append(row(1, 99, 0, x=600, xw=5.0, gid=1))               # camera 1 calls person 2 "1" as well
    out = id_reassignment(np.array(table), 1.5, 0.75)
    assert ids_of(out, 1) == {11: 1, 99: 2}


# ----------------------------------------------------------------------------- 6. interpolation
def test_interpolation_fills_short_gaps_only_within_distance():
    frames = [*range(10), *range(15, 21)]  # gap of 5 missing frames
    near = np.array([row(1, 1, f, x=100 + 2 * f, xw=0.1 * f, gid=1) for f in frames])
    out = interpolate_gaps(near, np.full(len(near), 640.0), n_min=5, n_dti=20, dti_distance_thr=0.104)
    assert sorted(out[:, FRAME].tolist()) == list(range(21))
    filled = out[out[:, FRAME] == 12][0]
    assert filled[3] == pytest.approx(124.0) and filled[XWORLD] == pytest.approx(1.2)
    # the same gap, but the box jumps 100 px (> 0.104 x 640 = 66.6 px): not filled; on a 1920 px camera it is
    far = near.copy()
    far[far[:, FRAME] >= 15, 3] += 100
    assert len(interpolate_gaps(far, np.full(len(far), 640.0), 5, 20, 0.104)) == len(far)
    assert len(interpolate_gaps(far, np.full(len(far), 1920.0), 5, 20, 0.104)) == len(far) + 5
    # a gap of n_dti frames or more is not filled, nor a track of n_min rows or fewer
    long_gap = np.array([row(1, 1, f, gid=1) for f in [*range(10), *range(30, 40)]])
    assert len(interpolate_gaps(long_gap, np.full(20, 640.0), 5, 20, 0.104)) == 20
    short = np.array([row(1, 1, f, gid=1) for f in (0, 1, 2, 8, 9)])
    assert len(interpolate_gaps(short, np.full(5, 640.0), 5, 20, 0.104)) == 5


# ----------------------------------------------------------------------------- 7. boundary boxes
def test_boundary_removal_uses_each_cameras_image_size():
    boxes = np.array([
        row(1, 1, 0, x=560, y=100, w=80, h=60),    # touches the right edge of a 640 px image, w/h 1.33: kept
        row(1, 2, 0, x=560, y=100, w=120, h=60),   # beyond the right edge: clipped w/h 80/60 = 1.33 -> kept
        row(1, 3, 0, x=600, y=100, w=120, h=60),   # clipped to 40/60 = 0.67 -> kept; y unclipped
        row(1, 4, 0, x=620, y=100, w=40, h=140),   # clipped 20/140 = 0.14 < 0.3 -> dropped
        row(1, 5, 0, x=300, y=0, w=40, h=100),     # touches the top -> dropped
        row(1, 6, 0, x=300, y=300, w=120, h=60),   # touches the bottom of a 360 px image, w/h 2: dropped
    ])
    small = np.tile([640.0, 360.0], (len(boxes), 1))
    kept = remove_boundary_boxes(boxes, small, 0.00185, 0.3, 1.6)
    assert kept[:, LOCAL_ID].tolist() == [1, 2, 3]
    large = np.tile([1920.0, 1080.0], (len(boxes), 1))   # the same boxes are inside a 1920x1080 image
    assert remove_boundary_boxes(boxes, large, 0.00185, 0.3, 1.6)[:, LOCAL_ID].tolist() == [1, 2, 3, 4, 6]


# ----------------------------------------------------------------------------- end to end
CAMERAS = {c: CameraInfo(c, (1920, 1080)) for c in (1, 2, 3)}


def walkers(seed: int = 0, frames: int = 60, feat_noise: float = 0.5):
    """3 people walking straight lines seen by 3 cameras; every per-camera track is cut in two local ids
    (with a 3-frame gap), and camera 3 loses person 2 for the first third. Features: one direction per
    person plus noise; world points with 10 cm noise. Rows are sorted by frame, in random order within one."""
    rng = np.random.default_rng(seed)
    start = np.array([[0.0, 0.0], [0.0, 3.0], [6.0, 6.0]])
    vel = np.array([[0.1, 0.0], [0.08, 0.02], [-0.05, -0.08]])
    base = rng.normal(size=(3, 32))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    rows, feats, truth = [], [], []
    for f in range(frames):
        for cam in CAMERAS:
            for p in range(3):
                cut = 20 + 10 * cam + 3 * p
                if cut <= f < cut + 3 or (cam == 3 and p == 2 and f < frames // 3):
                    continue
                lid = 10 * cam + p + (5 if f >= cut else 0)
                xy = start[p] + vel[p] * f + rng.normal(0, 0.1, 2)
                rows.append(row(cam, lid, f, x=300 + 400 * p + 3 * f, y=400, w=80, h=200, xw=xy[0], yw=xy[1]))
                v = base[p] + feat_noise * rng.normal(size=32) / np.sqrt(32)
                feats.append(v / np.linalg.norm(v))
                truth.append(p)
    order = np.lexsort((rng.random(len(rows)), np.array(rows)[:, FRAME]))  # sorted by frame, shuffled within
    return np.array(rows)[order], np.array(feats, np.float32)[order], np.array(truth)[order]


def consistent_ids(out: np.ndarray, table: np.ndarray, truth: np.ndarray) -> bool:
    """Every person has exactly one global id over all cameras and frames, and no two people share one."""
    person_of = {tuple(r[[CAM, LOCAL_ID, FRAME]]): t for r, t in zip(table, truth, strict=True)}
    keys = [tuple(r[[CAM, LOCAL_ID, FRAME]]) for r in out]
    pairs = {(person_of[k], gid) for k, gid in zip(keys, out[:, GLOBAL_ID], strict=True) if k in person_of}
    return len(pairs) == 3 == len({p for p, _ in pairs}) == len({g for _, g in pairs})


@pytest.mark.parametrize("kwargs", [{}, PUBLISHED], ids=["world-guided", "published"])
def test_fragmented_tracks_of_three_people_get_three_global_ids(kwargs):
    table, feats, truth = walkers()
    assert len(np.unique(table[:, [CAM, LOCAL_ID]], axis=0)) == 18
    assoc = OfflineAssociator(**kwargs)
    assoc.reset(CAMERAS, fps=10.0)
    assert (assoc.update(0, table[table[:, FRAME] == 0], feats[table[:, FRAME] == 0]) == -1).all()
    out = assoc.finish(SceneTracks(table, feats, CAMERAS, 10.0))
    assert out.shape[1] == len(SCT_COLUMNS) and (out[:, GLOBAL_ID] >= 1).all()
    assert sorted(np.unique(out[:, GLOBAL_ID]).tolist()) == [1, 2, 3]
    assert consistent_ids(out, table, truth)
    # the 3-frame gaps of the cut tracks are interpolated (the local id of the earlier piece is kept)
    assert len(out) == len(table) + 3 * 3 * 3
    assert np.isfinite(out[:, [XWORLD, YWORLD]]).all()


def test_reid_off_clusters_on_world_position():
    table, _, truth = walkers(seed=1)
    out = OfflineAssociator().finish(SceneTracks(table, None, CAMERAS, 10.0))
    assert sorted(np.unique(out[:, GLOBAL_ID]).tolist()) == [1, 2, 3]
    assert consistent_ids(out, table, truth)
    with pytest.raises(ValueError, match="anchor_world_weight"):
        OfflineAssociator(**PUBLISHED).finish(SceneTracks(table, None, CAMERAS, 10.0))


def test_published_appearance_only_fails_where_features_cannot_tell_people_apart():
    # identical appearance for everyone: the published (appearance-only) anchors see one person, so
    # the ids come out wrong; the world-guided anchors still find the three people
    table, feats, truth = walkers(seed=2, feat_noise=0.0)
    feats[:] = feats[0]
    tracks = SceneTracks(table, feats, CAMERAS, 10.0)
    assert not consistent_ids(OfflineAssociator(**PUBLISHED).finish(tracks), table, truth)
    assert consistent_ids(OfflineAssociator().finish(tracks), table, truth)


def test_config_builds_the_associator(config_dir):
    assoc = instantiate(OmegaConf.load(config_dir / "multicam" / "offline.yaml"))
    assert isinstance(assoc, OfflineAssociator) and isinstance(assoc, CrossCameraAssociator)
    assert assoc.stcra_passes == [(2.5, 0.65), (2.0, 0.70), (1.5, 0.75)]
    empty = SceneTracks(np.zeros((0, len(SCT_COLUMNS))), None, {}, 10.0)
    assert assoc.finish(empty).shape == (0, len(SCT_COLUMNS))
