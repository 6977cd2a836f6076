"""A 2-trial Optuna sweep through `infer.py` (tracker thresholds on a tiny synthetic MOT set) finds a best HOTA."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_two_trial_tracker_sweep_writes_optuna_results(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable, "infer.py", "hparams_search=tracker_optuna",
            f"paths.data_dir={tmp_path}/data", f"paths.log_dir={tmp_path}/logs",
            "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.n_startup_trials=2",
            "task.synthetic.cameras=2", "task.synthetic.people=6", "task.synthetic.frames=40",
            "task.synthetic.width=320", "task.synthetic.height=180",
        ],
        check=False, cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = list((tmp_path / "logs").rglob("optimization_results.yaml"))
    assert len(found) == 1, result.stdout[-2000:]
    best = yaml.safe_load(found[0].read_text())
    assert 0.0 < float(best["best_value"]) <= 100.0  # HOTA of the OVERALL row, in percent
    assert set(best["best_params"]) == {
        "tracker.track_thresh", "tracker.new_track_thresh", "tracker.match_thresh",
        "tracker.second_match_thresh", "tracker.track_buffer",
    }
    # two trials ran, each one a job folder with its own results
    assert len([p for p in found[0].parent.iterdir() if p.is_dir() and p.name.isdigit()]) == 2
    assert (tmp_path / "data" / "synth" / "tracker_tuning" / "meta.json").is_file()
