"""User mistakes on the command line are one `error:` line on stderr and a non-zero exit, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError

from citytrack.data.formats.errors import FormatError
from citytrack.utils.cli import error_line, run_cli

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run(
        [sys.executable, *args, f"paths.log_dir={tmp_path}/logs"],
        check=False, cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**environ, "OMP_NUM_THREADS": "1", **env},
    )


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def test_missing_data_root_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_dataset"
    result = _run(["infer.py", "task=mot", f"data.root={missing}", f"out={tmp_path}/out"], tmp_path)
    assert result.returncode != 0
    lines = _error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and str(missing) in lines[0]
    assert "Traceback" not in result.stderr


def test_bad_override_is_one_line(tmp_path: Path) -> None:
    result = _run(["train.py", "experiment=reid_synthetic", "trainer.no_such_flag=1"], tmp_path)
    assert result.returncode != 0
    lines = _error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert "trainer.no_such_flag" in lines[0] and "not in struct" in lines[0]


def test_unknown_config_option_is_one_line_listing_the_options(tmp_path: Path) -> None:
    unknown = _run(["train.py", "experiment=no_such_experiment"], tmp_path)
    assert unknown.returncode != 0
    assert len(_error_lines(unknown.stderr)) == 1, unknown.stderr
    assert "experiment/no_such_experiment" in unknown.stderr and "reid_synthetic" in unknown.stderr


def test_debug_flag_keeps_the_traceback(tmp_path: Path) -> None:
    debug = _run(["train.py", "--debug", "experiment=reid_synthetic", "trainer.no_such_flag=1"], tmp_path)
    assert debug.returncode != 0
    assert "Traceback" in debug.stderr


def test_error_line_names_file_line_and_cause() -> None:
    err = FormatError("seq/det/det.txt", "expected 7 or more columns, got 3", line=12)
    assert error_line(err) == "error: seq/det/det.txt:12: expected 7 or more columns, got 3"
    assert error_line(FileNotFoundError(2, "No such file or directory", "data/x")) == (
        "error: data/x: No such file or directory"
    )
    with pytest.raises(ConfigAttributeError) as info:  # several lines from omegaconf, one here
        OmegaConf.create({"a": 1}, flags={"struct": True}).b  # noqa: B018
    line = error_line(info.value)
    assert "\n" not in line and "Key 'b' is not in struct" in line


def test_run_cli_reports_user_errors_and_reraises_bugs(capsys: pytest.CaptureFixture[str]) -> None:
    def bad_file(argv: list[str]) -> int:
        raise FormatError("gt.txt", "not a number", line=3)

    assert run_cli(bad_file, []) == 1
    assert capsys.readouterr().err.strip() == "error: gt.txt:3: not a number"
    with pytest.raises(FormatError):
        run_cli(bad_file, ["--debug"])

    def bug(argv: list[str]) -> int:
        raise ZeroDivisionError("a bug keeps its traceback")

    with pytest.raises(ZeroDivisionError):
        run_cli(bug, [])
