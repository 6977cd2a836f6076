"""Re-identification image folders: Market-1501 (people) and VeRi-776 (vehicles) file names.

Market-1501: `0002_c1s1_000451_03.jpg` = person 2, camera 1, sequence 1, frame 451,
box 3 of that frame; person `-1` marks junk crops and `0000` distractors.
VeRi-776: `0001_c001_00016450_0.jpg` = vehicle 1, camera 1, frame/time 16450, index 0.
Camera numbers are returned as written in the names (1-based).
VeRi-776 labels (`train_label.xml`, `test_label.xml`): `<Item imageName=... vehicleID="0001"
cameraID="c001" colorID="1" typeID="4" />` under `<Items>`, declared gb2312; `read_veri_labels`
also reads our synthetic city's extra `orientationID` (-1 where absent, as in the real files).
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from citytrack.data.formats.errors import FormatError

PathLike = str | os.PathLike[str]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
JUNK_PID = -1
DISTRACTOR_PID = 0

_MARKET_RE = re.compile(r"^(-1|\d+)_c(\d+)s(\d+)_(\d+)_(\d+)(\.[A-Za-z]+)$")
_VERI_RE = re.compile(r"^(\d+)_c(\d+)_(\d+)_(\d+)(\.[A-Za-z]+)$")


class ReidItem(NamedTuple):
    """One crop of a scanned folder: unpacks as `(path, pid, camid)`, or use the attributes."""

    path: Path
    pid: int
    camid: int


@dataclass(frozen=True)
class ReidName:
    """Fields of a Market-1501 crop name."""

    pid: int
    camera: int
    sequence: int
    frame: int
    index: int
    ext: str = ".jpg"


@dataclass(frozen=True)
class VeriName:
    """Fields of a VeRi-776 crop name."""

    vid: int
    camera: int
    frame: int
    index: int
    ext: str = ".jpg"


def parse_market1501_name(name: str) -> ReidName:
    """Parse a Market-1501 file name (a bare name or a path); ValueError if it does not match."""
    base = Path(name).name
    match = _MARKET_RE.match(base)
    if match is None:
        raise ValueError(f"{base!r} is not a Market-1501 name like '0002_c1s1_000451_03.jpg'")
    pid, camera, sequence, frame, index, ext = match.groups()
    return ReidName(int(pid), int(camera), int(sequence), int(frame), int(index), ext)


def format_market1501_name(
    pid: int, camera: int, sequence: int, frame: int, index: int, ext: str = ".jpg"
) -> str:
    """`0002_c1s1_000451_03.jpg`; pid -1 is written `-1` as in the dataset."""
    if pid < JUNK_PID or camera < 0 or sequence < 0 or frame < 0 or index < 0:
        raise ValueError("Market-1501 fields must be non-negative (pid may be -1 for junk)")
    pid_text = "-1" if pid == JUNK_PID else f"{pid:04d}"
    return f"{pid_text}_c{camera}s{sequence}_{frame:06d}_{index:02d}{ext}"


def parse_veri_name(name: str) -> VeriName:
    """Parse a VeRi-776 file name; ValueError if it does not match."""
    base = Path(name).name
    match = _VERI_RE.match(base)
    if match is None:
        raise ValueError(f"{base!r} is not a VeRi-776 name like '0001_c001_00016450_0.jpg'")
    vid, camera, frame, index, ext = match.groups()
    return VeriName(int(vid), int(camera), int(frame), int(index), ext)


def format_veri_name(vid: int, camera: int, frame: int, index: int, ext: str = ".jpg") -> str:
    """`0001_c001_00016450_0.jpg`."""
    if min(vid, camera, frame, index) < 0:
        raise ValueError("VeRi-776 fields must be non-negative")
    return f"{vid:04d}_c{camera:03d}_{frame:08d}_{index}{ext}"


def _images(folder: PathLike) -> list[Path]:
    root = Path(folder)
    if not root.is_dir():
        raise FormatError(root, "image folder does not exist")
    # the released Market-1501 folders also hold Thumbs.db: only images are crops
    return sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def scan_market1501(folder: PathLike, include_junk: bool = False) -> list[ReidItem]:
    """`(path, pid, camera)` for every crop in a Market-1501 style folder, sorted by name.

    Junk crops (pid -1) are left out unless `include_junk`, as the benchmark protocol
    does; distractors (pid 0) are kept. A non-matching image name raises FormatError.
    """
    items = []
    for path in _images(folder):
        try:
            name = parse_market1501_name(path.name)
        except ValueError as err:
            raise FormatError(path, str(err)) from None
        if name.pid == JUNK_PID and not include_junk:
            continue
        items.append(ReidItem(path, name.pid, name.camera))
    return items


def scan_veri(folder: PathLike) -> list[ReidItem]:
    """`(path, vehicle id, camera)` for every crop in a VeRi-776 style folder, sorted by name."""
    items = []
    for path in _images(folder):
        try:
            name = parse_veri_name(path.name)
        except ValueError as err:
            raise FormatError(path, str(err)) from None
        items.append(ReidItem(path, name.vid, name.camera))
    return items


scan_veri776 = scan_veri


#: sub-folder names (train, gallery, query) of each supported folder layout
LAYOUTS: dict[str, tuple[str, str, str]] = {
    "market1501": ("bounding_box_train", "bounding_box_test", "query"),
    "veri776": ("image_train", "image_test", "image_query"),
}


def scan_folder(folder: PathLike, fmt: str) -> list[ReidItem]:
    """The crops of one split folder of a `LAYOUTS` format (`market1501` without junk, or `veri776`)."""
    if fmt == "market1501":
        return scan_market1501(folder)
    if fmt == "veri776":
        return scan_veri(folder)
    raise ValueError(f"unknown ReID folder format {fmt!r}; known: {sorted(LAYOUTS)}")


_XML_DECL_RE = re.compile(rb"^\s*<\?xml[^>]*\?>")
VERI_LABEL_KEYS = ("vehicleID", "cameraID", "colorID", "typeID", "orientationID")


def read_veri_labels(xml_path: PathLike) -> dict[str, dict[str, int]]:
    """`imageName -> {vehicleID, cameraID, colorID, typeID, orientationID}` (ints; camera `c001` -> 1,
    orientationID -1 where absent) of a VeRi-776 label file; FormatError naming the file when malformed.

    Why not `ET.parse`: the real files declare `encoding="gb2312"`, which expat refuses (multi-byte);
    the bytes are decoded as GB18030 (a superset, and ASCII-compatible) and parsed without the declaration.
    """
    path = Path(xml_path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise FormatError(path, f"cannot read: {err.strerror or err}") from None
    try:
        text = _XML_DECL_RE.sub(b"", raw, count=1).decode("gb18030")
        root = ET.fromstring(text)
    except (UnicodeDecodeError, ET.ParseError) as err:
        raise FormatError(path, f"not a VeRi-776 label file: {err}") from None
    labels: dict[str, dict[str, int]] = {}
    for item in root.iter("Item"):
        attrs = item.attrib
        name = attrs.get("imageName")
        if not name:
            raise FormatError(path, "an <Item> without imageName")
        try:
            camera = attrs["cameraID"]
            entry = {
                "vehicleID": int(attrs["vehicleID"]),
                "cameraID": int(camera[1:] if camera[:1] in ("c", "C") else camera),
                "colorID": int(attrs["colorID"]),
                "typeID": int(attrs["typeID"]),
                "orientationID": int(attrs.get("orientationID", -1)),
            }
        except KeyError as err:
            raise FormatError(path, f"item {name}: missing attribute {err.args[0]}") from None
        except ValueError as err:
            raise FormatError(path, f"item {name}: {err}") from None
        if name in labels:
            raise FormatError(path, f"image {name} is listed twice")
        labels[name] = entry
    return labels
