"""KITTI MOTS / MOTS20 instance masks and KITTI tracking `label_02` files.

`instances_txt` (also MOTS20 `gt/gt.txt`): one mask per line,
`frame obj_id class_id img_height img_width rle`, where `rle` is a pycocotools
compressed RLE string, `obj_id = class_id * 1000 + instance` and `obj_id 10000`
(class 10) is an ignore region. `instances/*.png` store the same ids as a 16-bit map,
0 background.

Reading rejects, as `FormatError` naming the file and line, what mots_tools asserts and
TrackEval raises on later: masks of one frame that overlap, one frame with two image sizes,
an obj_id twice in a frame (ignore regions excepted: evaluators merge them into one), a
class outside the known set, and an RLE of another size than the image when it is known.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from citytrack.data.formats.errors import FormatError
from citytrack.utils.io import atomic_open, atomic_path

PathLike = str | os.PathLike[str]

IGNORE_ID = 10000
IGNORE_CLASS = 10
CAR_CLASS = 1
PEDESTRIAN_CLASS = 2
KNOWN_CLASSES: frozenset[int] = frozenset({CAR_CLASS, PEDESTRIAN_CLASS, IGNORE_CLASS})
"""The class ids of KITTI MOTS and MOTS20 (car, pedestrian, ignore region)."""


@dataclass(frozen=True)
class MotsRecord:
    """One instance mask in one frame; `rle` is the pycocotools compressed counts string."""

    frame: int
    obj_id: int
    class_id: int
    height: int
    width: int
    rle: str

    @property
    def instance(self) -> int:
        """Instance number within the class (`obj_id % 1000`)."""
        return self.obj_id % 1000

    @property
    def is_ignore(self) -> bool:
        return self.obj_id == IGNORE_ID

    def coco_rle(self) -> dict[str, Any]:
        """The dict pycocotools functions take."""
        return {"size": [self.height, self.width], "counts": self.rle.encode("ascii")}


def _source_name(source: PathLike | IO[Any], name: str | None) -> str:
    if name is not None:
        return name
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return str(getattr(source, "name", "<stream>"))


def _read_text(source: PathLike | IO[Any], where: str) -> str:
    if isinstance(source, (str, os.PathLike)):
        data: str | bytes = Path(source).read_bytes()
    else:
        data = source.read()
    if isinstance(data, bytes):
        try:
            return data.decode("ascii")
        except UnicodeDecodeError as err:
            raise FormatError(where, f"not an ASCII text file ({err})") from None
    return data


def _parse_int(where: str, value: str, what: str, line: int) -> int:
    try:
        return int(value)
    except ValueError:
        raise FormatError(where, f"{what} {value!r} is not an integer", line) from None


def read_instances_txt(
    source: PathLike | IO[Any],
    name: str | None = None,
    image_size: tuple[int, int] | None = None,
    classes: Collection[int] = KNOWN_CLASSES,
) -> list[MotsRecord]:
    """Read an `instances_txt` / MOTS20 `gt.txt` from a path or an open (text or binary) file.

    `name` is used in error messages (e.g. `archive.zip:0001.txt` for a zip member). Each RLE's
    run lengths must sum to height*width (pycocotools would decode a short one to garbage).
    `image_size` `(height, width)`, when the caller knows it, must be every line's size;
    `classes` is the set of accepted class ids. Frames are checked as `check_frame` does.
    """
    where = _source_name(source, name)
    known = frozenset(int(c) for c in classes)
    records: list[MotsRecord] = []
    lines: list[int] = []
    for number, raw in enumerate(_read_text(source, where).splitlines(), start=1):
        fields = raw.split()
        if not fields:
            continue
        if len(fields) != 6:
            raise FormatError(
                where,
                f"expected 6 fields 'frame obj_id class_id height width rle', got {len(fields)}",
                number,
            )
        frame, obj_id, class_id, height, width = (
            _parse_int(where, v, what, number)
            for v, what in zip(fields[:5], ("frame", "obj_id", "class_id", "height", "width"), strict=True)
        )
        rle = fields[5]
        if frame < 0:
            raise FormatError(where, f"frame {frame} is negative", number)
        if obj_id < 0 or class_id < 0:
            raise FormatError(where, "obj_id and class_id must be non-negative", number)
        if class_id not in known:
            raise FormatError(
                where, f"class_id {class_id} is not one of the known classes {sorted(known)}", number
            )
        if height <= 0 or width <= 0:
            raise FormatError(where, f"image size {height}x{width} must be positive", number)
        if image_size is not None and (height, width) != tuple(image_size):
            raise FormatError(
                where,
                f"RLE size {height}x{width} disagrees with the image size {image_size[0]}x{image_size[1]}",
                number,
            )
        if any(not (48 <= ord(c) < 48 + 64) for c in rle):
            raise FormatError(where, "rle has characters outside the pycocotools alphabet", number)
        record = MotsRecord(frame, obj_id, class_id, height, width, rle)
        _check_rle(record, where, number)  # runs must cover height*width: named here, not at decode time
        records.append(record)
        lines.append(number)
    by_frame: dict[int, list[int]] = {}
    for index, record in enumerate(records):
        by_frame.setdefault(record.frame, []).append(index)
    for indices in by_frame.values():
        check_frame([records[i] for i in indices], where, [lines[i] for i in indices])
    return records


def read_instances_zip(
    zip_path: PathLike,
    image_sizes: Mapping[str, tuple[int, int]] | None = None,
    classes: Collection[int] = KNOWN_CLASSES,
) -> dict[str, list[MotsRecord]]:
    """Read every `*.txt` member of a zip of `instances_txt` files, keyed by sequence (member stem).

    `image_sizes` maps a sequence to its `(height, width)` where known (sequences differ in size).
    """
    image_sizes = image_sizes or {}
    out: dict[str, list[MotsRecord]] = {}
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile:
        raise FormatError(zip_path, "not a zip file") from None
    with archive:
        for member in sorted(archive.namelist()):
            if member.endswith(".txt"):
                with archive.open(member) as handle:
                    out[Path(member).stem] = read_instances_txt(
                        handle,
                        name=f"{zip_path}:{member}",
                        image_size=image_sizes.get(Path(member).stem),
                        classes=classes,
                    )
    return out


def find_overlap(records: Sequence[MotsRecord]) -> tuple[int, int] | None:
    """Indices `(i, j)`, `i < j`, of the first two masks that share a pixel, or None.

    Cheap when nothing overlaps (the usual case): the union's area equals the sum of the
    areas. Only when it does not are the masks decoded to name the pair.
    """
    if len(records) < 2:
        return None
    rles = [r.coco_rle() for r in records]
    union = mask_utils.merge(rles, intersect=False)
    if int(mask_utils.area(union)) == int(mask_areas(records).sum()):
        return None
    masks = decode_masks(records)
    owner = np.full(masks.shape[1:], -1, dtype=np.int64)
    for j, mask in enumerate(masks):
        taken = owner[mask]
        taken = taken[taken >= 0]
        if taken.size:
            return int(taken.min()), j
        owner[mask] = j
    raise AssertionError("mask areas disagree with their union but no two masks share a pixel")


def check_frame(
    records: Sequence[MotsRecord], where: str = "<records>", lines: Sequence[int] | None = None
) -> None:
    """Raise `FormatError` unless the records of one frame share an image size, have distinct
    obj_ids (ignore regions may repeat) and do not overlap: what every MOTS evaluator assumes.

    `lines` (1-based, parallel to `records`) are named in the error; without them, list positions.
    """
    labels = (
        [f"line {n}" for n in lines] if lines is not None else [f"record {i}" for i in range(len(records))]
    )

    def fail(j: int, message: str) -> FormatError:
        return FormatError(
            where, f"frame {records[j].frame}: {message}", lines[j] if lines is not None else None
        )

    first_of_id: dict[int, int] = {}
    for j, record in enumerate(records):
        if (record.height, record.width) != (records[0].height, records[0].width):
            raise fail(
                j,
                f"image size {record.height}x{record.width} disagrees with {labels[0]} "
                f"({records[0].height}x{records[0].width})",
            )
        if record.class_id == IGNORE_CLASS:
            continue
        i = first_of_id.setdefault(record.obj_id, j)
        if i != j:
            raise fail(j, f"obj_id {record.obj_id} appears twice ({labels[i]} and {labels[j]})")
    pair = find_overlap(records)
    if pair is not None:
        i, j = pair
        raise fail(
            j,
            f"masks overlap ({labels[i]} obj_id {records[i].obj_id} and {labels[j]} obj_id {records[j].obj_id})",
        )


def write_instances_txt(path: PathLike, records: Iterable[MotsRecord]) -> None:
    """Write records atomically, one line each, in the order given."""
    body = "".join(f"{r.frame} {r.obj_id} {r.class_id} {r.height} {r.width} {r.rle}\n" for r in records)
    with atomic_open(path) as handle:
        handle.write(body)


def rle_run_lengths(rle: str) -> np.ndarray:
    """Run lengths of a compressed RLE string (pycocotools' `rleFrString`, vectorised).

    Needed to check a string before decoding: pycocotools does not reject an RLE whose
    runs sum to less than height*width and then returns uninitialised pixels.
    """
    chars = np.frombuffer(rle.encode("ascii"), dtype=np.uint8).astype(np.int64) - 48
    if chars.size == 0:
        return np.zeros(0, dtype=np.int64)
    ends = (chars & 0x20) == 0
    if not ends[-1]:
        raise ValueError("RLE string ends inside a number")
    token = np.concatenate([[0], np.cumsum(ends)[:-1]])
    starts = np.flatnonzero(np.concatenate([[True], ends[:-1]]))
    position = np.arange(chars.size) - starts[token]
    values = np.zeros(int(ends.sum()), dtype=np.int64)
    np.add.at(values, token, (chars & 0x1F) << (5 * position))
    last = chars[ends]
    negative = (last & 0x10) != 0
    digits = position[ends] + 1
    values[negative] -= np.left_shift(1, 5 * digits[negative])
    counts = values.copy()
    # runs from the third on are stored as differences to the run two before
    if counts.size > 2:
        counts[2::2] = np.cumsum(values[2::2])
        counts[3::2] = values[1] + np.cumsum(values[3::2])
    return counts


def _check_rle(record: MotsRecord, where: str = "<records>", line: int | None = None) -> None:
    try:
        runs = rle_run_lengths(record.rle)
    except ValueError as err:
        raise FormatError(where, f"frame {record.frame} obj {record.obj_id}: {err}", line) from None
    if np.any(runs < 0):
        raise FormatError(
            where, f"frame {record.frame} obj {record.obj_id}: RLE has a negative run length", line
        )
    if int(runs.sum()) != record.height * record.width:
        raise FormatError(
            where,
            f"frame {record.frame} obj {record.obj_id}: RLE covers {int(runs.sum())} pixels, "
            f"image has {record.height * record.width}",
            line,
        )


def decode_masks(records: Sequence[MotsRecord], where: str = "<records>") -> np.ndarray:
    """Decode records of one image size to a bool array `(N, H, W)` (validated first)."""
    if not records:
        return np.zeros((0, 0, 0), dtype=bool)
    sizes = {(r.height, r.width) for r in records}
    if len(sizes) != 1:
        raise FormatError(where, f"records have different image sizes {sorted(sizes)}")
    for record in records:
        _check_rle(record, where)
    stacked = mask_utils.decode([r.coco_rle() for r in records])  # (H, W, N) Fortran order
    return np.ascontiguousarray(np.moveaxis(stacked, -1, 0)).astype(bool)


def encode_mask(mask: np.ndarray) -> str:
    """Compressed RLE string of one `(H, W)` mask, as written in `instances_txt`."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"].decode("ascii")


def mask_record(frame: int, obj_id: int, mask: np.ndarray) -> MotsRecord:
    """Record of `mask` with the class implied by `obj_id` (ignore id -> class 10)."""
    height, width = np.asarray(mask).shape
    return MotsRecord(int(frame), int(obj_id), int(obj_id) // 1000, height, width, encode_mask(mask))


_AREA_CHUNK = 255


def rle_iou(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]], crowd: bool = False) -> np.ndarray:
    """Pairwise mask IoU `(len(a), len(b))` of pycocotools RLE dicts, the one home of it for the trackers and
    the metrics; `crowd` gives intersection over the area of `a` (the ignore-region rule)."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    ious = mask_utils.iou(list(a), list(b), [int(crowd)] * len(b))
    return np.asarray(ious, dtype=np.float64).reshape(len(a), len(b))


def mask_areas(records: Sequence[MotsRecord]) -> np.ndarray:
    """Foreground pixel counts, without decoding."""
    if not records:
        return np.zeros(0, dtype=np.int64)
    rles = [r.coco_rle() for r in records]
    # pycocotools 2.0.11 under NumPy 2 overflows a uint8 count in `area` beyond 255 masks
    chunks = [mask_utils.area(rles[i : i + _AREA_CHUNK]) for i in range(0, len(rles), _AREA_CHUNK)]
    return np.concatenate(chunks).astype(np.int64)


def mask_boxes(records: Sequence[MotsRecord]) -> np.ndarray:
    """Tight boxes `(N, 4)` xywh of the masks, without decoding (zeros for empty masks)."""
    if not records:
        return np.zeros((0, 4))
    return np.asarray(mask_utils.toBbox([r.coco_rle() for r in records]), dtype=np.float64).reshape(-1, 4)


def group_by_frame(records: Iterable[MotsRecord]) -> dict[int, list[MotsRecord]]:
    """`{frame: records}` in frame order, file order within a frame."""
    groups: dict[int, list[MotsRecord]] = {}
    for record in records:
        groups.setdefault(record.frame, []).append(record)
    return dict(sorted(groups.items()))


# ------------------------------------------------------------------------- instance PNGs


def read_instance_png(path: PathLike) -> np.ndarray:
    """Read a KITTI MOTS `instances/*.png` id map as `(H, W) uint16`."""
    ids = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if ids is None:
        raise FormatError(path, "cannot read image")
    if ids.ndim != 2 or ids.dtype != np.uint16:
        raise FormatError(path, f"instance map must be single-channel 16-bit, got {ids.dtype} {ids.shape}")
    return ids


def write_instance_png(path: PathLike, ids: np.ndarray) -> None:
    """Write an id map as a 16-bit PNG atomically."""
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError(f"instance map must be 2-D, got shape {ids.shape}")
    if ids.size and (ids.min() < 0 or ids.max() > np.iinfo(np.uint16).max):
        raise ValueError("instance ids must fit in uint16")
    with atomic_path(path, suffix=".png") as tmp:
        if not cv2.imwrite(str(tmp), ids.astype(np.uint16)):
            raise OSError(f"OpenCV could not write {path}")


def png_to_records(ids: np.ndarray, frame: int) -> list[MotsRecord]:
    """One record per non-zero id of an instance map, in id order."""
    ids = np.asarray(ids)
    return [mask_record(frame, int(obj_id), ids == obj_id) for obj_id in np.unique(ids) if obj_id != 0]


def records_to_png(records: Sequence[MotsRecord], where: str = "<records>") -> np.ndarray:
    """Paint one frame's records into a `uint16` id map; overlapping masks are an error."""
    masks = decode_masks(records, where)
    if not len(masks):
        raise ValueError("no records: the image size is unknown")
    if np.any(masks.sum(axis=0) > 1):
        raise FormatError(where, f"masks overlap in frame {records[0].frame}")
    ids = np.zeros(masks.shape[1:], dtype=np.uint16)
    for record, mask in zip(records, masks, strict=True):
        ids[mask] = record.obj_id
    return ids


# ------------------------------------------------------------------- KITTI tracking labels

KITTI_TRACKING_DTYPE = np.dtype(
    [
        ("frame", np.int64),
        ("track_id", np.int64),
        ("type", "U16"),
        ("truncated", np.float64),
        ("occluded", np.int64),
        ("alpha", np.float64),
        ("x1", np.float64),
        ("y1", np.float64),
        ("x2", np.float64),
        ("y2", np.float64),
        ("h", np.float64),
        ("w", np.float64),
        ("l", np.float64),
        ("X", np.float64),
        ("Y", np.float64),
        ("Z", np.float64),
        ("rotation_y", np.float64),
        ("score", np.float64),
    ]
)
_KITTI_FIELDS = KITTI_TRACKING_DTYPE.names
assert _KITTI_FIELDS is not None


def read_kitti_tracking_labels(source: PathLike | IO[Any], name: str | None = None) -> np.ndarray:
    """Read a KITTI tracking `label_02/SEQ.txt` into a structured array (`KITTI_TRACKING_DTYPE`).

    17 fields per line for ground truth, 18 for results (`score`; NaN when absent).
    `DontCare` rows are kept with `track_id == -1`.
    """
    where = _source_name(source, name)
    rows: list[tuple[Any, ...]] = []
    for number, raw in enumerate(_read_text(source, where).splitlines(), start=1):
        fields = raw.split()
        if not fields:
            continue
        if len(fields) not in (17, 18):
            raise FormatError(where, f"expected 17 or 18 fields, got {len(fields)}", number)
        frame = _parse_int(where, fields[0], "frame", number)
        track_id = _parse_int(where, fields[1], "track_id", number)
        occluded = _parse_int(where, fields[4], "occluded", number)
        try:
            numbers = [float(v) for v in fields[5:]] + ([np.nan] if len(fields) == 17 else [])
            truncated = float(fields[3])
        except ValueError:
            bad = next(v for v in fields[3:] if not _is_float(v))
            raise FormatError(where, f"non-numeric field {bad!r}", number) from None
        if frame < 0:
            raise FormatError(where, f"frame {frame} is negative", number)
        if track_id < -1:
            raise FormatError(where, f"track_id {track_id} below -1", number)
        if fields[2] == "DontCare" and track_id != -1:
            raise FormatError(where, "DontCare region must have track_id -1", number)
        rows.append((frame, track_id, fields[2], truncated, occluded, *numbers))
    return np.array(rows, dtype=KITTI_TRACKING_DTYPE)


def _is_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def write_kitti_tracking_labels(path: PathLike, labels: np.ndarray) -> None:
    """Write a structured label array atomically; the score column only when it is set."""
    labels = np.asarray(labels)
    if labels.dtype.names != _KITTI_FIELDS:
        raise ValueError("labels must use KITTI_TRACKING_DTYPE")
    with_score = bool(len(labels)) and not np.isnan(labels["score"]).all()
    out = io.StringIO()
    for row in labels.tolist():
        frame, track_id, kind, truncated, occluded, *numbers = row
        if not with_score:
            numbers = numbers[:-1]
        out.write(
            f"{frame} {track_id} {kind} {truncated:g} {occluded} "
            + " ".join(f"{v:f}" for v in numbers)
            + "\n"
        )
    with atomic_open(path) as handle:
        handle.write(out.getvalue())
