"""`infer.py task=mot_video` on the first frames of the real PETS09-S2L1 clip."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir

from citytrack.data.video import AtomicVideoWriter, VideoReader, probe_video
from citytrack.inference import run_task


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
    result = run_task(cfg)
    video = probe_video(result["video"])
    assert video.frame_count == 8
    assert video.width == 480
    assert (tmp_path / "pets09_s2l1_view001.txt").stat().st_size > 0
    assert result["metrics"]["MOTA"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pets09_s2l1_view001.mp4", "pets09_s2l1_view001.txt"]


def _short_clip_cfg(config_dir: Path, tmp_path: Path, frames: int):
    """A `frames`-long clip of the real video, its detections and gt, behind task=mot_video."""
    src = config_dir.parent.parent / "shared" / "data" / "video" / "pets09_s2l1_view001.avi"
    clip = tmp_path / "clip.avi"
    with VideoReader(src, max_frames=frames) as reader, AtomicVideoWriter(clip, 10, (480, 360), "MJPG") as writer:
        for _, image in reader:
            writer.write(image)
    assert writer.frames_written == frames
    out = tmp_path / "out"
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        return compose(
            config_name="infer",
            overrides=[
                "task=mot_video",
                "tracker=bytetrack",
                f"out={out}",
                f"paths.output_dir={out}",
                f"paths.root_dir={config_dir.parent}",
                f"task.video={clip}",
            ],
        )


def test_mot_video_scores_only_the_frames_it_tracked(shared_data: Path, config_dir: Path, tmp_path: Path) -> None:
    result = run_task(_short_clip_cfg(config_dir, tmp_path, frames=5))
    assert result["frames"] == 5
    gt = shared_data / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"
    rows_in_first_5 = sum(1 for line in gt.read_text().splitlines() if line and int(line.split(",")[0]) <= 5)
    assert result["metrics"]["num_gt"] == rows_in_first_5


def test_mot_video_without_readable_frames_names_the_file(shared_data: Path, config_dir: Path, tmp_path: Path) -> None:
    import pytest

    from citytrack.data.formats.errors import FormatError

    cfg = _short_clip_cfg(config_dir, tmp_path, frames=1)
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    cfg.task.video = str(empty)
    with pytest.raises(FormatError, match="empty.avi"):
        run_task(cfg)
    assert not (tmp_path / "out" / "pets09_s2l1_view001.txt").exists()
