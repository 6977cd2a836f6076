"""Find and read MOTS sequences in any of the layouts users have on disk.

One index for the segmenter's and the association head's datamodules and for
`infer.py task=mots`, so every consumer agrees on what a sequence, a frame and its
ground truth are:

- KITTI MOTS: `ROOT/image_02/SEQ/FRAME.png` with `ROOT/instances_txt/SEQ.txt` (or
  `ROOT/instances/SEQ/FRAME.png`), the labels also found one level up as the KITTI MOTS download
  keeps them (`training/image_02/` beside `instances_txt/`); frames are 0-based file names. The synthetic world's
  `layout=kitti_mots` writes exactly this under `DIR/<split>/`.
- MOTS20: `ROOT/MOTS20-XX/img1/FRAME.jpg` with `ROOT/MOTS20-XX/gt/gt.txt`; frames 1-based.

`ROOT` may be a split folder (holding `image_02/`), a folder of MOTS20 sequences, one
sequence folder (`image_02/0001`, `MOTS20-05`), or a dataset root holding `training/`
and `testing/` (pass `split=`). Images without labels are fine (inference).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from citytrack.data.formats import kitti_mots
from citytrack.data.formats.errors import FormatError
from citytrack.data.formats.kitti_mots import MotsRecord

PathLike = str | os.PathLike[str]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass
class MotsSequence:
    """One sequence: its frames in order and, when labelled, the ground-truth masks per frame.

    `frames[i]` is the frame number written in result files for `images[i]` (the file
    stem), so predictions line up with `instances_txt` / `gt.txt` whatever the base.
    """

    name: str
    images: list[Path]
    frames: list[int]
    labels: Path | None = None  # instances_txt / gt.txt, or the instances/SEQ folder of PNGs
    _records: dict[int, list[MotsRecord]] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.images)

    @cached_property
    def size(self) -> tuple[int, int]:
        """(height, width) of the first frame."""
        return self.image(0).shape[:2]

    def image(self, i: int) -> np.ndarray:
        """Frame `i` (index, not frame number) as BGR uint8."""
        path = self.images[i]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FormatError(path, "cannot read image (missing or corrupt)")
        return image

    @property
    def labelled(self) -> bool:
        return self.labels is not None

    @property
    def records(self) -> dict[int, list[MotsRecord]]:
        """Ground truth `{frame: records}` (empty frames absent); read once."""
        if self._records is None:
            if self.labels is None:
                raise FileNotFoundError(f"sequence {self.name} has no ground truth (no instances_txt, instances/ or gt/gt.txt)")
            if self.labels.is_dir():
                recs: list[MotsRecord] = []
                for png in sorted(self.labels.glob("*.png")):
                    recs += kitti_mots.png_to_records(kitti_mots.read_instance_png(png), int(png.stem))
            else:
                recs = kitti_mots.read_instances_txt(self.labels)
            self._records = kitti_mots.group_by_frame(recs)
        return self._records

    def frame_records(self, i: int) -> list[MotsRecord]:
        """Ground-truth records of frame index `i` (ignore regions included)."""
        return self.records.get(self.frames[i], [])

    def instance_map(self, i: int) -> np.ndarray:
        """`(H, W) uint16` id map of frame index `i` (`class*1000+instance`, 10000 ignore, 0 background)."""
        records = self.frame_records(i)
        if not records:
            return np.zeros(self.size, dtype=np.uint16)
        return kitti_mots.records_to_png(records, where=f"{self.labels} frame {self.frames[i]}")


def _frames_of(folder: Path) -> tuple[list[Path], list[int]]:
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    frames: list[int] = []
    for p in images:
        try:
            frames.append(int(p.stem))
        except ValueError:
            raise FormatError(p, "image file names must be frame numbers (e.g. 000042.png)") from None
    gaps = np.flatnonzero(np.diff(frames) != 1)
    if len(gaps):  # trackers and metrics assume consecutive frames: a gap is a missing (or stray) file
        i = int(gaps[0])
        raise FormatError(folder, f"frames are not consecutive: {images[i].name} is followed by {images[i + 1].name}")
    return images, frames


def _kitti_sequence(split_dir: Path, seq_dir: Path) -> MotsSequence:
    images, frames = _frames_of(seq_dir)
    labels = None
    # the split folder (our layout), then its parent: the KITTI MOTS download keeps instances_txt/ and
    # instances/ beside training/ and testing/
    for base in (split_dir, split_dir.parent):
        txt, pngs = base / "instances_txt" / f"{seq_dir.name}.txt", base / "instances" / seq_dir.name
        labels = txt if txt.is_file() else pngs if pngs.is_dir() else None
        if labels is not None:
            break
    return MotsSequence(seq_dir.name, images, frames, labels)


def _mots20_sequence(seq_dir: Path) -> MotsSequence:
    images, frames = _frames_of(seq_dir / "img1")
    gt = seq_dir / "gt" / "gt.txt"
    return MotsSequence(seq_dir.name, images, frames, gt if gt.is_file() else None)


def find_mots_sequences(root: PathLike, split: str | None = None, names: Sequence[str] | None = None) -> list[MotsSequence]:
    """Every sequence under `root` in any supported layout, sorted by name.

    `split` picks `root/<split>` when `root` holds several splits; `names` keeps only
    those sequences. A root with nothing recognisable is an error listing what was tried.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"MOTS root {root} does not exist")
    if split is not None and (root / split).is_dir():
        root = root / split
    sequences: list[MotsSequence] = []
    if (root / "image_02").is_dir():  # KITTI MOTS split folder
        sequences = [_kitti_sequence(root, d) for d in sorted((root / "image_02").iterdir()) if d.is_dir()]
    elif root.parent.name == "image_02":  # one KITTI MOTS sequence folder
        sequences = [_kitti_sequence(root.parent.parent, root)]
    elif (root / "img1").is_dir():  # one MOTS20 sequence
        sequences = [_mots20_sequence(root)]
    elif root.is_dir():
        sequences = [_mots20_sequence(d) for d in sorted(root.iterdir()) if (d / "img1").is_dir()]
        if not sequences and split is None:
            for candidate in ("training", "train", "val", "testing", "test"):
                if (root / candidate / "image_02").is_dir():
                    return find_mots_sequences(root / candidate, names=names)
    if names is not None:
        wanted = {str(n) for n in names}
        missing = wanted - {s.name for s in sequences}
        if missing:
            raise FileNotFoundError(f"sequences {sorted(missing)} not found under {root}")
        sequences = [s for s in sequences if s.name in wanted]
    sequences = [s for s in sequences if len(s)]
    if not sequences:
        raise FileNotFoundError(
            f"no MOTS sequences under {root}: looked for image_02/SEQ/*.png (KITTI MOTS), "
            "SEQ/img1/*.jpg (MOTS20), a single sequence folder, and training/ or testing/ splits"
        )
    return sequences
