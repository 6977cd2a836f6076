"""Synthetic world: determinism, ground-truth exactness through the readers, every layout read back."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from citytrack.data.formats import aicity, kitti_mots, mot, reid
from citytrack.data.synth import (
    CameraRenderer,
    PoseCache,
    SynthConfigError,
    build_world,
    ensure_synthetic_dataset,
    generate,
)
from citytrack.data.synth.config import compose_config
from citytrack.data.synth.world import SceneSpec
from citytrack.multicam.calibration import CameraCalibration

TINY = {"cameras": 2, "people": 4, "frames": 8, "width": 160, "height": 96, "progress": False}
# Small, but large enough that people are a few dozen pixels tall and ReID crops exist.
SMALL = {"cameras": 2, "people": 5, "frames": 10, "width": 256, "height": 160, "progress": False,
         "reid": {"min_height": 16, "stride": 3}}


@pytest.fixture(scope="module")
def aic24_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(None, out=tmp_path_factory.mktemp("aic24"), seed=3, **SMALL)


def _digest(spec: SceneSpec, seed: int) -> tuple[str, str]:
    world = build_world(spec, seed)
    poses = PoseCache(world)
    h_img, h_gt = hashlib.sha256(), hashlib.sha256()
    for cam in world.cameras:
        r = CameraRenderer(world, cam, poses=poses)
        for f in range(spec.frames):
            fr = r.render(f)
            h_img.update(fr.image.tobytes())
            h_gt.update(np.round(np.c_[fr.agents, fr.full_boxes, fr.visible_pixels], 6).tobytes())
    return h_img.hexdigest(), h_gt.hexdigest()


def test_determinism() -> None:
    spec = SceneSpec(cameras=2, people=4, frames=4, width=160, height=96)
    a, b, c = _digest(spec, 1), _digest(spec, 1), _digest(spec, 2)
    assert a == b
    assert a[0] != c[0] and a[1] != c[1]


def test_render_invariants() -> None:
    spec = SceneSpec(cameras=3, people=10, frames=6, width=200, height=120, area=(10.0, 8.0))
    world = build_world(spec, 5)
    poses = PoseCache(world)
    seen = 0
    for cam in world.cameras:
        r = CameraRenderer(world, cam, poses=poses)
        for f in range(spec.frames):
            fr = r.render(f)
            vis = fr.visibility
            assert np.all((vis >= 0) & (vis <= 1))
            on = fr.visible_pixels > 0
            vb = fr.visible_boxes[on]
            assert np.all(vb[:, :2] >= 0) and np.all(vb[:, 0] + vb[:, 2] <= spec.width) and np.all(vb[:, 1] + vb[:, 3] <= spec.height)
            # The id map agrees with the visible pixel counts, and the visible box lies in the full box.
            for k, a in enumerate(fr.agents):
                assert int((fr.id_map == a + 1).sum()) == fr.visible_pixels[k]
            # The visible box lies in the full (amodal) box; the same box when nothing hides the person.
            fb = fr.full_boxes[on]
            assert np.all(vb[:, :2] >= fb[:, :2]) and np.all(vb[:, :2] + vb[:, 2:] <= fb[:, :2] + fb[:, 2:])
            whole = fr.visible_pixels == fr.full_pixels
            np.testing.assert_array_equal(fr.visible_boxes[whole], fr.full_boxes[whole])
            # The foot point is the world foot point projected, inside the box near its bottom centre.
            uv = cam.calibration.ground_to_image(fr.foot_world)
            np.testing.assert_allclose(fr.foot_image, uv, atol=1e-6)
            x, y, w, h = fr.full_boxes.T
            assert np.all((uv[:, 0] > x) & (uv[:, 0] < x + w))
            assert np.all((uv[:, 1] > y + 0.5 * h) & (uv[:, 1] < y + 1.05 * h + 1))  # a long stride lifts the feet
            seen += len(fr.agents)
    assert seen > 0


def test_aic24_exact_through_readers(aic24_dir: Path) -> None:
    scenes = aicity.list_aic24_scenes(aic24_dir, "train")
    assert len(scenes) == 1
    scene = aicity.load_aic24_scene(scenes[0])
    assert [c.camera_id for c in scene.cameras] == [1, 2]
    gt = aicity.read_aic24_ground_truth(scene.ground_truth)
    assert len(gt) > 0 and gt[:, 2].min() == 0
    world = build_world(SceneSpec(cameras=2, people=5, frames=10, width=256, height=160), 3)
    poses = PoseCache(world)
    for cam in scene.cameras:
        cal = aicity.read_aic24_calibration(cam.calibration)
        model = CameraCalibration.from_projection(cal.projection)
        np.testing.assert_allclose(model.homography, cal.homography, rtol=1e-9)
        rows = gt[gt[:, 0] == cam.camera_id]
        assert len(rows)
        # The files hold the renderer's full boxes, and world points that project through the written
        # calibration onto the renderer's foot points.
        renderer = CameraRenderer(world, world.cameras[cam.camera_id - 1], poses=poses)
        truth = {}
        for f in range(10):
            fr = renderer.render(f)
            for a, box, foot in zip(fr.agents, fr.full_boxes, fr.foot_image, strict=True):
                truth[(world.agents[a].global_id, f)] = np.r_[box, foot]
        want = np.array([truth[(int(i), int(f))] for i, f in rows[:, 1:3]])
        np.testing.assert_array_equal(rows[:, 3:7], want[:, :4])
        uv = model.project(np.c_[rows[:, 7:9], np.zeros(len(rows))])
        np.testing.assert_allclose(uv, want[:, 4:], atol=1e-3)
        assert cam.video.stat().st_size > 0
    meta = json.loads((aic24_dir / "meta.json").read_text())
    assert meta["layout"] == "aic24" and meta["seed"] == 3 and len(meta["scenes"][0]["cameras"]) == 2
    # ReID crops: Market-1501 names, train/test identities disjoint, queries from test identities.
    items = {f: reid.scan_market1501(aic24_dir / "reid" / f) for f in ("bounding_box_train", "bounding_box_test", "query")}
    assert items["bounding_box_train"] and items["query"]
    train_ids = {it.pid for it in items["bounding_box_train"]}
    test_ids = {it.pid for it in items["bounding_box_test"]} | {it.pid for it in items["query"]}
    assert not train_ids & test_ids
    assert set(gt[:, 1].astype(int)) >= train_ids | test_ids


def test_hidden_everywhere_has_no_box(aic24_dir: Path) -> None:
    """Rows exist exactly for people with enough visible pixels in that camera."""
    gt = aicity.read_aic24_ground_truth(aicity.load_aic24_scene(aicity.list_aic24_scenes(aic24_dir, "train")[0]).ground_truth)
    world = build_world(SceneSpec(cameras=2, people=5, frames=10, width=256, height=160), 3)
    poses = PoseCache(world)
    expected = set()
    hidden_somewhere = 0
    for c, cam in enumerate(world.cameras):
        r = CameraRenderer(world, cam, poses=poses)
        for f in range(10):
            fr = r.render(f)
            for a, px in zip(fr.agents, fr.visible_pixels, strict=True):
                if px >= 10:
                    expected.add((c + 1, world.agents[a].global_id, f))
                else:
                    hidden_somewhere += 1
    got = {(int(a), int(b), int(f)) for a, b, f in gt[:, :3]}
    assert got == expected
    present = world.traj.present
    in_some_camera = {(i, f) for _c, i, f in expected}
    absent = [(a.global_id, f) for f in range(10) for a in world.agents if not present[f, a.index]]
    assert not any(k in in_some_camera for k in absent)


def test_fully_occluded_person_has_no_box() -> None:
    """Put a person inside a huge occluder in front of every camera: drawn but 0 visible pixels, so no row."""
    spec = SceneSpec(cameras=2, people=1, frames=2, width=160, height=96, occluders=0)
    world = build_world(spec, 0)
    from citytrack.data.synth.world import Occluder

    world.traj.position[:] = 0.0
    world.traj.present[:] = True
    world.occluders.append(Occluder("box", np.array([0.0, 0.0]), np.array([3.0, 3.0, 3.0]), 0.0, (90, 90, 90)))
    for cam in world.cameras:
        fr = CameraRenderer(world, cam).render(0)
        assert len(fr.agents) == 1 and fr.full_pixels[0] > 0 and fr.visible_pixels[0] == 0


@pytest.mark.parametrize("layout", ["mot", "kitti_mots", "aic23"])
def test_layouts_read_back_identical(tmp_path: Path, aic24_dir: Path, layout: str) -> None:
    every_person = {"layout.min_height": 0} if layout == "kitti_mots" else {}  # KITTI's 25 px rule off
    out = generate(None, out=tmp_path / layout, seed=3, layout=layout, **SMALL, **every_person)
    ref = aicity.read_aic24_ground_truth(aic24_dir / "train" / "scene_001" / "ground_truth.txt")
    if layout == "mot":
        seqs = mot.list_sequences(out / "train")
        assert len(seqs) == 2
        for c, seq_dir in enumerate(seqs):
            seq = mot.load_sequence(seq_dir)
            assert seq.info.seq_length == 10 and seq.info.im_width == 256
            rows = ref[ref[:, 0] == c + 1]
            rows = rows[np.lexsort((rows[:, 1], rows[:, 2]))]
            assert seq.gt is not None and seq.det is not None
            np.testing.assert_array_equal(seq.gt[:, 0], rows[:, 2] + 1)
            np.testing.assert_array_equal(seq.gt[:, 1], rows[:, 1])
            np.testing.assert_allclose(seq.gt[:, 2:6], rows[:, 3:7], atol=0.006)
            assert np.all(seq.gt[:, 7] == 1) and np.all((seq.gt[:, 8] >= 0) & (seq.gt[:, 8] <= 1))
            assert seq.image_path(1).is_file() and len(seq.det) > 0
    elif layout == "kitti_mots":
        for c in range(2):
            records = kitti_mots.read_instances_txt(out / "train" / "instances_txt" / f"{c:04d}.txt")
            peds = [r for r in records if not r.is_ignore]
            assert all(r.class_id == 2 and r.obj_id >= 2000 for r in peds)
            rows = ref[ref[:, 0] == c + 1]
            assert {(r.frame, r.obj_id - 2000) for r in peds} == {(int(f), int(i)) for i, f in rows[:, [1, 2]]}
            png = kitti_mots.read_instance_png(out / "train" / "instances" / f"{c:04d}" / "000003.png")
            from_txt = kitti_mots.records_to_png([r for r in records if r.frame == 3])
            np.testing.assert_array_equal(png, from_txt)
            assert (out / "train" / "image_02" / f"{c:04d}" / "000000.png").is_file()
    else:
        scene = aicity.load_aic23_scene(out / "train" / "S001")
        for cam in scene.cameras:
            labels = cam.read_labels()
            rows = ref[ref[:, 0] == cam.camera_id]
            rows = rows[np.lexsort((rows[:, 1], rows[:, 2]))]
            np.testing.assert_array_equal(labels[:, 0], rows[:, 2] + 1)
            np.testing.assert_allclose(labels[:, 2:6], rows[:, 3:7], atol=0.006)
            assert cam.read_calibration().projection.shape == (3, 4)


def test_ensure_regenerates_only_when_incomplete(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    ensure_synthetic_dataset(root, seed=1, **TINY)
    meta = root / "meta.json"
    stamp = meta.stat().st_mtime_ns
    ensure_synthetic_dataset(root, seed=1, **TINY)
    assert meta.stat().st_mtime_ns == stamp
    meta.unlink()  # as if interrupted before the end
    gt = root / "train" / "scene_001" / "ground_truth.txt"
    gt.write_text("garbage\n")
    ensure_synthetic_dataset(root, seed=1, **TINY)
    assert meta.is_file() and len(aicity.read_aic24_ground_truth(gt)) > 0


def test_ensure_regenerates_a_dataset_of_another_world_version(tmp_path: Path) -> None:
    """A folder rendered by an older generator (same config, different world) is not reused."""
    from citytrack.data.synth.writers import WORLD_VERSION

    root = tmp_path / "ds"
    ensure_synthetic_dataset(root, seed=1, **TINY)
    meta = root / "meta.json"
    stored = json.loads(meta.read_text())
    assert stored["world_version"] == WORLD_VERSION
    gt = root / "train" / "scene_001" / "ground_truth.txt"
    expected = gt.read_bytes()
    stored["world_version"] = WORLD_VERSION - 1
    meta.write_text(json.dumps(stored))
    gt.write_text("stale\n")
    ensure_synthetic_dataset(root, seed=1, **TINY)
    assert json.loads(meta.read_text())["world_version"] == WORLD_VERSION
    assert gt.read_bytes() == expected


@pytest.mark.parametrize("layout", ["aic24", "mot", "kitti_mots"])
def test_rerun_with_fewer_scenes_leaves_no_stale_output(tmp_path: Path, layout: str) -> None:
    root = tmp_path / "ds"
    small = {**TINY, "frames": 3}
    generate(None, out=root, seed=1, layout=layout, scenes=2, **small)
    (root / "train" / "notes.txt").write_text("mine\n")  # not the generator's: kept
    (root / "train" / "mine").mkdir()
    generate(None, out=root, seed=1, layout=layout, scenes=1, **{**small, "frames": 2})
    assert (root / "train" / "notes.txt").read_text() == "mine\n" and (root / "train" / "mine").is_dir()
    if layout == "aic24":
        scenes = aicity.list_aic24_scenes(root, "train")
        assert [p.name for p in scenes] == ["scene_001"]
        assert len(aicity.load_aic24_scene(scenes[0]).cameras) == 2
    elif layout == "mot":
        seqs = mot.list_sequences(root / "train")
        assert [p.name for p in seqs] == ["SYNTH-01-01", "SYNTH-01-02"]
        assert all(len(list((p / "img1").iterdir())) == 2 for p in seqs)
    else:
        assert sorted(p.name for p in (root / "train" / "image_02").iterdir()) == ["0000", "0001"]
        assert sorted(p.name for p in (root / "train" / "instances_txt").iterdir()) == ["0000.txt", "0001.txt"]
        assert all(len(list(p.iterdir())) == 2 for p in (root / "train" / "image_02").iterdir())


@pytest.mark.parametrize(
    "override,message",
    [({"cameras": 0}, "cameras"), ({"width": 0}, "width"), ({"width": -5}, "width"), ({"fps": 0}, "fps"),
     ({"scenes": 0}, "scenes"), ({"layout": "nope"}, "layout")],
)
def test_malformed_config(tmp_path: Path, override: dict, message: str) -> None:
    with pytest.raises(SynthConfigError, match=message):
        generate(None, out=tmp_path / "x", **{**TINY, **override})
    assert not (tmp_path / "x" / "meta.json").exists()


def test_cli_compose_and_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from citytrack.data.synth.__main__ import main

    cfg = compose_config(["out=/tmp/x", "layout=mot", "cameras=3"])
    assert cfg.layout.name == "mot" and cfg.cameras == 3 and cfg.layout.det.fp_per_frame > 0
    assert main([f"out={tmp_path}", "cameras=0"]) == 2
    assert "cameras" in capsys.readouterr().err


def test_config_inside_another_hydra_app(config_dir: Path) -> None:
    """Datamodules call the Python API under train.py's Hydra: the manual merge gives the same config."""
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    args = ["out=/tmp/x", "layout=mot", "cameras=3", "world.area=[8,6]"]
    plain = compose_config(args)
    with initialize_config_dir(config_dir=str(config_dir / "synth"), version_base="1.3"):
        nested = compose_config(args)
    assert OmegaConf.to_container(plain) == OmegaConf.to_container(nested)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _video_frame_hashes(path: Path) -> list[str]:
    from citytrack.data.video import VideoReader

    with VideoReader(path) as reader:
        return [hashlib.sha256(img.tobytes()).hexdigest() for _, img in reader]


@pytest.mark.parametrize("layout", ["aic24", "mot"])
def test_workers_give_identical_output(tmp_path: Path, layout: str) -> None:
    """Cameras rendered in 2 worker processes write exactly what one process writes (2 scenes: ids, offsets, ReID merge)."""
    cfg = dict(TINY, scenes=2, frames=6, seed=4, layout=layout, reid={"min_height": 8, "stride": 2})
    one = generate(None, out=tmp_path / "one", workers=1, **cfg)
    two = generate(None, out=tmp_path / "two", workers=2, **cfg)
    a, b = _tree(one), _tree(two)
    assert sorted(a) == sorted(b)
    videos = [k for k in a if k.endswith(".mp4")]
    assert len(videos) == (4 if layout == "aic24" else 0)
    for k in videos:
        frames = _video_frame_hashes(one / k)
        assert len(frames) == 6 and frames == _video_frame_hashes(two / k)
    assert any("ground_truth.txt" in k or k.endswith("gt/gt.txt") for k in a)
    assert any(k.startswith("reid/query/") for k in a)
    meta_a, meta_b = (json.loads(m.pop("meta.json")) for m in (a, b))
    assert meta_a["config"].pop("out") != meta_b["config"].pop("out")
    assert meta_a == meta_b  # the same but for the output folder
    differ = [k for k in a if a[k] != b[k]]
    assert not differ  # every video, ground truth, image and crop byte for byte
    if layout == "aic24":
        gt = aicity.read_aic24_ground_truth(one / "train" / "scene_002" / "ground_truth.txt")
        assert set(gt[:, 0].astype(int)) <= {3, 4} and gt[:, 1].min() > 4  # scene 2: cameras 3-4, ids 5-8
    assert "workers" not in meta_a["config"]


def test_worker_error_propagates_and_cleans_up(tmp_path: Path) -> None:
    """A camera failing in a worker raises its own error here; no meta.json, no half-written files."""
    out = tmp_path / "bad"
    with pytest.raises(OSError, match="ZZZZ"):
        generate(None, out=out, workers=2, video={"fourcc": "ZZZZ"}, **TINY)
    assert not (out / "meta.json").exists()
    assert not [p for p in out.rglob("*.mp4")] and not [p for p in out.rglob(".*")]


def test_workers_config(tmp_path: Path) -> None:
    from citytrack.data.synth.generate import AUTO_MIN_SECONDS, cpu_count, estimated_seconds, resolve_workers

    assert resolve_workers(compose_config(["out=x", "cameras=3", "workers=1"])) == 1
    assert resolve_workers(compose_config(["out=x", "cameras=3", "workers=8"])) == 3  # no more than the cameras
    assert resolve_workers(compose_config(["out=x", "cameras=3", "frames=10"])) == 1  # small job: no workers
    big = compose_config(["out=x", "cameras=3", "scenes=2", "frames=500"])
    assert estimated_seconds(big) > AUTO_MIN_SECONDS
    assert resolve_workers(big) == min(6, cpu_count())
    with pytest.raises(SynthConfigError, match="workers"):
        generate(None, out=tmp_path / "x", workers=0, **TINY)


def test_pose_cache_any_order() -> None:
    """Poses computed in chunks are the same whatever order frames are asked for."""
    world = build_world(SceneSpec(cameras=1, people=6, frames=40, width=160, height=96), 2)
    forward, backward = PoseCache(world, chunk=16), PoseCache(world, chunk=16)
    got = {f: forward(f) for f in range(40)}
    for f in reversed(range(40)):
        idx, pts = backward(f)
        np.testing.assert_array_equal(idx, got[f][0])
        np.testing.assert_array_equal(pts, got[f][1])
        assert set(idx.tolist()) == set(np.flatnonzero(world.traj.present[f]).tolist())
    with pytest.raises(IndexError):
        forward(40)


def test_failure_mid_camera_removes_unfinished_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A camera failing after some frames (the code a worker runs) leaves no temporary video and no meta.json."""
    from citytrack.data.synth import render

    real = render.CameraRenderer.render

    def failing(self: CameraRenderer, frame: int) -> render.FrameRender:
        if self.cam.index == 1 and frame == 3:
            raise RuntimeError("boom at frame 3")
        return real(self, frame)

    monkeypatch.setattr(render.CameraRenderer, "render", failing)
    out = tmp_path / "ds"
    with pytest.raises(RuntimeError, match="boom at frame 3"):
        generate(None, out=out, workers=1, **TINY)
    assert not (out / "meta.json").exists()
    assert not list(out.rglob(".*"))  # no temporary files
    videos = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.mp4"))
    assert videos == ["train/scene_001/camera_0001/video.mp4"]  # camera 1 was finished before camera 2 failed


def test_bench_synth_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m citytrack.bench synth` runs end to end on a tiny size and prints positive rates."""
    import re

    from citytrack.bench.synth import main

    assert main(["--sizes", "160x96", "--frames", "3", "--cameras", "1", "--people", "3", "--dataset"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("160x96")]
    assert [ln.split(":")[0].strip() for ln in lines] == ["160x96 render only", "160x96 render+encode", "160x96 dataset cmd"]
    for ln in lines:
        wall, cpu = (float(v) for v in re.findall(r"([\d.]+) (?:cam-frames/s wall|by CPU time)", ln))
        assert wall > 0 and cpu > 0


def test_kitti_mots_short_people_become_ignore_regions(tmp_path: Path) -> None:
    """KITTI tracking marks people under 25 px DontCare: their pixels join the frame's ignore region."""
    every = generate(None, out=tmp_path / "all", seed=3, layout="kitti_mots", **SMALL, **{"layout.min_height": 0})
    kitti = generate(None, out=tmp_path / "kitti", seed=3, layout="kitti_mots", **SMALL)
    shorts = 0
    for seq in ("0000", "0001"):
        all_recs = kitti_mots.read_instances_txt(every / "train" / "instances_txt" / f"{seq}.txt")
        kitti_recs = kitti_mots.read_instances_txt(kitti / "train" / "instances_txt" / f"{seq}.txt")
        heights = {(r.frame, r.obj_id): int(np.ptp(np.flatnonzero(m.any(axis=1)))) + 1
                   for r, m in zip(all_recs, kitti_mots.decode_masks(all_recs), strict=True) if not r.is_ignore}
        kept = {(r.frame, r.obj_id) for r in kitti_recs if not r.is_ignore}
        assert kept == {k for k, h in heights.items() if h >= 25}
        short = [k for k, h in heights.items() if h < 25]
        shorts += len(short)
        ignore = {r.frame: kitti_mots.decode_masks([r])[0] for r in kitti_recs if r.is_ignore}
        by_key = {(r.frame, r.obj_id): r for r in all_recs}
        for frame, obj in short:
            mask = kitti_mots.decode_masks([by_key[(frame, obj)]])[0]
            assert ignore[frame][mask].all()
    assert shorts > 0  # the small scene has far people: the rule was exercised
