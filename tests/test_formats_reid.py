"""Market-1501 and VeRi-776 names on the real sample crops and on synthetic folders."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from citytrack.data.formats.errors import FormatError
from citytrack.data.formats.reid import (
    ReidName,
    VeriName,
    format_market1501_name,
    format_veri_name,
    parse_market1501_name,
    parse_veri_name,
    scan_market1501,
    scan_veri,
    scan_veri776,
)


def test_market1501_samples(shared_data: Path) -> None:
    folder = shared_data / "market1501_samples"
    items = scan_market1501(folder)
    names = sorted(p.name for p in folder.glob("*.jpg"))
    assert [p.name for p, _, _ in items] == names and len(items) == 5
    for path, pid, camera in items:
        assert pid == int(path.name[:4]) and camera == int(path.name.split("_")[1][1])
        parsed = parse_market1501_name(path.name)
        assert (
            format_market1501_name(parsed.pid, parsed.camera, parsed.sequence, parsed.frame, parsed.index)
            == path.name
        )
        image = cv2.imread(str(path))
        assert image is not None and image.ndim == 3
    assert parse_market1501_name("0027_c2s2_091032_02.jpg") == ReidName(27, 2, 2, 91032, 2, ".jpg")


def test_market1501_junk_distractor_and_format() -> None:
    assert parse_market1501_name("-1_c3s1_000401_03.jpg").pid == -1
    assert format_market1501_name(-1, 3, 1, 401, 3) == "-1_c3s1_000401_03.jpg"
    assert format_market1501_name(0, 6, 4, 12, 1, ".png") == "0000_c6s4_000012_01.png"
    assert parse_market1501_name("/some/dir/0002_c1s1_000451_03.jpg").frame == 451
    for bad in ("0002_c1_000451_03.jpg", "abcd_c1s1_000451_03.jpg", "0002_c1s1_000451.jpg"):
        with pytest.raises(ValueError, match="Market-1501"):
            parse_market1501_name(bad)
    with pytest.raises(ValueError):
        format_market1501_name(-2, 1, 1, 1, 1)


def test_scan_market1501_folder(tmp_path: Path) -> None:
    for name in ("0002_c1s1_000451_03.jpg", "-1_c2s1_000001_00.jpg", "0000_c3s2_000010_01.jpg"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "Thumbs.db").write_bytes(b"")
    assert [(p.name, pid, cam) for p, pid, cam in scan_market1501(tmp_path)] == [
        ("0000_c3s2_000010_01.jpg", 0, 3),
        ("0002_c1s1_000451_03.jpg", 2, 1),
    ]
    with_junk = scan_market1501(tmp_path, include_junk=True)
    assert len(with_junk) == 3 and with_junk[0].pid == -1 and with_junk[0].camid == 2
    (tmp_path / "person7.jpg").write_bytes(b"")
    with pytest.raises(FormatError, match="person7.jpg"):
        scan_market1501(tmp_path)
    with pytest.raises(FormatError, match="does not exist"):
        scan_market1501(tmp_path / "missing")


def test_veri_names(tmp_path: Path) -> None:
    assert parse_veri_name("0001_c001_00016450_0.jpg") == VeriName(1, 1, 16450, 0, ".jpg")
    assert format_veri_name(776, 20, 123, 1) == "0776_c020_00000123_1.jpg"
    with pytest.raises(ValueError, match="VeRi"):
        parse_veri_name("0002_c1s1_000451_03.jpg")
    for name in ("0002_c003_00000010_1.jpg", "0001_c001_00016450_0.jpg"):
        (tmp_path / name).write_bytes(b"")
    assert [(pid, cam) for _, pid, cam in scan_veri(tmp_path)] == [(1, 1), (2, 3)]
    assert [item.camid for item in scan_veri776(tmp_path)] == [1, 3]
    (tmp_path / "x.jpg").write_bytes(b"")
    with pytest.raises(FormatError, match="x.jpg"):
        scan_veri(tmp_path)
