"""Atomic writes: a failure leaves the old file untouched and no temp files behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from citytrack.utils.io import atomic_open, atomic_path


def test_atomic_open_replaces_content(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "result.txt"
    with atomic_open(target) as fh:
        fh.write("new\n")
    assert target.read_text() == "new\n"
    mode = stat.S_IMODE(target.stat().st_mode)
    assert mode & stat.S_IRGRP, "result should be group-readable like a plain open() file"


def test_interrupted_write_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "result.txt"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as fh:
            fh.write("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["result.txt"]


def test_atomic_path_keeps_suffix_for_format_sniffing(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "video.mp4") as tmp:
        assert tmp.suffix == ".mp4" and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    assert (tmp_path / "video.mp4").read_bytes() == b"x"


def test_atomic_open_rejects_read_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="only writes"):
        with atomic_open(tmp_path / "x", "r"):
            pass
