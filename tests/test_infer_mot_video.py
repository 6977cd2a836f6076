"""`infer.py task=mot_video` on the first frames of the real PETS09-S2L1 clip."""

from __future__ import annotations

from pathlib import Path

import cv2
from hydra import compose, initialize_config_dir

from citytrack.inference.video import run


def test_mot_video_writes_annotated_video(shared_data: Path, config_dir: Path, tmp_path: Path) -> None:
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = compose(
            config_name="infer",
            overrides=[
                "task=mot_video",
                "tracker=botsort",
                f"out={tmp_path}",
                f"paths.output_dir={tmp_path}",
                f"paths.root_dir={config_dir.parent}",
                "task.max_frames=8",
            ],
        )
    result = run(cfg)
    video = cv2.VideoCapture(result["video"])
    assert video.isOpened() and int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
    assert int(video.get(cv2.CAP_PROP_FRAME_WIDTH)) == 480
    assert (tmp_path / "pets09_s2l1_view001.txt").stat().st_size > 0
    assert result["metrics"]["MOTA"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pets09_s2l1_view001.mp4", "pets09_s2l1_view001.txt"]
