"""SpatialEmbedding segmenter: Lovász hinge, loss, clustering, padding, metric, and one run through the real config."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict

from citytrack.models.spatial_embedding.cluster import Clusterer, InstanceMasks
from citytrack.models.spatial_embedding.embedding import X_STEP, Y_STEP, pixel_coordinates
from citytrack.models.spatial_embedding.loss import SpatialEmbeddingLoss, lovasz_hinge
from citytrack.models.spatial_embedding.metrics import MaskMatchEvaluator, average_precision
from citytrack.models.spatial_embedding.net import BranchedERFNet, Downsampler, NonBottleneck1d, pad_to_stride


# ---------------------------------------------------------------------- Lovász hinge
def jaccard_loss_of_errors(mistakes: np.ndarray, labels: np.ndarray) -> float:
    """Delta_J(M) = 1 - |P \\ M| / |P u (M n N)| for the set M of mispredicted pixels."""
    pos = labels.astype(bool)
    inter = np.sum(pos & ~mistakes)
    union = np.sum(pos) + np.sum(mistakes & ~pos)
    return 1.0 - inter / union if union else 0.0


def lovasz_brute_force(logits: np.ndarray, labels: np.ndarray) -> float:
    """The Lovász extension as an integral over thresholds: int_0^inf Delta_J({i: m_i > t}) dt, m = hinge errors."""
    m = np.maximum(1.0 - logits * (2.0 * labels - 1.0), 0.0)
    levels = np.concatenate([[0.0], np.unique(m)])
    return float(
        sum((hi - lo) * jaccard_loss_of_errors(m > lo, labels) for lo, hi in itertools.pairwise(levels))
    )


def test_lovasz_hinge_matches_its_definition_with_ties_and_in_batches() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(1, 12))
        logits = rng.choice([-1.5, -0.5, 0.0, 0.25, 0.5, 2.0], size=n)  # a few values: many ties
        labels = rng.integers(0, 2, size=n).astype(np.float64)
        got = float(lovasz_hinge(torch.tensor(logits), torch.tensor(labels)))
        assert got == pytest.approx(lovasz_brute_force(logits, labels), abs=1e-12)
    logits = rng.normal(size=(5, 8))
    labels = rng.integers(0, 2, size=(5, 8)).astype(np.float64)
    batched = lovasz_hinge(torch.tensor(logits), torch.tensor(labels)).numpy()
    np.testing.assert_allclose(
        batched, [lovasz_brute_force(a, b) for a, b in zip(logits, labels, strict=True)], atol=1e-12
    )


def test_lovasz_hinge_known_values_empty_and_gradient() -> None:
    # all logits 0: every hinge error is 1, every pixel is a mistake -> Jaccard loss 1
    assert float(lovasz_hinge(torch.zeros(6), torch.tensor([1.0, 0, 1, 0, 0, 0]))) == pytest.approx(1.0)
    # perfect margins cost nothing
    assert float(lovasz_hinge(torch.tensor([2.0, -3.0, 1.5]), torch.tensor([1.0, 0.0, 1.0]))) == 0.0
    # no positives: the largest error (here 1 + 0.5)
    assert float(lovasz_hinge(torch.tensor([0.5, -2.0, -0.2]), torch.zeros(3))) == pytest.approx(1.5)
    # no pixels at all: 0 and still differentiable
    empty = torch.zeros(3, 0, requires_grad=True)
    out = lovasz_hinge(empty, torch.zeros(3, 0))
    assert out.shape == (3,) and float(out.detach().sum()) == 0.0
    out.sum().backward()
    # gradient against finite differences away from ties and kinks
    logits = torch.tensor(
        [[0.3, -0.7, 0.1, 1.4, -0.2], [-0.45, 0.8, 0.05, -1.1, 0.6]], dtype=torch.float64, requires_grad=True
    )
    labels = torch.tensor([[1.0, 0, 1, 1, 0], [0, 1, 0, 0, 1]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: lovasz_hinge(x, labels), (logits,))


# ---------------------------------------------------------------------- net and loss
def test_net_shapes_init_and_padding() -> None:
    net = BranchedERFNet(classes=[1, 2], n_sigma=2, width=0.25).eval()
    x = torch.rand(1, 3, 37, 45)
    padded = pad_to_stride(x)
    assert padded.shape[-2:] == (40, 48) and torch.equal(padded[..., :37, :45], x)
    out = net(padded)
    assert out.shape == (1, 2 + 2 + 2, 40, 48)
    assert torch.all(out[:, :2] == 0) and torch.allclose(out[:, 2:4], torch.ones(()))
    with pytest.raises(ValueError, match="multiples of 8"):
        net(x)
    full = BranchedERFNet(classes=[2])
    assert [m.bn.num_features for m in full.encoder.layers if isinstance(m, Downsampler)] == [16, 64, 128]
    blocks = [m for m in full.encoder.layers if isinstance(m, NonBottleneck1d)]
    assert [b.conv3x1_2.dilation[0] for b in blocks] == [1] * 5 + [2, 4, 8, 16] * 2
    assert [b.dropout.p for b in blocks] == [0.03] * 5 + [0.3] * 8


def test_pixel_coordinates_follow_the_published_grid() -> None:
    xym = pixel_coordinates(1024, 2048)
    torch.testing.assert_close(xym[0, 0], torch.linspace(0, 2, 2048))
    torch.testing.assert_close(xym[1, :, 0], torch.linspace(0, 1, 1024))
    assert pixel_coordinates(1024, 2048) is xym  # built once per size
    assert float(pixel_coordinates(4, 3000)[0, 0, -1]) == pytest.approx(2999 * X_STEP)  # extends past 2048
    assert float(pixel_coordinates(1100, 2)[1, -1, 0]) == pytest.approx(1099 * Y_STEP)


def two_people(h: int = 32, w: int = 48) -> torch.Tensor:
    ids = torch.zeros(h, w, dtype=torch.int32)
    ids[4:20, 5:13] = 2001
    ids[10:28, 28:38] = 2002
    ids[0:3, 40:48] = 10000  # ignore region
    return ids


def test_loss_decreases_on_a_tiny_batch() -> None:
    ids = torch.stack([two_people(), two_people().flip(-1)])
    criterion = SpatialEmbeddingLoss()
    # the loss alone: a free output tensor, initialised as the net's output layer is
    torch.manual_seed(0)
    free = torch.randn(2, 5, 32, 48)
    free[:, :2], free[:, 2:4] = 0.0, 1.0
    free.requires_grad_()
    opt = torch.optim.Adam([free], lr=3e-3)
    first = {}
    for step in range(20):
        out = criterion(free, ids, [2])
        first = first or {k: float(v.detach()) for k, v in out.items()}
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert float(out["instance"].detach()) < 0.1 * first["instance"]
    assert float(out["loss"].detach()) < 0.6 * first["loss"]
    # through the net
    net = BranchedERFNet(classes=[2], width=0.25)
    images = torch.rand(2, 3, 32, 48) * 0.2
    images[:, 0] += (ids > 0) & (ids < 10000)  # people are red
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    losses = []
    for _ in range(25):
        out = criterion(net(images), ids, [2])
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    assert all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < 0.85 * losses[0], losses


def test_loss_terms_on_a_perfect_output_and_other_classes() -> None:
    ids = two_people()
    pred = perfect_output(ids, classes=[2])
    out = SpatialEmbeddingLoss()(pred[None], ids[None], [2])
    assert float(out["variance"]) == pytest.approx(0.0, abs=1e-10)
    assert float(out["instance"]) < 0.05 and float(out["seed"]) < 1e-3
    # a pedestrian-only net sees a car as "not my class": its seed there costs other_class_weight
    car = ids.clone()
    car[car == 2002] = 1001
    plain = SpatialEmbeddingLoss(other_class_weight=1.0)(pred[None], car[None], [2])
    heavy = SpatialEmbeddingLoss(other_class_weight=10.0)(pred[None], car[None], [2])
    assert float(heavy["seed"]) > 5 * float(plain["seed"]) > 0


# ---------------------------------------------------------------------- clustering
def perfect_output(
    ids: torch.Tensor, classes: list[int], seed_logit: float = 12.0, sigma: float = 1.5
) -> torch.Tensor:
    """Offsets pointing every instance pixel at its instance centre, high seeds on instances, low elsewhere."""
    h, w = ids.shape
    xym = pixel_coordinates(h, w)
    out = torch.zeros(2 + 2 + len(classes), h, w)
    out[2:4] = sigma
    out[4:] = -seed_logit
    for inst in ids.unique().tolist():
        if inst in (0, 10000):
            continue
        m = ids == inst
        centre = xym[:, m].mean(1, keepdim=True)
        out[0:2, m] = torch.atanh(centre - xym[:, m])
        out[4 + classes.index(inst // 1000), m] = seed_logit
    return out


def test_clustering_recovers_two_separated_instances() -> None:
    ids = two_people()
    result = Clusterer(min_pixel=20)(perfect_output(ids, [2]), [2])
    assert len(result) == 2 and result.masks.shape == (2, 32, 48)
    got = sorted((m.nonzero().min(0).values.tolist(), int(m.sum())) for m in result.masks)
    assert got == [([4, 5], 16 * 8), ([10, 28], 18 * 10)]
    for m in result.masks:
        assert len(torch.unique(ids[m])) == 1
    assert result.masks.sum(0).max() == 1 and result.classes.tolist() == [2, 2]
    assert torch.all(result.scores > 0.99)


def test_clustering_thresholds_and_classes() -> None:
    ids = two_people()
    # seeds of 0.9 < threshold 0.94: nothing starts an instance; a lower threshold finds both
    weak = perfect_output(ids, [2], seed_logit=float(np.log(0.9 / 0.1)))
    assert len(Clusterer(min_pixel=20)(weak, [2])) == 0
    assert len(Clusterer(min_pixel=20, threshold=0.85)(weak, [2])) == 2
    # min_pixel between the two sizes (128, 180) keeps the larger one only; above both: none
    assert [int(m.sum()) for m in Clusterer(min_pixel=150)(perfect_output(ids, [2]), [2]).masks] == [180]
    assert [int(m.sum()) for m in Clusterer()(perfect_output(ids, [2]), [2]).masks] == [
        180
    ]  # the published 160
    assert len(Clusterer(min_pixel=200)(perfect_output(ids, [2]), [2])) == 0
    # a narrow sigma splits nothing here (every pixel embeds at its centre); a very wide one merges both
    merged = Clusterer(min_pixel=20)(perfect_output(ids, [2], sigma=-0.5), [2])
    assert len(merged) == 1 and int(merged.masks.sum()) == 16 * 8 + 18 * 10
    # two classes: a car and a pedestrian, one seed channel each
    mixed = ids.clone()
    mixed[mixed == 2002] = 1003
    result = Clusterer(min_pixel=20)(perfect_output(mixed, [1, 2]), [1, 2])
    assert sorted(result.classes.tolist()) == [1, 2]
    for m, c in zip(result.masks, result.classes.tolist(), strict=True):
        assert set((torch.unique(mixed[m]) // 1000).tolist()) == {c}
    empty = Clusterer()(torch.zeros(5, 9, 11), [2])
    assert isinstance(empty, InstanceMasks) and empty.masks.shape == (0, 9, 11) and empty.size == (9, 11)


# ---------------------------------------------------------------------- metric
def test_mask_ap_counts_matches_false_positives_and_ignore() -> None:
    ids = two_people()
    gt = torch.stack([ids == 2001, ids == 2002])
    ev = MaskMatchEvaluator([2])
    ev.update(gt, torch.tensor([2, 2]), torch.tensor([0.9, 0.8]), ids)
    assert ev.compute() == {"AP50": 1.0, "precision": 1.0, "recall": 1.0, "F1": 1.0}
    ev.reset()
    ignore_fp = torch.zeros(1, 32, 48, dtype=torch.bool)
    ignore_fp[0, 0:3, 42:48] = True  # inside the ignore region: neither TP nor FP
    real_fp = torch.zeros(1, 32, 48, dtype=torch.bool)
    real_fp[0, 28:32, 0:10] = True
    masks = torch.cat([gt[:1], ignore_fp, real_fp])
    ev.update(masks, torch.tensor([2, 2, 2]), torch.tensor([0.5, 0.99, 0.95]), ids)
    m = ev.compute()
    assert m["precision"] == 0.5 and m["recall"] == 0.5
    assert (
        m["AP50"]
        == pytest.approx(average_precision(np.array([0.5, 0.95]), np.array([1, 0]), 2))
        == pytest.approx(0.25)
    )
    ev.reset()
    empty = InstanceMasks.empty(32, 48)
    ev.update(empty.masks, empty.classes, empty.scores, ids)
    assert ev.compute() == {"AP50": 0.0, "precision": 0.0, "recall": 0.0, "F1": 0.0}


# ---------------------------------------------------------------------- data
def test_device_augmentation_moves_ids_with_pixels_and_collate_pads_with_ignore() -> None:
    from citytrack.data.mots_datamodule import augment_batch, collate_frames

    ids = torch.stack([two_people()] * 8)
    images = ((ids > 0) & (ids < 10000)).float().unsqueeze(1).expand(-1, 3, -1, -1).contiguous()
    torch.manual_seed(0)
    aug_images, aug_ids = augment_batch(images, ids, brightness=0.0, flip_prob=0.5)
    flipped = [bool(torch.equal(a, ids[0].flip(-1))) for a in aug_ids]
    assert 0 < sum(flipped) < 8
    torch.testing.assert_close(aug_images[:, 0], ((aug_ids > 0) & (aug_ids < 10000)).float())
    bright, _ = augment_batch(images * 0.5, ids, brightness=0.3, flip_prob=0.0)
    factors = bright.amax((1, 2, 3)) / 0.5
    assert torch.all((factors >= 0.7 - 1e-6) & (factors <= 1.3 + 1e-6)) and len(factors.unique()) > 1
    a = {
        "image": torch.ones(3, 20, 30, dtype=torch.uint8),
        "ids": torch.ones(20, 30, dtype=torch.int32),
        "scale": 1.0,
    }
    b = {
        "image": torch.ones(3, 24, 26, dtype=torch.uint8),
        "ids": torch.ones(24, 26, dtype=torch.int32),
        "scale": 1.0,
    }
    batch = collate_frames([a, b])
    assert batch["image"].shape == (2, 3, 24, 30) and batch["size"].tolist() == [[20, 30], [24, 26]]
    assert int(batch["ids"][0, 22, 0]) == 10000 and int(batch["image"][0, :, 22, 0].sum()) == 0


# ---------------------------------------------------------------------- inference API
def test_segment_pads_and_crops_back_to_each_frame_size() -> None:
    from citytrack.models.spatial_embedding.module import SpatialEmbeddingModule

    module = SpatialEmbeddingModule(
        BranchedERFNet([2], width=0.25), SpatialEmbeddingLoss(), Clusterer(min_pixel=5, threshold=0.0)
    )
    frames = torch.randint(0, 255, (3, 3, 37, 45), dtype=torch.uint8)
    results = module.segment(frames, batch_size=2)
    assert len(results) == 3 and module.training
    for r in results:
        assert r.masks.shape[1:] == (37, 45) and r.masks.dtype == torch.bool
        assert r.masks.sum(0).max() <= 1 and len(r.classes) == len(r.scores) == len(r)
    assert module(frames.float() / 255).shape == (3, 5, 37, 45)


# ---------------------------------------------------------------------- one run through the real config
TINY_SYNTH = {
    "scenes": 1,
    "cameras": 1,
    "people": 5,
    "frames": 6,
    "width": 256,
    "height": 120,
    "progress": False,
    "workers": 1,
}


@pytest.mark.slow
def test_one_train_step_through_the_experiment_config(tmp_path: Path, config_dir: Path) -> None:
    from citytrack.data.mots_datamodule import MotsSegmentationDataModule
    from citytrack.models.spatial_embedding.module import load_spatial_embedding, save_inference_checkpoint
    from citytrack.train import train

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = compose(
            config_name="train",
            return_hydra_config=True,
            overrides=[
                "experiment=spatial_embedding_synthetic",
                "model=spatial_embedding_cpu",
                "trainer=cpu",
                "logger=csv",
                "~callbacks.model_summary",
                "~callbacks.progress_bar",
                "model.net.width=0.25",
                "model.clusterer.min_pixel=20",
                "++trainer.max_steps=2",
                "trainer.max_epochs=1",
                "trainer.check_val_every_n_epoch=1",
                "++trainer.limit_val_batches=1",
                "++trainer.num_sanity_val_steps=0",
                "++trainer.enable_progress_bar=false",
                "data.crop_size=[64,96]",
                "data.batch_size=2",
                "data.samples_per_epoch=4",
                "data.num_workers=0",
                "data.val_batch_size=2",
                f"paths.data_dir={tmp_path / 'data'}",
                f"paths.log_dir={tmp_path / 'logs'}",
                f"paths.output_dir={tmp_path / 'run'}",
                f"paths.work_dir={tmp_path}",
            ],
        )
    with open_dict(cfg):
        cfg.data.train.synth = {**TINY_SYNTH, "seed": 5}  # a seed whose camera sees people of KITTI size (>= 25 px)
        cfg.data.val.synth = {**TINY_SYNTH, "seed": 2}
        del cfg.hydra
    assert cfg.model.net.classes == [2] and cfg.optimized_metric == "val/AP50"
    metrics, objects = train(cfg)
    GlobalHydra.instance().clear()
    assert np.isfinite(float(metrics["train/loss"]))
    for key in ("val/AP50", "val/F1", "val/precision", "val/recall"):
        assert 0.0 <= float(metrics[key]) <= 1.0, key
    assert objects["trainer"].global_step == 2
    assert (tmp_path / "run" / "predictions" / "val_epoch000.png").is_file()
    assert (tmp_path / "data" / "synth" / "mots_seg_train" / "train" / "instances_txt").is_dir()

    dm: MotsSegmentationDataModule = objects["datamodule"]
    crop = dm.train_set[0]
    assert crop["image"].shape == (3, 64, 96) and crop["ids"].shape == (64, 96)
    assert bool(((crop["ids"] // 1000) == 2).any())

    module = load_spatial_embedding(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert module.classes == [2] and module.clusterer.min_pixel == 20
    frames = torch.from_numpy(dm.val_set.sequences[0].image(0)).permute(2, 0, 1)[None]
    (result,) = module.segment(frames)
    assert result.masks.shape[1:] == (120, 256)
    small = save_inference_checkpoint(module, tmp_path / "se.pt")
    again = load_spatial_embedding(small, threshold=0.9)
    assert again.clusterer.threshold == 0.9 and again.clusterer.min_pixel == 20
    with torch.no_grad():
        x = frames.flip(1).float() / 255
        torch.testing.assert_close(again(x), module(x), atol=0.05, rtol=0.05)  # fp16 weights
    with pytest.raises(ValueError, match="unknown clustering"):
        load_spatial_embedding(small, min_pixels=3)
