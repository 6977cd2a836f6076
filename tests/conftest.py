"""Shared fixtures: the real data in ../shared/data and the Hydra config tree."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
CONFIG_DIR = REPO_ROOT / "conf"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; tests that need it skip with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (only CI and developer machines have it)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def config_dir() -> Path:
    return CONFIG_DIR
