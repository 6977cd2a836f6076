"""The config tree ships with the package: `config_dir()` finds it in a checkout and in an installed wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from citytrack.utils.paths import config_dir, project_root

REPO = Path(__file__).resolve().parents[1]


def test_config_dir_in_the_checkout_is_the_repository_conf(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert config_dir() == (REPO / "conf").resolve()
    assert project_root() == REPO
    monkeypatch.setenv("CITYTRACK_CONFIG_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="CITYTRACK_CONFIG_DIR"):
        config_dir()
    (tmp_path / "train.yaml").write_text("task_name: train\n")
    assert config_dir() == tmp_path.resolve()


@pytest.mark.slow
def test_wheel_ships_conf_and_an_installed_copy_finds_it(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w", str(tmp_path / "whl")],
                   cwd=REPO, check=True, capture_output=True, env=env, timeout=600)
    wheel = next((tmp_path / "whl").glob("citytrack-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {n.removeprefix("citytrack/conf/") for n in names if n.startswith("citytrack/conf/")}
    expected = {str(p.relative_to(REPO / "conf")) for p in (REPO / "conf").rglob("*.yaml")}
    assert expected <= shipped

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, env=env, timeout=600)
    probe = ("from citytrack.utils.paths import config_dir, project_root; import citytrack; "
             "print(citytrack.__file__); print(config_dir()); print(project_root())")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, check=True, capture_output=True, text=True,
                         env={**env, "PYTHONPATH": str(target)}, timeout=120).stdout.split()
    assert out[0].startswith(str(target)), "imported the installed copy, not the checkout"
    assert Path(out[1]) == target / "citytrack" / "conf" and (Path(out[1]) / "infer.yaml").is_file()
    assert Path(out[2]) == tmp_path  # no repository: generated data goes under the working directory
