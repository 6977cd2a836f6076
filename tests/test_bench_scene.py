"""`python -m citytrack.bench scene` on a tiny synthetic scene: result structure, positive rates, equal work per mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from citytrack.bench import scene as bench
from citytrack.multicam.pipeline import STAGES

TINY = ["--cameras", "2", "--width", "160", "--height", "96", "--frames", "8", "--people", "4"]


def _check(result: dict, stages: tuple[str, ...], camera_frames: int) -> None:
    assert result["benchmark"] == "scene" and result["device"] == "cpu"
    assert result["torch_threads"] >= 1 and result["torch"]
    assert set(result["load_average"]) == {"start", "before", "after"}
    assert set(result["modes"]) == {"batched", "sequential"}
    for name, mode in result["modes"].items():
        assert mode["camera_frames"] == camera_frames, name  # the peer does the same work
        assert mode["frames"] == camera_frames // 2
        assert mode["camera_frames_per_s"] > 0 and mode["camera_frames_per_s_median"] > 0
        assert len(mode["runs"]) == result["repeats"]
        ms = mode["ms_per_camera_frame"]
        assert set(ms) == {*STAGES, "other", "total"}
        assert all(ms[s] > 0 for s in stages), (name, ms)
        assert ms["total"] == pytest.approx(1000 / mode["camera_frames_per_s"])
        assert sum(mode["share"].values()) == pytest.approx(1.0)
    assert result["batched_over_sequential"] > 0
    assert result["same_output"]


def test_scene_bench_ground_truth_detector(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Oracle boxes, ReID off: every stage but the networks' runs, in a few seconds."""
    out = tmp_path / "r.json"
    argv = [*TINY, "--device", "cpu", "--repeats", "2", "--warmup", "2", "--data", str(tmp_path / "data"),
            "--override", "detector=gt", "--override", "reid=none", "--json", str(out)]  # fmt: skip
    assert bench.main(argv) == 0
    result = json.loads(out.read_text())
    _check(result, ("decode", "upload", "detect", "track", "project", "associate"), camera_frames=16)
    assert result["detector"] == "GroundTruthDetector" and result["reid"] == "none"
    assert result["modes"]["batched"]["ms_per_camera_frame"]["reid"] == 0
    assert result["scene"]["seed"] == 4040 and Path(result["scene"]["dir"]).is_dir()
    text = capsys.readouterr().out
    assert "batched / sequential end to end" in text and "sequential" in text


def test_scene_dir_names_every_parameter(tmp_path: Path) -> None:
    """An existing dataset is reused as is, so each parameter set needs its own folder."""
    a = bench.scene_dir(tmp_path, bench.SCENE)
    assert a == bench.scene_dir(tmp_path, dict(bench.SCENE))
    for key in ("seed", "cameras", "width", "height", "people", "frames", "fps"):
        assert bench.scene_dir(tmp_path, {**bench.SCENE, key: bench.SCENE[key] + 1}) != a, key


@pytest.mark.slow
def test_scene_bench_shipped_networks(tmp_path: Path) -> None:
    """The default config (detector and ReID checkpoints) on 4 frames: the network stages are timed."""
    result = bench.run_benchmark(cameras=2, width=160, height=96, frames=4, people=3, device="cpu", repeats=1,
                                 warmup=1, data_dir=tmp_path / "data")
    _check(result, ("decode", "detect", "reid", "track"), camera_frames=8)
    assert result["detector"] == "CheckpointDetector(detector_synthetic_cpu.pt)"
