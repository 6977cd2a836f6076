"""ReID building blocks: losses on hand-built cases, GeM, OSNet shapes, PK sampler, augmentation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from citytrack.data.samplers import PKBatchSampler
from citytrack.models.reid.augment import ReIDAugment
from citytrack.models.reid.backbones import ReIDNet, build_backbone
from citytrack.models.reid.heads import GeM
from citytrack.models.reid.losses import (
    CenterLoss,
    CrossEntropyLabelSmooth,
    TripletLoss,
    euclidean_dist,
    hard_example_mining,
)
from citytrack.models.reid.osnet import build_osnet


def test_label_smoothing_value_matches_formula() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    target = torch.tensor([0])
    eps = 0.1
    logp = torch.log_softmax(logits, 1)[0]
    q = torch.tensor([1 - eps + eps / 3, eps / 3, eps / 3])
    expected = -(q * logp).sum()
    assert torch.allclose(CrossEntropyLabelSmooth(eps)(logits, target), expected)
    # eps = 0 is plain cross-entropy
    assert torch.allclose(CrossEntropyLabelSmooth(0.0)(logits, target), torch.nn.functional.cross_entropy(logits, target))
    with pytest.raises(ValueError):
        CrossEntropyLabelSmooth(1.0)


def test_batch_hard_picks_hardest_positive_and_negative() -> None:
    # 1-D points: id 0 at 0, 1, 3; id 1 at 4, 10
    feats = torch.tensor([[0.0], [1.0], [3.0], [4.0], [10.0]])
    labels = torch.tensor([0, 0, 0, 1, 1])
    ap, an = hard_example_mining(euclidean_dist(feats, feats), labels)
    assert torch.allclose(ap, torch.tensor([3.0, 2.0, 3.0, 6.0, 6.0]), atol=1e-4)
    assert torch.allclose(an, torch.tensor([4.0, 3.0, 1.0, 1.0, 7.0]), atol=1e-4)
    loss = TripletLoss(margin=0.3)(feats, labels)
    expected = torch.relu(ap - an + 0.3).mean()
    assert torch.allclose(loss, expected, atol=1e-4)
    soft = TripletLoss(margin=None)(feats, labels)
    assert torch.allclose(soft, torch.nn.functional.softplus(ap - an).mean(), atol=1e-4)


def test_triplet_rejects_batch_without_positives() -> None:
    with pytest.raises(ValueError, match="PK sampler"):
        TripletLoss()(torch.randn(3, 4), torch.tensor([0, 1, 2]))


def test_center_loss_zero_at_centres() -> None:
    loss = CenterLoss(3, 4)
    labels = torch.tensor([0, 2])
    assert loss(loss.centers[labels].detach(), labels).item() == pytest.approx(0.0, abs=1e-8)
    shifted = loss.centers[labels].detach() + 1.0
    assert loss(shifted, labels).item() == pytest.approx(0.5 * 4, rel=1e-5)


def test_gem_limits() -> None:
    x = torch.rand(2, 5, 4, 3) + 0.01
    assert torch.allclose(GeM(p=1.0)(x), x.mean(dim=(2, 3)), atol=1e-5)
    assert torch.allclose(GeM(p=200.0)(x), x.amax(dim=(2, 3)), rtol=0.03)
    assert GeM(p=3.0).p.requires_grad


@pytest.mark.parametrize(
    ("name", "channels"), [("osnet_x1_0", 512), ("osnet_x0_25", 128), ("osnet_ibn_x1_0", 512), ("osnet_ibn", 512)]
)
def test_osnet_shapes(name: str, channels: int) -> None:
    net = build_osnet(name).eval()
    with torch.no_grad():
        y = net(torch.rand(2, 3, 64, 32))
    assert y.shape == (2, channels, 4, 2)  # stride 16


def test_osnet_ibn_uses_instance_norm() -> None:
    ibn = build_osnet("osnet_ibn_x1_0")
    plain = build_osnet("osnet_x1_0")
    count = lambda m: sum(isinstance(x, torch.nn.InstanceNorm2d) for x in m.modules())
    assert count(ibn) > 0 and count(plain) == 0


def test_osnet_x1_parameter_count_matches_paper() -> None:
    # paper: 2.2M with the 512-d fc layer (0.26M) and no classifier; trunk ~1.9M
    n = sum(p.numel() for p in build_osnet("osnet_x1_0").parameters())
    assert 1.8e6 < n < 2.0e6


def test_timm_backbone_and_unknown_name() -> None:
    net, c = build_backbone("resnet18")
    assert c == 512
    with torch.no_grad():
        assert net(torch.rand(1, 3, 64, 32)).shape == (1, 512, 2, 1)
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("no_such_net_xyz")
    with pytest.raises(ValueError, match="pretrained"):
        build_backbone("osnet_x0_25", pretrained=True)


def test_reidnet_bnneck_outputs() -> None:
    net = ReIDNet("osnet_x0_25", embed_dim=64)
    feat, bn = net.forward_train(torch.rand(4, 3, 64, 32))
    assert feat.shape == bn.shape == (4, 64)
    net.eval()
    assert net(torch.rand(3, 3, 64, 32)).shape == (3, 64)


def test_pk_sampler_yields_p_times_k_with_k_per_id() -> None:
    pids = np.repeat(np.arange(10), [7, 5, 4, 9, 2, 6, 8, 4, 3, 10])
    sampler = PKBatchSampler(pids, p=4, k=3, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) > 0
    for batch in batches:
        assert len(batch) == 12
        ids, counts = np.unique(pids[batch], return_counts=True)
        assert len(ids) == 4 and (counts == 3).all()
    # another epoch shuffles differently
    assert list(sampler) != batches
    with pytest.raises(ValueError, match="identities"):
        PKBatchSampler([0, 0, 1, 1], p=3, k=2)


def test_augment_keeps_shape_and_range() -> None:
    torch.manual_seed(0)
    aug = ReIDAugment(pad=4)
    x = torch.rand(6, 3, 32, 16)
    y = aug(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert not torch.equal(x, y)
    assert math.isfinite(float(y.sum()))
