"""Detector parts on hand-built cases: SimOTA, decode + NMS, letterbox, mAP, loss, ONNX, det.txt writer."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from citytrack.data.detection_augment import augment_batch
from citytrack.data.detection_datasets import DetectionDataset, FrameRecord, collate_detection
from citytrack.data.formats.errors import FormatError
from citytrack.data.formats.mot import read_mot
from citytrack.data.letterbox import (
    NATIVE_MAX_SIZE,
    Letterbox,
    letterbox_batch,
    letterbox_image,
    native_input_size,
)
from citytrack.eval.detection import DetectionEvaluator
from citytrack.inference.detect import detections_table, find_inputs
from citytrack.models.detector.assign import simota_assign
from citytrack.models.detector.module import DetectorModule, load_detector
from citytrack.models.detector.net import YoloxNet
from citytrack.models.detector.postprocess import postprocess


def _grid(size: int = 64, stride: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    n = size // stride
    ys, xs = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    centres = (torch.stack([xs, ys], -1).reshape(-1, 2).float() + 0.5) * stride
    return centres, torch.full((n * n,), float(stride))


def test_simota_takes_the_best_anchors_inside_the_box_with_dynamic_k() -> None:
    centres, strides = _grid()
    gt = torch.tensor([[16.0, 16.0, 40.0, 48.0]])
    far = torch.tensor([0.0, 0.0, 2.0, 2.0])
    pred = far.repeat(len(centres), 1)
    inside = torch.nonzero(
        (centres[:, 0] > 16) & (centres[:, 0] < 40) & (centres[:, 1] > 16) & (centres[:, 1] < 48)
    ).flatten()
    assert len(inside) == 12
    perfect = inside[[1, 5, 9]]
    pred[perfect] = gt[0]
    # an anchor outside the box (but within the centre radius) predicting the box exactly:
    # it raises the IoU sum (k = 4) but the centre prior keeps it out
    outside = torch.nonzero((centres[:, 0] == 44) & (centres[:, 1] == 28)).flatten()
    pred[outside] = gt[0]
    logits = torch.zeros(len(centres), 1)
    a = simota_assign(pred, logits, logits[:, 0], centres, strides, gt, torch.tensor([0]))
    assert a.num_fg == 4  # dynamic k = floor(sum of top-10 IoUs) = 4
    chosen = set(torch.nonzero(a.fg_mask).flatten().tolist())
    assert set(perfect.tolist()) <= chosen
    assert chosen <= set(inside.tolist())
    assert outside.item() not in chosen
    assert torch.all(a.gt_index == 0)

    # without the outside anchor: exactly the three perfect ones (k = 3)
    pred[outside] = far
    a = simota_assign(pred, logits, logits[:, 0], centres, strides, gt, torch.tensor([0]))
    assert set(torch.nonzero(a.fg_mask).flatten().tolist()) == set(perfect.tolist())
    assert torch.allclose(a.iou, torch.ones(3))


def test_simota_shared_anchor_goes_to_the_cheaper_gt_and_empty_gt() -> None:
    centres, strides = _grid()
    gts = torch.tensor([[16.0, 16.0, 40.0, 48.0], [24.0, 16.0, 48.0, 48.0]])
    pred = torch.tensor([0.0, 0.0, 2.0, 2.0]).repeat(len(centres), 1)
    shared = torch.nonzero((centres[:, 0] == 36) & (centres[:, 1] == 28)).item()
    pred[shared] = gts[1]  # fits gt 1 exactly, gt 0 only partly
    logits = torch.zeros(len(centres), 1)
    a = simota_assign(pred, logits, logits[:, 0], centres, strides, gts, torch.tensor([0, 0]))
    fg = torch.nonzero(a.fg_mask).flatten().tolist()
    assert shared in fg
    assert a.gt_index[fg.index(shared)].item() == 1
    empty = simota_assign(pred, logits, logits[:, 0], centres, strides, torch.zeros(0, 4), torch.zeros(0))
    assert empty.num_fg == 0


def test_postprocess_decodes_scores_and_suppresses_duplicates() -> None:
    def logit(p: float) -> float:
        return float(np.log(p / (1 - p)))

    out = torch.tensor(
        [
            [
                [30.0, 40.0, 20.0, 40.0, logit(0.9), logit(1 - 1e-6)],  # kept, score 0.9
                [31.0, 41.0, 20.0, 40.0, logit(0.8), logit(1 - 1e-6)],  # duplicate, suppressed
                [80.0, 40.0, 20.0, 40.0, logit(0.5), logit(0.5)],  # score 0.25, kept
                [80.0, 90.0, 20.0, 40.0, logit(0.05), logit(0.5)],  # below threshold
            ]
        ]
    )
    (dets,) = postprocess(out, score_thresh=0.1, nms_thresh=0.5)
    assert dets.shape == (2, 6)
    assert torch.allclose(dets[0, :4], torch.tensor([20.0, 20.0, 40.0, 60.0]))
    assert dets[0, 4] == pytest.approx(0.9, abs=1e-4)
    assert dets[1, 4] == pytest.approx(0.25, abs=1e-4)


def test_letterbox_round_trip_of_boxes() -> None:
    image = np.zeros((360, 480, 3), np.uint8)
    image[100:200, 50:90] = 255
    boxed, lb = letterbox_image(image, 320)
    assert boxed.shape == (320, 320, 3)
    assert lb.scale == pytest.approx(320 / 480)
    boxes = np.array([[50.0, 100.0, 90.0, 200.0], [0.0, 0.0, 480.0, 360.0]])
    mapped = lb.to_input(boxes.copy())
    x1, y1, x2, y2 = mapped[0].round().astype(int)
    assert boxed[y1 + 2 : y2 - 2, x1 + 2 : x2 - 2].min() > 200  # the white box lands where mapped
    assert np.allclose(lb.to_image(mapped), boxes)
    # the torch batch version agrees on the mapping
    t, lbt = letterbox_batch(torch.from_numpy(image).permute(2, 0, 1)[None], 320)
    assert t.shape == (1, 3, 320, 320) and lbt == lb
    with pytest.raises(ValueError):
        Letterbox.fit(0, 10, 320)


def test_map_on_hand_built_predictions_equals_the_known_value() -> None:
    gts = [{"boxes": torch.tensor([[10.0, 10.0, 50.0, 90.0], [100.0, 10.0, 140.0, 90.0]]), "labels": torch.tensor([0, 0])}]
    preds = [
        {
            "boxes": torch.tensor([[10.0, 10.0, 50.0, 90.0], [200.0, 200.0, 240.0, 280.0]]),
            "scores": torch.tensor([0.9, 0.8]),
            "labels": torch.tensor([0, 0]),
        }
    ]
    ev = DetectionEvaluator()
    ev.update(preds, gts)
    res = ev.compute()
    # one of two gts found at precision 1: COCO's 101-point AP = 51/101 at every IoU threshold
    assert res["mAP50"] == pytest.approx(51 / 101, abs=1e-6)
    assert res["mAP"] == pytest.approx(51 / 101, abs=1e-6)
    assert res["recall@0.5"] == 0.5 and res["recall@0.6"] == 0.5

    # a TP with IoU 0.72 counts at 5 of the 10 IoU thresholds (.5 ... .7); a 0.3-score hit is
    # invisible at the tracker's 0.5 threshold
    ev.reset()
    shifted = torch.tensor([[10.0, 10.0, 50.0, 90.0 * 0.72 + 10 * 0.28]])  # height 80 -> IoU 0.72
    ev.update(
        [{"boxes": shifted, "scores": torch.tensor([0.3]), "labels": torch.tensor([0])}],
        [{"boxes": gts[0]["boxes"][:1], "labels": torch.tensor([0])}],
    )
    res = ev.compute()
    assert res["mAP50"] == pytest.approx(1.0, abs=1e-6)
    assert res["mAP"] == pytest.approx(0.5, abs=1e-6)
    assert res["recall@0.1"] == 1.0 and res["recall@0.5"] == 0.0


def _tiny_module(img_size: int = 64) -> DetectorModule:
    torch.manual_seed(0)
    net = YoloxNet("resnet10t", num_classes=1, neck_channels=16, head_depth=1)
    return DetectorModule(net, optimizer=None, img_size=img_size)


def _one_image_batch() -> dict[str, torch.Tensor]:
    img = torch.full((1, 3, 64, 64), 0.4)
    img[0, :, 14:54, 22:38] = torch.tensor([0.9, 0.1, 0.1]).view(3, 1, 1)
    return {"images": img, "targets": torch.tensor([[[0.0, 22.0, 14.0, 38.0, 54.0]]])}


def test_loss_decreases_over_a_few_steps() -> None:
    module = _tiny_module()
    batch = _one_image_batch()
    opt = torch.optim.AdamW(module.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss = module._loss(batch)[0]["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0]


@pytest.mark.slow
def test_overfit_one_image_finds_the_box() -> None:
    module = _tiny_module()
    batch = _one_image_batch()
    opt = torch.optim.AdamW(module.parameters(), lr=3e-3)
    for _ in range(60):
        loss = module._loss(batch)[0]["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    module.eval()
    with torch.no_grad():
        (dets,) = postprocess(module(batch["images"]), score_thresh=0.3)
    assert len(dets) >= 1
    from torchvision.ops import box_iou

    assert box_iou(dets[:1, :4], batch["targets"][0, :, 1:5]).item() > 0.6
    # predict_frames: BGR frames in, xywh score out (same frame twice: one batched forward)
    frame = np.ascontiguousarray((batch["images"][0].permute(1, 2, 0).numpy()[..., ::-1] * 255).round().astype(np.uint8))
    out = module.predict_frames([frame, frame], score_thresh=0.3)
    assert len(out) == 2 and out[0].shape[1] == 5 and len(out[0]) >= 1
    assert np.allclose(out[0], out[1])
    # the BGR uint8 -> letterbox -> net path gives the box of the direct forward (xyxy -> xywh)
    direct = dets[0, :4].numpy().astype(np.float64)
    assert np.allclose(out[0][0, :4], [*direct[:2], *(direct[2:] - direct[:2])], atol=1.0)


class _SizeAwareNet(torch.nn.Module):
    """Decoded outputs `(B, A, 5 + 1)` (cxcywh in input pixels, logits) that depend on the input size:
    at 64 px a near person (score ~0.9); at 128 px the same person less sure (~0.6) and a far one."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-1]
        self.sizes.append(size)
        logit = lambda p: math.log(p / (1 - p))
        rows = [[30.0, 34.0, 16.0, 40.0, 10.0, logit(0.9)]]  # near person at the 64 px scale
        if size == 128:
            rows = [[61.0, 68.0, 32.0, 80.0, 10.0, logit(0.6)],  # the near person again (image px x2)
                    [100.0, 20.0, 6.0, 14.0, 10.0, logit(0.7)]]  # far person, only at 128
        return torch.tensor(rows).expand(x.shape[0], -1, -1)


def test_multi_scale_predict_pools_sizes_and_keeps_the_surer_duplicate() -> None:
    module = _tiny_module()
    module.net = _SizeAwareNet()
    images = torch.zeros((2, 3, 64, 64), dtype=torch.uint8)
    single = module.predict_images(images, score_thresh=0.3)
    assert module.net.sizes == [64] and [len(d) for d in single] == [1, 1]
    assert np.allclose(module.predict_images(images, score_thresh=0.3, img_size=[64])[0], single[0])

    module.net.sizes.clear()
    multi = module.predict_images(images, score_thresh=0.3, img_size=[64, 128], return_class=True)
    assert module.net.sizes == [64, 128]  # one pass per size, the batch together
    for d in multi:
        assert d.shape == (2, 6)
        d = d[np.argsort(d[:, 0])]
        np.testing.assert_allclose(d[0, :5], [22.0, 14.0, 16.0, 40.0, 0.9], atol=1e-4)  # the 64 px box wins
        np.testing.assert_allclose(d[1, :4], [48.5, 6.5, 3.0, 7.0], atol=1e-4)  # far person, 128 px / 2
    with pytest.raises(ValueError, match="empty"):
        module.predict_images(images, img_size=[])

    module.net.sizes.clear()
    module.predict_images(torch.zeros((1, 3, 72, 100), dtype=torch.uint8), img_size="native")
    assert module.net.sizes == [128]  # the frame's own 100 px, up to the stride; not the checkpoint's 64
    with pytest.raises(ValueError, match="'native'"):
        module.predict_images(images, img_size="big")


def test_native_input_size_keeps_the_frame_resolution_up_to_the_cap() -> None:
    assert native_input_size(480, 360) == 480  # PETS09 clip
    assert native_input_size(640, 360) == 640
    assert native_input_size(1920, 1080) == NATIVE_MAX_SIZE == 1280  # MOT17 frames: capped
    assert native_input_size(100, 72) == 128 and native_input_size(100, 72, max_size=96) == 96
    with pytest.raises(ValueError, match="positive"):
        native_input_size(0, 360)


def test_onnx_export_matches_torch(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from citytrack.models.detector.export import ExportWrapper, export_onnx

    module = _tiny_module()
    net = module.net.eval()
    path = export_onnx(net, tmp_path / "det.onnx", img_size=64)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        ref = ExportWrapper(net)(x).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"images": x.numpy()})
    assert got.shape == ref.shape
    assert np.allclose(got, ref, atol=1e-3, rtol=1e-3)


def test_checkpoint_round_trip_and_det_txt(tmp_path: Path) -> None:
    import pytorch_lightning as pl

    module = _tiny_module()
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, max_epochs=0, enable_progress_bar=False)
    trainer.strategy.connect(module)
    ckpt = tmp_path / "det.ckpt"
    trainer.save_checkpoint(ckpt)
    loaded = load_detector(ckpt)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded(x), module.eval()(x), atol=1e-5)
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        load_detector(tmp_path / "missing.ckpt")

    dets = [np.array([[1.5, 2.25, 10.0, 20.0, 0.875]]), np.zeros((0, 5)), np.array([[5.0, 6.0, 7.0, 8.0, 0.5]])]
    table = detections_table([1, 2, 3], dets)
    from citytrack.data.formats.mot import write_mot

    write_mot(tmp_path / "s" / "det" / "det.txt", table, kind="det")
    back = read_mot(tmp_path / "s" / "det" / "det.txt", kind="det")
    assert np.allclose(back[:, [0, 2, 3, 4, 5, 6]], [[1, 1.5, 2.25, 10, 20, 0.875], [3, 5, 6, 7, 8, 0.5]])
    assert np.all(back[:, 1] == -1)


def test_dataset_collate_and_augmentation_move_boxes(tmp_path: Path) -> None:
    import cv2

    image = np.full((120, 160, 3), 90, np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), image)
    rec = FrameRecord(tmp_path / "a.png", None, np.array([[40.0, 20.0, 60.0, 100.0]]), np.array([0]))
    ds = DetectionDataset([rec, rec], img_size=80)
    batch = collate_detection([ds[0], ds[1]])
    assert batch["images"].shape == (2, 3, 80, 80) and batch["images"].dtype == torch.uint8
    assert torch.allclose(batch["targets"][0, 0], torch.tensor([0.0, 20.0, 20.0, 30.0, 60.0]))
    imgs, tg = augment_batch(batch["images"].float() / 255, batch["targets"], scale=(1, 1), translate=0, flip_prob=1.0)
    assert torch.allclose(tg[0, 0], torch.tensor([0.0, 50.0, 20.0, 60.0, 60.0]))
    assert imgs.min() >= 0 and imgs.max() <= 1
    # a scale that pushes the box out of view turns it into padding or an ignore region
    _, tg = augment_batch(batch["images"].float() / 255, batch["targets"], scale=(4, 4), translate=0, flip_prob=0)
    assert tg[0, 0, 0] in (-1.0, -2.0)
    bad = FrameRecord(tmp_path / "missing.png", None, np.zeros((0, 4)), np.zeros(0, np.int64))
    with pytest.raises(FormatError, match="missing.png"):
        DetectionDataset([bad], img_size=80)[0]


def test_find_inputs_errors(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="does not exist"):
        find_inputs(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FormatError, match="no AI City scenes"):
        find_inputs(tmp_path / "empty")


def _write_mot_seq(root: Path, rows: list[list[float]], width: int = 200, height: int = 200, length: int = 2) -> Path:
    (root / "gt").mkdir(parents=True)
    (root / "seqinfo.ini").write_text(
        f"[Sequence]\nname=S\nimDir=img1\nframeRate=30\nseqLength={length}\nimWidth={width}\nimHeight={height}\nimExt=.jpg\n"
    )
    (root / "gt" / "gt.txt").write_text("".join(",".join(f"{v:g}" for v in r) + "\n" for r in rows))
    return root


def test_mot_distractor_classes_with_consider_flag_0_become_ignore_regions(tmp_path: Path) -> None:
    from citytrack.data.detection_datasets import IGNORE, mot_sequence_records

    # frame, id, x, y, w, h, conf, cls, vis: as in MOT17, every non-pedestrian row has conf 0
    rows = [
        [1, 1, 10, 10, 20, 40, 1, 1, 1.0],  # pedestrian: positive
        [1, 2, 40, 10, 20, 40, 1, 1, 0.1],  # hidden pedestrian: ignore
        [1, 3, 70, 10, 20, 40, 0, 1, 1.0],  # pedestrian without the consider mark: ignore
        [1, 4, 100, 10, 20, 40, 0, 7, 1.0],  # static person: ignore
        [1, 5, 130, 10, 20, 40, 0, 2, 1.0],  # person on vehicle: ignore
        [1, 6, 10, 100, 20, 40, 0, 8, 1.0],  # distractor: ignore
        [1, 7, 40, 100, 20, 40, 0, 12, 1.0],  # reflection: ignore
        [1, 8, 70, 100, 50, 30, 0, 3, 1.0],  # car: dropped
        [1, 9, 130, 100, 20, 40, 0, 9, 1.0],  # occluder: dropped
    ]
    rec = mot_sequence_records(_write_mot_seq(tmp_path / "S", rows), min_visibility=0.25)[0]
    assert rec.labels.tolist() == [0] + [IGNORE] * 6
    assert np.allclose(rec.boxes[:, 0], [10, 40, 70, 100, 130, 10, 40])


def test_mot17_static_people_are_ignore_regions_on_real_data(shared_data: Path) -> None:
    from citytrack.data.detection_datasets import IGNORE, mot_sequence_records
    from citytrack.data.formats.mot import CLS, FRAME, load_sequence

    seq_dir = shared_data / "mot17" / "MOT17-02-FRCNN"
    if not seq_dir.is_dir():
        pytest.skip(f"{seq_dir} is absent")
    gt = load_sequence(seq_dir).gt
    records = mot_sequence_records(seq_dir)
    for cls, count in ((7, 5271), (2, 1549), (8, 1200)):
        assert int((gt[:, CLS] == cls).sum()) == count
    # every frame carries an ignore region at each class-7/2/8 box (clipped to the image)
    for rec in records[::50]:
        f = int(rec.name.rsplit("/", 1)[1])
        rows = gt[(gt[:, FRAME] == f) & np.isin(gt[:, CLS], (2, 7, 8))]
        ignore_boxes = rec.boxes[rec.labels == IGNORE]
        for x, y, w, h in rows[:, 2:6]:
            x1, y1 = max(x, 0), max(y, 0)
            assert np.any(np.all(np.abs(ignore_boxes[:, :2] - [x1, y1]) < 1e-6, 1)), (f, x, y)
    labels = np.concatenate([r.labels for r in records])
    assert int((labels == IGNORE).sum()) >= 5271 + 1549 + 1200
