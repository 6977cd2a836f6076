"""Vehicle world (`layout=aic19`): AI City 2019 files read back exactly, calibration agrees with the
ground truth, determinism, vehicles keep their lanes, config errors name the key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from omegaconf import DictConfig

from citytrack.data.formats import mot
from citytrack.data.formats.aicity import aic24
from citytrack.data.formats.aicity.aic19 import read_aic19_calibration, read_aic19_ground_truth
from citytrack.data.formats.aicity.aic19_scene import read_aic19_scene
from citytrack.data.synth import SynthConfigError, generate
from citytrack.data.synth.city import CitySpec, build_city
from citytrack.data.synth.city_writer import WORLD_COLUMNS
from citytrack.data.synth.config import compose_config, validate
from citytrack.data.video import VideoReader
from citytrack.utils.boxes import clip_xywh

TINY = ["layout=aic19", "cameras=2", "frames=10", "width=256", "height=144", "progress=false",
        "layout.city.vehicles=10", "layout.city.grid=[2,1]", "seed=1"]
COL = {name: i for i, name in enumerate(WORLD_COLUMNS)}


def _cfg(out: Path, *extra: str) -> DictConfig:
    return compose_config([*TINY, f"out={out}", *extra])


@pytest.fixture(scope="module")
def city_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(_cfg(tmp_path_factory.mktemp("aic19")))


def _world_table(root: Path) -> np.ndarray:
    return np.loadtxt(root / "train" / "S01" / "gt_world.txt", delimiter=",", ndmin=2)


def test_reads_back_through_the_aic19_readers(city_dir: Path) -> None:
    cfg = _cfg(city_dir)
    city = build_city(CitySpec.from_config(cfg), seed=1)
    setups = read_aic19_scene(city_dir / "train" / "S01")
    assert [s.camera.name for s in setups] == ["c001", "c002"]
    for s, cam, offset in zip(setups, city.cameras, city.time_offsets, strict=True):
        assert s.image_size == (256, 144) and s.fps == 10.0 and s.time_offset == pytest.approx(offset)
        assert s.roi.shape == (144, 256) and s.roi.any()
        with VideoReader(s.camera.video) as reader:
            assert sum(1 for _ in reader) == 10
        record = read_aic19_calibration(s.camera.calibration)
        assert record.reprojection_error == 0.0
        np.testing.assert_allclose(record.homography, cam.calibration.homography)  # world -> image, lossless
    gt, scenes = read_aic19_ground_truth(city_dir / "train" / "S01")
    assert scenes == {"S01": [1, 2]}
    world = _world_table(city_dir)
    # gt.txt: exactly the rows of vehicles seen by both cameras, frames 1-based, boxes to 2 decimals.
    seen = {v: {c for c, u in world[:, :2].astype(int).tolist() if u == v} for v in set(world[:, 1].astype(int).tolist())}
    multi = sorted(v for v, cams in seen.items() if len(cams) >= 2)
    assert multi, "the tiny city should have vehicles seen by both cameras"
    expected = world[np.isin(world[:, 1], multi)]
    order_e = np.lexsort((expected[:, 2], expected[:, 1], expected[:, 0]))
    order_g = np.lexsort((gt[:, aic24.FRAME_ID], gt[:, aic24.OBJ_ID], gt[:, aic24.CAMERA_ID]))
    np.testing.assert_array_equal(gt[order_g][:, [aic24.CAMERA_ID, aic24.OBJ_ID, aic24.FRAME_ID]], expected[order_e][:, :3])
    # gt.txt boxes: the world's full boxes clipped to the image (the real annotation is drawn on the frame)
    boxes = gt[order_g][:, aic24.BX:aic24.BH + 1]
    np.testing.assert_allclose(boxes, clip_xywh(expected[order_e][:, 3:7], (256, 144)), atol=0.006)
    assert boxes[:, :2].min() >= 0 and (boxes[:, 0] + boxes[:, 2]).max() <= 256 + 0.006
    assert (boxes[:, 1] + boxes[:, 3]).max() <= 144 + 0.006
    assert len(set(world[:, 1].tolist())) > len(multi) or len(world) == len(expected)
    raw = (city_dir / "train" / "S01" / "c001" / "gt" / "gt.txt").read_text().splitlines()[0].split(",")
    assert raw[6:] == ["1", "-1", "-1", "-1"]
    det = mot.read_mot(setups[0].camera.dets["gt_jitter"], kind="det")
    assert len(det) and det[:, mot.FRAME].min() >= 1


def test_gt_boxes_are_the_full_boxes_clipped_to_the_image(tmp_path: Path) -> None:
    """A vehicle entering the frame is annotated where it is seen (real AIC19 boxes lie on the frame);
    `gt_world.txt` keeps the unclipped full box."""
    root = generate(_cfg(tmp_path, "frames=30"))
    world = _world_table(root)
    full = world[:, 3:7]
    cut = (full[:, 0] < 0) | (full[:, 1] < 0) | (full[:, 0] + full[:, 2] > 256) | (full[:, 1] + full[:, 3] > 144)
    assert cut.any(), "30 frames of the tiny city should have vehicles cut by the frame"
    gt, _ = read_aic19_ground_truth(root / "train" / "S01")
    key = {(int(r[0]), int(r[1]), int(r[2])): k for k, r in enumerate(world)}
    rows = [key[(int(g[aic24.CAMERA_ID]), int(g[aic24.OBJ_ID]), int(g[aic24.FRAME_ID]))] for g in gt]
    np.testing.assert_allclose(gt[:, aic24.BX:aic24.BH + 1], clip_xywh(full[rows], (256, 144)), atol=0.006)
    assert cut[rows].any(), "some multi-camera vehicle is cut by the frame"


def test_world_positions_project_into_the_box_bottom(city_dir: Path) -> None:
    """The footprint centre, through the written calibration, lies inside the full box, in its lower
    part; and it is where the vehicle is at that camera's frame time (per-camera clocks)."""
    cfg = _cfg(city_dir)
    city = build_city(CitySpec.from_config(cfg), seed=1)
    world = _world_table(city_dir)
    by_id = {v.global_id: v for v in city.vehicles}
    for s in read_aic19_scene(city_dir / "train" / "S01"):
        rows = world[world[:, 0] == s.camera.camera_id]
        assert len(rows)
        uv = s.calibration.ground_to_image(rows[:, [COL["xworld"], COL["yworld"]]])
        x, y, w, h = (rows[:, COL[k]] for k in "xywh")
        assert np.all((uv[:, 0] > x) & (uv[:, 0] < x + w))
        rel = (uv[:, 1] - y) / h
        assert np.all((rel > 0.3) & (rel < 1.0)), rel.min()
        for r in rows:
            xy, heading, present = by_id[int(r[1])].pose(s.frame_time(r[2]))
            assert present[0]
            np.testing.assert_allclose(xy[0], r[[COL["xworld"], COL["yworld"]]], atol=1e-4)
            assert r[COL["heading"]] == pytest.approx(float(heading[0]), abs=1e-4)
        vis = rows[:, COL["visibility"]]
        assert np.all((vis > 0) & (vis <= 1))


def test_deterministic_by_seed(tmp_path: Path, city_dir: Path) -> None:
    again = generate(_cfg(tmp_path / "a"))
    for name in ("gt_world.txt", "c001/gt/gt.txt", "c002/det/det_gt_jitter.txt", "c001/calibration.txt", "vehicles.json"):
        assert (again / "train/S01" / name).read_bytes() == (city_dir / "train/S01" / name).read_bytes(), name
    with VideoReader(again / "train/S01/c002/vdo.avi") as a, VideoReader(city_dir / "train/S01/c002/vdo.avi") as b:
        assert all(np.array_equal(fa, fb) for (_, fa), (_, fb) in zip(a, b, strict=True))
    other = build_city(CitySpec.from_config(_cfg(tmp_path)), seed=2)
    assert not np.allclose(other.cameras[0].calibration.homography, build_city(CitySpec.from_config(_cfg(tmp_path)), seed=1).cameras[0].calibration.homography)


def test_vehicles_keep_their_lane_and_speed() -> None:
    spec = CitySpec(cameras=2, frames=10, vehicles=30, grid=(3, 2))
    city = build_city(spec, seed=5)
    B, lw = spec.block, spec.lane_width
    kinds = set()
    for v in city.vehicles:
        kinds.add(v.kind)
        t = np.arange(v.times[0], v.times[-1], 0.1)
        xy, heading, present = v.pose(t)
        assert present.all()
        step = np.diff(xy, axis=0)
        speed = np.linalg.norm(step, axis=1) / 0.1
        assert speed.max() <= spec.speed[1] + 1e-6
        assert np.median(speed) >= 0.5 * spec.speed[0]  # cruising most of the time
        moving = speed > 0.5
        # Moving along the heading (forward, never sideways or backwards).
        fwd = np.c_[np.cos(heading[:-1]), np.sin(heading[:-1])]
        assert np.all(np.einsum("ij,ij->i", step[moving], fwd[moving]) > 0.9 * np.linalg.norm(step[moving], axis=1))
        # Away from intersections a vehicle is in the right-hand lane of its road.
        gx, gy = np.rint(xy[:, 0] / B) * B, np.rint(xy[:, 1] / B) * B
        on_ew = np.abs(xy[:, 1] - gy) < lw
        far = (np.abs(xy[:, 0] - gx) > 2 * lw) & on_ew
        right = np.c_[np.sin(heading), -np.cos(heading)]
        lateral = np.einsum("ij,ij->i", np.c_[np.zeros(len(xy)), xy[:, 1] - gy][far], right[far])
        np.testing.assert_allclose(lateral, lw / 2, atol=1e-6)
        far_ns = (np.abs(xy[:, 1] - gy) > 2 * lw) & (np.abs(xy[:, 0] - gx) < lw)
        lateral = np.einsum("ij,ij->i", np.c_[xy[:, 0] - gx, np.zeros(len(xy))][far_ns], right[far_ns])
        np.testing.assert_allclose(lateral, lw / 2, atol=1e-6)
        assert far.any() or far_ns.any()
    assert len(kinds) >= 3


def test_stops_and_turns_happen() -> None:
    spec = CitySpec(cameras=2, frames=10, vehicles=30, stop_prob=1.0)
    city = build_city(spec, seed=0)
    stopped = sum(bool(np.any(np.diff(v.times) > 0.5)) for v in city.vehicles)  # a wait at a stop line
    assert stopped == len(city.vehicles)
    turned = 0
    for v in city.vehicles:
        seg = np.diff(v.path, axis=0)
        ang = np.arctan2(seg[:, 1], seg[:, 0])
        turned += abs(np.angle(np.exp(1j * (ang[-1] - ang[0])))) > 1.0
    assert turned > 0


def test_type_mix_draws_the_types_asked_for() -> None:
    """`layout.city.type_mix` sets the chance per type (a detector needs more than a handful of buses);
    the real-road shares written out give the very same city as leaving it out."""
    mixed = build_city(CitySpec.from_config(compose_config(["layout=aic19", "layout.city.vehicles=30",
                                                            "layout.city.type_mix={bus: 1.0, truck: 3.0}"])), seed=1)
    kinds = [v.kind for v in mixed.vehicles]
    assert set(kinds) == {"bus", "truck"} and kinds.count("truck") > kinds.count("bus")
    plain = build_city(CitySpec.from_config(compose_config(["layout=aic19", "layout.city.vehicles=30"])), seed=1)
    same = build_city(CitySpec.from_config(compose_config([
        "layout=aic19", "layout.city.vehicles=30",
        "layout.city.type_mix={car: 0.5, suv: 0.22, van: 0.13, bus: 0.05, truck: 0.10}"])), seed=1)
    assert [v.kind for v in plain.vehicles] == [v.kind for v in same.vehicles]
    assert {"car", "suv"} <= {v.kind for v in plain.vehicles}


@pytest.mark.parametrize(("override", "key"), [
    ("layout.city.speed=[20,10]", "layout.city.speed"),
    ("layout.city.vehicles=0", "layout.city.vehicles"),
    ("layout.city.camera_height=[1,3]", "layout.city.camera_height"),
    ("layout.city.grid=[1,1]", "layout.city.grid"),
    ("+layout.city.lanes=2", "layout.city.lanes"),
    ("layout.city.type_mix={boat: 1.0}", "layout.city.type_mix"),
    ("layout.city.type_mix={car: 0.0}", "layout.city.type_mix"),
])
def test_bad_config_names_the_key(tmp_path: Path, override: str, key: str) -> None:
    with pytest.raises(SynthConfigError, match=key.replace(".", r"\.")):
        validate(_cfg(tmp_path, override))


def test_nearer_vehicle_occludes_the_farther_one() -> None:
    """A bus between the camera and a car hides part of the car: painter's order by depth, the id
    map and the amodal full box agree."""
    spec = CitySpec(cameras=1, frames=1, vehicles=2)
    city = build_city(spec, seed=0)
    cam = city.cameras[0]
    centre = cam.calibration.image_to_ground(np.array([[cam.width / 2, cam.height / 2]]))[0]
    d = (centre - cam.center[:2]) / np.linalg.norm(centre - cam.center[:2])
    bus, car = city.vehicles
    for v, kind, size, at in ((bus, "bus", (11.0, 2.5, 3.1), centre), (car, "car", (4.4, 1.8, 1.45), centre + 5 * d)):
        v.kind, v.size = kind, np.array(size)
        side = np.array([-d[1], d[0]])  # parked across the line of sight
        v.path, v.times = np.array([at - 0.01 * side, at + 0.01 * side]), np.array([-100.0, 100.0])
    from citytrack.data.synth.vehicles_render import CityRenderer

    fr = CityRenderer(city, 0).render(0)
    vis = dict(zip(fr.vehicles.tolist(), fr.visibility.tolist(), strict=True))
    assert vis[0] == pytest.approx(1.0) and 0.0 < vis[1] < 0.9
    j = int(np.flatnonzero(fr.vehicles == 1)[0])
    (x, y, w, h), (vx, vy, vw, vh) = fr.full_boxes[j], fr.visible_boxes[j]
    assert x <= vx + 1 and y <= vy + 1 and vx + vw <= x + w + 1 and vy + vh <= y + h + 1 and vw * vh < w * h
    uv = cam.calibration.ground_to_image(bus.path[:1])[0]
    assert fr.id_map[round(uv[1]), round(uv[0])] == 1  # the bus's own pixels at its footprint centre


def test_vehicles_never_overlap() -> None:
    """Footprints stay apart at every time of the scene (waiting cars are not driven into)."""
    from citytrack.data.synth.city import collide

    spec = CitySpec(cameras=2, frames=100, vehicles=30, stop_prob=0.6)
    city = build_city(spec, seed=3)
    assert len(city.vehicles) >= 15
    t = np.arange(0.0, 10.0, 0.05)
    for i, a in enumerate(city.vehicles):
        for b in city.vehicles[:i]:
            assert not collide(a, b, t, gap=0.0)
    a, b = city.vehicles[:2]  # the test itself: the same vehicle shifted by 1 m overlaps itself
    shifted = type(a)(**{**a.__dict__, "path": a.path + [0.0, 1.0]})
    assert collide(a, shifted, np.linspace(a.times[0], a.times[-1], 50), gap=0.0)


def test_rerun_with_fewer_scenes_leaves_no_stale_output(tmp_path: Path) -> None:
    generate(_cfg(tmp_path, "scenes=2", "frames=2"))
    assert (tmp_path / "train/S02/c004/vdo.avi").is_file() and (tmp_path / "cam_timestamp/S02.txt").is_file()
    generate(_cfg(tmp_path, "scenes=1", "frames=2"))
    assert not (tmp_path / "train/S02").exists() and not (tmp_path / "cam_timestamp/S02.txt").exists()
    assert [s.camera.name for s in read_aic19_scene(tmp_path / "train/S01")] == ["c001", "c002"]


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from citytrack.data.synth.__main__ import main

    assert main([*TINY, "frames=2", f"out={tmp_path}"]) == 0
    assert (tmp_path / "train/S01/c002/gt/gt.txt").is_file()
    assert main([*TINY, f"out={tmp_path}", "layout.city.speed=[0,3]"]) == 2
    assert "layout.city.speed" in capsys.readouterr().err


def test_orientation_bins_hand_built() -> None:
    """Camera at the origin, vehicle 10 m east: driving west (at the camera) is 0, east (away) 4; the
    camera looks east, so its right is south: driving south is 2, north 6; bins are 45 degrees wide."""
    from citytrack.data.synth.vehicles_render import orientation_bins

    cam = np.array([0.0, 0.0])
    at = np.array([[10.0, 0.0]])
    deg = np.pi / 180
    cases = {180: 0, 0: 4, -90: 2, 90: 6, 135: 7, -135: 1, -45: 3, 45: 5, 180 + 22: 0, 180 + 23: 1, 180 - 23: 7}
    for heading, expected in cases.items():
        assert orientation_bins(cam, at, np.array([heading * deg]))[0] == expected, heading
    # The same relative geometry anywhere and in any direction: rotate and shift the whole scene.
    rot = 1.234
    R = np.array([[np.cos(rot), -np.sin(rot)], [np.sin(rot), np.cos(rot)]])
    shift = np.array([50.0, -20.0])
    got = orientation_bins(R @ cam + shift, at @ R.T + shift, np.array([h * deg + rot for h in cases]))
    assert got.tolist() == list(cases.values())


def _one_vehicle_city(heading_of: str) -> tuple:
    """A one-camera city with one car driving through the image centre's ground point, either at the
    camera (`front`), away from it (`rear`) or across its line of sight to its right (`right`)."""
    spec = CitySpec(cameras=1, frames=3, vehicles=1)
    city = build_city(spec, seed=0)
    cam = city.cameras[0]
    centre = cam.calibration.image_to_ground(np.array([[cam.width / 2, cam.height / 2]]))[0]
    d = (centre - cam.center[:2]) / np.linalg.norm(centre - cam.center[:2])  # line of sight
    direction = {"front": -d, "rear": d, "right": np.array([d[1], -d[0]])}[heading_of]
    car = city.vehicles[0]
    car.kind, car.size = "car", np.array([4.4, 1.8, 1.45])
    car.path = np.array([centre - 3 * direction, centre + 3 * direction])
    car.times = np.array([-0.1, 0.5])  # 10 m/s: 1 m per frame at 10 fps
    return city, cam, centre


@pytest.mark.parametrize(("heading_of", "expected"), [("front", 0), ("rear", 4), ("right", 2)])
def test_rendered_orientation(heading_of: str, expected: int) -> None:
    """A car driving straight at the camera is 0, away 4, to the camera's right 2 (and moves right in the image)."""
    from citytrack.data.synth.vehicles_render import CityRenderer

    city, _, _ = _one_vehicle_city(heading_of)
    r = CityRenderer(city, 0)
    frames = [r.render(f) for f in range(3)]
    assert all(fr.orientation.tolist() == [expected] for fr in frames)
    cx = [fr.full_boxes[0, 0] + fr.full_boxes[0, 2] / 2 for fr in frames]
    if heading_of == "right":
        assert cx[2] > cx[1] > cx[0] + 1
    else:
        assert abs(cx[2] - cx[0]) < 0.25 * (cx[2] - cx[0] + frames[0].full_boxes[0, 2])


def test_world_table_orientation_column(city_dir: Path) -> None:
    """`orientation` in gt_world.txt is the bin of the written heading seen from the camera's centre."""
    from citytrack.data.synth.vehicles_render import orientation_bins

    assert WORLD_COLUMNS[-1] == "orientation"
    city = build_city(CitySpec.from_config(_cfg(city_dir)), seed=1)
    world = _world_table(city_dir)
    assert world.shape[1] == len(WORLD_COLUMNS)
    for cam in city.cameras:
        rows = world[world[:, COL["camera"]] == cam.camera_id]
        bins = orientation_bins(cam.center[:2], rows[:, [COL["xworld"], COL["yworld"]]], rows[:, COL["heading"]])
        # heading is written to 6 significant digits: a bin may flip only within a hair of its edge
        assert np.mean(bins == rows[:, COL["orientation"]]) > 0.99
        assert set(rows[:, COL["orientation"]].astype(int).tolist()) <= set(range(8))


def test_bench_synth_city_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m citytrack.bench synth --layout aic19` runs 1 and 2 workers at the small size, 1 at the large."""
    import re

    from citytrack.bench.synth import main

    assert main(["--layout", "aic19", "--sizes", "160x96,800x450", "--frames", "10", "--cameras", "2", "--vehicles", "5"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln[:1].isdigit()]
    assert [ln.split(":")[0].strip() for ln in lines] == [
        f"{size} {what} workers={n}" for size, ns in (("160x96", (1, 2)), ("800x450", (1,)))
        for n in ns for what in ("render only  ", "render+encode")]
    for ln in lines:
        wall, cpu = (float(v) for v in re.findall(r"([\d.]+) (?:cam-frames/s wall|by CPU time)", ln))
        assert wall > 0 and cpu > 0


def test_vehicle_looks_vary_within_a_colour_name_and_are_deterministic() -> None:
    cfg = compose_config([*TINY, "out=/tmp/unused", "layout.city.vehicles=40"])
    spec = CitySpec.from_config(cfg)
    a, b = build_city(spec, seed=3), build_city(spec, seed=3)
    assert [v.colour for v in a.vehicles] == [v.colour for v in b.vehicles]
    assert [v.looks for v in a.vehicles] == [v.looks for v in b.vehicles]
    by_name: dict[str, set] = {}
    for v in a.vehicles:
        by_name.setdefault(v.colour_name, set()).add(v.colour)
    name = max(by_name, key=lambda n: len(by_name[n]))
    assert len(by_name[name]) >= 3, "vehicles of one colour name should differ in shade"
    assert len({v.looks.glass for v in a.vehicles}) > len(a.vehicles) // 2
