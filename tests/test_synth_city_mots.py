"""The vehicle city as KITTI MOTS (`layout.mots=true`, `city_mots.py`): read back with the project's
KITTI MOTS readers, the masks are exactly the rendered id maps (cars 1000 + id, small ones ignore)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from citytrack.data.formats import kitti_mots
from citytrack.data.mots_sequences import find_mots_sequences
from citytrack.data.synth import SynthConfigError, generate
from citytrack.data.synth.city import CitySpec, build_city
from citytrack.data.synth.city_mots import write_city_kitti_mots
from citytrack.data.synth.config import compose_config
from citytrack.data.synth.vehicles_render import CityRenderer

TINY = ["layout=aic19", "cameras=3", "frames=30", "progress=false", "layout.city.vehicles=15", "seed=4",
        "layout.mots=true", "layout.id_offset=100"]


@pytest.fixture(scope="module")
def mots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(compose_config([*TINY, f"out={tmp_path_factory.mktemp('city_mots')}"]))


def _expected(city, fr, min_px: int = 10, min_height: float = 25) -> np.ndarray:
    """The KITTI MOTS map of a rendered frame, computed here independently of `city_mots`."""
    out = np.zeros(fr.id_map.shape, dtype=np.uint16)
    for j, k in enumerate(fr.vehicles.tolist()):
        ok = fr.visible_pixels[j] >= min_px and fr.visible_boxes[j, 3] >= min_height
        out[fr.id_map == k + 1] = 1000 + city.vehicles[k].global_id if ok else kitti_mots.IGNORE_ID
    return out


def test_masks_read_back_equal_the_rendered_id_maps(mots_dir: Path) -> None:
    cfg = compose_config([*TINY, f"out={mots_dir}"])
    city = build_city(CitySpec.from_config(cfg), seed=4, id_offset=100)
    seqs = find_mots_sequences(mots_dir, split="train")
    assert [s.name for s in seqs] == ["0000", "0001", "0002"]
    cars = ignores = 0
    for c, seq in enumerate(seqs):
        assert seq.labels == mots_dir / "train" / "instances_txt" / f"{seq.name}.txt"
        assert seq.frames == list(range(30))
        renderer = CityRenderer(city, c)
        records = kitti_mots.read_instances_txt(seq.labels)
        assert {r.class_id for r in records} <= {kitti_mots.CAR_CLASS, kitti_mots.IGNORE_CLASS}
        for i in range(len(seq)):
            fr = renderer.render(i)
            want = _expected(city, fr)
            np.testing.assert_array_equal(seq.instance_map(i), want)  # instances_txt (RLE)
            png = kitti_mots.read_instance_png(mots_dir / "train" / "instances" / seq.name / f"{i:06d}.png")
            np.testing.assert_array_equal(png, want)
            np.testing.assert_array_equal(seq.image(i), fr.image)  # lossless frame
            cars += int(np.any((want > 1000) & (want < 2000)))
            ignores += int(np.any(want == kitti_mots.IGNORE_ID))
    assert cars > 10  # frames with cars; ids offset by layout.id_offset
    assert all(r.obj_id > 1100 for s in seqs for rs in s.records.values() for r in rs if not r.is_ignore)


def test_aic19_files_unchanged_by_mots(mots_dir: Path, tmp_path: Path) -> None:
    """The MOTS sequences come from the same render pass: the AI City ground truth is the one written
    without them, and a re-run without `mots` removes them."""
    plain = generate(compose_config([*[a for a in TINY if a != "layout.mots=true"], f"out={tmp_path}"]))
    for name in ("gt_world.txt", "c002/gt/gt.txt", "vehicles.json"):
        assert (plain / "train/S01" / name).read_bytes() == (mots_dir / "train/S01" / name).read_bytes()
    assert not (plain / "train" / "image_02").exists()
    generate(compose_config([*TINY, "frames=2", f"out={tmp_path}"]))
    assert (tmp_path / "train/instances_txt/0002.txt").is_file()
    generate(compose_config([*TINY[:-2], "frames=2", "cameras=2", f"out={tmp_path}"]))
    assert not (tmp_path / "train" / "instances_txt").exists() and not (tmp_path / "train" / "image_02").exists()


def test_write_city_kitti_mots_alone(tmp_path: Path) -> None:
    spec = CitySpec(cameras=2, frames=3, vehicles=10, width=320, height=180)
    city = build_city(spec, seed=2, scene_index=1, id_offset=10)
    base = write_city_kitti_mots(city, tmp_path, split="val")
    seqs = find_mots_sequences(tmp_path, split="val")
    assert base == tmp_path / "val" and [s.name for s in seqs] == ["0002", "0003"]  # c003, c004 of scene 2
    fr = CityRenderer(city, 1).render(2)
    np.testing.assert_array_equal(seqs[1].instance_map(2), _expected(city, fr))
    assert cv2.imread(str(seqs[1].images[2])).shape == (180, 320, 3)


def test_ids_beyond_999_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SynthConfigError, match="999"):
        generate(compose_config([*TINY, "layout.id_offset=990", f"out={tmp_path}"]))
