"""`python -m citytrack.bench mots` runs the pipeline infer.py builds and reports each stage's rate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from citytrack.bench import mots

CKPT = Path(__file__).resolve().parents[1] / "checkpoints" / "pointtrack_synthetic.ckpt"


@pytest.mark.skipif(not CKPT.is_file(), reason="needs the committed PointTrack checkpoint")
def test_bench_mots_on_gt_masks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    rc = mots.main(["--frames", "6", "--people", "6", "--repeats", "1", "--device", "cpu", "--override",
                    "segmenter=gt", "--data-dir", str(tmp_path / "data"), "--json", str(out)])
    assert rc == 0
    result = json.loads(out.read_text())
    assert result["sequence"]["width"] == 1242 and result["sequence"]["height"] == 375
    assert result["masks_per_frame"] > 0
    for key in ("segmenter_fps", "association_fps", "pipeline_fps", "mask_iou_association_fps"):
        assert result[key] > 0
    # the peer ran on the same masks without PointTrack's embedding stage
    assert result["seconds"]["pointtrack"]["embed"] > 0 and result["seconds"]["mask_iou"]["embed"] == 0
    assert "segmenter" in capsys.readouterr().out
