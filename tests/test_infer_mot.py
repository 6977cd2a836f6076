"""`infer.py task=mot` end to end on a tiny sequence, malformed det files, atomic results."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from citytrack.data.formats.errors import FormatError
from citytrack.inference import run_task


def _cfg(config_dir: Path, root: Path, out: Path, tracker: str = "sort", extra: list[str] | None = None):
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        return compose(
            config_name="infer",
            overrides=[
                "task=mot",
                f"tracker={tracker}",
                f"data.root={root}",
                f"out={out}",
                "paths.output_dir=" + str(out),
                *(extra or []),
            ],
        )


def _tiny_copy(shared_data: Path, dest: Path, frames: int = 20) -> Path:
    """First `frames` frames of TUD-Campus (det, gt, seqinfo) under dest/TUD-Campus."""
    src = shared_data / "mot15" / "TUD-Campus"
    seq = dest / "TUD-Campus"
    for sub in ("det/det.txt", "gt/gt.txt"):
        lines = [ln for ln in (src / sub).read_text().splitlines() if int(ln.split(",")[0]) <= frames]
        (seq / sub).parent.mkdir(parents=True, exist_ok=True)
        (seq / sub).write_text("\n".join(lines) + "\n")
    info = (src / "seqinfo.ini").read_text().replace("seqLength=71", f"seqLength={frames}")
    (seq / "seqinfo.ini").write_text(info)
    return seq


@pytest.mark.parametrize("tracker", ["sort", "deepsort", "bytetrack", "botsort"])
def test_task_mot_writes_results_and_prints_metrics(
    shared_data: Path, config_dir: Path, tmp_path: Path, tracker: str, capsys
) -> None:
    _tiny_copy(shared_data, tmp_path / "data")
    out = tmp_path / "out"
    result = run_task(_cfg(config_dir, tmp_path / "data", out, tracker, ["task.postprocess.interpolation=linear"]))
    table = np.loadtxt(out / "TUD-Campus.txt", delimiter=",")
    assert table.shape[1] == 10 and table[:, 0].max() <= 20 and len(np.unique(table[:, 1])) >= 3
    printed = capsys.readouterr().out
    assert "TUD-Campus" in printed and "OVERALL" in printed and "MOTA" in printed
    assert result["metrics"]["OVERALL"]["MOTA"] > 40


def test_sequence_selector_and_unknown_sequence(shared_data: Path, config_dir: Path, tmp_path: Path) -> None:
    _tiny_copy(shared_data, tmp_path / "data")
    shutil.copytree(tmp_path / "data" / "TUD-Campus", tmp_path / "data" / "Other")
    out = tmp_path / "out"
    run_task(_cfg(config_dir, tmp_path / "data", out, extra=["data.sequences=[Other]"]))
    assert [p.name for p in out.iterdir()] == ["Other.txt"]
    with pytest.raises(FormatError, match="sequences not found"):
        run_task(_cfg(config_dir, tmp_path / "data", out, extra=["data.sequences=[Nope]"]))


GOOD = "1,-1,10,10,20,40,0.9\n1,-1,50,10,20,40,0.8\n2,-1,11,10,20,40,0.9\n"


@pytest.mark.parametrize(
    ("det", "line", "message"),
    [
        (GOOD + "3,-1,10,10\n", 4, "fields"),
        (GOOD + "3,-1,10,abc,20,40,0.9\n", 4, "non-numeric"),
        (GOOD + "3,-1,10,10,-20,40,0.9\n", 4, "width"),
        (GOOD + "1,-1,12,10,20,40,0.9\n", 4, "out of order"),
        ("1,-1,10,10,20,40,0.9\n\n3,-1,10,10,20,40,0.9\n2,-1,10,10,20,40,0.9\n3,-1,1,1,2,2,1\n", 5, "out of order"),
    ],
)
def test_malformed_det_file_names_file_and_line(
    config_dir: Path, tmp_path: Path, det: str, line: int, message: str
) -> None:
    seq = tmp_path / "data" / "Bad"
    (seq / "det").mkdir(parents=True)
    (seq / "det" / "det.txt").write_text(det)
    (seq / "seqinfo.ini").write_text(
        "[Sequence]\nname=Bad\nframeRate=10\nseqLength=3\nimWidth=100\nimHeight=100\n"
    )
    with pytest.raises(FormatError, match=message) as err:
        run_task(_cfg(config_dir, tmp_path / "data", tmp_path / "out"))
    assert err.value.path.endswith("det.txt") and err.value.line == line
    assert not (tmp_path / "out" / "Bad.txt").exists()


def test_shuffled_frame_blocks_are_accepted_unless_strict(config_dir: Path, tmp_path: Path) -> None:
    seq = tmp_path / "data" / "Shuffled"
    (seq / "det").mkdir(parents=True)
    (seq / "det" / "det.txt").write_text("2,-1,11,10,20,40,0.9\n1,-1,10,10,20,40,0.9\n3,-1,12,10,20,40,0.9\n")
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=Shuffled\nframeRate=10\nseqLength=3\nimWidth=99\nimHeight=99\n")
    run_task(_cfg(config_dir, tmp_path / "data", tmp_path / "out"))
    assert (tmp_path / "out" / "Shuffled.txt").is_file()
    with pytest.raises(FormatError, match="out of order"):
        run_task(_cfg(config_dir, tmp_path / "data", tmp_path / "out2", extra=["data.strict_frame_order=true"]))


def test_interrupted_run_leaves_no_half_written_result(
    shared_data: Path, config_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    import citytrack.data.formats.mot as mot_format

    _tiny_copy(shared_data, tmp_path / "data")
    out = tmp_path / "out"
    real_open = mot_format.atomic_open

    class Interrupted(Exception):
        pass

    def failing_open(path, *a, **k):
        ctx = real_open(path, *a, **k)

        class Wrapper:
            def __enter__(self):
                handle = ctx.__enter__()
                handle.write("1,1,2,3")  # partial content, then the run dies
                raise_ = Interrupted()
                ctx.__exit__(Interrupted, raise_, None)
                raise raise_

            def __exit__(self, *exc):
                return False

        return Wrapper()

    monkeypatch.setattr(mot_format, "atomic_open", failing_open)
    with pytest.raises(Interrupted):
        run_task(_cfg(config_dir, tmp_path / "data", out))
    assert not (out / "TUD-Campus.txt").exists()
    assert list(out.iterdir()) == []  # no temp file either
