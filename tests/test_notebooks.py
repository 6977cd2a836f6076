"""The notebooks run: their code cells are executed in order as one script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
# what each notebook must print: its metrics table
PRINTS = {"01_quickstart.ipynb": "OVERALL", "02_multicamera_scene.ipynb": "mc_IDF1"}


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_code_cells_run(notebook: Path, tmp_path: Path) -> None:
    cells = json.loads(notebook.read_text())["cells"]
    code = "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    script = tmp_path / f"{notebook.stem}.py"
    script.write_text(code)
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=notebook.parent,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert result.returncode == 0, f"{notebook.name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    assert PRINTS[notebook.name] in result.stdout, f"{notebook.name} should print its metrics"
