"""VeRi-776 crops of the vehicle city (`city_crops.ensure_city_veri`) and the VeRi-776 label reader:
labels agree with the cities' vehicles.json and ground truth, query is a subset of test, train and
test identities are disjoint, crops are the clipped full boxes, re-runs are idempotent."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from citytrack.data.formats import FormatError, parse_veri_name, read_veri_labels, scan_veri
from citytrack.data.synth.city_crops import COLOUR_TO_VERI, KIND_TO_VERI, ensure_city_veri, main
from citytrack.data.synth.city_writer import WORLD_COLUMNS
from citytrack.data.video import VideoReader

ARGS = {"scenes": 1, "cameras": 3, "frames": 30, "vehicles": 15, "frame_stride": 5, "min_visibility": 0.5,
        "min_height": 24}
COL = {name: i for i, name in enumerate(WORLD_COLUMNS)}


@pytest.fixture(scope="module")
def veri(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_city_veri(tmp_path_factory.mktemp("veri") / "city", **ARGS)


def _names(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _city(veri: Path, which: str) -> tuple[dict[int, dict], np.ndarray]:
    """vehicles.json and gt_world.txt of every scene of one of the two cities."""
    vehicles: dict[int, dict] = {}
    tables = []
    for sdir in sorted((veri / f"_city_{which}" / "train").glob("S*")):
        vehicles.update({int(k): v for k, v in json.loads((sdir / "vehicles.json").read_text()).items()})
        tables.append(np.loadtxt(sdir / "gt_world.txt", delimiter=",", ndmin=2))
    return vehicles, np.vstack(tables)


def test_folders_and_name_lists_agree(veri: Path) -> None:
    for split in ("train", "test", "query"):
        names = _names(veri / f"name_{split}.txt")
        on_disk = sorted(p.path.name for p in scan_veri(veri / f"image_{split}"))
        assert names and sorted(names) == on_disk and len(set(names)) == len(names)
    meta = json.loads((veri / "meta.json").read_text())
    c = meta["counts"]
    assert (c["train_images"], c["test_images"], c["query_images"]) == tuple(
        len(_names(veri / f"name_{s}.txt")) for s in ("train", "test", "query"))


def test_query_is_a_subset_of_test_one_middle_crop_per_vehicle_and_camera(veri: Path) -> None:
    test, query = _names(veri / "name_test.txt"), _names(veri / "name_query.txt")
    assert set(query) <= set(test)
    for name in query:  # copies, as in the real VeRi-776
        assert (veri / "image_query" / name).read_bytes() == (veri / "image_test" / name).read_bytes()
    tracks: dict[tuple[int, int], list[int]] = {}
    for n in test:
        v = parse_veri_name(n)
        tracks.setdefault((v.vid, v.camera), []).append(v.frame)
    cams: dict[int, set[int]] = {}
    for vid, cam in tracks:
        cams.setdefault(vid, set()).add(cam)
    expected = {(vid, cam, sorted(f)[len(f) // 2]) for (vid, cam), f in tracks.items() if len(cams[vid]) >= 2}
    got = {(v.vid, v.camera, v.frame) for v in map(parse_veri_name, query)}
    assert got == expected and len(query) == len(got)


def test_no_identity_in_both_train_and_test(veri: Path) -> None:
    train = {parse_veri_name(n).vid for n in _names(veri / "name_train.txt")}
    test = {parse_veri_name(n).vid for n in _names(veri / "name_test.txt")}
    assert train and test and not train & test
    assert max(train) <= ARGS["scenes"] * ARGS["vehicles"] < min(test)


def test_labels_match_the_cities(veri: Path) -> None:
    """Every crop's labels read back equal the name, vehicles.json's type and colour (VeRi tables) and
    the orientation of its ground-truth row; test_label.xml covers image_test and image_query."""
    for which, xml, folders in (("train", "train_label.xml", ("train",)), ("test", "test_label.xml", ("test", "query"))):
        labels = read_veri_labels(veri / xml)
        vehicles, table = _city(veri, which)
        names = set()
        for folder in folders:
            names |= set(_names(veri / f"name_{folder}.txt"))
        assert names == set(labels)
        for name, lab in labels.items():
            v = parse_veri_name(name)
            assert (lab["vehicleID"], lab["cameraID"]) == (v.vid, v.camera)
            info = vehicles[v.vid]
            assert lab["colorID"] == COLOUR_TO_VERI[info["colour"]] and lab["typeID"] == KIND_TO_VERI[info["type"]]
            row = table[(table[:, COL["id"]] == v.vid) & (table[:, COL["camera"]] == v.camera) & (table[:, COL["frame"]] == v.frame)]
            assert len(row) == 1 and lab["orientationID"] == int(row[0, COL["orientation"]])
        assert {lab["typeID"] for lab in labels.values()} <= set(KIND_TO_VERI.values())
        assert {lab["orientationID"] for lab in labels.values()} <= set(range(8))
    raw = (veri / "train_label.xml").read_bytes()
    assert raw.startswith(b'<?xml version="1.0" encoding="gb2312"?>') and b"<TrainingImages" in raw
    assert b"<TestImages" in (veri / "test_label.xml").read_bytes()


def test_crops_are_the_filtered_clipped_full_boxes(veri: Path) -> None:
    """Exactly the rows passing the stride / visibility / height filters have a crop, and each crop is
    the full box clipped to the image, cut from that frame of vdo.avi."""
    _, table = _city(veri, "train")
    keep = ((table[:, COL["frame"]] - 1) % ARGS["frame_stride"] == 0) & (table[:, COL["visibility"]] >= ARGS["min_visibility"])
    keep &= table[:, COL["vis_h"]] >= ARGS["min_height"]
    expected = {(int(r[COL["id"]]), int(r[COL["camera"]]), int(r[COL["frame"]])) for r in table[keep]}
    names = _names(veri / "name_train.txt")
    assert {(v.vid, v.camera, v.frame) for v in map(parse_veri_name, names)} == expected
    checked = 0
    for cam_dir in sorted((veri / "_city_train" / "train" / "S01").glob("c*")):
        cam = int(cam_dir.name[1:])
        with VideoReader(cam_dir / "vdo.avi") as reader:
            frames = dict(iter(reader))
        for name in names:
            v = parse_veri_name(name)
            if v.camera != cam:
                continue
            r = table[(table[:, COL["id"]] == v.vid) & (table[:, COL["camera"]] == cam) & (table[:, COL["frame"]] == v.frame)][0]
            image = frames[v.frame - 1]
            H, W = image.shape[:2]
            x, y, w, h = r[[COL["x"], COL["y"], COL["w"], COL["h"]]]
            x0, y0, x1, y1 = max(0, int(np.floor(x))), max(0, int(np.floor(y))), min(W, int(np.ceil(x + w))), min(H, int(np.ceil(y + h)))
            crop = cv2.imread(str(veri / "image_train" / name))
            assert crop.shape[:2] == (y1 - y0, x1 - x0)
            assert np.abs(crop.astype(float) - image[y0:y1, x0:x1]).mean() < 4  # JPEG of the same pixels
            checked += 1
    assert checked == len(names)


def test_idempotent_and_reuses_the_cities(veri: Path, tmp_path: Path) -> None:
    meta = veri / "meta.json"
    stamp = meta.stat().st_mtime_ns
    assert ensure_city_veri(veri, **ARGS) == veri and meta.stat().st_mtime_ns == stamp
    # Other crop arguments: new crops from the same two cities, which are not rendered again.
    other = tmp_path / "other"
    ensure_city_veri(other, **ARGS)
    city_meta = other / "_city_train" / "meta.json"
    city_stamp, video_stamp = city_meta.stat().st_mtime_ns, (other / "_city_test/train/S01/c001/vdo.avi").stat().st_mtime_ns
    n_before = len(_names(other / "name_train.txt"))
    ensure_city_veri(other, **{**ARGS, "frame_stride": 10})
    assert city_meta.stat().st_mtime_ns == city_stamp
    assert (other / "_city_test/train/S01/c001/vdo.avi").stat().st_mtime_ns == video_stamp
    assert json.loads((other / "meta.json").read_text())["args"]["frame_stride"] == 10
    assert 0 < len(_names(other / "name_train.txt")) < n_before
    assert len(os.listdir(other / "image_train")) == len(_names(other / "name_train.txt"))  # no stale crops
    # A folder without meta.json is incomplete: written again.
    (other / "meta.json").unlink()
    (other / "image_query").rename(other / "lost")
    ensure_city_veri(other, **{**ARGS, "frame_stride": 10})
    assert (other / "meta.json").is_file() and (other / "image_query").is_dir()
    with pytest.raises(ValueError, match="differ"):
        ensure_city_veri(tmp_path / "same", train_seed=3, test_seed=3)


def test_read_veri_labels_real_format(tmp_path: Path) -> None:
    """The real files: gb2312-declared, CRLF, no orientationID (-1)."""
    path = tmp_path / "train_label.xml"
    path.write_bytes(
        '<?xml version="1.0" encoding="gb2312"?>\r\n<TrainingImages Version="1.0">\r\n<Items number="2">\r\n'
        '<Item imageName="0001_c001_00016450_0.jpg" vehicleID="0001" cameraID="c001" colorID="1" typeID="4" />\r\n'
        '<Item imageName="0776_c020_00084570_0.jpg" vehicleID="0776" cameraID="c020" colorID="10" typeID="9" />\r\n'
        "</Items>\r\n</TrainingImages>\r\n".encode("gb2312"))
    assert read_veri_labels(path) == {
        "0001_c001_00016450_0.jpg": {"vehicleID": 1, "cameraID": 1, "colorID": 1, "typeID": 4, "orientationID": -1},
        "0776_c020_00084570_0.jpg": {"vehicleID": 776, "cameraID": 20, "colorID": 10, "typeID": 9, "orientationID": -1},
    }
    bad = tmp_path / "bad.xml"
    bad.write_text('<?xml version="1.0" encoding="gb2312"?><TrainingImages><Items><Item imageName="a.jpg" vehicleID="1" />')
    with pytest.raises(FormatError, match="bad.xml"):
        read_veri_labels(bad)
    bad.write_text('<TrainingImages><Items><Item imageName="a.jpg" vehicleID="1" cameraID="c001" colorID="1" /></Items></TrainingImages>')
    with pytest.raises(FormatError, match="typeID"):
        read_veri_labels(bad)
    with pytest.raises(FormatError, match="missing.xml"):
        read_veri_labels(tmp_path / "missing.xml")


def test_cli(veri: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [f"out={veri}"] + [f"{k}={v}" for k, v in ARGS.items()]
    assert main(argv) == 0
    out = capsys.readouterr().out
    meta = json.loads((veri / "meta.json").read_text())["counts"]
    assert f"train {meta['train_ids']} ids {meta['train_images']} images" in out
    assert main([f"out={veri}", "colour=3"]) == 2
    assert "unknown key" in capsys.readouterr().err
