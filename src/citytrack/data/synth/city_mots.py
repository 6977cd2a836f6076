"""The vehicle world (`layout=aic19`) as KITTI MOTS sequences, one per camera, through the project's
KITTI MOTS writers (`formats/kitti_mots.py`), so that its readers and the MOTS evaluation take it:

    DIR/<split>/image_02/<seq>/<frame:06d>.png     the rendered frame (lossless, before the video codec)
    DIR/<split>/instances/<seq>/<frame:06d>.png    16-bit instance map: 0 background, 1000 + vehicle id
                                                   (car class 1), 10000 ignore region
    DIR/<split>/instances_txt/<seq>.txt            the same masks as RLE lines

`<seq>` is the camera number less one (`0000` = `c001`), frames 0-based as KITTI MOTS numbers them.
Why beside the AI City folders, from the same render pass: the id map the frame was drawn with is
the exact visible mask of every vehicle, and rendering twice would double the cost. A vehicle with
fewer than `gt.min_visible_pixels` visible pixels or a visible box under `layout.mots_min_height`
pixels is an ignore region, as KITTI marks what it does not evaluate DontCare. Every vehicle is
class 1 (car), the only vehicle class of KITTI MOTS.

`python -m citytrack.data.synth layout=aic19 layout.mots=true out=DIR ...` writes them with the
AI City files; `write_city_kitti_mots(city, root)` renders a city into these folders alone.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np

from citytrack.data.formats import kitti_mots
from citytrack.data.synth.city import City
from citytrack.data.synth.vehicles_render import CityFrame, CityRenderer
from citytrack.data.synth.world import SynthConfigError
from citytrack.utils.io import atomic_path

CAR = kitti_mots.CAR_CLASS
MOTS_FOLDERS = ("image_02", "instances", "instances_txt")


def mots_sequence(city: City, c: int) -> str:
    """KITTI MOTS sequence name of camera `c`: its AI City camera number less one, 4 digits."""
    return f"{city.scene_index * city.spec.cameras + c:04d}"


def check_mots_ids(city: City) -> None:
    """KITTI MOTS ids are `1000 * class + instance`, instance < 1000: raise `SynthConfigError` otherwise."""
    top = max((v.global_id for v in city.vehicles), default=0)
    if top > 999:
        raise SynthConfigError(f"synth config: KITTI MOTS car ids are 1000 + vehicle id, so vehicle ids must be <= 999; "
                               f"got {top} (lower layout.id_offset, scenes or layout.city.vehicles)")


def clear_mots(base: Path) -> None:
    """Remove the MOTS folders of a split (a rerun must not leave sequences of a larger earlier run)."""
    for name in MOTS_FOLDERS:
        if (base / name).is_dir() and not (base / name).is_symlink():
            shutil.rmtree(base / name)


class CityMotsCameraWriter:
    """One camera's KITTI MOTS sequence, fed frame by frame from the AI City render pass."""

    def __init__(self, city: City, c: int, base: Path, min_visible_pixels: int, min_height: float) -> None:
        check_mots_ids(city)
        self.city, self.base, self.seq = city, Path(base), mots_sequence(city, c)
        self.min_px, self.min_height = int(min_visible_pixels), float(min_height)
        self.lut = np.zeros(len(city.vehicles) + 1, dtype=np.uint16)
        self.records: list[kitti_mots.MotsRecord] = []

    def instance_map(self, fr: CityFrame) -> np.ndarray:
        """The frame's KITTI MOTS id map from the render's id map (vehicle k drawn as k + 1)."""
        lut = self.lut
        lut[:] = 0
        keep = (fr.visible_pixels >= self.min_px) & (fr.visible_boxes[:, 3] >= self.min_height)
        for k, ok in zip(fr.vehicles.tolist(), keep.tolist(), strict=True):
            lut[k + 1] = CAR * 1000 + self.city.vehicles[k].global_id if ok else kitti_mots.IGNORE_ID
        return lut[fr.id_map]

    def add(self, fr: CityFrame) -> None:
        name = f"{fr.frame:06d}.png"
        with atomic_path(self.base / "image_02" / self.seq / name, suffix=".png") as tmp:
            if not cv2.imwrite(str(tmp), fr.image):
                raise OSError(f"cannot write {self.base / 'image_02' / self.seq / name}")
        ids = self.instance_map(fr)
        kitti_mots.write_instance_png(self.base / "instances" / self.seq / name, ids)
        self.records += kitti_mots.png_to_records(ids, fr.frame)

    def close(self) -> None:
        kitti_mots.write_instances_txt(self.base / "instances_txt" / f"{self.seq}.txt", self.records)


def write_city_kitti_mots(city: City, root: str | Path, split: str = "train", min_visible_pixels: int = 10,
                          min_height: float = 25.0) -> Path:
    """Render every camera of `city` into `root/<split>/{image_02,instances,instances_txt}` (module docstring);
    returns `root/<split>`. Sequences of other scenes already there are kept."""
    base = Path(root) / split
    for c in range(len(city.cameras)):
        renderer = CityRenderer(city, c)
        writer = CityMotsCameraWriter(city, c, base, min_visible_pixels, min_height)
        for f in range(city.spec.frames):
            writer.add(renderer.render(f))
        writer.close()
    return base
