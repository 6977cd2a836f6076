"""MOTChallenge files: `seqinfo.ini`, `det/det.txt`, `gt/gt.txt` and tracker results.

Every table is a float64 array `(N, 10)` with the columns of `MOT_COLUMNS`, frames
1-based exactly as in the files, so a table read here can be handed to a tracker or an
evaluator and written back without any index shuffling.

The column layout differs between benchmark editions and we keep the values as found:

- MOT16/17/20 gt: `frame, id, x, y, w, h, mark, class, visibility` (9 columns; `conf`
  holds the 0/1 "consider" mark).
- MOT15 gt and the SORT det files: 10 columns whose last three are world `x, y, z`
  (usually `-1, -1, -1`); they land in the `cls, vis, z` columns unchanged. Use
  `has_class_info` before filtering by class.
- MOT17 det: 7 columns `frame, -1, x, y, w, h, conf`.
"""

from __future__ import annotations

import configparser
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from citytrack.data.formats.errors import FormatError, read_text_file
from citytrack.utils.io import atomic_open

log = logging.getLogger(__name__)

MOT_COLUMNS: tuple[str, ...] = ("frame", "id", "x", "y", "w", "h", "conf", "cls", "vis", "z")
FRAME, ID, X, Y, W, H, CONF, CLS, VIS, Z = range(10)
"""Column indices of `MOT_COLUMNS`: the one home for them (metrics, post-processing, datasets)."""

PEDESTRIAN = 1
DISTRACTOR_CLASSES: tuple[int, ...] = (2, 7, 8, 12)
"""person_on_vehicle, static_person, distractor, reflection: matched predictions on them are
not false positives, and they are not ground truth (TrackEval, MOT17)."""
VALID_CLASSES: tuple[int, ...] = tuple(range(1, 14))
"""MOTChallenge class ids: 1 pedestrian ... 12 reflection, 13 crowd."""
MIN_COLUMNS = 6
MotKind = Literal["det", "gt", "result"]
_KINDS = ("det", "gt", "result")

PathLike = str | os.PathLike[str]


def _defaults(kind: str) -> np.ndarray:
    """Fill values for the optional columns 6..9 (conf, cls, vis, z)."""
    return np.array([1.0, -1.0 if kind == "det" else 1.0, 1.0, -1.0])


def _check_kind(kind: str) -> None:
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")


def _split_fields(line: str) -> list[str]:
    """Fields of one line, comma- or whitespace-separated; a trailing comma is tolerated."""
    if "," in line:
        fields = [f.strip() for f in line.split(",")]
        if fields and fields[-1] == "":
            fields.pop()
        return fields
    return line.split()


def parse_numeric_table(
    path: PathLike, text: str, min_columns: int, max_columns: int, what: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse a numeric text table of comma/whitespace separated fields.

    Returns `(values (N, max_columns) with NaN where a line had fewer fields,
    column counts (N,), 1-based line numbers (N,))`. Blank lines are skipped. Raises
    `FormatError` naming the first line with too few/many fields or a non-numeric one.
    Shared by the MOT-like readers of this package.
    """
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped:
            continue
        rows.append(_split_fields(stripped))
        line_numbers.append(number)
    lines = np.asarray(line_numbers, dtype=np.int64)
    if not rows:
        return np.zeros((0, max_columns)), np.zeros(0, dtype=np.int64), lines
    counts = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    short = np.flatnonzero(counts < min_columns)
    if short.size:
        i = int(short[0])
        raise FormatError(
            path, f"{what} line has {counts[i]} fields, expected at least {min_columns}", int(lines[i])
        )
    long = np.flatnonzero(counts > max_columns)
    if long.size:
        i = int(long[0])
        raise FormatError(
            path, f"{what} line has {counts[i]} fields, expected at most {max_columns}", int(lines[i])
        )
    values = np.full((len(rows), max_columns), np.nan)
    for n in np.unique(counts):
        select = np.flatnonzero(counts == n)
        block = [rows[i] for i in select]
        try:
            values[select, :n] = np.asarray(block, dtype=np.float64)
        except ValueError:
            for i in select:
                for field in rows[i]:
                    try:
                        float(field)
                    except ValueError:
                        raise FormatError(path, f"non-numeric field {field!r}", int(lines[i])) from None
            raise  # pragma: no cover - numpy rejected what float() accepts
    filled = np.arange(max_columns)[None, :] < counts[:, None]
    bad = filled & ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad.any(axis=1))[0])
        raise FormatError(path, "non-finite value (nan/inf)", int(lines[i]))
    return values, counts, lines


def _first_line(path: PathLike, mask: np.ndarray, lines: np.ndarray, message: str) -> None:
    """Raise FormatError at the first line where `mask` is true."""
    if mask.any():
        raise FormatError(path, message, int(lines[int(np.flatnonzero(mask)[0])]))


def _is_integral(values: np.ndarray) -> np.ndarray:
    return values == np.round(values)


def read_mot(
    path: PathLike, kind: MotKind = "result", check_sorted: bool = False, min_frame: int = 1
) -> np.ndarray:
    """Read a MOTChallenge det/gt/result file into a float64 `(N, 10)` table.

    Missing optional columns get `conf=1, cls=1 (-1 for det), vis=1, z=-1`. An empty
    file gives `(0, 10)`. With `check_sorted`, frames must be non-decreasing (a
    tracker consuming a det file frame by frame relies on it). `min_frame=0` admits
    the 0-based MOT-style files of other datasets (AI City 2023 labels).
    """
    _check_kind(kind)
    text = read_text_file(path)
    table, _counts, lines = parse_numeric_table(path, text, MIN_COLUMNS, len(MOT_COLUMNS), "MOT")
    if len(table):
        defaults = np.broadcast_to(_defaults(kind), (len(table), 4))
        optional = table[:, CONF:]
        missing = np.isnan(optional)
        optional[missing] = defaults[missing]
    validate_mot_table(table, path=path, lines=lines, check_sorted=check_sorted, min_frame=min_frame)
    return table


def validate_mot_table(
    table: np.ndarray,
    path: PathLike = "<table>",
    lines: np.ndarray | None = None,
    check_sorted: bool = False,
    min_frame: int = 1,
) -> None:
    """Check frames (positive integers), ids (integers) and box sizes (positive).

    `lines` maps rows to file line numbers for the error message (row index + 1 when
    omitted, i.e. an in-memory table).
    """
    table = np.asarray(table)
    if table.ndim != 2 or table.shape[1] != len(MOT_COLUMNS):
        raise FormatError(path, f"MOT table must have shape (N, {len(MOT_COLUMNS)}), got {table.shape}")
    if lines is None:
        lines = np.arange(1, len(table) + 1)
    if not len(table):
        return
    frames = table[:, FRAME]
    _first_line(path, ~_is_integral(frames), lines, "frame number is not an integer")
    _first_line(path, frames < min_frame, lines, f"frame number must be >= {min_frame}")
    _first_line(path, ~_is_integral(table[:, ID]), lines, "track id is not an integer")
    _first_line(path, table[:, W] <= 0, lines, "box width must be positive")
    _first_line(path, table[:, H] <= 0, lines, "box height must be positive")
    if check_sorted:
        decreasing = np.flatnonzero(np.diff(frames) < 0)
        if decreasing.size:
            i = int(decreasing[0]) + 1
            raise FormatError(
                path,
                f"frame {int(frames[i])} comes after frame {int(frames[i - 1])}: frames out of order",
                int(lines[i]),
            )


_INT = "%d"
_BOX = "%.2f"
_REAL = "%.6g"


def write_mot(path: PathLike, table: np.ndarray, kind: MotKind = "result", min_frame: int = 1) -> None:
    """Write a `(N, 10)` table atomically in the MOTChallenge layout of `kind`.

    - result: `frame,id,x,y,w,h,conf,-1,-1,-1` (the submission format)
    - gt: `frame,id,x,y,w,h,conf,cls,vis` plus `z` when any z differs from -1 (MOT15)
    - det: all 10 columns.
    Frames and ids are written as integers, boxes with 2 decimals, the rest with 6
    significant digits. Frames below `min_frame` (1 for MOTChallenge) are refused.
    """
    _check_kind(kind)
    table = np.asarray(table, dtype=np.float64)
    validate_mot_table(table, path=path, min_frame=min_frame)
    if kind == "result":
        fmt = ",".join([_INT, _INT] + [_BOX] * 4 + [_REAL]) + ",-1,-1,-1"
        columns = table[:, : CONF + 1]
    elif kind == "gt":
        n = 10 if len(table) and np.any(table[:, Z] != -1) else 9
        fmt = ",".join([_INT, _INT] + [_BOX] * 4 + [_REAL] * (n - 6))
        columns = table[:, :n]
    else:
        fmt = ",".join([_INT, _INT] + [_BOX] * 4 + [_REAL] * 4)
        columns = table
    body = "\n".join(fmt % tuple(row) for row in columns.tolist())
    with atomic_open(path) as handle:
        handle.write(body + "\n" if body else "")


def has_class_info(table: np.ndarray) -> bool:
    """True when `cls`/`vis` hold MOT16+ class ids and visibilities, not MOT15 world x/y.

    MOT15 ground truth and SORT det files put `-1` or world coordinates there.
    """
    table = np.asarray(table)
    if not len(table):
        return False
    cls, vis = table[:, CLS], table[:, VIS]
    return bool(np.all(_is_integral(cls)) and np.all(cls >= 1) and np.all((vis >= 0) & (vis <= 1)))


def ground_truth_roles(table: np.ndarray, min_visibility: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """`(real, ignore)` row masks of a gt table under the MOTChallenge detection rules.

    MOT16/17/20 tables (`has_class_info`): marked class-1 pedestrians at least `min_visibility` visible are
    ground truth; distractor classes (which carry mark 0) and unmarked or less visible pedestrians are
    ignore regions; other classes (vehicles, occluders) are neither. MOT15 tables: marked rows are ground
    truth, zero-marked rows (people the devkit drops) ignore regions.
    """
    table = np.asarray(table)
    mark = table[:, CONF] != 0
    if not has_class_info(table):
        return mark, ~mark
    pedestrian = table[:, CLS] == PEDESTRIAN
    real = pedestrian & mark & (table[:, VIS] >= min_visibility)
    return real, (pedestrian & ~real) | np.isin(table[:, CLS], DISTRACTOR_CLASSES)


def frame_groups(table: np.ndarray) -> dict[int, np.ndarray]:
    """Split a table into `{frame: rows}` in one sort; rows keep their file order within a frame."""
    table = np.asarray(table)
    if not len(table):
        return {}
    order = np.argsort(table[:, FRAME], kind="stable")
    ordered = table[order]
    frames, starts = np.unique(ordered[:, FRAME], return_index=True)
    return {int(f): rows for f, rows in zip(frames, np.split(ordered, starts[1:]), strict=True)}


@dataclass
class SeqInfo:
    """The `[Sequence]` section of a MOTChallenge `seqinfo.ini`."""

    name: str
    frame_rate: float
    seq_length: int
    im_width: int
    im_height: int
    im_dir: str = "img1"
    im_ext: str = ".jpg"


_SEQINFO_KEYS = {
    "name": "name",
    "frameRate": "frame_rate",
    "seqLength": "seq_length",
    "imWidth": "im_width",
    "imHeight": "im_height",
    "imDir": "im_dir",
    "imExt": "im_ext",
}
_SEQINFO_OPTIONAL = {"imDir", "imExt"}


def read_seqinfo(path: PathLike) -> SeqInfo:
    """Read `seqinfo.ini`; a missing section or required key raises FormatError."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are camelCase
    try:
        parser.read_string(read_text_file(path), source=str(path))
    except configparser.Error as err:
        raise FormatError(path, f"not a valid ini file: {err}") from None
    if "Sequence" not in parser:
        raise FormatError(path, "missing [Sequence] section")
    section = {k.lower(): v for k, v in parser["Sequence"].items()}
    fields: dict[str, object] = {}
    for key, attr in _SEQINFO_KEYS.items():
        raw = section.get(key.lower())
        if raw is None:
            if key in _SEQINFO_OPTIONAL:
                continue
            raise FormatError(path, f"missing key {key!r} in [Sequence]")
        raw = raw.strip()
        try:
            if attr == "frame_rate":
                fields[attr] = float(raw)
            elif attr in ("seq_length", "im_width", "im_height"):
                fields[attr] = int(raw)
            else:
                fields[attr] = raw
        except ValueError:
            raise FormatError(path, f"key {key!r} has invalid value {raw!r}") from None
    return SeqInfo(**fields)  # type: ignore[arg-type]


def write_seqinfo(path: PathLike, info: SeqInfo) -> None:
    """Write `seqinfo.ini` atomically with the official camelCase keys."""
    rate = int(info.frame_rate) if float(info.frame_rate).is_integer() else info.frame_rate
    lines = [
        "[Sequence]",
        f"name={info.name}",
        f"imDir={info.im_dir}",
        f"frameRate={rate}",
        f"seqLength={int(info.seq_length)}",
        f"imWidth={int(info.im_width)}",
        f"imHeight={int(info.im_height)}",
        f"imExt={info.im_ext}",
    ]
    with atomic_open(path) as handle:
        handle.write("\n".join(lines) + "\n")


@dataclass
class MotSequence:
    """One MOTChallenge sequence folder with its tables (None when the file is absent)."""

    root: Path
    info: SeqInfo
    det: np.ndarray | None
    gt: np.ndarray | None

    def image_path(self, frame: int) -> Path:
        """Path of the 1-based `frame` image (`img1/000001.jpg`)."""
        return self.root / self.info.im_dir / f"{frame:06d}{self.info.im_ext}"


DEFAULT_FRAME_RATE = 30.0


def _derive_seqinfo(seq_dir: Path, det: np.ndarray | None, gt: np.ndarray | None) -> SeqInfo:
    """Best-effort SeqInfo when `seqinfo.ini` is missing.

    Length comes from the largest frame in det/gt, image size from the first image in
    `img1/` (0 when there is none), the frame rate defaults to 30 fps with a warning.
    """
    frames = [int(t[:, FRAME].max()) for t in (det, gt) if t is not None and len(t)]
    width = height = 0
    im_ext = ".jpg"
    im_dir = seq_dir / "img1"
    if im_dir.is_dir():
        images = sorted(p for p in im_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        if images:
            import cv2

            im_ext = images[0].suffix
            image = cv2.imread(str(images[0]), cv2.IMREAD_UNCHANGED)
            if image is not None:
                height, width = image.shape[:2]
            frames.append(len(images))
    log.warning("%s has no seqinfo.ini; assuming %.0f fps", seq_dir, DEFAULT_FRAME_RATE)
    return SeqInfo(
        name=seq_dir.name,
        frame_rate=DEFAULT_FRAME_RATE,
        seq_length=max(frames, default=0),
        im_width=width,
        im_height=height,
        im_ext=im_ext,
    )


def load_sequence(seq_dir: PathLike) -> MotSequence:
    """Load `seqinfo.ini`, `det/det.txt` and `gt/gt.txt` of one sequence folder."""
    root = Path(seq_dir)
    if not root.is_dir():
        raise FormatError(root, "sequence folder does not exist")
    det_path, gt_path, ini_path = root / "det" / "det.txt", root / "gt" / "gt.txt", root / "seqinfo.ini"
    det = read_mot(det_path, kind="det") if det_path.is_file() else None
    gt = read_mot(gt_path, kind="gt") if gt_path.is_file() else None
    if ini_path.is_file():
        info = read_seqinfo(ini_path)
    elif det is not None or gt is not None:
        info = _derive_seqinfo(root, det, gt)
    else:
        raise FormatError(root, "not a MOTChallenge sequence: no seqinfo.ini, det/det.txt or gt/gt.txt")
    return MotSequence(root=root, info=info, det=det, gt=gt)


def list_sequences(root: PathLike) -> list[Path]:
    """Sequence folders directly under `root` (those with seqinfo.ini or det/det.txt), sorted."""
    base = Path(root)
    if not base.is_dir():
        raise FormatError(base, "folder does not exist")
    return sorted(
        p
        for p in base.iterdir()
        if p.is_dir() and ((p / "seqinfo.ini").is_file() or (p / "det" / "det.txt").is_file())
    )
