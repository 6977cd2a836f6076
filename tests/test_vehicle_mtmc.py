"""City-scale vehicle tracking (AI City 2019 Track 1): travel-time and direction constraints,
constrained linking, GPS grounds, and the `infer.py task=vehicle_mtmc` runner on a tiny city."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from citytrack.data.formats.aicity import aic24
from citytrack.data.formats.aicity.aic19 import read_aic19_ground_truth
from citytrack.data.formats.errors import FormatError
from citytrack.data.synth import generate
from citytrack.data.synth.config import compose_config
from citytrack.eval.mtmc import evaluate_aic19_mtmc
from citytrack.models.detector.postprocess import suppress_contained
from citytrack.multicam.topology import (
    CameraTopology,
    Tracklet,
    TravelModel,
    feasible_pairs,
    ground_scale,
    overlap_evidence,
    pair_costs,
    pair_feasible,
    to_metres,
)
from citytrack.multicam.vehicle_link import (
    LinkConfig,
    constrained_average_linkage,
    global_rows,
    ground_truth_tracklets,
    link_tracklets,
)
from citytrack.multicam.vehicle_pipeline import (
    FileDetections,
    NetworkDetections,
    VehiclePipeline,
    in_roi,
    interpolate_track_gaps,
    roi_with_margin,
)
from citytrack.tracking.deepsort import DeepSort
from citytrack.utils.paths import config_dir as conf_root

MODEL = TravelModel(v_min=5.0, v_max=25.0, max_wait=10.0, slack=1.0, overlap_distance=8.0)


def drive(camera: int, t0: float, t1: float, p0: tuple[float, float], velocity: tuple[float, float],
          feature: np.ndarray | None = None, label: int = -1) -> Tracklet:
    """A tracklet of a vehicle driving at constant `velocity` (m/s) from `p0` at scene time `t0`, at 10 fps."""
    times = np.arange(t0, t1 + 1e-9, 0.1)
    ground = np.asarray(p0) + (times - t0)[:, None] * np.asarray(velocity)
    return Tracklet(camera, 1, np.arange(len(times)) + 1.0, times, ground, feature, label=label)


# ----------------------------------------------------------------------------- constraints
def test_travel_time_window_and_direction() -> None:
    a = drive(1, 0.0, 3.0, (0.0, 0.0), (10.0, 0.0))  # leaves cam 1 at x=30 m, t=3 s, heading +x
    on_time = drive(2, 10.0, 12.0, (100.0, 0.0), (10.0, 0.0))  # 70 m in 7 s: 10 m/s
    too_fast = drive(2, 3.5, 5.0, (100.0, 0.0), (10.0, 0.0))  # 70 m in 0.5 s
    too_slow = drive(2, 40.0, 42.0, (100.0, 0.0), (10.0, 0.0))  # 70 m in 37 s > 70/5 + 10 + 1
    wrong_way = drive(2, 10.0, 12.0, (100.0, 0.0), (-10.0, 0.0))  # arrives driving back towards cam 1
    behind = drive(2, 10.0, 12.0, (-40.0, 0.0), (-10.0, 0.0))  # lies behind a vehicle that left heading +x
    assert pair_feasible(a, on_time, MODEL) and pair_feasible(on_time, a, MODEL)
    assert not pair_feasible(a, too_fast, MODEL)
    assert not pair_feasible(a, too_slow, MODEL)
    assert not pair_feasible(a, wrong_way, MODEL)
    assert not pair_feasible(a, behind, MODEL)


def test_overlapping_cameras_must_agree_on_the_ground() -> None:
    a = drive(1, 0.0, 4.0, (0.0, 0.0), (10.0, 0.0))
    same = drive(2, 2.0, 6.0, (21.0, 1.0), (10.0, 0.0))  # at t=2..4 both near x=20..40
    other = drive(2, 2.0, 6.0, (21.0, 30.0), (10.0, 0.0))  # the same times, 30 m away
    assert pair_feasible(a, same, MODEL)
    assert not pair_feasible(a, other, MODEL)


def test_one_camera_never_holds_one_vehicle_twice_at_once() -> None:
    a = drive(1, 0.0, 4.0, (0.0, 0.0), (10.0, 0.0))
    b = drive(1, 2.0, 6.0, (20.0, 3.0), (10.0, 0.0))
    later = drive(1, 5.0, 6.0, (52.0, 0.0), (10.0, 0.0))  # a fragment of `a` after a 1 s gap
    assert not pair_feasible(a, b, MODEL)
    assert pair_feasible(a, later, MODEL)
    ok = feasible_pairs([a, b], None)  # appearance-only ablation keeps this rule
    assert not ok[0, 1]


def test_a_part_box_track_riding_on_its_vehicle_may_join_it_and_is_reported_once() -> None:
    """Two tracks at once in one camera are two vehicles, unless their ground points stay within
    `same_camera_duplicate` metres (a part box on the vehicle's own box); in the submission the
    vehicle then keeps one box per frame, the longer track's."""
    import dataclasses

    whole = drive(1, 0.0, 4.0, (0.0, 0.0), (10.0, 0.0))
    part = drive(1, 1.0, 2.0, (11.0, 0.5), (10.0, 0.0))       # 1.1 m off the whole box's ground point
    neighbour = drive(1, 1.0, 2.0, (10.0, 3.5), (10.0, 0.0))  # the next lane, 3.5 m over
    model = dataclasses.replace(MODEL, same_camera_duplicate=3.0)
    assert not pair_feasible(whole, part, MODEL)  # off by default
    assert pair_feasible(whole, part, model) and not pair_feasible(whole, neighbour, model)

    frames = [np.arange(1, 42), np.arange(11, 22), np.arange(1, 30)]
    rows = np.vstack([np.column_stack([np.full(len(f), cam), np.full(len(f), tid), f, np.zeros((len(f), 4))])
                      for cam, tid, f in ((1, 7, frames[0]), (1, 8, frames[1]), (2, 3, frames[2]))])
    rows[:, 3] = np.repeat([0.0, 50.0, 0.0], [len(f) for f in frames])  # x tells the tracks apart
    tracklets, start = [], 0
    for cam, f in zip((1, 1, 2), frames, strict=True):
        tracklets.append(Tracklet(cam, 0, f.astype(float), f / 10.0, np.zeros((len(f), 2)), rows=np.arange(start, start + len(f))))
        start += len(f)
    out = global_rows(rows, tracklets, np.array([0, 0, 0]), min_cameras=2)
    key = out[:, [0, 2]]
    assert len(np.unique(key, axis=0)) == len(out) == 41 + 29  # one box per camera and frame
    assert (out[out[:, 0] == 1, 3] == 0.0).all()  # camera 1 keeps the longer (whole) track's boxes


def test_topology_windows_and_only_pairs() -> None:
    a = drive(1, 0.0, 3.0, (0.0, 0.0), (10.0, 0.0))
    b = drive(3, 10.0, 12.0, (100.0, 0.0), (10.0, 0.0))
    assert pair_feasible(a, b, MODEL, CameraTopology.from_config({"c001,c003": [5, 9]}))
    assert not pair_feasible(a, b, MODEL, CameraTopology.from_config({"1,3": [20, 30]}))
    assert not pair_feasible(a, b, MODEL, CameraTopology.from_config({"c001,c002": [5, 9]}, only_pairs=True))
    with pytest.raises(ValueError, match="c001,c003"):
        CameraTopology.from_config({"c001,c003": [9, 5]})


def test_fit_brackets_the_speeds_it_saw() -> None:
    rng = np.random.default_rng(0)
    tracklets = []
    for vid in range(8):
        speed = rng.uniform(8, 14)
        t_exit = 3.0
        gap = 70.0 / speed + (4.0 if vid == 5 else 0.0)  # one vehicle waits 4 s at a light on the way
        tracklets.append(drive(1, 0.0, t_exit, (0.0, 0.0), (speed, 0.0), label=vid))
        x_exit = speed * t_exit
        tracklets.append(drive(2, t_exit + gap, t_exit + gap + 2, (x_exit + 70.0, 0.0), (speed, 0.0), label=vid))
    model = TravelModel.fit(tracklets, quantile=0.0, margin=0.1)
    assert 4.0 < model.v_min < 8.0 and 14.0 < model.v_max < 16.0
    assert model.max_wait == pytest.approx(4.4, abs=0.01)  # the stop seen, widened by the margin
    assert model.fitted_on["transitions"] == 8
    with pytest.raises(ValueError, match="transitions"):
        TravelModel.fit(tracklets[:4])


def test_gps_grounds_become_metres() -> None:
    pts = np.array([[42.4960, -90.6860], [42.4970, -90.6860], [42.4960, -90.6850]])
    gps = ground_scale(pts)
    assert gps is not None and ground_scale(np.array([[0.0, 0.0], [70.0, 3.5], [35.0, -40.0]])) is None  # metres
    m = to_metres(pts, gps)
    assert np.linalg.norm(m[1] - m[0]) == pytest.approx(111.2, rel=0.01)  # 0.001 deg of latitude
    assert np.linalg.norm(m[2] - m[0]) == pytest.approx(111.2 * np.cos(np.deg2rad(42.496)), rel=0.01)


# ----------------------------------------------------------------------------- linking
def test_linkage_refuses_a_chain_through_an_impossible_pair() -> None:
    d = np.array([[0.0, 0.1, 0.2], [0.1, 0.0, 0.1], [0.2, 0.1, 0.0]])
    ok = np.ones((3, 3), dtype=bool)
    ok[0, 2] = ok[2, 0] = False
    labels = constrained_average_linkage(d, ok, threshold=0.5)
    assert labels[0] == labels[1] != labels[2]
    assert len(set(constrained_average_linkage(d, np.ones((3, 3), dtype=bool), 0.5).tolist())) == 1


def test_constraints_separate_look_alike_vehicles() -> None:
    """Two white cars with the same appearance, one in the east, one in the west: appearance alone
    merges all four tracklets, space-time keeps the two vehicles apart."""
    white = np.array([1.0, 0.0])
    east = [drive(1, 0.0, 3.0, (0.0, 0.0), (10.0, 0.0), white, 0), drive(2, 10.0, 12.0, (100.0, 0.0), (10.0, 0.0), white, 0)]
    west = [drive(3, 0.0, 3.0, (0.0, 500.0), (-10.0, 0.0), white, 1),
            drive(4, 10.0, 12.0, (-100.0, 500.0), (-10.0, 0.0), white, 1)]
    tracklets = east + west
    alone = link_tracklets(tracklets, LinkConfig(threshold=0.3, use_constraints=False))
    constrained = link_tracklets(tracklets, LinkConfig(threshold=0.3), MODEL)
    assert len(set(alone.tolist())) == 1
    assert constrained[0] == constrained[1] and constrained[2] == constrained[3] and constrained[0] != constrained[2]
    rows = np.zeros((8, 7))
    for k, t in enumerate(tracklets):
        t.rows = np.array([2 * k, 2 * k + 1])
        rows[t.rows, 0] = t.camera
    out = global_rows(rows, tracklets, constrained, min_cameras=2)
    assert sorted(set(out[:, 1].tolist())) == [1.0, 2.0]
    only_one_camera = global_rows(rows, tracklets, np.arange(4), min_cameras=2)
    assert len(only_one_camera) == 0


# ----------------------------------------------------------------------------- the runner on a tiny city
@pytest.fixture(scope="module")
def tiny_city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("city")
    cfg = compose_config(["layout=aic19", "cameras=4", "frames=80", "progress=false", "layout.city.vehicles=14",
                          "seed=5", f"out={out}"])
    generate(cfg)
    return out / "train" / "S01"


class OracleExtractor:
    """Appearance that names the vehicle: one-hot of the ground-truth id under the box centre, so the
    test measures the tracking and linking machinery, not a network."""

    dim = 64

    def __init__(self, scene: Path) -> None:
        gt, _ = read_aic19_ground_truth(scene)
        self.gt = gt
        self.camera = 0
        self.frame = 0

    def __call__(self, images: list[np.ndarray], boxes: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        for b in boxes:
            f = np.zeros((len(b), self.dim))
            for k, box in enumerate(b):
                close = np.abs(self.gt[:, 3:5] - box[:2]).sum(1) < 1.0
                vid = int(self.gt[close, 1][0]) if close.any() else 0
                f[k, vid % self.dim] = 1.0
            out.append(f)
        return out


def _config_tracker(name: str) -> Any:
    """A fresh tracker from `conf/tracker/<name>.yaml`, as `infer.py task=vehicle_mtmc tracker=<name>` builds it."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    with initialize_config_dir(config_dir=str(conf_root()), version_base="1.3"):
        cfg = compose("infer", overrides=["task=vehicle_mtmc", f"tracker={name}"])
    return instantiate(cfg.tracker)()  # the task makes it a factory: one fresh tracker per camera


@pytest.mark.parametrize("tracker", ["deepsort_vehicle", "botsort_vehicle"])
def test_pipeline_on_ground_truth_boxes_links_vehicles_across_cameras(tiny_city: Path, tracker: str) -> None:
    pipe = VehiclePipeline(FileDetections("gt"), lambda: _config_tracker(tracker),
                           OracleExtractor(tiny_city), LinkConfig(threshold=0.3), MODEL, progress=False)
    run = pipe.run(tiny_city)
    gt, _ = read_aic19_ground_truth(tiny_city)
    assert run.linked.shape[1] == 9 and len(run.linked)
    for gid in np.unique(run.linked[:, 1]):  # every reported vehicle spans two cameras (AIC19's rule)
        assert len(np.unique(run.linked[run.linked[:, 1] == gid, 0])) >= 2
    scores = evaluate_aic19_mtmc(gt, run.linked)
    assert scores["IDF1"] > 0.8, scores  # oracle appearance; misses are per-camera tracking of 8-px-high far vehicles
    # without appearance nothing can be linked: no vehicle spans two cameras
    blind = VehiclePipeline(FileDetections("gt"), lambda: DeepSort(n_init=2), None, LinkConfig(), MODEL, progress=False)
    assert len(blind.run(tiny_city).linked) == 0


def test_ground_truth_tracklets_and_roi(tiny_city: Path) -> None:
    tracklets = ground_truth_tracklets(tiny_city)
    assert tracklets and all(t.label == t.track_id for t in tracklets)
    assert all(np.all(np.diff(t.times) > 0) for t in tracklets)
    ok = feasible_pairs(tracklets, TravelModel())
    labels = np.array([t.label for t in tracklets])
    same = (labels[:, None] == labels[None, :]) & ~np.eye(len(labels), dtype=bool)
    assert ok[same].all()  # the true pairs are never refused by the default model
    from citytrack.data.formats.aicity.aic19_scene import read_aic19_scene

    setup = read_aic19_scene(tiny_city)[0]
    v, u = np.argwhere(setup.roi)[0]
    off = np.argwhere(~setup.roi)[0]
    boxes = np.array([[u - 5, v - 10, 10, 10], [off[1] - 5, off[0] - 10, 10, 10]], dtype=float)
    assert in_roi(setup.roi, boxes).tolist() == [True, False]


def test_roi_margin_keeps_boxes_just_off_a_thin_far_road() -> None:
    roi = np.zeros((40, 60), dtype=bool)
    roi[20, :] = True  # a far road, one pixel high
    boxes = np.array([[10, 12, 6, 10], [30, 3, 6, 10], [40, 1, 6, 8]], dtype=float)  # bottoms at rows 22, 13, 9
    assert in_roi(roi, boxes).tolist() == [False, False, False]
    assert in_roi(roi_with_margin(roi, 2), boxes).tolist() == [True, False, False]
    assert in_roi(roi_with_margin(roi, 7), boxes).tolist() == [True, True, False]
    assert roi_with_margin(roi, 0) is roi


def test_interpolate_track_gaps_fills_short_gaps_per_camera_with_unseen_features() -> None:
    # camera 1, track 5: frames 1, 4 (gap of 2) and 10 (gap of 5); camera 2, track 5: frames 1, 3
    tracks = np.array([
        [1, 5, 1, 0, 0, 10, 10],
        [1, 5, 4, 30, 0, 10, 40],
        [1, 5, 10, 90, 0, 10, 40],
        [2, 5, 1, 0, 0, 4, 4],
        [2, 5, 3, 2, 2, 4, 4],
    ], dtype=float)
    feats = np.arange(10, dtype=float).reshape(5, 2)
    out, f = interpolate_track_gaps(tracks, feats, max_gap=2)
    assert len(out) == 8 and f.shape == (8, 2)
    key = {(int(r[0]), int(r[2])): (r, ff) for r, ff in zip(out, f, strict=True)}
    assert set(key) == {(1, 1), (1, 2), (1, 3), (1, 4), (1, 10), (2, 1), (2, 2), (2, 3)}
    np.testing.assert_allclose(key[(1, 2)][0][3:7], [10, 0, 10, 20])
    np.testing.assert_allclose(key[(1, 3)][0][3:7], [20, 0, 10, 30])
    np.testing.assert_allclose(key[(2, 2)][0][3:7], [1, 1, 4, 4])
    assert np.isnan(key[(1, 2)][1]).all() and np.isnan(key[(2, 2)][1]).all()
    for (cam, frame), row in [((1, 1), 0), ((1, 4), 1), ((1, 10), 2), ((2, 1), 3), ((2, 3), 4)]:
        np.testing.assert_array_equal(key[(cam, frame)][1], feats[row])  # features follow their rows
    same, none = interpolate_track_gaps(tracks, None, max_gap=0)
    assert same is tracks and none is None


def test_missing_detection_file_names_it(tiny_city: Path) -> None:
    pipe = VehiclePipeline(FileDetections("mask_rcnn"), lambda: DeepSort(), None, LinkConfig(), MODEL, progress=False)
    with pytest.raises(FormatError, match="det_mask_rcnn.txt.*gt_jitter"):
        pipe.run(tiny_city)


def test_infer_task_writes_the_track1_submission(tiny_city: Path, tmp_path: Path, config_dir: Path) -> None:
    from hydra import compose, initialize_config_dir

    from citytrack.inference import run_task

    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = compose("infer", overrides=[
            "task=vehicle_mtmc", f"scene={tiny_city}", f"out={tmp_path}", "vehicle_detector=gt", "reid=none",
            "task.pipeline.progress=false", "task.video=true", f"paths.output_dir={tmp_path}", "device=cpu",
            "task.pipeline.zones.source=roi",
        ])
    metrics = run_task(cfg)
    table = aic24.read_track1(tmp_path / "track1.txt")
    assert table.shape[1] == 9
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["scenes"]["S01"]["camera_frames"] == 4 * 80
    assert (tmp_path / "S01_map.png").stat().st_size > 0 and (tmp_path / "S01.mp4").stat().st_size > 0
    assert "IDF1" in metrics and metrics["camera_frames_per_second"] > 0


def test_bad_scenarios_are_refused_naming_the_file(tiny_city: Path, tmp_path: Path) -> None:
    """A camera missing from cam_timestamp, an ROI of another size: the runner stops before decoding, naming the file."""
    import shutil

    import cv2

    root = tmp_path / "data"
    shutil.copytree(tiny_city.parent.parent / "cam_timestamp", root / "cam_timestamp")
    shutil.copytree(tiny_city, root / "train" / "S01")
    scene = root / "train" / "S01"
    pipe = VehiclePipeline(FileDetections("gt"), lambda: DeepSort(), None, LinkConfig(), MODEL, progress=False)
    stamps = root / "cam_timestamp" / "S01.txt"
    lines = stamps.read_text().splitlines()
    stamps.write_text("\n".join(line for line in lines if not line.startswith("c002")) + "\n")
    with pytest.raises(FormatError, match=r"S01\.txt.*c002"):
        pipe.run(scene)
    stamps.write_text("\n".join(lines) + "\n")
    cv2.imwrite(str(scene / "c003" / "roi.jpg"), np.zeros((10, 20), np.uint8))
    with pytest.raises(FormatError, match=r"c003/roi\.jpg"):
        pipe.run(scene)


def test_zone_maps_of_a_city_and_the_zone_links_its_ground_truth_drove(tiny_city: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from citytrack.data.formats.aicity.aic19_scene import read_aic19_scene
    from citytrack.multicam import topology
    from citytrack.multicam.zones import ZoneConfig

    setups = read_aic19_scene(tiny_city)
    maps = ZoneConfig(source="roi", band=12).maps(setups)
    assert sorted(maps) == [s.camera.camera_id for s in setups]
    for s in setups:  # every camera's road leaves the picture somewhere, and zones lie on the road
        assert maps[s.camera.camera_id].zone_ids and s.roi[maps[s.camera.camera_id].labels > 0].all()
    tracklets = ground_truth_tracklets(tiny_city, ZoneConfig(source="roi", band=12, tolerance=4))
    assert all(t.entry_zone >= 0 and t.exit_zone >= 0 for t in tracklets)
    assert any(t.entry_zone > 0 for t in tracklets) and any(t.exit_zone > 0 for t in tracklets)
    gt, _ = read_aic19_ground_truth(tiny_city)
    width, height = setups[0].image_size
    for t in tracklets:  # a zone end is a box within band + tolerance of the frame edge
        rows = gt[(gt[:, 0] == t.camera) & (gt[:, 1] == t.label)]
        for zone, frame in ((t.entry_zone, t.frames[0]), (t.exit_zone, t.frames[-1])):
            x, y, w, h = rows[rows[:, 2] == frame, 3:7][0]
            if zone > 0:
                assert min(x, width - x - w, height - y - h, y + h) <= 12 + 4
            u, v = int(np.clip(x + w / 2, 0, width - 1)), int(np.clip(y + h, 0, height - 1))
            roi = next(s.roi for s in setups if s.camera.camera_id == t.camera)
            if roi[v, u] and min(u, width - 1 - u, height - 1 - v, v) < 12:
                assert zone > 0  # on the road at the frame edge

    out = tmp_path / "topology.json"
    # the tiny city drives too few camera-to-camera transitions to fit speeds (TravelModel.fit wants 5)
    monkeypatch.setattr(topology.TravelModel, "fit", classmethod(lambda cls, tracklets, **kw: cls()))
    assert topology.main(["fit", str(tiny_city), "--zones", "roi", "--topology-out", str(out)]) == 0
    topo = topology.CameraTopology.from_config(None, file=out)
    # (80 frames: no vehicle of this tiny city leaves one camera's zone and reaches another's; the
    # links themselves are tested in test_vehicle_zones.py)
    assert out.is_file() and topo.zone_links == topology.fit_zone_links(tracklets)

    with pytest.raises(FormatError, match=r"c001/zones\.png.*missing"):
        ZoneConfig(source="file").maps(setups)
    with pytest.raises(ValueError, match="c009"):
        ZoneConfig(source="polygons", polygons={"c009": {1: [[0, 0], [9, 0], [9, 9]]}}).maps(setups)


def test_soft_cost_prefers_the_pair_whose_travel_time_fits_its_speed() -> None:
    from citytrack.multicam.topology import pair_cost

    a = drive(1, 0.0, 3.0, (0.0, 0.0), (10.0, 0.0))
    fits = drive(2, 10.0, 12.0, (100.0, 0.0), (10.0, 0.0))  # 70 m in 7 s at 10 m/s
    slow = drive(2, 17.0, 19.0, (100.0, 0.0), (10.0, 0.0))  # 70 m in 14 s: feasible (a stop), less likely
    assert pair_feasible(a, slow, MODEL)
    assert pair_cost(a, fits, MODEL) < 0.2 < pair_cost(a, slow, MODEL)
    near = drive(2, 2.0, 6.0, (21.0, 1.0), (10.0, 0.0))
    far = drive(2, 2.0, 6.0, (21.0, 6.0), (10.0, 0.0))
    assert pair_cost(a, near, MODEL) < pair_cost(a, far, MODEL)
    tracklets = [a, fits, slow]
    link = LinkConfig(threshold=0.45, st_weight=0.1)
    for t, f in zip(tracklets, ([1.0, 0.0], [0.6, 0.8], [0.6, 0.8]), strict=True):
        t.feature = np.asarray(f)
    labels = link_tracklets(tracklets, link, MODEL)  # appearance ties; the travel time decides
    assert labels[0] == labels[1] != labels[2]


def test_overlap_evidence_rewards_views_that_agree_on_the_ground() -> None:
    a = drive(1, 0.0, 4.0, (0.0, 0.0), (10.0, 0.0))
    near = drive(2, 2.0, 6.0, (20.0, 1.0), (10.0, 0.0))  # 1 m off `a` while both see it
    off = drive(2, 2.0, 6.0, (20.0, 6.0), (10.0, 0.0))  # 6 m off: still feasible (overlap_distance 8)
    gone = drive(2, 2.0, 6.0, (20.0, 30.0), (10.0, 0.0))  # infeasible
    later = drive(3, 10.0, 12.0, (100.0, 0.0), (10.0, 0.0))  # a sequential visit
    fragment = drive(1, 5.0, 6.0, (52.0, 0.0), (10.0, 0.0))  # one camera's fragment
    tracklets = [a, near, off, gone, later, fragment]
    feasible = feasible_pairs(tracklets, MODEL)
    ev = overlap_evidence(tracklets, MODEL, feasible, pair_costs(tracklets, MODEL, feasible), cap=3.0)
    assert ev[0, 1] == pytest.approx(1.0 / MODEL.overlap_scale - 1.0, abs=0.02) and ev[0, 1] < 0
    assert ev[0, 2] == pytest.approx(6.0 / MODEL.overlap_scale - 1.0, abs=0.02) and ev[0, 2] > 0
    assert ev[0, 3] == 0.0 and not feasible[0, 3]
    assert ev[0, 4] == 0.0 and feasible[0, 4]
    assert ev[0, 5] == 0.0 and feasible[0, 5]
    assert np.array_equal(ev, ev.T)
    both = np.ones((2, 2), dtype=bool)
    capped = overlap_evidence([a, off], MODEL, both, pair_costs([a, off], MODEL, both), cap=1.2)
    assert capped[0, 1] == pytest.approx(0.2)

    # appearance alone is just too far for either camera-2 track; the ground point picks the near one
    for t, f in zip((a, near, off), ([1.0, 0.0], [0.6, 0.8], [0.6, 0.8]), strict=True):
        t.feature = np.asarray(f)
    plain = LinkConfig(threshold=0.35)
    assert len(set(link_tracklets([a, near, off], plain, MODEL).tolist())) == 3
    labels = link_tracklets([a, near, off], LinkConfig(threshold=0.35, overlap_weight=0.1), MODEL)
    assert labels[0] == labels[1] != labels[2]


def test_same_camera_pairs_keep_their_appearance_distance_after_re_ranking(monkeypatch: pytest.MonkeyPatch) -> None:
    from citytrack.multicam import vehicle_link

    a = drive(1, 0.0, 3.0, (0.0, 0.0), (10.0, 0.0), np.array([1.0, 0.0]))
    b = drive(1, 4.0, 6.0, (40.0, 0.0), (10.0, 0.0), np.array([0.2, 0.98]))  # a fragment in time, another look
    c = drive(2, 10.0, 12.0, (130.0, 0.0), (10.0, 0.0), np.array([0.9, 0.44]))
    tracklets = [a, b, c]
    # stands in for re-ranking's neighbourhood effect: a and b share their partners, so they come out near
    monkeypatch.setattr(vehicle_link, "re_ranking", lambda q, g, qg, **_: np.array(
        [[0.0, 0.1, 0.3], [0.1, 0.0, 0.6], [0.3, 0.6, 0.0]], dtype=np.float32))
    feasible = feasible_pairs(tracklets, MODEL)
    assert feasible.all()
    appearance = 1.0 - 0.2 * 1.0 - 0.98 * 0.0
    plain = LinkConfig(threshold=0.5, rerank=True)
    floored = LinkConfig(threshold=0.5, rerank=True, same_camera_floor=True)
    d0 = vehicle_link.link_distance(tracklets, feasible, plain, MODEL)
    d1 = vehicle_link.link_distance(tracklets, feasible, floored, MODEL)
    assert d0[0, 1] == pytest.approx(0.1)
    assert d1[0, 1] == pytest.approx(appearance) and d1[1, 0] == d1[0, 1]
    assert d1[0, 2] == pytest.approx(0.3) and d1[1, 2] == pytest.approx(0.6)  # cross-camera pairs untouched
    assert link_tracklets(tracklets, plain, MODEL).tolist() == [0, 0, 0]  # two vehicles merged through re-ranking
    labels = link_tracklets(tracklets, floored, MODEL)
    assert labels[0] == labels[2] != labels[1]


class _ScaleDetector:
    """Stands in for a `CheckpointDetector`: a near car found at input 416 and, less surely, at 640,
    a far car only at 640, a weak box at 640; records the sizes and classes it was asked for."""

    img_size, batch_size, score_thresh, rect = 416, 4, None, True

    def __init__(self) -> None:
        self.calls: list[tuple[int | None, list[int]]] = []
        self.module = self
        self.hparams = type("H", (), {"class_names": ["person", "car", "bus", "truck"]})()

    def predict_images(self, x: Any, batch_size: int, score_thresh: Any, size: int | None, rect: bool,
                       classes: list[int]) -> list[np.ndarray]:
        self.calls.append((size, classes))
        near = [100.0, 100.0, 80.0, 60.0]
        if size == 416:
            rows = [[*near, 0.9]]
        else:
            rows = [[near[0] + 2, near[1], near[2], near[3], 0.8], [500.0, 50.0, 12.0, 8.0, 0.7], [300.0, 50.0, 12.0, 8.0, 0.2]]
        return [np.asarray(rows, dtype=np.float32) for _ in range(len(x))]


def test_multi_scale_detections_pool_both_passes_and_merge_duplicates() -> None:
    images = {1: np.zeros((36, 64, 3), np.uint8), 2: np.zeros((36, 64, 3), np.uint8)}
    single = _ScaleDetector()
    dets = NetworkDetections(single, min_score=0.5)
    dets.reset([])
    out = dets(images, 1)
    assert single.calls == [(416, [1, 2, 3])]  # one pass, vehicle classes only
    assert [len(out[c]) for c in (1, 2)] == [1, 1]

    multi = _ScaleDetector()
    dets = NetworkDetections(multi, min_score=0.5, img_sizes=[416, 640])
    dets.reset([])
    out = dets(images, 1)
    assert [size for size, _ in multi.calls] == [416, 640]
    for c in (1, 2):
        d = out[c][np.argsort(out[c][:, 0])]
        assert len(d) == 2  # the near car once (the surer 416 box), the far car from 640, the weak box cut
        np.testing.assert_allclose(d[0], [100.0, 100.0, 80.0, 60.0, 0.9], rtol=1e-6)
        np.testing.assert_allclose(d[1, :4], [500.0, 50.0, 12.0, 8.0])


def test_vehicle_tracker_follows_a_fast_near_vehicle_from_its_second_frame() -> None:
    """At 10 fps a near vehicle moves a fifth of its width per frame, and a new track has no
    velocity yet: its second box overlaps the first by IoU ~0.6, which a 30-fps person tracker's
    unconfirmed-track gate (IoU x score >= 0.59) refuses, so the vehicle was never tracked."""
    tracker = _config_tracker("botsort_vehicle")
    tracker.reset(frame_rate=10)
    for frame in (1, 2):  # the vehicle enters later (tracks born on the first frame confirm at once)
        tracker.update(np.zeros((0, 5)), frame=frame)
    ids = []
    for k in range(10):
        box = np.array([[450.0 - 38.0 * k, 190.0 - 4.0 * k, 190.0 - 4.0 * k, 90.0 - 2.0 * k, 0.75]])
        out = tracker.update(box, frame=k + 3)
        ids.append(int(out[0, 4]) if len(out) else None)
    assert ids[0] is None and None not in ids[1:]  # confirmed on its second frame
    assert len(set(ids[1:])) == 1


def test_containment_suppression_drops_part_boxes_and_keeps_neighbours() -> None:
    dets = np.array([
        [0.0, 0.0, 100.0, 50.0, 0.90],    # a truck
        [10.0, 10.0, 30.0, 20.0, 0.60],   # a car-sized box on its cab: IoU 0.12, wholly inside
        [90.0, 0.0, 50.0, 50.0, 0.80],    # the next vehicle in the queue, a fifth inside the truck
        [300.0, 0.0, 40.0, 30.0, 0.50],   # alone
        [305.0, 2.0, 60.0, 40.0, 0.45],   # bigger and less sure, the surer box 0.84 inside it
    ])
    keep = suppress_contained(dets, 0.8)
    assert keep.tolist() == [0, 2, 3]  # surest first; the part box and the loose duplicate go
    assert suppress_contained(dets, 0.99).tolist() == [0, 2, 3, 4]  # only the box wholly inside goes
    assert suppress_contained(dets, 1.0).tolist() == [0, 2, 1, 3, 4]  # nothing goes; surest first
    # through the runner: the part box survives IoU-NMS (merge_iou 0.5) and goes with contain=0.8
    images = {1: np.zeros((36, 64, 3), np.uint8)}
    det = _FixedDetector(dets)
    for contain, n in ((None, 5), (0.8, 3)):
        runner = NetworkDetections(det, min_score=0.4, merge_iou=0.5, contain=contain)
        runner.reset([])
        assert len(runner(images, 1)[1]) == n


class _FixedDetector(_ScaleDetector):
    """A `CheckpointDetector` stand-in returning the same rows for every image."""

    def __init__(self, rows: np.ndarray) -> None:
        super().__init__()
        self.rows = rows

    def predict_images(self, x: Any, batch_size: int, score_thresh: Any, size: int | None, rect: bool,
                       classes: list[int]) -> list[np.ndarray]:
        return [self.rows.astype(np.float32) for _ in range(len(x))]
