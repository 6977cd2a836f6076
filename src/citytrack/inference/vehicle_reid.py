"""`python infer.py task=vehicle_reid data.root=<VeRi folder> ckpt=<reid ckpt> out=DIR`: AI City 2019 Track 2.

`data.root` is a VeRi-776 style folder: `image_query/`, `image_test/` and their orders
`name_query.txt`, `name_test.txt` (AI City 2019 Track 2 ships the same files). Every query and
gallery crop is embedded in batches (flip-averaged features and the type / orientation heads'
softmax, `models/reid/vehicle.py`), scored by `VehicleScoring` (the winner's penalties and
k-reciprocal re-ranking), and `<out>/track2.txt` gets, per query in `name_query.txt` order, the
`top_k` nearest gallery crops as 1-based positions in `name_test.txt`, space-separated (the
`task.submit` variant). A `test_track.txt` in the folder (one line per gallery track: its image
names) averages the heads' vectors per track, as the winner did. `task.calibration`, a folder of
AI City 2019 scenes (`SXX/cXXX/calibration.txt`) holding the cameras of the crops, adds the camera
pairs that look at each other (`opposite_camera_pairs`) to the orientation penalty's pairs; the
synthetic city keeps its scenes in `<data.root>/_city_test/train`. Where the names carry vehicle ids
(VeRi names), every variant (plain, + penalties, + re-ranking, + both) is scored under the VeRi
protocol (same vehicle and same camera gallery crops are junk) into `<out>/metrics.json`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from citytrack.data.formats.errors import FormatError
from citytrack.data.formats.reid import ReidItem, parse_veri_name, read_veri_labels
from citytrack.data.reid_datamodule import ReIDImageDataset, vehicle_attributes, vehicle_type_classes
from citytrack.eval.reid_metrics import evaluate_rank
from citytrack.models.reid.vehicle import (
    VARIANTS,
    Embeddings,
    VehicleReIDModel,
    VehicleScoring,
    opposite_camera_pairs,
    top_k_indices,
    view_direction,
)
from citytrack.utils.io import atomic_open

log = logging.getLogger(__name__)


def read_name_list(path: Path) -> list[str]:
    """Image names of a `name_*.txt`, one a line, in file order; FormatError if missing or empty."""
    if not path.is_file():
        raise FormatError(path, "missing image list (a VeRi / AI City 2019 folder has name_query.txt and name_test.txt)")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise FormatError(path, "image list is empty")
    return names


@dataclass
class VeriSplit:
    """One side of the retrieval (query or gallery) in its name-list order; ids / cameras -1 when unknown."""

    items: list[ReidItem]

    @property
    def labelled(self) -> bool:
        return all(item.pid >= 0 for item in self.items)

    @property
    def pids(self) -> np.ndarray:
        return np.array([item.pid for item in self.items])

    @property
    def cams(self) -> np.ndarray:
        return np.array([item.camid for item in self.items])

    @property
    def names(self) -> list[str]:
        return [item.path.name for item in self.items]


def load_split(root: Path, folder: str, name_file: str) -> VeriSplit:
    """The images of `root/folder` listed by `root/name_file`, ids and cameras parsed from VeRi names."""
    image_dir = root / folder
    if not image_dir.is_dir():
        raise FormatError(image_dir, f"missing image folder (data.root={root} must hold image_query/ and image_test/)")
    items = []
    for name in read_name_list(root / name_file):
        path = image_dir / name
        if not path.is_file():
            raise FormatError(path, f"listed in {name_file} but not found")
        try:
            parsed = parse_veri_name(name)
            items.append(ReidItem(path, parsed.vid, parsed.camera))
        except ValueError:  # AI City 2019 names (000001.jpg) carry neither id nor camera
            items.append(ReidItem(path, -1, -1))
    return VeriSplit(items)


def read_tracks(path: Path, names: list[str]) -> np.ndarray:
    """Track id per name from a `test_track.txt` (one line per track: its image names); -1 = in no track."""
    index = {n: i for i, n in enumerate(names)}
    tracks = np.full(len(names), -1)
    for t, line in enumerate(path.read_text().splitlines()):
        for name in line.split():
            if name in index:
                tracks[index[name]] = t
    return tracks


def camera_views(scenes_root: Path) -> dict[int, tuple[str, np.ndarray]]:
    """Camera number -> (scene, ground viewing direction) of every AI City 2019 scene under `scenes_root`."""
    from citytrack.data.formats.aicity import read_aic19_scene

    scenes = sorted(p for p in scenes_root.glob("S[0-9]*") if p.is_dir()) if scenes_root.is_dir() else []
    if not scenes:
        raise FormatError(scenes_root, "task.calibration: no AI City 2019 scene folders (SXX) here")
    views = {}
    for scene in scenes:
        for setup in read_aic19_scene(scene):
            views[int(setup.camera.name.lstrip("c"))] = (scene.name, view_direction(setup.calibration, setup.image_size))
    return views


def embed_split(
    model: VehicleReIDModel, split: VeriSplit, batch_size: int, num_workers: int, tracks: np.ndarray | None = None
) -> Embeddings:
    """Flip-averaged features and head softmaxes of every crop, batched through a DataLoader."""
    height, width = model.input_size
    # one pass: no persistent workers (make_loader's), whose iterator a later loader's fork would inherit
    loader = DataLoader(ReIDImageDataset(split.items, height, width), batch_size=batch_size, num_workers=num_workers)
    feats, probs = model.embed_batches(batch["image"] for batch in loader)
    return Embeddings(feats, probs, split.cams, tracks)


def evaluate_variants(
    dists: dict[str, np.ndarray], query: VeriSplit, gallery: VeriSplit
) -> dict[str, dict[str, float]]:
    """mAP and rank-1/5/10 of every distance matrix under the VeRi protocol."""
    out = {}
    for variant, dist in dists.items():
        cmc, m_ap, valid = evaluate_rank(dist, query.pids, gallery.pids, query.cams, gallery.cams, max_rank=10)
        out[variant] = {
            "mAP": m_ap, "rank1": float(cmc[0]), "rank5": float(cmc[4]), "rank10": float(cmc[9]),
            "queries": int(valid.sum()),
        }
    return out


def head_accuracy(root: Path, gallery: VeriSplit, embeddings: Embeddings, type_head: str, orientation_head: str) -> dict[str, float]:
    """Accuracy of the type / orientation heads on the labelled gallery crops (VeRi label xml files)."""
    train_xml, test_xml = root / "train_label.xml", root / "test_label.xml"
    if not (train_xml.is_file() and test_xml.is_file()):
        return {}
    # class i of the type head is the i-th typeID present in training (ReIDDataModule's mapping)
    labels = vehicle_attributes(gallery.items, read_veri_labels(test_xml), vehicle_type_classes(read_veri_labels(train_xml)))
    out = {}
    for key, head in (("vehicle_type", type_head), ("orientation", orientation_head)):
        truth, probs = np.asarray(labels[key]), embeddings.probs.get(head)
        if probs is not None and (truth >= 0).any():
            out[f"{key}_accuracy"] = float((probs.argmax(1)[truth >= 0] == truth[truth >= 0]).mean())
    return out


def write_track2(path: Path, dist: np.ndarray, top_k: int) -> None:
    """One line per query: its `top_k` gallery positions, 1-based, space-separated (AI City 2019 Track 2)."""
    with atomic_open(path) as fh:
        for row in top_k_indices(dist, top_k) + 1:
            fh.write(" ".join(map(str, row.tolist())) + "\n")


def format_metrics(metrics: dict[str, dict[str, float]]) -> str:
    lines = [f"{'variant':<10} {'mAP':>6} {'rank1':>6} {'rank5':>6} {'rank10':>6}"]
    for variant, m in metrics.items():
        lines.append(f"{variant:<10} {m['mAP']:6.3f} {m['rank1']:6.3f} {m['rank5']:6.3f} {m['rank10']:6.3f}")
    return "\n".join(lines)


def run(
    cfg: DictConfig,
    model: VehicleReIDModel,
    scoring: VehicleScoring,
    *,
    batch_size: int,
    num_workers: int,
    top_k: int,
    submit: str,
    track_file: str | None,
    calibration: str | None,
    opposite_min_angle: float,
) -> dict[str, Any]:
    """Embed, score and write `track2.txt` (+ `metrics.json` with ids); returns the metrics by variant.

    Built by Hydra from `conf/task/vehicle_reid.yaml`.
    """
    if submit not in VARIANTS:
        raise ValueError(f"task.submit must be one of {list(VARIANTS)}, got {submit!r}")
    root, out = Path(cfg.data.root), Path(cfg.out)
    if not root.is_dir():
        raise FormatError(root, "data.root is not a folder (a VeRi-776 / AI City 2019 Track 2 folder)")
    query = load_split(root, "image_query", "name_query.txt")
    gallery = load_split(root, "image_test", "name_test.txt")
    tracks = None
    if track_file and (root / track_file).is_file():
        tracks = read_tracks(root / track_file, gallery.names)
        log.info("%s: %d gallery crops in %d tracks", root / track_file, int((tracks >= 0).sum()), len(set(tracks[tracks >= 0])))
    if calibration:
        pairs = opposite_camera_pairs(camera_views(Path(calibration)), opposite_min_angle)
        log.info("opposite-facing camera pairs from %s: %s", calibration, pairs)
        scoring = dataclasses.replace(scoring, opposite_cameras=[*map(tuple, scoring.opposite_cameras), *pairs])
    log.info("vehicle ReID on %s: %d queries, %d gallery crops", root, len(query.items), len(gallery.items))
    q = embed_split(model, query, batch_size, num_workers)
    g = embed_split(model, gallery, batch_size, num_workers, tracks)
    if not model.heads:
        log.warning("the checkpoint has no auxiliary heads: the penalties change nothing")
    labelled = query.labelled and gallery.labelled
    variants = VARIANTS if labelled else (submit,)
    dists = scoring.distances(q, g, variants)
    out.mkdir(parents=True, exist_ok=True)
    write_track2(out / "track2.txt", dists[submit], top_k)
    result: dict[str, Any] = {}
    if labelled:
        result = evaluate_variants(dists, query, gallery)
        print(format_metrics(result))
        summary = {
            "root": str(root), "queries": len(query.items), "gallery": len(gallery.items), "submit": submit,
            "metrics": result, "heads": head_accuracy(root, gallery, g, scoring.type_head, scoring.orientation_head),
            "opposite_cameras": [list(map(int, p)) for p in scoring.opposite_cameras],
            "config": OmegaConf.to_container(cfg.task, resolve=True),
        }
        with atomic_open(out / "metrics.json") as fh:
            json.dump(summary, fh, indent=2)
    print(f"results: {out / 'track2.txt'}" + (f"  metrics: {out / 'metrics.json'}" if labelled else ""))
    return result
