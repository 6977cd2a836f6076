"""`utils.allocator.keep_freed_memory`: freed batch buffers are reused instead of re-faulted, and the user's
own allocator settings win. Each case runs in a fresh interpreter (malloc settings are process-wide)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="the settings are glibc malloc's")

# A training loop's pattern: a batch's worth of large buffers live at once, all freed, again; prints
# whether the settings were applied and the minor page faults the loop cost.
LOOP = """
import resource
import numpy as np
from citytrack.utils.allocator import keep_freed_memory
applied = keep_freed_memory()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    live = [np.ones(2**20) for _ in range(5)]  # five 8 MiB buffers, every page touched
    del live
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _run(**env: str) -> tuple[bool, int]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "CITYTRACK_MALLOC"}
    out = subprocess.run([sys.executable, "-c", LOOP], env={**clean, **env}, capture_output=True, text=True, check=True)
    applied, faults = out.stdout.split()
    return applied == "True", int(faults)


def test_freed_buffers_are_reused_not_refaulted() -> None:
    applied, faults = _run()
    default_applied, default_faults = _run(CITYTRACK_MALLOC="default")
    assert applied and not default_applied
    # glibc trims the freed 40 MiB heap top each round and faults it in again: ~20 x 10k pages
    assert faults * 4 < default_faults, (faults, default_faults)


def test_user_malloc_settings_win() -> None:
    applied, _ = _run(MALLOC_ARENA_MAX="2")
    assert not applied
