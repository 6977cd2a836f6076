"""Training-side augmentation (crop-resize, mosaic, appearance randomisation, JPEG), weight EMA and small checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from citytrack.data.detection_augment import augment_batch, photometric_augment
from citytrack.data.detection_datasets import DetectionDataset, FrameRecord
from citytrack.models.detector.losses import YoloxLoss
from citytrack.models.detector.module import (
    DetectorModule,
    load_detector,
    save_inference_checkpoint,
)
from citytrack.models.detector.net import YoloxNet
from citytrack.models.ema import ModelEma

COLOURS = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])


def _painted_batch(size: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Four grey images, each with two solid rectangles of its own colour, and their boxes."""
    images = torch.full((4, 3, size, size), 0.45)
    targets = torch.full((4, 2, 5), -1.0)
    rng = np.random.default_rng(0)
    for b in range(4):
        for j in range(2):
            w, h = int(rng.integers(12, 24)), int(rng.integers(30, 50))
            x, y = int(rng.integers(4, size - w - 4)), int(rng.integers(4, size - h - 4))
            images[b, :, y : y + h, x : x + w] = COLOURS[b].view(3, 1, 1)
            targets[b, j] = torch.tensor([0.0, x, y, x + w, y + h])
    return images, targets


def _colour_of(image: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    x1, y1, x2, y2 = (round(float(v)) for v in box)
    return image[:, y1 + 2 : y2 - 2, x1 + 2 : x2 - 2].reshape(3, -1).mean(1)


@pytest.mark.parametrize("mosaic_prob", [0.0, 1.0])
def test_boxes_follow_the_pixels_through_crop_resize_and_mosaic(mosaic_prob: float) -> None:
    images, targets = _painted_batch()
    gen = torch.Generator().manual_seed(3)
    checked, colours_per_image = 0, []
    for _ in range(6):
        out, tg = augment_batch(
            images, targets, out_size=96, scale=(0.8, 1.6), translate=0.3, flip_prob=0.5, mosaic_prob=mosaic_prob,
            box_centre_prob=0.5, hsv=None, min_box=4.0, generator=gen,
        )
        assert out.shape == (4, 3, 96, 96) and tg.shape[0] == 4 and tg.shape[2] == 5
        for b in range(4):
            real = tg[b][tg[b, :, 0] == 0]
            seen = set()
            for row in real:
                box = row[1:5]
                assert torch.all(box[:2] >= 0) and torch.all(box[2:] <= 96) and torch.all(box[2:] > box[:2])
                if float((box[2:] - box[:2]).min()) < 8:
                    continue
                colour = _colour_of(out[b], box)
                # a rectangle's inside is its solid colour: one of the four, never the grey background
                match = torch.cdist(colour[None], COLOURS).argmin()
                assert torch.allclose(colour, COLOURS[match], atol=0.06), (colour, row)
                seen.add(int(match))
                checked += 1
            colours_per_image.append(len(seen))
    assert checked >= 10
    if mosaic_prob == 1.0:  # tiles come from different images of the batch
        assert max(colours_per_image) >= 2
    else:  # a plain crop only ever shows its own image
        assert max(colours_per_image) == 1


def test_plain_augment_keeps_geometry_at_unit_scale_and_box_centred_crops_see_a_box() -> None:
    images, targets = _painted_batch()
    out, tg = augment_batch(images, targets, scale=(1, 1), translate=0.0, flip_prob=0.0, hsv=None)
    assert torch.allclose(out, images, atol=1e-5)
    assert torch.allclose(tg[tg[..., 0] == 0], targets[targets[..., 0] == 0], atol=1e-4)
    # crops centred on a random gt box (+- half its size): the canvas centre lies in a gt box
    gen = torch.Generator().manual_seed(0)
    out, tg = augment_batch(
        images, targets, out_size=48, scale=(1, 1), translate=0.0, flip_prob=0.0, box_centre_prob=1.0, hsv=None,
        min_visible=0.0, generator=gen,
    )
    for b in range(4):
        boxes = tg[b][tg[b, :, 0] >= 0, 1:5]
        assert ((boxes[:, 0] <= 24) & (boxes[:, 2] >= 24) & (boxes[:, 1] <= 24) & (boxes[:, 3] >= 24)).any()


def test_boxes_shrunk_below_min_box_become_ignore_regions() -> None:
    images, targets = _painted_batch()
    _, tg = augment_batch(images, targets, scale=(0.1, 0.1), translate=0.0, flip_prob=0.0, hsv=None, min_box=6.0)
    real = tg[..., 0] != -1
    assert real.any() and torch.all(tg[real][:, 0] == -2)


def test_photometric_augment_effects() -> None:
    gen = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=gen)

    x = torch.rand(4, 3, 32, 32)
    gray = photometric_augment(x, hsv=None, gray_prob=1.0, rand=rand)
    assert torch.allclose(gray[:, 0], gray[:, 1]) and torch.allclose(gray[:, 1], gray[:, 2])
    blurred = photometric_augment(x, hsv=None, blur_prob=1.0, blur_sigma=(1.0, 1.0), rand=rand)
    assert blurred.std() < 0.6 * x.std()
    low = photometric_augment(x, hsv=None, lowres_prob=1.0, lowres_scale=(0.5, 0.5), rand=rand)
    assert low.shape == x.shape and (low - x).abs().mean() > 0.05
    noisy = photometric_augment(torch.full_like(x, 0.5), hsv=None, noise_prob=1.0, noise_std=(0.05, 0.05), rand=rand)
    assert 0.03 < float(noisy.std()) < 0.07
    out = photometric_augment(x, hsv=(0.02, 0.7, 0.4), contrast=0.4, rand=rand)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert torch.equal(photometric_augment(x, hsv=None), x)


def test_dataset_jpeg_reencoding(tmp_path: Path) -> None:
    import cv2

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), image)
    rec = FrameRecord(tmp_path / "a.png", None, np.array([[10.0, 10.0, 30.0, 50.0]]), np.array([0]))
    clean = DetectionDataset([rec], img_size=64)[0]["images"].float()
    jpeg = DetectionDataset([rec], img_size=64, jpeg_quality=(10, 10), seed=0)[0]["images"].float()
    assert 5 < float((clean - jpeg).abs().mean()) < 80
    with pytest.raises(ValueError, match="jpeg_quality"):
        DetectionDataset([rec], img_size=64, jpeg_quality=(90, 10))


def test_loss_reports_positives_per_gt() -> None:
    net = YoloxNet("resnet10t", num_classes=1, neck_channels=16, head_depth=1)
    out, centres, strides = net.decode(net.forward_levels(torch.rand(2, 3, 64, 64)))
    targets = torch.tensor([[[0.0, 10, 8, 30, 56], [0.0, 36, 4, 60, 60]], [[0.0, 20, 10, 44, 60], [-1.0, 0, 0, 0, 0]]])
    losses = YoloxLoss(1)(out, targets, centres, strides)
    assert float(losses["fg_per_gt"]) == pytest.approx(float(losses["num_fg"]) * 2 / 3, rel=1e-5)
    assert float(losses["fg_per_gt"]) >= 1 and 0 <= float(losses["mean_iou"]) <= 1


def test_model_ema_average_and_warm_up() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    ema = ModelEma(net, decay=0.9, tau=1.0)
    start = ema.module[0].weight.clone()
    with torch.no_grad():
        net[0].weight.add_(1.0)
    net(torch.randn(8, 3))  # moves the BN running stats (float buffers: averaged too)
    ema.update(net)
    d = 0.9 * (1 - np.exp(-1.0))
    assert torch.allclose(ema.module[0].weight, d * start + (1 - d) * net[0].weight, atol=1e-6)
    assert int(ema.module[1].num_batches_tracked) == int(net[1].num_batches_tracked)  # ints copied
    assert not any(p.requires_grad for p in ema.module.parameters())
    with pytest.raises(ValueError, match="decay"):
        ModelEma(net, decay=1.0)


def test_ema_is_the_eval_net_and_the_small_checkpoint_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = YoloxNet("resnet10t", num_classes=1, neck_channels=16, head_depth=1)
    module = DetectorModule(net, optimizer=None, img_size=64, ema_decay=0.5, ema_tau=1.0)
    with torch.no_grad():
        for p in module.net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    module.ema.update(module.net)
    module.eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(module(x), module.ema.module(x))
        assert not torch.allclose(module(x), module.net(x))
    path = save_inference_checkpoint(module, tmp_path / "small.pt")
    loaded = load_detector(path)
    assert loaded.ema is None
    with torch.no_grad():
        ref, got = module(x), loaded(x)
    # fp16 weights: boxes within a fraction of a pixel, logits close
    assert torch.allclose(got[..., :4], ref[..., :4], atol=0.5)
    assert torch.allclose(got[..., 4:], ref[..., 4:], atol=0.05)
    frame = (np.random.default_rng(0).random((48, 80, 3)) * 255).astype(np.uint8)
    assert loaded.predict_frames([frame], score_thresh=0.0)[0].shape[1] == 5


def test_distractor_bars_avoid_the_boxes() -> None:
    from citytrack.data.detection_augment import paint_distractors

    images, targets = _painted_batch()
    gen = torch.Generator().manual_seed(0)
    out = paint_distractors(
        images, targets, count=12, prob=1.0, rand=lambda *shape: torch.rand(*shape, generator=gen)
    )
    changed = (out != images).any(1)  # (B, H, W)
    assert changed.sum() > 200  # bars were painted
    for b in range(4):
        for row in targets[b]:
            x1, y1, x2, y2 = (int(v) for v in row[1:5])
            assert not changed[b, y1:y2, x1:x2].any()  # never over a person
    assert torch.equal(paint_distractors(images, targets, prob=0.0), images)


@pytest.mark.slow
def test_synth_source_in_the_mot_layout_marks_hidden_people_as_ignore(tmp_path: Path) -> None:
    from citytrack.data.detection_datamodule import _records_from_source
    from citytrack.data.formats.mot import read_mot

    source = {
        "kind": "synth", "root": tmp_path / "s", "stride": 1, "min_visibility": 0.5,
        "overrides": {"layout": "mot", "seed": 5, "scenes": 1, "cameras": 2, "people": 8, "frames": 6, "progress": False},
    }
    records = _records_from_source(source, ["person"])
    assert len(records) == 2 * 6
    gt = np.concatenate([read_mot(p, kind="gt") for p in sorted((tmp_path / "s" / "train").glob("*/gt/gt.txt"))])
    labels = np.concatenate([r.labels for r in records])
    assert len(labels) <= len(gt) and set(np.unique(labels)) <= {0, -2}
    # positives are the people at least half visible; the hidden ones are ignore regions
    positives = int((labels == 0).sum())
    assert 0 < positives <= int((gt[:, 8] >= 0.5).sum())
    assert (gt[:, 8] < 0.5).any() and (labels == -2).any()


def _textured_records(tmp_path: Path, n: int = 4) -> list[FrameRecord]:
    import cv2

    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "t.png"), image)
    return [FrameRecord(tmp_path / "t.png", None, np.zeros((0, 4)), np.zeros(0, np.int64)) for _ in range(n)]


def test_jpeg_quality_is_reproducible_by_seed_and_differs_per_item_and_draw(tmp_path: Path) -> None:
    records = _textured_records(tmp_path, 8)

    def draws(seed: int, rounds: int = 3) -> list[list[int]]:
        ds = DetectionDataset(records, img_size=64, jpeg_quality=(5, 95), seed=seed)
        return [[ds.jpeg_quality_of(i) for i in range(len(records))] for _ in range(rounds)]

    a, b, c = draws(7), draws(7), draws(8)
    assert a == b and a != c
    assert len(set(a[0])) > 1  # items differ
    assert a[0] != a[1] != a[2]  # a new epoch draws new qualities
    # the images follow the drawn qualities
    d1 = DetectionDataset(records, img_size=64, jpeg_quality=(5, 95), seed=7)
    d2 = DetectionDataset(records, img_size=64, jpeg_quality=(5, 95), seed=7)
    for i in range(3):
        assert torch.equal(d1[i]["images"], d2[i]["images"])


def test_dataloader_workers_draw_different_jpeg_qualities(tmp_path: Path) -> None:
    from torch.utils.data import DataLoader

    from citytrack.data.detection_datasets import collate_detection

    records = _textured_records(tmp_path, 4)  # the same picture four times: only the quality tells them apart
    ds = DetectionDataset(records, img_size=64, jpeg_quality=(5, 95), seed=3)
    loader = DataLoader(ds, batch_size=1, num_workers=2, collate_fn=collate_detection)
    images = [b["images"][0] for b in loader]
    # workers 0 and 1 take items 0 and 1 first: with a copied shared generator they drew the same quality
    assert not torch.equal(images[0], images[1])
    fresh = DetectionDataset(records, img_size=64, jpeg_quality=(5, 95), seed=3)
    assert all(torch.equal(images[i], fresh[i]["images"]) for i in range(4))  # same as in one process


def test_datamodule_passes_its_seed_to_the_training_dataset(tmp_path: Path) -> None:
    from citytrack.data.detection_datamodule import DetectionDataModule

    _textured_records(tmp_path, 1)
    json_path = tmp_path / "coco.json"
    json_path.write_text(
        '{"images": [{"id": 1, "file_name": "t.png", "width": 64, "height": 64}], '
        '"annotations": [], "categories": [{"id": 1, "name": "person"}]}'
    )
    src = [{"kind": "coco", "json": str(json_path)}]

    def quality(seed: int) -> list[int]:
        dm = DetectionDataModule(train=src, img_size=64, jpeg_quality=(5, 95), seed=seed)
        dm.setup("fit")
        ds = dm.datasets["train"]
        assert ds.seed == seed
        return [ds.jpeg_quality_of(0) for _ in range(5)]

    assert quality(11) == quality(11) != quality(12)
