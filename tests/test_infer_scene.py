"""`infer.py scene=...` end to end through the real Hydra config, on tiny synthetic scenes.

Outputs (track1.txt, per-scene files, video, summary.json), multi-camera association against the
per-camera baseline, AI City 2023 input and output, cameras that drop out, bad calibrations and
scene paths, interrupted runs, and scenes in parallel with the joblib / SLURM launchers.
Most runs use the ground-truth detector and no ReID (`detector=gt reid=none`) for speed.
"""

from __future__ import annotations

import json
import logging
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from citytrack.data.formats import aicity
from citytrack.data.formats.errors import FormatError
from citytrack.data.synth import ensure_synthetic_dataset
from citytrack.data.video import AtomicVideoWriter, VideoError, VideoReader, probe_video
from citytrack.inference import run_task
from citytrack.multicam.pipeline import STAGES, ScenePipeline

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY = {"cameras": 3, "people": 4, "frames": 12, "width": 320, "height": 180, "fps": 10, "progress": False}
FAST = {"detector": "gt", "reid": "none", "multicam": "online", "task.video": "false", "task.pipeline.progress": "false"}


# ----------------------------------------------------------------------------------- helpers
def _cfg(tmp: Path, scene: Path | str, out: Path, **overrides: Any) -> DictConfig:
    """The composed `infer.yaml` for `scene`, fast oracles unless overridden (`task__video=True` style keys
    use `__` for dots)."""
    values = {**FAST, **{k.replace("__", "."): v for k, v in overrides.items()}}
    values = {k: str(v).lower() if isinstance(v, bool) else v for k, v in values.items()}
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return compose(
            config_name="infer",
            overrides=[f"scene={scene}", f"out={out}", f"paths.output_dir={out}", f"paths.data_dir={tmp / 'data'}",
                       f"paths.root_dir={REPO_ROOT}", *(f"{k}={v}" for k, v in values.items())],
        )


def _run(tmp: Path, scene: Path | str, out: Path, **overrides: Any) -> dict[str, Any]:
    return run_task(_cfg(tmp, scene, out, **overrides))


def _summary(out: Path) -> dict[str, Any]:
    return json.loads((out / "summary.json").read_text())


def _copy_scene(src: Path, dest_root: Path) -> Path:
    """A private copy of one scene folder under dest_root/<split>/ (so it can be damaged)."""
    dest = dest_root / "train" / src.name
    shutil.copytree(src, dest)
    return dest


def _camera_dir(scene: Path, camera: int) -> Path:
    return scene / aicity.aic24_camera_dirname(camera)


def _shorten(video: Path, frames: int) -> None:
    """Rewrite `video` with its first `frames` frames."""
    info = probe_video(video)
    with VideoReader(video, max_frames=frames) as reader:
        images = [image for _, image in reader]
    with AtomicVideoWriter(video, info.fps, info.size) as writer:
        for image in images:
            writer.write(image)


def _leftovers(out: Path) -> list[str]:
    """Temporary files of atomic writes (`.<name>.<random><suffix>`) left in out."""
    return sorted(p.name for p in out.iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def aic24(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two AI City 2024 scenes (scene_001, scene_002) of 3 cameras: <root>/train."""
    root = ensure_synthetic_dataset(tmp_path_factory.mktemp("aic24"), scenes=2, seed=30, **TINY)
    return root / "train"


@pytest.fixture(scope="module")
def aic23(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One AI City 2023 scene (S001/c001..c002, MOT-style label.txt with 1-based frames): <root>/train."""
    root = ensure_synthetic_dataset(tmp_path_factory.mktemp("aic23"), scenes=1, seed=31, layout="aic23",
                                    **{**TINY, "cameras": 2})
    return root / "train"


@pytest.fixture(scope="module")
def online_run(aic24: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """Both scenes run together (a folder of scenes), multicam=online, with the scene videos."""
    tmp = tmp_path_factory.mktemp("online")
    out = tmp / "out"
    return out, _run(tmp, aic24, out, task__video=True, task__video_tile_width=160)


# ------------------------------------------------------------------------------------ outputs
def test_folder_of_scenes_writes_valid_results(aic24: Path, online_run: tuple[Path, dict[str, Any]]) -> None:
    out, metrics = online_run
    scenes = ["scene_001", "scene_002"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["track1.txt", "summary.json", *(f"{s}.txt" for s in scenes), *(f"{s}.mp4" for s in scenes)])
    track1 = aicity.read_track1(out / "track1.txt")
    per_scene = [aicity.read_track1(out / f"{s}.txt") for s in scenes]
    # the per-scene files concatenate to the submission, line for line
    assert (out / "track1.txt").read_text() == "".join((out / f"{s}.txt").read_text() for s in scenes)
    np.testing.assert_array_equal(track1, np.concatenate(per_scene))
    # global ids are unique across scenes; cameras are the scenes' own (1-3, 4-6); AIC24 frames 0-based
    ids = [set(t[:, 1].astype(int)) for t in per_scene]
    assert ids[0] and ids[1] and not ids[0] & ids[1]
    assert set(per_scene[0][:, 0]) <= {1, 2, 3} and set(per_scene[1][:, 0]) <= {4, 5, 6}
    assert track1[:, 2].min() == 0 and track1[:, 2].max() == 11
    assert np.isfinite(track1[:, 7:9]).all() and (track1[:, 7:9] != -1).any()

    summary = _summary(out)
    assert summary["metrics"] == pytest.approx(metrics)
    for key in ("HOTA", "DetA", "AssA", "mc_IDF1"):
        assert 0 < summary["metrics"][key] <= 1
    assert summary["submission"] == str(out / "track1.txt")
    for name, entry in summary["scenes"].items():
        assert set(entry["seconds"]) == set(STAGES) and all(v >= 0 for v in entry["seconds"].values())
        assert sum(entry["seconds"].values()) > 0
        assert entry["dropped_cameras"] == {} and entry["frames"] == 12 and entry["camera_frames"] == 36
        assert entry["frame_base"] == 0 and entry["layout"] == "aic24"
        assert {"HOTA", "mc_IDF1", "per_camera"} <= set(entry["metrics"])
        video = probe_video(out / f"{name}.mp4")
        assert video.frame_count == 12 and video.fps == pytest.approx(10)
    # the run's mean is the unweighted mean over scenes
    hota = [e["metrics"]["HOTA"] for e in summary["scenes"].values()]
    assert summary["metrics"]["HOTA"] == pytest.approx(np.mean(hota))


def test_online_association_beats_per_camera_ids(
    aic24: Path, online_run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    _, online = online_run
    none = _run(tmp_path, aic24, tmp_path / "out", multicam="none")
    assert online["mc_IDF1"] > none["mc_IDF1"] + 0.1
    assert online["HOTA"] > none["HOTA"]
    # per-camera ids: every camera's tracks are their own identities, so no id spans two cameras
    rows = aicity.read_track1(tmp_path / "out" / "track1.txt")
    cams_per_id = [len(np.unique(rows[rows[:, 1] == i, 0])) for i in np.unique(rows[:, 1])]
    assert max(cams_per_id) == 1


def test_aic23_output_format_blanks_world_columns(aic24: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    metrics = _run(tmp_path, aic24 / "scene_001", out, task__output_format="aic23")
    rows = aicity.read_track1(out / "track1.txt")
    assert len(rows) and (rows[:, 7:9] == -1).all()
    # the submission has no world points: no ground-plane HOTA, the AI City 2023 IDF1 only
    assert "HOTA" not in metrics and metrics["mc_IDF1"] > 0.5


def test_aic23_layout_runs_in_its_frame_base_and_is_scored(aic23: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    metrics = _run(tmp_path, aic23, out)  # the split folder: one S0XX scene
    assert sorted(p.name for p in out.iterdir()) == ["S001.txt", "summary.json", "track1.txt"]
    rows = aicity.read_track1(out / "track1.txt")
    labels = {c: aicity.read_aic23_labels(aic23 / "S001" / aicity.aic23_camera_dirname(c) / "label.txt")
              for c in (1, 2)}
    assert min(t[:, 0].min() for t in labels.values()) == 1  # MOT-style labels: the first video frame is 1
    # results in the labels' frames: every (camera, frame) of the output is a labelled one, up to the last
    labelled = {(c, int(f)) for c, t in labels.items() for f in t[:, 0]}
    assert {(int(c), int(f)) for c, f in rows[:, [0, 2]]} <= labelled
    assert rows[:, 2].min() >= 1 and rows[:, 2].max() == 12
    # ground-truth boxes were used at their own frames: nearly every labelled box is found
    assert metrics["mc_IDF1"] > 0.9 and metrics["mc_IDR"] > 0.9
    assert "HOTA" not in metrics  # AIC23 ground truth has no world points
    entry = _summary(out)["scenes"]["S001"]
    assert entry["layout"] == "aic23" and entry["frame_base"] == 1
    assert len(entry["metrics"]["per_camera"]) == 3  # two cameras and OVERALL


# ------------------------------------------------------------------------------------- faults
@pytest.mark.parametrize("fault", ["missing", "corrupt", "short"])
def test_broken_camera_drops_out_and_the_rest_continue(
    aic24: Path, tmp_path: Path, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    scene = _copy_scene(aic24 / "scene_001", tmp_path / "data")
    video = _camera_dir(scene, 2) / "video.mp4"
    if fault == "missing":
        video.unlink()
    elif fault == "corrupt":
        video.write_bytes(np.random.default_rng(32).bytes(20_000))
    else:
        _shorten(video, 5)
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        metrics = _run(tmp_path, scene, out, task__video=True, task__video_tile_width=160)
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("camera 2 " in m and str(video) in m and "dropped" in m for m in warned), warned
    rows = aicity.read_track1(out / "track1.txt")
    assert set(rows[rows[:, 2] >= 5, 0].astype(int)) == {1, 3}  # the others go on to the end
    assert rows[:, 2].max() == 11
    entry = _summary(out)["scenes"]["scene_001"]
    assert list(entry["dropped_cameras"]) == ["2"] and entry["frames"] == 12
    if fault == "short":
        assert "frame 5" in entry["dropped_cameras"]["2"] and set(rows[rows[:, 0] == 2, 2]) <= set(range(5))
        assert entry["camera_frames"] == 2 * 12 + 5
    else:
        assert 2 not in rows[:, 0] and entry["camera_frames"] == 2 * 12
    assert metrics["mc_IDF1"] > 0  # still scored (camera 2's ground truth counts as missed)
    assert probe_video(out / "scene_001.mp4").frame_count == 12


def test_no_readable_video_is_a_clear_error(aic24: Path, tmp_path: Path) -> None:
    scene = _copy_scene(aic24 / "scene_001", tmp_path / "data")
    for c in (1, 2, 3):
        (_camera_dir(scene, c) / "video.mp4").unlink()
    with pytest.raises(FormatError, match="no camera video") as err:
        _run(tmp_path, scene, tmp_path / "out")
    assert err.value.path == str(scene) and "camera_0003/video.mp4" in str(err.value)
    # present but none decodes: the video reader names every file
    for c in (1, 2, 3):
        (_camera_dir(scene, c) / "video.mp4").write_bytes(b"not a video")
    with pytest.raises(VideoError, match="no camera video can be read") as err:
        _run(tmp_path, scene, tmp_path / "out2")
    assert all(str(_camera_dir(scene, c) / "video.mp4") in str(err.value) for c in (1, 2, 3))
    assert not (tmp_path / "out2" / "track1.txt").exists()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing", "calibration is missing"),
        ("json", "invalid JSON"),
        ("singular", "singular"),
    ],
)
def test_bad_calibration_names_the_file_before_decoding(
    aic24: Path, tmp_path: Path, damage: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("scene_001", "scene_002"):
        _copy_scene(aic24 / name, tmp_path / "data")
    calib = _camera_dir(tmp_path / "data" / "train" / "scene_002", 5) / "calibration.json"
    if damage == "missing":
        calib.unlink()
    elif damage == "json":
        calib.write_text('{"camera projection matrix": [[1, 0, 0, 0],\n')
    else:
        data = json.loads(calib.read_text())
        data["homography matrix"] = [[1, 2, 3], [2, 4, 6], [0, 0, 1]]
        calib.write_text(json.dumps(data))

    def no_decoding(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a scene was run before every calibration was checked")

    monkeypatch.setattr(ScenePipeline, "run", no_decoding)
    with pytest.raises(FormatError, match=message) as err:
        _run(tmp_path, tmp_path / "data" / "train", tmp_path / "out")
    assert err.value.path == str(calib)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize("spec", ["empty", "unknown", "blank"])
def test_scene_not_found_lists_where_it_looked(tmp_path: Path, spec: str) -> None:
    (tmp_path / "data" / "train").mkdir(parents=True)
    if spec == "empty":
        scene: str = str(tmp_path / "empty")
        (tmp_path / "empty").mkdir()
    elif spec == "unknown":
        scene = "scene_404"
    else:
        scene = "''"
    with pytest.raises(FileNotFoundError) as err:
        _run(tmp_path, scene, tmp_path / "out")
    text = str(err.value)
    if spec == "empty":
        assert str(tmp_path / "empty") in text and "without scene_XXX" in text
    elif spec == "unknown":
        for looked in ("scene_404", str(tmp_path / "data" / "scene_404"), str(tmp_path / "data" / "train" / "scene_404")):
            assert looked in text
    else:
        assert "scene= is empty" in text
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("where", ["pipeline", "video"])
def test_interrupted_run_leaves_no_half_written_results(
    aic24: Path, tmp_path: Path, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for name in ("track1.txt", "summary.json"):  # an earlier run's: must not pass for this one's
        (out / name).write_text("stale\n")

    class Interrupted(Exception):
        pass

    if where == "pipeline":  # the second scene stops midway through its frames
        real_run = ScenePipeline.run

        def run_then_stop(self: ScenePipeline, scene: Any) -> Any:
            if scene.name == "scene_002":
                self.max_frames = 6
                real_run(self, scene)
                raise Interrupted
            return real_run(self, scene)

        monkeypatch.setattr(ScenePipeline, "run", run_then_stop)
    else:  # the second scene's video stops after a few frames
        from citytrack.visualize.scene import SceneVideoWriter

        real_write = SceneVideoWriter.write

        def write_then_stop(self: SceneVideoWriter, frame: int, *args: Any, **kwargs: Any) -> Any:
            if self.path.name == "scene_002.mp4" and frame == 4:
                raise Interrupted
            return real_write(self, frame, *args, **kwargs)

        monkeypatch.setattr(SceneVideoWriter, "write", write_then_stop)
    with pytest.raises(Interrupted):
        _run(tmp_path, aic24, out, task__video=True, task__video_tile_width=160)
    left = sorted(p.name for p in out.iterdir())
    assert _leftovers(out) == []
    assert "track1.txt" not in left and "summary.json" not in left and "scene_002.mp4" not in left
    # what was finished is complete
    assert {"scene_001.txt", "scene_001.mp4"} <= set(left)
    assert len(aicity.read_track1(out / "scene_001.txt")) and probe_video(out / "scene_001.mp4").frame_count == 12
    assert set(left) <= {"scene_001.txt", "scene_001.mp4", "scene_002.txt"}


# ---------------------------------------------------------------------------------- launchers
def _multirun_args(aic24: Path, tmp_path: Path, n_jobs: int) -> list[str]:
    """`infer.py -m` over the two scenes with the joblib launcher (`hydra/launcher=parallel`)."""
    scenes = f"{aic24 / 'scene_001'},{aic24 / 'scene_002'}"
    return ["-m", f"scene={scenes}", "hydra/launcher=parallel", f"hydra.launcher.n_jobs={n_jobs}",
            *(f"{k}={v}" for k, v in FAST.items()), f"hydra.sweep.dir={tmp_path / 'sweep'}",
            f"paths.data_dir={tmp_path / 'data'}", f"paths.log_dir={tmp_path / 'logs'}", f"paths.root_dir={REPO_ROOT}"]


def _check_sweep(sweep: Path) -> None:
    """Each job ran one scene into its own <sweep>/<job>/results."""
    done = {}
    for job in ("0", "1"):
        out = sweep / job / "results"
        summary = _summary(out)
        (name,) = summary["scenes"]
        done[name] = aicity.read_track1(out / "track1.txt")
        assert len(done[name]) and summary["metrics"]["mc_IDF1"] > 0.5
        assert (out / f"{name}.txt").read_text() == (out / "track1.txt").read_text()
    assert sorted(done) == ["scene_001", "scene_002"]


def test_multirun_over_scenes_writes_one_result_folder_per_job(
    aic24: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`infer.py -m` run as a script in this process: with n_jobs=1 joblib runs the jobs here, in turn."""
    args = _multirun_args(aic24, tmp_path, n_jobs=1)
    monkeypatch.setattr(sys, "argv", ["infer.py", *args, "hydra/job_logging=none", "hydra/hydra_logging=none"])
    runpy.run_path(str(REPO_ROOT / "infer.py"), run_name="__main__")
    _check_sweep(tmp_path / "sweep")


@pytest.mark.slow
def test_scenes_in_parallel_with_the_joblib_launcher(aic24: Path, tmp_path: Path) -> None:
    """`python infer.py -m scene=a,b hydra/launcher=parallel`: two worker processes, one scene each."""
    cmd = [sys.executable, "infer.py", *_multirun_args(aic24, tmp_path, n_jobs=2)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, check=False, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in proc.stdout + proc.stderr
    _check_sweep(tmp_path / "sweep")


def _hydra_cfg(*overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return compose(config_name="infer", overrides=list(overrides), return_hydra_config=True)


def test_slurm_launcher_config_composes_without_submitting() -> None:
    launcher = _hydra_cfg("hydra/launcher=slurm", "hydra.launcher.partition=gpu").hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert launcher.gpus_per_node == 1 and launcher.cpus_per_task == 8 and launcher.mem_gb == 32
    assert launcher.timeout_min == 240 and launcher.tasks_per_node == 1 and launcher.partition == "gpu"
    assert launcher.max_num_timeout == 0 and launcher.submitit_folder.endswith("/.submitit/%j")
    # the plugins' own names still work, with the plugins' defaults
    plain = _hydra_cfg("hydra/launcher=submitit_slurm").hydra.launcher
    assert plain._target_ == launcher._target_ and plain.gpus_per_node is None
    joblib = _hydra_cfg("hydra/launcher=parallel").hydra.launcher
    assert joblib._target_ == "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    assert joblib.n_jobs == 2 and _hydra_cfg("hydra/launcher=joblib").hydra.launcher.n_jobs == -1


# --------------------------------------------------------------------------------------- slow
@pytest.mark.slow
def test_shipped_detector_and_reid_track_a_scene(tmp_path: Path) -> None:
    root = ensure_synthetic_dataset(tmp_path / "scene", scenes=1, seed=34, **{**TINY, "width": 640, "height": 360})
    out = tmp_path / "out"
    metrics = _run(tmp_path, root / "train", out, detector="synthetic_cpu", reid="synthetic_osnet", device="cpu")
    rows = aicity.read_track1(out / "track1.txt")
    assert len(rows) and np.isfinite(rows[:, 7:9]).all()
    entry = _summary(out)["scenes"]["scene_001"]
    assert entry["seconds"]["detect"] > 0 and entry["seconds"]["reid"] > 0
    # world 2 (issue 12: clutter, dark clothes, camera effects) is harder than the world these bounds were
    # first set on (0.5 / 0.3 with the world-1 checkpoints); a broken detector, ReID or association scores ~0.
    # botsort_static's appearance options (relink_lost, gate) moved this 12-frame scene from IDF1 0.337 /
    # HOTA 0.417 to 0.297 / 0.434, inside its noise (the 100-frame benchmark scenes gain; botsort_static.yaml)
    assert metrics["mc_IDF1"] > 0.25 and metrics["HOTA"] > 0.3
    # AI City 2023 input: the network's boxes come out in the labels' 1-based frames and score as well
    root23 = ensure_synthetic_dataset(tmp_path / "scene23", scenes=1, seed=35, layout="aic23",
                                      **{**TINY, "width": 640, "height": 360})
    metrics23 = _run(tmp_path, root23 / "train", tmp_path / "out23", detector="synthetic_cpu",
                     reid="synthetic_osnet", device="cpu")
    rows23 = aicity.read_track1(tmp_path / "out23" / "track1.txt")
    assert rows23[:, 2].min() >= 1 and rows23[:, 2].max() == 12
    assert metrics23["mc_IDF1"] > 0.3 and "HOTA" not in metrics23
