"""`infer.py task=mots` end to end through the real Hydra config, on tiny synthetic KITTI MOTS sequences.

Result files in the KITTI MOTS txt format (read back and scored), optional PNG id maps, the overlay
video, summary.json, both association heads on ground-truth masks, the shipped checkpoints on the
full pipeline, and bad input (missing root, unknown sequence, interrupted runs leave nothing half-written).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from citytrack.data.formats import kitti_mots
from citytrack.data.mots_sequences import find_mots_sequences
from citytrack.data.synth import ensure_synthetic_dataset
from citytrack.data.video import probe_video
from citytrack.eval.mots import evaluate_mots
from citytrack.inference import run_task
from citytrack.tracking.mots_pipeline import MotsPipeline

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY = {"layout": "kitti_mots", "seed": 33, "scenes": 1, "cameras": 2, "people": 5, "frames": 12, "width": 320,
        "height": 160, "fps": 10, "progress": False}
FAST = {"segmenter": "gt", "mots_tracker": "mask_iou", "task.pipeline.embedder": "null", "task.video": "false",
        "task.pipeline.progress": "false"}
POINTTRACK_CKPT = REPO_ROOT / "checkpoints" / "pointtrack_synthetic.ckpt"
SEGMENTER_CKPT = REPO_ROOT / "checkpoints" / "spatial_embedding_synthetic_cpu.pt"


@pytest.fixture(scope="module")
def tiny_split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_synthetic_dataset(tmp_path_factory.mktemp("mots") / "tiny", **TINY) / "train"


def _cfg(tmp: Path, root: Path | str, out: Path, **overrides: Any) -> DictConfig:
    values = {**FAST, **{k.replace("__", "."): v for k, v in overrides.items()}}
    values = {k: str(v).lower() if isinstance(v, bool) else v for k, v in values.items()}
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return compose(
            config_name="infer",
            overrides=["task=mots", f"data.root={root}", f"out={out}", f"paths.output_dir={out}",
                       f"paths.data_dir={tmp / 'data'}", f"paths.root_dir={REPO_ROOT}", "device=cpu",
                       *(f"{k}={v}" for k, v in values.items())],
        )


def test_gt_masks_round_trip_with_png_and_video(tmp_path: Path, tiny_split: Path) -> None:
    out = tmp_path / "out"
    metrics = run_task(_cfg(tmp_path, tiny_split, out, task__png=True, task__video=True))
    seqs = find_mots_sequences(tiny_split)
    for seq in seqs:
        pred = kitti_mots.read_instances_txt(out / f"{seq.name}.txt")
        gt = [r for recs in seq.records.values() for r in recs if not r.is_ignore]
        # every ground-truth mask comes back exactly (ids renumbered by the tracker), nothing else
        assert sorted((r.frame, r.rle) for r in pred) == sorted((r.frame, r.rle) for r in gt)
        assert all(r.class_id == 2 and 2001 <= r.obj_id < 3000 for r in pred)
        png = kitti_mots.read_instance_png(out / "instances" / seq.name / f"{seq.frames[5]:06d}.png")
        np.testing.assert_array_equal(png, kitti_mots.records_to_png([r for r in pred if r.frame == seq.frames[5]]))
        info = probe_video(out / f"{seq.name}.mp4")
        assert (info.width, info.height, info.frame_count) == (320, 160, len(seq))
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["sequences"]) == {s.name for s in seqs}
    ped = metrics["pedestrian"]
    assert ped["FN"] == 0 and ped["FP"] == 0 and ped["MOTSP"] == pytest.approx(1.0)
    assert "car" not in metrics  # no car in the world: no row of NaNs
    assert summary["metrics"]["pedestrian"]["sMOTSA"] == pytest.approx(ped["sMOTSA"])
    assert not list(out.rglob("*.tmp*"))


@pytest.mark.skipif(not POINTTRACK_CKPT.is_file(), reason="checkpoints/pointtrack_synthetic.ckpt not trained yet")
def test_pointtrack_association_on_gt_masks(tmp_path: Path, tiny_split: Path) -> None:
    cfg = _cfg(tmp_path, tiny_split, tmp_path / "pt", mots_tracker="pointtrack")
    cfg.task.pipeline.embedder = {"_target_": "citytrack.tracking.mots_pipeline.CheckpointEmbedder",
                                  "ckpt": str(POINTTRACK_CKPT), "device": "cpu"}
    metrics = run_task(cfg)
    ped = metrics["pedestrian"]
    assert ped["FN"] == 0 and ped["FP"] == 0
    assert ped["IDS"] <= 2 and ped["sMOTSA"] > 0.95


def test_pipeline_without_embedder_refuses_appearance_tracker(tiny_split: Path) -> None:
    from citytrack.tracking.mots import PointTrackTracker
    from citytrack.tracking.mots_pipeline import GroundTruthSegmenter

    pipeline = MotsPipeline(GroundTruthSegmenter(), PointTrackTracker, embedder=None, progress=False)
    with pytest.raises(ValueError, match="no instance embedder"):
        pipeline.run(find_mots_sequences(tiny_split)[0])


@pytest.mark.skipif(not SEGMENTER_CKPT.is_file(), reason="checkpoints/spatial_embedding_synthetic_cpu.pt not trained yet")
def test_shipped_segmenter_pipeline_scores(tmp_path: Path) -> None:
    """The full pipeline with the committed checkpoints finds most people of an unseen world at KITTI size."""
    kitti_size = {**TINY, "seed": 32, "cameras": 1, "people": 8, "frames": 6, "width": 1242, "height": 375}
    tiny_split = ensure_synthetic_dataset(tmp_path / "kitti_size", **kitti_size) / "train"
    cfg = _cfg(tmp_path, tiny_split, tmp_path / "full", segmenter="synthetic_cpu", mots_tracker="pointtrack",
               **{"task.sequences": "['0000']"})
    cfg.task.pipeline.embedder = {"_target_": "citytrack.tracking.mots_pipeline.CheckpointEmbedder",
                                  "ckpt": str(POINTTRACK_CKPT), "device": "cpu"}
    metrics = run_task(cfg)
    gt = find_mots_sequences(tiny_split, names=["0000"])[0]
    pred = kitti_mots.read_instances_txt(tmp_path / "full" / "0000.txt")
    again = evaluate_mots({"0000": [r for v in gt.records.values() for r in v]}, {"0000": pred}, classes=(2,))
    assert again["pedestrian"]["sMOTSA"] == pytest.approx(metrics["pedestrian"]["sMOTSA"])
    assert metrics["pedestrian"]["TP"] > 0.5 * metrics["pedestrian"]["num_gt"]


def test_missing_root_and_unknown_sequence(tmp_path: Path, tiny_split: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_task(_cfg(tmp_path, tmp_path / "nowhere", tmp_path / "o1"))
    with pytest.raises(FileNotFoundError, match="0042"):
        run_task(_cfg(tmp_path, tiny_split, tmp_path / "o2", **{"task.sequences": "['0042']"}))


def test_interrupted_run_leaves_no_partial_files(tmp_path: Path, tiny_split: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    (out).mkdir()
    (out / "summary.json").write_text("{}")  # stale: must not survive into a failed run
    calls = {"n": 0}
    original = MotsPipeline.run

    def failing_run(self: MotsPipeline, sequence: Any, on_frame: Any = None) -> Any:
        def boom(frame: int, image: np.ndarray, records: list[Any]) -> None:
            on_frame(frame, image, records)
            calls["n"] += 1
            if calls["n"] == 5:
                raise KeyboardInterrupt

        return original(self, sequence, on_frame=boom)

    monkeypatch.setattr(MotsPipeline, "run", failing_run)
    with pytest.raises(KeyboardInterrupt):
        run_task(_cfg(tmp_path, tiny_split, out, task__video=True, task__png=False))
    assert sorted(p.name for p in out.iterdir()) == []
