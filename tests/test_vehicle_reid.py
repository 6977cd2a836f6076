"""Vehicle ReID: VeRi label plumbing, the AIC19 winner's penalties and re-ranking, `infer.py task=vehicle_reid`."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from citytrack.data.formats.errors import FormatError
from citytrack.data.reid_datamodule import ReIDDataModule, SyntheticVehicleReIDDataModule
from citytrack.eval.reid_metrics import evaluate_rank
from citytrack.models.reid.backbones import ReIDNet
from citytrack.models.reid.module import ReIDModule
from citytrack.models.reid.vehicle import (
    Embeddings,
    VehicleReIDModel,
    VehicleScoring,
    opposite_camera_pairs,
    orientation_penalty,
    squared_distance,
    top_k_indices,
    track_mean,
    type_penalty,
    view_direction,
)

TYPE_OF = {1: 2, 2: 5, 3: 8, 4: 5, 5: 2, 6: 8}  # vehicle id -> VeRi typeID (present: 2, 5, 8)


def _write_veri(root: Path, train_ids=(1, 2, 3, 4), test_ids=(5, 6), cams=(1, 2), per_cam: int = 2) -> dict[str, dict]:
    """A tiny VeRi-776 folder: random crops, name lists, VeRi-style label xml (orientation = frame % 8)."""
    rng = np.random.default_rng(0)
    labels: dict[str, dict] = {}
    for split, ids in (("train", train_ids), ("test", test_ids)):
        (root / f"image_{split}").mkdir(parents=True)
        rows = []
        for vid in ids:
            for cam in cams:
                for j in range(per_cam):
                    name = f"{vid:04d}_c{cam:03d}_{10 * j + cam:08d}_0.jpg"
                    cv2.imwrite(str(root / f"image_{split}" / name), rng.integers(0, 255, (24, 40, 3), dtype=np.uint8))
                    labels[name] = {"typeID": TYPE_OF[vid], "orientationID": (10 * j + cam) % 8}
                    rows.append(
                        f'<Item imageName="{name}" vehicleID="{vid:04d}" cameraID="c{cam:03d}" colorID="1" '
                        f'typeID="{TYPE_OF[vid]}" orientationID="{(10 * j + cam) % 8}" />'
                    )
        (root / f"name_{split}.txt").write_text("\n".join(sorted(p.name for p in (root / f"image_{split}").iterdir())) + "\n")
        items = "\n".join(rows)
        (root / f"{split}_label.xml").write_text(
            f'<?xml version="1.0" encoding="utf-8"?>\n<TrainingImages Version="1.0">\n<Items number="{len(rows)}">\n'
            f"{items}\n</Items>\n</TrainingImages>\n"
        )
    # one unlabelled training crop: its attributes are unknown (-1)
    cv2.imwrite(str(root / "image_train" / "0001_c001_00000099_0.jpg"), np.zeros((24, 40, 3), np.uint8))
    # queries: the first crop of each test vehicle and camera, also in image_test (as real VeRi)
    (root / "image_query").mkdir()
    queries = sorted(p.name for p in (root / "image_test").iterdir() if p.name.split("_")[2].startswith("0000000"))
    for name in queries:
        (root / "image_query" / name).write_bytes((root / "image_test" / name).read_bytes())
    (root / "name_query.txt").write_text("\n".join(queries) + "\n")
    return labels


# ---------------------------------------------------------------------- data
def test_veri_folder_gives_type_and_orientation_batch_keys(tmp_path: Path) -> None:
    labels = _write_veri(tmp_path)
    dm = ReIDDataModule(root=str(tmp_path), format="veri776", height=32, width=32, p=2, k=2, num_workers=0)
    dm.setup("fit")
    assert dm.vehicle_type_ids == [2, 5, 8]  # class i = i-th typeID present in train_label.xml
    ds = dm.train_set
    for i in range(len(ds)):
        item = ds[i]
        label = labels.get(ds.samples[i].path.name)
        if label is None:
            assert int(item["vehicle_type"]) == -1 and int(item["orientation"]) == -1
        else:
            assert int(item["vehicle_type"]) == [2, 5, 8].index(label["typeID"])
            assert int(item["orientation"]) == label["orientationID"]
    batch = next(iter(dm.train_dataloader()))
    assert {"vehicle_type", "orientation"} <= set(batch) and batch["vehicle_type"].dtype == torch.long
    # validation: image_query against image_test
    assert dm.val_set.num_query == 4 and len(dm.val_set) == 4 + 8


def test_mirrored_training_crops_get_mirrored_orientations(tmp_path: Path) -> None:
    labels = _write_veri(tmp_path)
    dm = ReIDDataModule(root=str(tmp_path), format="veri776", height=24, width=40, p=2, k=2, num_workers=0, mirror_p=1.0)
    dm.setup("fit")
    ds = dm.train_set
    i = next(i for i, s in enumerate(ds.samples) if labels.get(s.path.name, {}).get("orientationID", 0) not in (-1, 0, 4))
    item = ds[i]
    expected = (8 - labels[ds.samples[i].path.name]["orientationID"]) % 8  # 2 (moving right) <-> 6 (left)
    assert int(item["orientation"]) == expected
    assert int(item["vehicle_type"]) == [2, 5, 8].index(labels[ds.samples[i].path.name]["typeID"])  # type unchanged
    original = cv2.cvtColor(cv2.imread(str(ds.samples[i].path)), cv2.COLOR_BGR2RGB)
    assert np.array_equal(item["image"].numpy().transpose(1, 2, 0), original[:, ::-1])


def test_person_and_label_free_folders_have_no_attribute_keys(tmp_path: Path) -> None:
    _write_veri(tmp_path)
    (tmp_path / "train_label.xml").unlink()
    dm = ReIDDataModule(root=str(tmp_path), format="veri776", height=32, width=32, p=2, k=2, num_workers=0)
    dm.setup("fit")
    assert "vehicle_type" not in dm.train_set[0] and dm.vehicle_type_ids == []


def test_synthetic_vehicle_datamodule_generates_only_when_missing(tmp_path: Path, monkeypatch) -> None:
    calls = []

    def fake_ensure(root, **kwargs):
        calls.append(kwargs)
        _write_veri(Path(root))
        return Path(root)

    from citytrack.data.synth import city_crops

    monkeypatch.setattr(city_crops, "ensure_city_veri", fake_ensure, raising=False)
    dm = SyntheticVehicleReIDDataModule(root=str(tmp_path / "veri"), synth={"scenes": 1}, height=32, width=32, p=2, k=2, num_workers=0)
    dm.setup("fit")
    assert calls == [{"scenes": 1}] and dm.num_classes == 4
    SyntheticVehicleReIDDataModule(root=str(tmp_path / "veri"), p=2, k=2, num_workers=0).setup("fit")
    assert len(calls) == 1  # an existing folder is read as is


# ---------------------------------------------------------------------- scoring
def test_squared_distance_and_track_mean() -> None:
    a = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert squared_distance(a, a) == pytest.approx(np.array([[0.0, 2.0], [2.0, 0.0]]))
    p = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.2, 0.8]])
    m = track_mean(p, np.array([7, 7, -1, 3]))
    assert m[0] == pytest.approx([0.5, 0.5]) and m[1] == pytest.approx([0.5, 0.5])
    assert m[2] == pytest.approx([0.5, 0.5]) and m[3] == pytest.approx([0.2, 0.8])


def test_type_penalty_moves_a_wrong_type_gallery_item_down() -> None:
    # gallery 0: nearest but another type; gallery 1: a little farther, same type
    dist = np.array([[0.2, 0.3, 1.0]], np.float32)
    p_q = np.array([[1.0, 0.0]])
    p_g = np.array([[0.0, 1.0], [0.9, 0.1], [0.95, 0.05]])
    assert top_k_indices(dist, 3)[0].tolist() == [0, 1, 2]
    out = type_penalty(dist, p_q @ p_g.T, threshold=0.1, penalty=5.0)
    assert out[0].tolist() == pytest.approx([5.2, 0.3, 1.0])
    assert top_k_indices(out, 3)[0].tolist() == [1, 2, 0]
    # the distance gate: only pairs farther than min_dist are penalised
    assert type_penalty(dist, p_q @ p_g.T, min_dist=0.25)[0, 0] == pytest.approx(0.2)


def test_orientation_penalty_only_on_opposite_cameras_with_agreeing_orientation() -> None:
    dist = np.zeros((1, 4), np.float32)
    s_dir = np.array([[0.5, 0.01, 0.5, 0.5]])
    cams_q, cams_g = np.array([6]), np.array([9, 9, 7, 6])
    out = orientation_penalty(dist, s_dir, cams_q, cams_g, [[9, 6], [7, 8]], threshold=0.03, penalty=2.5)
    # cam 9 & same orientation: penalised; cam 9 & opposite orientation: kept; cams 7 and 6 are not opposite to 6
    assert out[0].tolist() == pytest.approx([2.5, 0.0, 0.0, 0.0])


def _looking(yaw_deg: float, position=(0.0, 0.0)):
    """A camera 10 m up at `position`, pitched 30 degrees down, looking along `yaw_deg` on the ground."""
    from citytrack.multicam.calibration import CameraCalibration

    yaw, pitch = np.radians(yaw_deg), np.radians(30.0)
    f = np.array([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), -np.sin(pitch)])
    r = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    R = np.stack([r, np.cross(f, r), f])
    C = np.array([*position, 10.0])
    K = np.array([[500.0, 0, 320], [0, 500.0, 180], [0, 0, 1]])
    return CameraCalibration.from_intrinsics_extrinsics(K, R, -R @ C, image_size=(640, 360))


def test_opposite_camera_pairs_from_calibrated_view_directions() -> None:
    assert view_direction(_looking(0.0), (640, 360)) == pytest.approx([1.0, 0.0], abs=1e-6)
    assert view_direction(_looking(90.0, (5.0, 3.0)), (640, 360)) == pytest.approx([0.0, 1.0], abs=1e-6)
    views = {
        1: ("S01", view_direction(_looking(0.0), (640, 360))),
        2: ("S01", view_direction(_looking(170.0, (50.0, 0.0)), (640, 360))),  # faces camera 1 down the road
        3: ("S01", view_direction(_looking(90.0), (640, 360))),  # a cross street
        4: ("S02", view_direction(_looking(180.0), (640, 360))),  # opposite, but another scene
    }
    assert opposite_camera_pairs(views, min_angle=140.0) == [(1, 2)]
    assert opposite_camera_pairs(views, min_angle=80.0) == [(1, 2), (1, 3), (2, 3)]


def _clusters(seed: int = 0, ids: int = 12, per_id: int = 8, dim: int = 16):
    """Identities as elongated clusters: a query's true matches are reachable through each other."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(ids, dim))
    direction = rng.normal(size=(ids, dim))
    gallery, g_ids = [], []
    for i in range(ids):
        t = np.linspace(-1.5, 1.5, per_id)[:, None]
        gallery.append(centres[i] + t * direction[i] / np.linalg.norm(direction[i]) * 3 + 0.5 * rng.normal(size=(per_id, dim)))
        g_ids += [i] * per_id
    queries = centres + 1.2 * rng.normal(size=(ids, dim))
    norm = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)
    return norm(queries), np.arange(ids), norm(np.concatenate(gallery)), np.array(g_ids)


def test_rerank_improves_map_on_a_k_reciprocal_structure() -> None:
    qf, q_ids, gf, g_ids = _clusters()
    scoring = VehicleScoring(k1=8, k2=3, lambda_value=0.1)
    dists = scoring.distances(Embeddings(qf, cams=np.zeros(len(qf))), Embeddings(gf, cams=np.ones(len(gf))), ("plain", "rerank"))
    q_cams, g_cams = np.zeros(len(q_ids)), np.ones(len(g_ids))
    _, map_plain, _ = evaluate_rank(dists["plain"], q_ids, g_ids, q_cams, g_cams)
    _, map_rerank, _ = evaluate_rank(dists["rerank"], q_ids, g_ids, q_cams, g_cams)
    assert map_rerank > map_plain + 0.03, (map_plain, map_rerank)


def test_scoring_variants_apply_penalties_before_and_after_rerank() -> None:
    qf, q_ids, gf, g_ids = _clusters(seed=1, ids=6, per_id=6)
    # type head: two types by identity parity; one query claims the wrong type
    p_q = np.eye(2)[q_ids % 2]
    p_g = np.eye(2)[g_ids % 2]
    q = Embeddings(qf, {"vehicle_type": p_q}, cams=np.zeros(len(qf)))
    g = Embeddings(gf, {"vehicle_type": p_g}, cams=np.ones(len(gf)))
    d = VehicleScoring(k1=6, k2=2).distances(q, g)
    assert list(d) == ["plain", "penalties", "rerank", "both"]
    wrong = (q_ids[:, None] % 2) != (g_ids[None, :] % 2)
    assert np.allclose((d["penalties"] - d["plain"])[wrong], 5.0) and np.allclose((d["penalties"] - d["plain"])[~wrong], 0)
    # after re-ranking (distances in [0, ~1.5]) the penalty is added again, as the winner did
    assert d["both"][wrong].min() >= 5.0 and d["both"][~wrong].max() < 2.0
    assert d["rerank"].max() < 2.0  # re-ranked distances are on the Jaccard scale
    with pytest.raises(ValueError, match="unknown scoring variants"):
        VehicleScoring().distances(q, g, ("plain", "fancy"))


# ---------------------------------------------------------------------- model and runner
def _vehicle_checkpoint(path: Path) -> Path:
    torch.manual_seed(0)
    net = ReIDNet("osnet_x0_25")
    module = ReIDModule(net, optimizer=lambda params: torch.optim.SGD(params, lr=0.1), num_classes=4,
                        aux_heads={"vehicle_type": 8, "orientation": 8})
    module.eval()
    torch.save(
        {
            "state_dict": module.state_dict(),
            "hyper_parameters": dict(module.hparams),
            "reid_net": {"config": dict(net.config), "input_size": [32, 32]},
        },
        path,
    )
    return path


def test_model_features_are_flip_averaged_and_heads_softmaxed(tmp_path: Path) -> None:
    model = VehicleReIDModel.from_checkpoint(_vehicle_checkpoint(tmp_path / "v.ckpt"), device="cpu")
    assert set(model.heads) == {"vehicle_type", "orientation"} and model.input_size == (32, 32)
    images = torch.rand(3, 3, 32, 32)
    feats, probs = model.embed(images)
    flipped, _ = model.embed(torch.flip(images, dims=[3]))
    assert torch.allclose(feats, flipped, atol=1e-5)  # the mean of a crop and its mirror is mirror-invariant
    assert torch.allclose(feats.norm(dim=1), torch.ones(3), atol=1e-5)
    with torch.no_grad():
        raw = model.extractor.net(images)
        expected = torch.softmax(model.heads["vehicle_type"](raw), dim=1)
        mean = torch.nn.functional.normalize((raw + model.extractor.net(torch.flip(images, dims=[3]))) / 2, dim=1)
    assert torch.allclose(probs["vehicle_type"], expected, atol=1e-5) and probs["orientation"].shape == (3, 8)
    assert torch.allclose(feats, mean, atol=1e-5)


def _infer(root: Path, ckpt: Path, out: Path, extra: list[str] | None = None) -> dict:
    from citytrack.inference import run_task

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(Path(__file__).resolve().parents[1] / "conf"), version_base="1.3"):
        cfg = compose(
            config_name="infer",
            overrides=["task=vehicle_reid", f"data.root={root}", f"ckpt={ckpt}", f"out={out}", "device=cpu",
                       "task.num_workers=0", "task.scoring.k1=4", "task.scoring.k2=2", *(extra or [])],
        )
    GlobalHydra.instance().clear()
    return run_task(cfg)


def test_infer_vehicle_reid_writes_track2_and_metrics(tmp_path: Path) -> None:
    root = tmp_path / "veri"
    _write_veri(root)
    ckpt = _vehicle_checkpoint(tmp_path / "v.ckpt")
    result = _infer(root, ckpt, tmp_path / "out", ["task.top_k=5", "task.submit=plain"])
    assert set(result) == {"plain", "penalties", "rerank", "both"}
    lines = (tmp_path / "out" / "track2.txt").read_text().splitlines()
    queries = (root / "name_query.txt").read_text().split()
    gallery = (root / "name_test.txt").read_text().split()
    assert len(lines) == len(queries) == 4
    # each line: the 5 nearest gallery crops (plain distance), 1-based in name_test.txt order
    model = VehicleReIDModel.from_checkpoint(ckpt, device="cpu")

    def load(folder, names):
        return torch.stack([torch.from_numpy(cv2.resize(cv2.imread(str(root / folder / n))[:, :, ::-1], (32, 32)).transpose(2, 0, 1).copy()) for n in names])

    qf, _ = model.embed(load("image_query", queries))
    gf, _ = model.embed(load("image_test", gallery))
    expected = np.argsort(squared_distance(qf.numpy(), gf.numpy()), axis=1, kind="stable")[:, :5] + 1
    got = np.array([[int(x) for x in line.split()] for line in lines])
    assert (got[:, 0] == expected[:, 0]).all() and got.min() >= 1 and got.max() <= len(gallery)
    # the query's own copy in the gallery is the nearest crop (distance 0)
    assert [gallery[i - 1] for i in got[:, 0]] == queries
    summary = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert set(summary["metrics"]) == {"plain", "penalties", "rerank", "both"}
    for m in summary["metrics"].values():
        assert 0.0 <= m["mAP"] <= 1.0 and m["rank1"] <= m["rank5"] <= m["rank10"] <= 1.0 and m["queries"] == 4


def test_infer_names_the_missing_file(tmp_path: Path) -> None:
    root = tmp_path / "veri"
    _write_veri(root)
    (root / "name_test.txt").unlink()
    with pytest.raises(FormatError, match="name_test.txt"):
        _infer(root, _vehicle_checkpoint(tmp_path / "v.ckpt"), tmp_path / "out")
    assert not (tmp_path / "out" / "track2.txt").exists()


@pytest.mark.parametrize("experiment", ["reid_vehicle_synthetic", "reid_vehicle_synthetic_cpu"])
def test_vehicle_experiments_compose_on_the_vehicle_city(experiment: str, tmp_path: Path) -> None:
    from hydra.utils import instantiate

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(Path(__file__).resolve().parents[1] / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"experiment={experiment}", f"paths.data_dir={tmp_path}"])
    GlobalHydra.instance().clear()
    assert dict(cfg.model.aux_heads) == {"vehicle_type": 8, "orientation": 8}
    # every vehicle of the training city is a training identity; P of them per batch
    assert cfg.data.synth.scenes * cfg.data.synth.vehicles >= cfg.data.p
    dm = instantiate(cfg.data)
    assert isinstance(dm, SyntheticVehicleReIDDataModule) and dm.root == tmp_path / "synth" / "veri_city"
    assert not dm.root.exists()  # nothing is generated before prepare_data
