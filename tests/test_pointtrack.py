"""PointTrack: crops and point sampling, the network, triplet training, embedding, and one run of the real config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from citytrack.models.pointtrack.module import PointTrackModule, association_metrics, load_pointtrack
from citytrack.models.pointtrack.net import PointTrackNet, location_embedding
from citytrack.models.pointtrack.points import (
    CATEGORY_EMBEDDING,
    OFFSET_SCALE,
    PointSampler,
    crop_instances,
    sample_points,
)

H, W = 90, 160


def scene(rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A noisy frame with three instances: two touching pedestrians (class 2) and a car (class 1)."""
    rng = rng or np.random.default_rng(0)
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    masks = np.zeros((3, H, W), bool)
    masks[0, 20:60, 30:45] = True
    masks[1, 25:70, 45:58] = True  # right next to instance 0: inside its enlarged box
    yy, xx = np.mgrid[:H, :W]
    masks[2] = (xx - 120) ** 2 / 400 + (yy - 60) ** 2 / 100 <= 1
    return image, masks, np.array([2, 2, 1])


# ---------------------------------------------------------------------- crops and points


def test_crops_box_and_categories() -> None:
    image, masks, classes = scene()
    crops = crop_instances(image, masks, classes, ex=0.2)
    assert len(crops) == 3
    c0 = crops[0]
    # box rows 20..59 (40 px) and cols 30..44 (15 px), enlarged by int(0.2 * size) per side
    assert c0.origin == (12, 27) and c0.mask_x.shape == (40 + 16, 15 + 6)
    np.testing.assert_array_equal(c0.image, image[12:68, 27:48])
    np.testing.assert_allclose(c0.box, [30 / W, 20 / H, 44 / W, 59 / H], rtol=1e-6)
    own = masks[0, 12:68, 27:48]
    other = masks[1, 12:68, 27:48]
    np.testing.assert_array_equal(c0.mask_x == 1, own)
    np.testing.assert_array_equal(c0.mask_x == 2, other & ~own)  # the other pedestrian
    # the car is of another class: never "other instance" in a pedestrian's crop and vice versa
    assert not (crops[2].mask_x == 2).any()
    # without classes every other mask counts
    assert all(
        (c.mask_x == 2).sum() >= (d.mask_x == 2).sum() for c, d in zip(crop_instances(image, masks), crops)
    )


def test_points_values_shapes_and_positions() -> None:
    image, masks, classes = scene()
    crops = crop_instances(image, masks, classes)
    pts = sample_points(crops, np.random.default_rng(1), num_fg=1000, num_env=500)
    assert pts.fg.shape == (3, 1000, 5) and pts.env.shape == (3, 500, 8) and pts.box.shape == (3, 4)
    assert pts.fg.dtype == np.float32 and pts.env.dtype == np.float32
    for k, crop in enumerate(crops):
        fv, fu = pts.fg_vu[k].T
        ev, eu = pts.env_vu[k].T
        assert (crop.mask_x[fv, fu] == 1).all()  # foreground points on the instance
        assert (crop.mask_x[ev, eu] != 1).all()  # environment points outside it
        # colour / 255 in the image's channel order
        np.testing.assert_allclose(pts.fg[k, :, :3], crop.image[fv, fu] / 255.0, atol=1e-6)
        np.testing.assert_allclose(pts.env[k, :, :3], crop.image[ev, eu] / 255.0, atol=1e-6)
        # offsets from the mask centroid / 128
        vs, us = np.nonzero(crop.mask_x == 1)
        np.testing.assert_allclose(pts.fg[k, :, 3], (fv - vs.mean()) / OFFSET_SCALE, atol=1e-6)
        np.testing.assert_allclose(pts.fg[k, :, 4], (fu - us.mean()) / OFFSET_SCALE, atol=1e-6)
        np.testing.assert_allclose(pts.env[k, :, 3], (ev - vs.mean()) / OFFSET_SCALE, atol=1e-6)
        # uniform draws: the foreground offsets are centred (mean within ~4 standard errors of 0)
        spread = pts.fg[k, :, 3:5].std(axis=0) / np.sqrt(1000)
        assert (np.abs(pts.fg[k, :, 3:5].mean(axis=0)) < 4 * spread + 1e-6).all()
        # fixed category embedding of what each environment pixel shows
        np.testing.assert_array_equal(pts.env[k, :, 5:], CATEGORY_EMBEDDING[crop.mask_x[ev, eu]])
    # instance 0 sees its neighbour: both background and other-instance environment points
    assert {0, 2} <= set(crops[0].mask_x[tuple(pts.env_vu[0].T)].tolist())


def test_environment_draws_are_uniform_over_the_non_mask_pixels() -> None:
    crop = crop_instances(
        np.zeros((8, 8, 3), np.uint8), np.pad(np.ones((3, 4), bool), ((2, 3), (1, 3)))[None], ex=0.5
    )[0]
    n_env = int((crop.mask_x != 1).sum())
    pts = sample_points([crop] * 40, np.random.default_rng(0), num_fg=10, num_env=500)
    flat = pts.env_vu[..., 0] * crop.mask_x.shape[1] + pts.env_vu[..., 1]
    counts = np.bincount(flat.ravel(), minlength=crop.mask_x.size)
    hit = counts[(crop.mask_x != 1).ravel()]
    assert (counts[(crop.mask_x == 1).ravel()] == 0).all()
    expected = 40 * 500 / n_env
    assert hit.min() > 0.8 * expected and hit.max() < 1.2 * expected


def test_sampling_is_seeded_and_jitter_only_moves_offsets() -> None:
    image, masks, classes = scene()
    sampler = PointSampler(num_fg=200, num_env=100, jitter=0.001)
    crops = sampler.crops(image, masks, classes)
    a = sampler.sample(crops, np.random.default_rng(5))
    b = sampler.sample(crops, np.random.default_rng(5))
    np.testing.assert_array_equal(a.fg, b.fg)
    np.testing.assert_array_equal(a.env, b.env)
    j = sampler.sample(crops, np.random.default_rng(5), train=True)
    np.testing.assert_array_equal(j.fg_vu, a.fg_vu)
    np.testing.assert_array_equal(j.fg[..., :3], a.fg[..., :3])
    noise = (j.fg[..., 3:5] - a.fg[..., 3:5]).ravel()
    assert 0.0005 < noise.std() < 0.002


def test_degenerate_masks() -> None:
    image = np.zeros((10, 10, 3), np.uint8)
    full = np.ones((1, 10, 10), bool)  # the mask fills its crop: zero environment points, as the reference
    pts = sample_points(crop_instances(image, full), np.random.default_rng(0), num_fg=20, num_env=10)
    assert (pts.env == 0).all() and (pts.env_vu == -1).all() and pts.fg.shape == (1, 20, 5)
    with pytest.raises(ValueError, match="empty"):
        crop_instances(image, np.zeros((2, 10, 10), bool))
    assert crop_instances(image, np.zeros((0, 10, 10), bool)) == []


# ---------------------------------------------------------------------- network


def test_network_shapes_attention_and_width() -> None:
    torch.manual_seed(0)
    net = PointTrackNet(width=0.25).eval()
    fg, env, box = torch.randn(4, 100, 5), torch.randn(4, 60, 8), torch.rand(4, 4)
    out, weights = net(fg, env, box, return_weights=True)
    assert out.shape == (4, 32) and weights.shape == (4, 100)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(4))
    assert (weights >= 0).all()
    assert (
        PointTrackNet(width=1.0).feat_dim == 960
    )  # [64 avg | 64 max | 512 attention | 256 env | 64 location]
    assert sum(p.numel() for p in net.parameters()) < sum(
        p.numel() for p in PointTrackNet(width=0.5).parameters()
    )
    # the embedding does not depend on the order of the points (pooling only)
    perm = torch.randperm(100)
    torch.testing.assert_close(net(fg[:, perm], env, box), out, atol=1e-5, rtol=1e-5)


def test_location_embedding() -> None:
    box = torch.tensor([[0.1, 0.2, 0.3, 0.6]])
    emb = location_embedding(box)
    assert emb.shape == (1, 64)
    # first entry: sin(100 * cx * 1000^0)
    assert emb[0, 0].item() == pytest.approx(np.sin(100 * 0.2), abs=1e-5)
    assert emb[0, 32].item() == pytest.approx(np.cos(100 * 0.2), abs=1e-5)


# ---------------------------------------------------------------------- module


def tiny_module(**kw) -> PointTrackModule:
    torch.manual_seed(0)
    return PointTrackModule(
        net=PointTrackNet(width=0.125),
        sampler=PointSampler(num_fg=64, num_env=32),
        optimizer=lambda params: torch.optim.Adam(params, lr=2e-3),
        **kw,
    )


def toy_batch(module: PointTrackModule, identities: int = 4) -> dict[str, torch.Tensor]:
    """Each identity: one colour and shape, three frames with a small shift and new noise."""
    rng = np.random.default_rng(0)
    crops = []
    for t in range(3):
        image = rng.integers(0, 40, (H, W, 3), dtype=np.uint8)
        masks = np.zeros((identities, H, W), bool)
        for k in range(identities):
            x0 = 10 + 35 * k + t
            masks[k, 20 + 3 * k : 70, x0 : x0 + 8 + 3 * k] = True
            image[masks[k]] = np.array([60 * k, 255 - 60 * k, 120], np.uint8)
        crops += module.sampler.crops(image, masks)
    pts = module.sampler.sample(crops, rng, train=True)
    batch = pts.tensors()
    batch["label"] = torch.arange(identities).repeat(3)
    return batch


def test_triplet_steps_decrease_the_loss() -> None:
    module = tiny_module()
    optimizer = torch.optim.Adam(module.parameters(), lr=2e-3)
    batch = toy_batch(module)
    losses = []
    for _ in range(15):
        loss = module.compute_losses(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_embed_is_deterministic_batched_and_sized() -> None:
    module = tiny_module(embed_batch=2)
    image, masks, classes = scene()
    a = module.embed(image, masks, classes)
    b = module.embed(image, torch.from_numpy(masks), torch.from_numpy(classes))
    assert a.shape == (3, 32) and a.dtype == torch.float32
    torch.testing.assert_close(a, b)
    module.hparams.embed_batch = 64  # one forward pass: same numbers (eval-mode BatchNorm)
    torch.testing.assert_close(module.embed(image, masks, classes), a, atol=1e-5, rtol=1e-5)
    assert module.net.training  # embed restores the mode
    assert module.embed(image, masks[:0], classes[:0]).shape == (0, 32)


def test_association_metrics() -> None:
    seq = np.array([0, 0, 0, 0, 0, 0])
    frame = np.array([0, 0, 1, 1, 2, 2])
    ident = np.array([1, 2, 1, 2, 1, 2])
    perfect = np.array([[0.0], [5.0], [0.1], [5.1], [0.2], [5.2]])
    assert association_metrics(perfect, seq, frame, ident) == {"next_acc": 1.0, "mAP": 1.0}
    swapped = perfect.copy()
    swapped[[2, 3]] = swapped[[3, 2]]
    out = association_metrics(swapped, seq, frame, ident)
    assert out["next_acc"] == pytest.approx(0.0) and out["mAP"] < 1.0


# ---------------------------------------------------------------------- the real config

TINY_SYNTH = "{scenes:1,cameras:2,people:6,frames:12,width:320,height:180,progress:false}"


def compose_pointtrack(config_dir: Path, tmp: Path) -> DictConfig:
    GlobalHydra.instance().clear()
    overrides = [
        "experiment=pointtrack_synthetic",
        "trainer=cpu",
        "logger=csv",
        f"paths.data_dir={tmp}/data",
        f"paths.log_dir={tmp}/logs",
        f"data.synth={TINY_SYNTH}",
        "data.instances_per_batch=2",
        "data.iterations_per_epoch=2",
        "data.num_workers=0",
        "data.val_frame_stride=3",
        "model.net.width=0.125",
        "model.sampler.num_fg=64",
        "model.sampler.num_env=32",
        "trainer.max_epochs=1",
        "trainer.check_val_every_n_epoch=1",
        "trainer.log_every_n_steps=1",
        "~callbacks.model_summary",
    ]
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp / "run")
        del cfg["hydra"]
    return cfg


@pytest.mark.slow
def test_one_training_run_through_the_real_config(tmp_path: Path, config_dir: Path) -> None:
    from citytrack.train import train

    cfg = compose_pointtrack(config_dir, tmp_path)
    metrics, objects = train(cfg)
    GlobalHydra.instance().clear()
    assert objects["trainer"].global_step == 2
    assert np.isfinite(float(metrics["train/loss"]))
    for key in ("val/mAP", "val/next_acc"):
        assert 0.0 <= float(metrics[key]) <= 1.0, key
    assert (tmp_path / "data" / "synth" / "mots_train" / "train" / "instances_txt").is_dir()
    assert (tmp_path / "data" / "synth" / "mots_eval" / "meta.json").is_file()
    # the checkpoint rebuilds the embedder without the config
    module = load_pointtrack(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert module.sampler.num_fg == 64 and module.net.config["width"] == 0.125
    image, masks, classes = scene()
    emb = module.embed(image, masks, classes)
    assert emb.shape == (3, 32)
    torch.testing.assert_close(emb, objects["model"].embed(image, masks, classes))
