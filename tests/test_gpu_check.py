"""benchmarks/gpu_check.sh, the prepared GPU run, end to end in its tiny CPU mode (SMOKE=1 DEVICE=cpu).

A session lent a GPU has minutes of it: the script must work the first time. This runs every step
(detector, ReID and scene benchmarks, the full-size detector and keypoint experiments, their exports)
on a tiny scale.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_smoke(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "SMOKE": "1", "DEVICE": "cpu", "OUT": str(out), "PY": sys.executable,
           "DATA": str(tmp_path / "data"), "WORK": str(tmp_path / "work"), "OMP_NUM_THREADS": "2",
           "TRAIN": "detector pose"}  # fmt: skip
    proc = subprocess.run(["bash", "benchmarks/gpu_check.sh"], cwd=ROOT, env=env, capture_output=True, text=True, check=False,
                          timeout=900)  # fmt: skip
    summary = (out / "summary.txt").read_text()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "exit 1" not in summary and "exit 2" not in summary, summary
    rows = [json.loads(line) for line in (out / "bench.jsonl").read_text().splitlines()]
    steps = {r["step"]: r for r in rows}
    assert set(steps) == {"det_bf16_nhwc", "det_bf16_nchw", "det_fp32_nhwc", "det_train_crops", "det_cpu_ckpt",
                          "reid", "scene_pose", "det_gpu_ckpt"}  # fmt: skip
    assert steps["det_cpu_ckpt"]["backbone"] == "regnetx_004" and steps["det_gpu_ckpt"]["backbone"] == "resnet18"
    assert steps["scene_pose"]["modes"]["batched"]["camera_frames_per_s"] > 0
    assert "train detector: exit 0" in summary and "train pose: exit 0" in summary
    for name in ("detector_synthetic_gpu.pt", "pose_synthetic_gpu.ckpt"):
        parts = sorted(out.glob(f"{name}*"))
        assert parts and all(p.stat().st_size <= 15 * 2**20 for p in parts), name  # each part fits the way back
    # a device call returns at most 8 files: so does a run with one of the two trainings (TRAIN=detector or pose)
    files = {f.name for f in out.iterdir()}
    for other in ("detector", "pose"):
        assert len({f for f in files if not f.startswith((f"metrics_{other}", f"{other}_synthetic_gpu"))}) <= 8, files
    for what in ("detector", "pose"):
        assert (out / f"metrics_{what}.csv").read_text().startswith(("epoch", "step", "lr", "train", "val")), what
    # the exported keypoint net is what pose=synthetic and the held-out evaluation read
    from citytrack.models.pose.extractor import KeypointExtractor

    assert KeypointExtractor.from_checkpoint(out / "pose_synthetic_gpu.ckpt").net.config["skip"] is True
