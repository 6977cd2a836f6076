"""Vehicle re-identification crops from the synthetic city, in the VeRi-776 layout.

    root/image_train/{vid:04d}_c{cam:03d}_{frame:08d}_0.jpg   the train city (seed `train_seed`)
    root/image_test/...                                       the test city (seed `test_seed`): the gallery
    root/image_query/...                                      one crop per (vehicle, camera) of the test city
    root/name_train.txt, name_test.txt, name_query.txt        one file name per line, as VeRi ships them
    root/train_label.xml, test_label.xml                      VeRi-776 labels plus `orientationID`
    root/meta.json                                            arguments, counts, id tables (written last)
    root/_city_train, root/_city_test                         the two cities (`layout=aic19`), kept

Why two cities: train and test vehicles must be different identities (VeRi-776's 576 / 200 split),
and a second world also gives unseen cameras and roads. Test ids are offset by `scenes * vehicles`
(the train city's largest id) so that no id is in both. The frame in a name is the camera's
1-based frame number.

A crop is the full (amodal) box clipped to the image, cut from the written `vdo.avi` (so it
carries the video codec's artefacts, as real crops do) at every `frame_stride`-th frame (frames 1,
1 + stride, ...), where the vehicle's visibility is at least `min_visibility` and its visible box at
least `min_height` pixels high. Query: for each (vehicle, camera) track of the test city, its middle
crop, for vehicles with crops in two or more cameras (a query without a match in another camera
cannot be answered; every VeRi-776 vehicle is seen by at least two cameras). As in the real
VeRi-776, query images are copies of images that are also in `image_test`: the evaluation removes
gallery images of the query's vehicle in the query's camera.

Labels (`train_label.xml` for image_train, `test_label.xml` for image_test, which holds the query
names too): `colorID` and `typeID` use VeRi-776's tables (`VERI_COLORS`, `VERI_TYPES`; silver is
VeRi's gray, car a sedan), `orientationID` is our extension: the camera-relative heading bin 0..7
of `vehicles_render.orientation_bins` (0 front, 2 driving to the camera's right, 4 rear, 6 left).

`python -m citytrack.data.synth.city_crops out=DIR [train_seed=11 test_seed=12 scenes=3 test_scenes=3 ...]`.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import cv2
import numpy as np
from omegaconf import OmegaConf

from citytrack.data.formats.reid import format_veri_name
from citytrack.data.synth.city import CITY_VERSION
from citytrack.data.synth.city_writer import WORLD_COLUMNS
from citytrack.data.synth.config import compose_config
from citytrack.data.synth.generate import generate
from citytrack.data.synth.vehicles_render import ORIENTATION_NAMES
from citytrack.data.video import VideoReader
from citytrack.utils.io import atomic_open

log = logging.getLogger(__name__)

CROPS_VERSION = 2
"""Bumped whenever the same arguments give other crops; `ensure_city_veri` regenerates other versions."""

VERI_COLORS: dict[str, int] = {"yellow": 1, "orange": 2, "green": 3, "gray": 4, "red": 5, "blue": 6, "white": 7,
                               "golden": 8, "brown": 9, "black": 10}
VERI_TYPES: dict[str, int] = {"sedan": 1, "suv": 2, "van": 3, "hatchback": 4, "mpv": 5, "pickup": 6, "bus": 7,
                              "truck": 8, "estate": 9}
COLOUR_TO_VERI: dict[str, int] = {**VERI_COLORS, "silver": VERI_COLORS["gray"]}
KIND_TO_VERI: dict[str, int] = {"car": 1, "suv": 2, "van": 3, "bus": 7, "truck": 8}
SPLIT_FOLDERS = ("image_train", "image_test", "image_query")
JPEG_QUALITY = 95
_COL = {name: i for i, name in enumerate(WORLD_COLUMNS)}


def _city_config(out: Path, seed: int, scenes: int, cameras: int, frames: int, vehicles: int, id_offset: int) -> Any:
    return compose_config([
        "layout=aic19", f"out={out}", f"seed={seed}", f"scenes={scenes}", f"cameras={cameras}", f"frames={frames}",
        f"layout.city.vehicles={vehicles}", f"layout.id_offset={id_offset}", "progress=false", "workers=1",
    ])


def _ensure_city(out: Path, cfg: Any) -> Path:
    """Render the city unless `out/meta.json` holds this very config and its `gt_world.txt` files have
    today's columns (the cities are kept between crop runs; one written before a column was added is not)."""
    meta = out / "meta.json"
    if meta.is_file():
        try:
            stored_meta = json.loads(meta.read_text())
        except (OSError, ValueError):
            stored_meta = {}
        stored = stored_meta.get("config", {}) if stored_meta.get("city_version", 1) == CITY_VERSION else None
        wanted = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k != "workers"}  # type: ignore[union-attr]
        header = "# " + ",".join(WORLD_COLUMNS)
        worlds = sorted((out / str(cfg.split)).glob("S[0-9][0-9]/gt_world.txt"))
        if stored == wanted and len(worlds) == cfg.scenes and all(_first_line(w) == header for w in worlds):
            return out
    return generate(cfg)


def _first_line(path: Path) -> str:
    with open(path) as fh:
        return fh.readline().rstrip("\n")


def _cut_city(city_root: Path, folder: Path, id_offset: int, frame_stride: int, min_visibility: float,
              min_height: int) -> list[dict[str, Any]]:
    """Write the crops of every camera of a city into `folder`; one label dict per crop."""
    items: list[dict[str, Any]] = []
    for sdir in sorted(p for p in (city_root / "train").glob("S[0-9][0-9]") if p.is_dir()):
        world_path = sdir / "gt_world.txt"
        table = np.loadtxt(world_path, delimiter=",", ndmin=2)
        if table.size and table.shape[1] != len(WORLD_COLUMNS):
            raise ValueError(f"{world_path}: {table.shape[1]} columns, expected {len(WORLD_COLUMNS)} ({','.join(WORLD_COLUMNS)})")
        vehicles = json.loads((sdir / "vehicles.json").read_text())
        frame = table[:, _COL["frame"]].astype(np.int64) if table.size else np.zeros(0, dtype=np.int64)
        keep = ((frame - 1) % frame_stride == 0) if table.size else np.zeros(0, dtype=bool)
        if table.size:
            keep &= (table[:, _COL["visibility"]] >= min_visibility) & (table[:, _COL["vis_h"]] >= min_height)
        rows = table[keep] if table.size else table
        for cam_dir in sorted(p for p in sdir.glob("c[0-9][0-9][0-9]") if p.is_dir()):
            cam = int(cam_dir.name[1:])
            mine = rows[rows[:, _COL["camera"]] == cam] if len(rows) else rows
            if not len(mine):
                continue
            by_frame: dict[int, np.ndarray] = {}
            for f in np.unique(mine[:, _COL["frame"]].astype(np.int64)).tolist():
                by_frame[f] = mine[mine[:, _COL["frame"]] == f]
            with VideoReader(cam_dir / "vdo.avi", stride=frame_stride) as reader:
                for index, image in reader:
                    f = index + 1
                    if f not in by_frame:
                        continue
                    H, W = image.shape[:2]
                    for r in by_frame[f]:
                        x, y, w, h = r[[_COL["x"], _COL["y"], _COL["w"], _COL["h"]]]
                        x0, y0 = max(0, int(np.floor(x))), max(0, int(np.floor(y)))
                        x1, y1 = min(W, int(np.ceil(x + w))), min(H, int(np.ceil(y + h)))
                        if x1 - x0 < 2 or y1 - y0 < 2:
                            continue
                        gid = int(r[_COL["id"]])
                        info = vehicles.get(str(gid))
                        if info is None:
                            raise ValueError(f"{sdir / 'vehicles.json'}: no vehicle {gid} (it is in {world_path})")
                        vid = gid + id_offset
                        name = format_veri_name(vid, cam, f, 0)
                        if not cv2.imwrite(str(folder / name), image[y0:y1, x0:x1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
                            raise OSError(f"cannot write {folder / name}")
                        items.append({"imageName": name, "vehicleID": vid, "cameraID": cam, "frame": f,
                                      "colorID": COLOUR_TO_VERI[info["colour"]], "typeID": KIND_TO_VERI[info["type"]],
                                      "orientationID": int(r[_COL["orientation"]])})
    return items


def write_veri_labels(path: Path, items: list[dict[str, Any]], root_tag: str) -> None:
    """A VeRi-776 label file (gb2312-declared, as the dataset ships; the content is ASCII)."""
    lines = ['<?xml version="1.0" encoding="gb2312"?>', f'<{root_tag} Version="1.0">', f'<Items number="{len(items)}">']
    for it in items:
        lines.append(f'<Item imageName={quoteattr(it["imageName"])} vehicleID="{it["vehicleID"]:04d}" '
                     f'cameraID="c{it["cameraID"]:03d}" colorID="{it["colorID"]}" typeID="{it["typeID"]}" '
                     f'orientationID="{it["orientationID"]}" />')
    lines += ["</Items>", f"</{root_tag}>", ""]
    with atomic_open(path, "wb") as fh:
        fh.write("\n".join(lines).encode("gb2312"))


def _write_names(path: Path, names: list[str]) -> None:
    with atomic_open(path) as fh:
        fh.write("".join(n + "\n" for n in names))


def select_queries(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The middle crop (by frame) of each (vehicle, camera) track, for vehicles with crops in >= 2 cameras."""
    tracks: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for it in items:
        tracks.setdefault((it["vehicleID"], it["cameraID"]), []).append(it)
    cams: dict[int, set[int]] = {}
    for vid, cam in tracks:
        cams.setdefault(vid, set()).add(cam)
    out = []
    for (vid, _cam), track in sorted(tracks.items()):
        if len(cams[vid]) >= 2:
            track = sorted(track, key=lambda it: it["frame"])
            out.append(track[len(track) // 2])
    return out


def ensure_city_veri(root: str | Path, train_seed: int = 11, test_seed: int = 12, scenes: int = 3, cameras: int = 6,
                     frames: int = 300, vehicles: int = 30, frame_stride: int = 5, min_visibility: float = 0.5,
                     min_height: int = 24, progress: bool = False, test_scenes: int | None = None) -> Path:
    """The VeRi-776 folder at `root` (module docstring), written unless `root/meta.json` holds these arguments.

    `scenes` is the train city's size and, unless `test_scenes` is given, the test city's: more train
    scenes give more identities (the lever that matters most for ReID) without growing the gallery.

    `meta.json` is removed first and written last: a folder without it is incomplete and is written
    again. The two cities under `root/_city_train` / `_city_test` are reused when their own meta.json
    holds the same config (changing only the crop arguments does not render again).
    """
    root = Path(root)
    args = {"train_seed": int(train_seed), "test_seed": int(test_seed), "scenes": int(scenes), "cameras": int(cameras),
            "frames": int(frames), "vehicles": int(vehicles), "frame_stride": int(frame_stride),
            "min_visibility": float(min_visibility), "min_height": int(min_height)}
    test_scenes = int(scenes if test_scenes is None else test_scenes)
    if test_scenes != scenes:  # recorded only when it differs, so folders written before it stay valid
        args["test_scenes"] = test_scenes
    if train_seed == test_seed:
        raise ValueError(f"ensure_city_veri: train_seed and test_seed must differ (got {train_seed} for both)")
    if frame_stride < 1 or min(scenes, test_scenes, cameras, frames, vehicles) < 1:
        raise ValueError(f"ensure_city_veri: frame_stride, scenes, cameras, frames and vehicles must be >= 1; got {args}")
    meta_path = root / "meta.json"
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            meta = {}
        if meta.get("version") == CROPS_VERSION and meta.get("args") == args:
            return root
    wall0 = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    meta_path.unlink(missing_ok=True)
    test_offset = scenes * vehicles  # the train city's ids are 1 .. scenes * vehicles
    cities = {}
    for which, seed, n, offset in (("train", train_seed, scenes, 0), ("test", test_seed, test_scenes, test_offset)):
        out = root / f"_city_{which}"
        if progress:
            print(f"city_crops: {which} city (seed {seed}, {n} scenes) -> {out}", file=sys.stderr, flush=True)
        cities[which] = _ensure_city(out, _city_config(out, seed, n, cameras, frames, vehicles, offset))
    for name in SPLIT_FOLDERS:
        if (root / name).is_dir():
            shutil.rmtree(root / name)
        (root / name).mkdir()
    if progress:
        print("city_crops: cutting crops", file=sys.stderr, flush=True)
    # The test city is rendered with its ids already offset (layout.id_offset): names use them as they are.
    train = _cut_city(cities["train"], root / "image_train", 0, frame_stride, min_visibility, min_height)
    test = _cut_city(cities["test"], root / "image_test", 0, frame_stride, min_visibility, min_height)
    overlap = {it["vehicleID"] for it in train} & {it["vehicleID"] for it in test}
    if overlap:  # cannot happen with the offset; a guard against a changed generator
        raise RuntimeError(f"ensure_city_veri: vehicle ids in both train and test: {sorted(overlap)[:5]}")
    query = select_queries(test)
    for it in query:
        shutil.copyfile(root / "image_test" / it["imageName"], root / "image_query" / it["imageName"])
    _write_names(root / "name_train.txt", [it["imageName"] for it in train])
    _write_names(root / "name_test.txt", [it["imageName"] for it in test])
    _write_names(root / "name_query.txt", [it["imageName"] for it in query])
    write_veri_labels(root / "train_label.xml", train, "TrainingImages")
    write_veri_labels(root / "test_label.xml", test, "TestImages")
    counts = {
        "train_ids": len({it["vehicleID"] for it in train}), "train_images": len(train),
        "test_ids": len({it["vehicleID"] for it in test}), "test_images": len(test),
        "query_ids": len({it["vehicleID"] for it in query}), "query_images": len(query),
        "train_cameras": len({it["cameraID"] for it in train}), "test_cameras": len({it["cameraID"] for it in test}),
    }
    meta = {"generator": "citytrack.data.synth.city_crops", "version": CROPS_VERSION, "args": args, "counts": counts,
            "test_id_offset": test_offset, "colors": VERI_COLORS, "types": VERI_TYPES,
            "colour_map": COLOUR_TO_VERI, "type_map": KIND_TO_VERI, "orientations": list(ORIENTATION_NAMES),
            "seconds": round(time.perf_counter() - wall0, 1)}
    with atomic_open(meta_path) as fh:
        json.dump(meta, fh, indent=2)
        fh.write("\n")
    log.info("VeRi-776 city crops written to %s in %.1f s: %s", root, meta["seconds"], counts)
    return root


def main(argv: list[str] | None = None) -> int:
    """`python -m citytrack.data.synth.city_crops out=DIR [key=value ...]` (keys: `ensure_city_veri`'s arguments)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print(__doc__)
        return 0
    kwargs: dict[str, Any] = {}
    out = None
    types = {"min_visibility": float, "progress": lambda v: str(v).lower() in ("1", "true", "yes")}
    known = set(ensure_city_veri.__code__.co_varnames[1:ensure_city_veri.__code__.co_argcount])
    for a in args:
        key, sep, value = a.partition("=")
        if not sep:
            print(f"error: arguments are key=value, got {a!r}", file=sys.stderr)
            return 2
        if key == "out":
            out = value
        elif key in known:
            try:
                kwargs[key] = types.get(key, int)(value)
            except ValueError:
                print(f"error: {key} must be a number, got {value!r}", file=sys.stderr)
                return 2
        else:
            print(f"error: unknown key {key!r}; known: out, {', '.join(sorted(known))}", file=sys.stderr)
            return 2
    if out is None:
        print("error: out=DIR is required", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        root = ensure_city_veri(out, **kwargs)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    meta = json.loads((root / "meta.json").read_text())
    c = meta["counts"]
    print(f"VeRi-776 city crops in {root} ({time.perf_counter() - t0:.1f} s): train {c['train_ids']} ids "
          f"{c['train_images']} images; test {c['test_ids']} ids {c['test_images']} images; "
          f"query {c['query_ids']} ids {c['query_images']} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
