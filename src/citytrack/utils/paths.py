"""Where the Hydra config tree lives, in a source checkout and in an installed wheel.

`conf/` stays at the repository root (Hydra's `config_path="conf"` in `train.py` / `infer.py`);
`src/citytrack/conf` is a symlink to it, so the wheel ships the same files as package data
(`citytrack/conf/**`). Library code that composes a config (the synth generator, the benchmarks,
the demo) asks `config_dir()` instead of counting parent folders of its own source file.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "CITYTRACK_CONFIG_DIR"
_PACKAGE_CONF = Path(__file__).resolve().parents[1] / "conf"


def config_dir() -> Path:
    """The config tree: `$CITYTRACK_CONFIG_DIR` if set, else the one shipped with the package.

    In a source checkout (editable install) the packaged path is the symlink to the repository's
    `conf/`, so edits to `conf/` are seen at once; in a wheel it is the copied folder.
    """
    override = os.environ.get(ENV_VAR)
    path = Path(override).expanduser().resolve() if override else _PACKAGE_CONF.resolve()
    if not (path / "train.yaml").is_file():
        raise FileNotFoundError(
            f"{path}: citytrack config tree not found (no train.yaml); set {ENV_VAR} to a copy of conf/"
        )
    return path


def project_root() -> Path:
    """The repository root in a source checkout (where `data/`, `logs/`, `outputs/` go), else the cwd.

    An installed wheel has no repository: generated data then goes under the working directory,
    never into site-packages.
    """
    root = config_dir().parent
    return root if (root / "pyproject.toml").is_file() else Path.cwd()
