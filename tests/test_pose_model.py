"""Keypoint network pieces: heatmap round trip, crop geometry, loss, evaluation, extractor mapping, drawing."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from citytrack.data.formats.coco import (
    COCO_FLIP_INDEX,
    build_coco_keypoints_dataset,
    coco_from_dict,
    keypoint_annotation,
)
from citytrack.models.pose.augment import PoseAugment, apply_matrices, input_from_crop_matrices, warp_crops
from citytrack.models.pose.extractor import KeypointExtractor
from citytrack.models.pose.heatmaps import (
    COCO_FEET,
    CropCut,
    box_regions,
    crop_cuts,
    cut_to_plain,
    decode_heatmaps,
    flip_averaged,
    gaussian_targets,
    modulate,
    multi_cut_heatmaps,
    region_to_image,
)
from citytrack.models.pose.metrics import KeypointEvaluator
from citytrack.models.pose.module import KeypointModule
from citytrack.models.pose.net import PoseNet

TINY_NET = {"backbone": "resnet18", "feature_index": -3, "width": 16}  # stride 8: one deconvolution


def test_heatmap_round_trip_is_sub_pixel() -> None:
    pts = torch.tensor([[[13.37, 40.81], [50.02, 7.5], [3.3, 90.6]]])
    hm = gaussian_targets(pts, (32, 16), 4, 2.0, torch.ones(1, 3))
    assert hm.shape == (1, 3, 32, 16)
    dec = decode_heatmaps(hm, 4)
    np.testing.assert_allclose(dec[0, :, :2].numpy(), pts[0].numpy(), atol=0.02)
    np.testing.assert_allclose(dec[0, :, 2].numpy(), hm.amax(dim=(2, 3))[0].numpy())
    # a plain arg-max would be off by up to 2 px at stride 4
    assert (hm[0, 0].argmax() % 16).item() * 4 + 2 != pytest.approx(13.37, abs=0.5)


def _feet_maps(left_ankle_peaks: list[tuple[float, float, float]], right_ankle_peaks: list[tuple[float, float, float]],
               knees: tuple[tuple[float, float], tuple[float, float]]) -> torch.Tensor:
    """(1, 17, 48, 24) heatmaps at stride 4: Gaussian peaks (x, y, height) in input pixels on the ankle
    maps, single peaks at the knees (left, right), every other map empty."""
    hm = torch.zeros(1, 17, 48, 24)
    for joint, peaks in ((15, left_ankle_peaks), (16, right_ankle_peaks)):
        for x, y, v in peaks:
            hm[:, joint] = torch.maximum(hm[:, joint], gaussian_targets(torch.tensor([[[x, y]]]), (48, 24), 4, 2.0, torch.tensor([[v]]))[:, 0])
    for joint, (x, y) in ((13, knees[0]), (14, knees[1])):
        hm[:, joint] = gaussian_targets(torch.tensor([[[x, y]]]), (48, 24), 4, 2.0, torch.ones(1, 1))[:, 0]
    return hm


def test_feet_decode_apart_and_are_named_by_the_knees() -> None:
    """Both ankle maps peak on both feet, strongest on foot A: the plain arg-max puts both ankles on A;
    the paired decode keeps them on distinct feet, left/right by the nearer knee (clearly nearer: it outvotes
    the maps' mild preference), sub-pixel exact."""
    foot_a, foot_b = (30.3, 170.6), (62.7, 166.2)
    both = [(*foot_a, 1.0), (*foot_b, 0.6)]
    hm = _feet_maps(both, [(*foot_a, 0.9), (*foot_b, 0.7)], knees=((34.0, 120.0), (58.0, 121.0)))
    plain = decode_heatmaps(hm, 4)
    assert torch.allclose(plain[0, 15, :2], plain[0, 16, :2], atol=1.0)
    paired = decode_heatmaps(hm, 4, COCO_FEET)
    np.testing.assert_allclose(paired[0, 15, :2].numpy(), foot_a, atol=0.3)  # left knee is above foot A
    np.testing.assert_allclose(paired[0, 16, :2].numpy(), foot_b, atol=0.3)
    assert paired[0, 16, 2] == pytest.approx(0.7, abs=0.02)  # the right map's own value at foot B
    # knees the other way round: the same two feet, names swapped (confidences travel with them)
    hm = _feet_maps(both, [(*foot_a, 0.9), (*foot_b, 0.7)], knees=((58.0, 121.0), (34.0, 120.0)))
    paired = decode_heatmaps(hm, 4, COCO_FEET)
    np.testing.assert_allclose(paired[0, 15, :2].numpy(), foot_b, atol=0.3)
    np.testing.assert_allclose(paired[0, 16, :2].numpy(), foot_a, atol=0.3)
    # every other joint decodes as without pairs
    keep = [j for j in range(17) if j not in (15, 16)]
    torch.testing.assert_close(paired[0, keep], decode_heatmaps(hm, 4)[0, keep])


def test_crossing_legs_are_named_by_the_ankle_maps() -> None:
    """Knees equally far from both feet (legs crossing): the assignment the ankle maps favour wins; knees
    clearly apart still outvote maps that mildly disagree (`decode_heatmaps`, `proximal_weight`)."""
    foot_a, foot_b = (30.3, 170.6), (62.7, 166.2)
    knees = ((46.5, 120.0), (46.5, 120.0))
    hm = _feet_maps([(*foot_a, 0.55), (*foot_b, 0.9)], [(*foot_a, 0.9), (*foot_b, 0.5)], knees)
    paired = decode_heatmaps(hm, 4, COCO_FEET)
    np.testing.assert_allclose(paired[0, 15, :2].numpy(), foot_b, atol=0.3)  # the left map is strong at B
    np.testing.assert_allclose(paired[0, 16, :2].numpy(), foot_a, atol=0.3)
    hm = _feet_maps([(*foot_a, 0.55), (*foot_b, 0.9)], [(*foot_a, 0.9), (*foot_b, 0.5)], ((34.0, 120.0), (58.0, 121.0)))
    paired = decode_heatmaps(hm, 4, COCO_FEET)
    np.testing.assert_allclose(paired[0, 15, :2].numpy(), foot_a, atol=0.3)  # 3.8 cells nearer: the knees win
    by_maps = decode_heatmaps(hm, 4, COCO_FEET, proximal_weight=0.0)
    np.testing.assert_allclose(by_maps[0, 15, :2].numpy(), foot_b, atol=0.3)


def test_modulation_keeps_a_peak_and_steadies_a_ragged_one() -> None:
    """DARK's blur: a clean Gaussian decodes where it did and keeps its height; one with a spike beside
    its peak (a network's ragged output) decodes nearer the truth after the blur than before."""
    pts = torch.tensor([[[40.6, 90.3], [22.2, 131.7]]])
    hm = gaussian_targets(pts, (48, 24), 4, 2.0, torch.tensor([[1.0, 0.6]]))
    assert modulate(hm, 0.0) is hm
    smooth = modulate(hm, 1.0)
    torch.testing.assert_close(smooth.amax(dim=(2, 3)), hm.amax(dim=(2, 3)))
    np.testing.assert_allclose(decode_heatmaps(hm, 4, blur_sigma=1.0)[0, :, :2].numpy(), pts[0].numpy(), atol=0.05)
    ragged = hm.clone()
    cx, cy = int(40.6 // 4), int(90.3 // 4)
    ragged[0, 0, cy, cx + 1] += 0.25
    plain_err = (decode_heatmaps(ragged, 4)[0, 0, :2] - pts[0, 0]).norm()
    blurred_err = (decode_heatmaps(ragged, 4, blur_sigma=1.0)[0, 0, :2] - pts[0, 0]).norm()
    assert blurred_err < 0.6 * plain_err


def test_feet_that_overlap_stay_together() -> None:
    """One foot in view (no second peak worth the name): both ankles stay on it."""
    foot = (40.2, 168.4)
    hm = _feet_maps([(*foot, 1.0), (10.0, 40.0, 0.1)], [(*foot, 0.9)], knees=((38.0, 120.0), (44.0, 121.0)))
    paired = decode_heatmaps(hm, 4, COCO_FEET)
    np.testing.assert_allclose(paired[0, 15, :2].numpy(), foot, atol=0.3)
    np.testing.assert_allclose(paired[0, 16, :2].numpy(), foot, atol=0.3)


def test_crop_matrices_move_pixels_and_keypoints_together() -> None:
    """A bright dot in the crop lands on its keypoint's input position, flipped and rotated too."""
    crop = torch.zeros(2, 3, 64, 32)
    crop[:, :, 20, 10] = 1.0  # pixel (10, 20): centre at (10.5, 20.5)
    regions = torch.tensor([[2.0, 4.0, 30.0, 60.0], [0.0, 0.0, 32.0, 64.0]])
    m = input_from_crop_matrices(regions, (128, 64), torch.tensor([0.0, 0.3]), torch.tensor([False, True]))
    x = warp_crops(crop, m, (128, 64))
    kp = apply_matrices(torch.linalg.inv(m), torch.tensor([[[10.5, 20.5]]] * 2))
    for i in range(2):
        peak = divmod(int(x[i, 0].argmax()), 64)
        assert abs(peak[1] + 0.5 - kp[i, 0, 0]) <= 1.5 and abs(peak[0] + 0.5 - kp[i, 0, 1]) <= 1.5


def test_augment_swaps_left_and_right_when_flipping() -> None:
    crop = torch.rand(1, 3, 64, 32)
    kp = torch.zeros(1, 17, 3)
    kp[0, :, 0] = torch.arange(17.0) + 5
    kp[0, :, 1] = 30.0
    kp[0, :, 2] = 2
    aug = PoseAugment(flip_p=1.0, scale=0.0, shift=0.0, rotate=0.0, colour=0.0)
    regions = torch.tensor([[0.0, 0.0, 32.0, 64.0]])
    _, out = aug(crop, kp, regions, (64, 32))
    # left shoulder (5) now holds the mirrored right shoulder (6): x -> 32 - x
    np.testing.assert_allclose(out[0, 5, 0].item(), 32 - kp[0, 6, 0].item(), atol=1e-4)
    np.testing.assert_allclose(out[0, :, 0].numpy(), (32 - kp[0, list(COCO_FLIP_INDEX), 0]).numpy(), atol=1e-4)


def _batch(n: int = 4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    kp = torch.zeros(n, 17, 3)
    kp[..., 0] = 20 + torch.rand(n, 17, generator=g) * 24
    kp[..., 1] = 20 + torch.rand(n, 17, generator=g) * 80
    kp[..., 2] = 2
    kp[:, 3, 2] = 1
    kp[:, 16] = 0
    img = torch.zeros(n, 3, 128, 64, dtype=torch.uint8)
    for i in range(n):  # draw the joints so the net has something to find
        for x, y, _ in kp[i].tolist():
            img[i, :, int(y) - 1 : int(y) + 2, int(x) - 1 : int(x) + 2] = 255
    return {"image": img, "keypoints": kp, "bbox": torch.tensor([[12.0, 12.0, 40.0, 100.0]] * n),
            "image_id": torch.arange(1, n + 1)}


def test_loss_decreases_on_a_tiny_batch() -> None:
    torch.manual_seed(0)
    module = KeypointModule(PoseNet(**TINY_NET), partial(torch.optim.Adam, lr=3e-3), input_size=(64, 32), padding=1.1)
    opt = module.configure_optimizers()
    batch = module.prepare_batch(_batch(), train=False)
    losses = []
    for _ in range(25):
        loss = module.compute_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_targets_encode_visibility() -> None:
    module = KeypointModule(PoseNet(**TINY_NET), input_size=(64, 32), occluded_target=0.5)
    kp = torch.tensor([[[10.0, 20.0, 2], [10.0, 20.0, 1], [10.0, 20.0, 0]] + [[0.0, 0.0, 0]] * 14])
    target, weight = module.targets(kp, (16, 8))
    peaks = target.amax(dim=(2, 3))[0]
    assert peaks[0].item() == pytest.approx(1.0, abs=0.05) and peaks[1].item() == pytest.approx(0.5, abs=0.03)
    assert peaks[2].item() == 0 and weight[0, 2].item() == 1.0


def test_evaluator_gives_ap_one_for_the_truth() -> None:
    kp = np.zeros((17, 3))
    kp[:, 0], kp[:, 1], kp[:, 2] = np.linspace(10, 50, 17), np.linspace(10, 110, 17), 2
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 64, "height": 128} for i in (1, 2)]
    anns = [keypoint_annotation(i, [5, 5, 50, 110], kp + i, 3000.0) for i in (1, 2)]
    gt = coco_from_dict(build_coco_keypoints_dataset(images, anns))
    ev = KeypointEvaluator()
    pred = np.stack([kp + 1, kp + 2])
    pred[..., 2] = 0.9
    ev.update(np.array([1, 2]), pred, np.stack([kp + 1, kp + 2]), np.array([[5, 5, 50, 110.0]] * 2))
    out = ev.compute(gt)
    assert out["AP"] == pytest.approx(1.0) and out["PCK@0.2"] == 1.0
    assert out["AP_M"] == pytest.approx(1.0) and out["AP_L"] == -1  # area 3000: COCO's medium, no large person
    ev.reset()
    far = pred.copy()
    far[..., :2] += 25
    ev.update(np.array([1, 2]), far, np.stack([kp + 1, kp + 2]), np.array([[5, 5, 50, 110.0]] * 2))
    out = ev.compute(gt)
    assert out["AP"] < 0.1 and out["PCK@0.2"] < 0.2


def test_evaluator_sizes_crops_by_their_area_in_the_source_frame() -> None:
    """Crops carrying `crop_box` are sized as COCO sizes people: by area in the frame they were cut from.
    Crop 1 is a 20x40 px frame region (its person "small" there), crop 2 a 160x320 one (large); only
    crop 1 is predicted right, so AP_S is 1 and AP_L, AP_ML about 0, whatever the crops' own size."""
    kp = np.zeros((17, 3))
    kp[:, 0], kp[:, 1], kp[:, 2] = np.linspace(10, 50, 17), np.linspace(10, 110, 17), 2
    boxes = {1: [0, 0, 20, 40], 2: [0, 0, 160, 320]}
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 64, "height": 128, "crop_box": boxes[i]} for i in (1, 2)]
    anns = [keypoint_annotation(i, [5, 5, 50, 110], kp, 3000.0) for i in (1, 2)]  # 3000 crop px: "medium" as crops
    gt = coco_from_dict(build_coco_keypoints_dataset(images, anns))
    pred = np.stack([kp, kp])
    pred[1, :, :2] += 30
    pred[..., 2] = 0.9
    ev = KeypointEvaluator()
    ev.update(np.array([1, 2]), pred)
    out = ev.compute(gt)
    # frame areas: 3000 * (20/64) * (40/128) = 293 px^2 (small); 3000 * 2.5 * 2.5 = 18750 px^2 (large)
    assert out["AP_S"] == pytest.approx(1.0) and out["AP_M"] == -1
    assert out["AP_L"] < 0.1 and out["AP_ML"] == pytest.approx(out["AP_L"])
    assert 0.2 < out["AP"] < 0.8  # both people together


class _PeakNet(PoseNet):
    """A net whose heatmaps peak at one fixed input pixel, to test the extractor's geometry alone."""

    def __init__(self, at: tuple[float, float]) -> None:
        super().__init__(**TINY_NET)
        self.at = at

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2] // 4, images.shape[-1] // 4
        pts = torch.tensor(self.at, dtype=torch.float32).expand(len(images), 17, 2)
        return gaussian_targets(pts, (h, w), 4, 2.0, torch.full((len(images), 17), 0.8))


def test_extractor_maps_a_crop_peak_to_the_image_pixel() -> None:
    ext = KeypointExtractor(_PeakNet((20.0, 50.0)), input_size=(128, 64), padding=1.25, device="cpu")
    images = torch.zeros(2, 3, 90, 160, dtype=torch.uint8)
    boxes = [np.array([[10.0, 5.0, 30.0, 60.0], [100.0, 20.0, 40.0, 40.0]]), np.zeros((0, 4))]
    out = ext(images, boxes)
    assert [o.shape for o in out] == [(2, 17, 3), (0, 17, 3)] and out[0].dtype == np.float32
    # box 0: 30x60 -> region 37.5 x 75 about (25, 35), input 64x128: scale 75/128
    s = 75 / 128
    np.testing.assert_allclose(out[0][0, 0, :2], [25 - 37.5 / 2 + 20 * s, 35 - 75 / 2 + 50 * s], atol=0.02)
    # box 1: 40x40 is wider than 1:2 -> region 50 x 100 about (120, 40)
    s = 50 / 64
    np.testing.assert_allclose(out[0][1, 0, :2], [120 - 25 + 20 * s, 40 - 50 + 50 * s], atol=0.02)
    assert ((out[0][..., 2] > 0.7) & (out[0][..., 2] <= 0.8)).all()  # the best cell of a 0.8 peak
    regions = box_regions(torch.tensor([[10.0, 5.0, 30.0, 60.0]]), (128, 64), 1.25)
    back = region_to_image(torch.tensor([[[20.0, 50.0]]]), regions, (128, 64))
    np.testing.assert_allclose(back[0, 0].numpy(), out[0][0, 0, :2], atol=0.02)


class _DotNet(PoseNet):
    """A net whose every heatmap is the input's brightness pooled to stride 4: it finds a bright dot wherever
    the crop puts it, to test multi-scale geometry."""

    def __init__(self) -> None:
        super().__init__(**TINY_NET)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(images.mean(1, keepdim=True), 4).repeat(1, 17, 1, 1)


def test_cut_to_plain_puts_a_cut_crop_peak_back_on_the_plain_grid() -> None:
    """A joint at input pixel p of the plain crop (c its centre) sits at c + R(-angle) (p - c - 4 shift) / s in a
    crop cut s times larger, moved `shift` cells (4 input px each) and turned by `angle`."""
    p, c = torch.tensor([20.3, 101.6]), torch.tensor([32.0, 64.0])
    for cut in (CropCut(0.8), CropCut(1.25), CropCut(1.0, (0.5, 0.5)), CropCut(0.8, (-1.0, 0.5)), CropCut(1.25, (0.5, 0.0)),
                CropCut(1.0, (0.0, 0.0), 10.0), CropCut(0.9, (0.0, 0.0), -7.0)):
        a = np.radians(cut.angle)
        r_inv = torch.tensor([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]], dtype=torch.float32)
        seen = c + r_inv @ (p - c - 4 * torch.tensor(cut.shift)) / cut.scale
        hm = gaussian_targets(seen[None, None], (32, 16), 4, 2.0, torch.ones(1, 1))
        back = decode_heatmaps(cut_to_plain(hm, cut), 4)[0, 0, :2]
        # the inverse scale would be ~8 px off, the shift or the angle the wrong way >= 4 px
        np.testing.assert_allclose(back.numpy(), p.numpy(), atol=0.5)
    hm = torch.rand(2, 17, 32, 16)
    assert cut_to_plain(hm, CropCut()) is hm
    with pytest.raises(ValueError, match="at least one cut"):
        multi_cut_heatmaps(lambda cut: hm, [])


def test_crop_cuts_cross_scales_with_offsets_and_angles_apart() -> None:
    cuts = crop_cuts([0.8, 1.0], [[0, 0], [0.5, 0.5]], [0.0, 5.0])
    assert cuts == [CropCut(0.8), CropCut(0.8, (0.5, 0.5)), CropCut(1.0), CropCut(1.0, (0.5, 0.5)),
                    CropCut(0.8, (0.0, 0.0), 5.0), CropCut(1.0, (0.0, 0.0), 5.0)]
    assert crop_cuts([1.0]) == [CropCut()] and CropCut().plain and not CropCut(angle=5.0).plain
    with pytest.raises(ValueError, match="positive region scales"):
        crop_cuts([0.0])
    with pytest.raises(ValueError, match="offsets in heatmap cells"):
        crop_cuts([1.0], [[0.5]])
    with pytest.raises(ValueError, match="at least one angle"):
        crop_cuts([1.0], [[0, 0]], [])


def test_flip_averaged_mirrors_back_and_swaps_left_and_right() -> None:
    maps = torch.rand(2, 17, 8, 6)
    out = flip_averaged(lambda x: maps, torch.zeros(2, 3, 32, 24))
    torch.testing.assert_close(out[:, 1], 0.5 * (maps[:, 1] + torch.flip(maps[:, 2], dims=[2])))  # left eye <- right eye
    torch.testing.assert_close(out[:, 0], 0.5 * (maps[:, 0] + torch.flip(maps[:, 0], dims=[2])))  # the nose stays


def test_multi_scale_test_finds_the_same_point_in_the_extractor_and_the_module() -> None:
    """A blurred dot off the box centre: decoded at its image pixel at every region scale and averaged."""
    yy, xx = np.mgrid[0:120, 0:100]
    dot = (41.0, 83.0)
    blob = np.exp(-((xx + 0.5 - dot[0]) ** 2 + (yy + 0.5 - dot[1]) ** 2) / (2 * 3.0**2))
    images = torch.from_numpy(np.round(255 * blob).astype(np.uint8))[None, None].repeat(1, 3, 1, 1)
    box = np.array([[30.0, 20.0, 32.0, 64.0]])  # region 40 x 80 about (46, 52): ~1.6 input px per image px
    single = KeypointExtractor(_DotNet(), input_size=(128, 64), padding=1.25, device="cpu")(images, [box])[0]
    multi = KeypointExtractor(_DotNet(), input_size=(128, 64), padding=1.25, device="cpu", scales=(0.8, 1.0, 1.25))(images, [box])[0]
    np.testing.assert_allclose(single[0, :, :2], np.tile(dot, (17, 1)), atol=0.5)
    # the 0.8 cut ends 1 px below the dot and clips the blob: ~0.5 px up (a scale the wrong way: ~5 px)
    np.testing.assert_allclose(multi[0, :, :2], np.tile(dot, (17, 1)), atol=0.75)
    shifted = KeypointExtractor(_DotNet(), input_size=(128, 64), padding=1.25, device="cpu", scales=(0.8, 1.0),
                                shifts=((0.0, 0.0), (0.5, 0.5), (-1.0, 0.25)))(images, [box])[0]
    np.testing.assert_allclose(shifted[0, :, :2], np.tile(dot, (17, 1)), atol=0.75)
    with pytest.raises(ValueError, match="offsets in heatmap cells"):
        KeypointExtractor(_DotNet(), device="cpu", shifts=((0.5,),))
    turned = KeypointExtractor(_DotNet(), input_size=(128, 64), padding=1.25, device="cpu", angles=(0.0, 12.0, -8.0))(images, [box])[0]
    np.testing.assert_allclose(turned[0, :, :2], np.tile(dot, (17, 1)), atol=0.5)  # the angle the wrong way: ~3 px
    with pytest.raises(ValueError, match="positive region scales"):
        KeypointExtractor(_DotNet(), device="cpu", scales=())
    # the module's multi-scale test cuts stored crops the same way: the dot's input position at scale 1
    module = KeypointModule(_DotNet(), input_size=(128, 64), padding=1.25, test_scales=[0.8, 1.0, 1.25])
    batch = module.prepare_batch({"image": images, "keypoints": torch.zeros(1, 17, 3),
                                  "bbox": torch.from_numpy(box).float(), "image_id": torch.tensor([1])}, train=False)
    plain = decode_heatmaps(module.heatmaps(batch["input"]), 4)[0, 0, :2]
    scaled = decode_heatmaps(module.eval_heatmaps(batch), 4)[0, 0, :2]
    assert abs(float(plain[0]) - (dot[0] - 26) * 64 / 40) < 1.0  # region x0 = 46 - 20, 64 input px over 40
    np.testing.assert_allclose(scaled.numpy(), plain.numpy(), atol=1.0)  # a scale the wrong way: ~7 px
    module = KeypointModule(_DotNet(), input_size=(128, 64), padding=1.25, test_shifts=[[0.0, 0.0], [1.0, -1.0], [-0.5, 0.5]])
    moved = decode_heatmaps(module.eval_heatmaps(batch), 4)[0, 0, :2]
    np.testing.assert_allclose(moved.numpy(), plain.numpy(), atol=0.3)  # a shift the wrong way: ~3 px
    with pytest.raises(ValueError, match="offsets in heatmap cells"):
        KeypointModule(_DotNet(), test_shifts=[])
    module = KeypointModule(_DotNet(), input_size=(128, 64), padding=1.25, test_angles=[0.0, 12.0, -8.0])
    turned = decode_heatmaps(module.eval_heatmaps(batch), 4)[0, 0, :2]
    np.testing.assert_allclose(turned.numpy(), plain.numpy(), atol=0.3)
    with pytest.raises(ValueError, match="positive region scales"):
        KeypointModule(_DotNet(), test_scales=[0.0])


def test_extractor_reads_pixels_where_the_box_is() -> None:
    """A real (random) net: the crop that roi_align cuts is the box region of the BGR frame, as RGB."""
    ext = KeypointExtractor(PoseNet(**TINY_NET), input_size=(64, 32), padding=1.0, device="cpu")
    images = torch.zeros(1, 3, 100, 100, dtype=torch.uint8)
    images[0, 2, 20:84, 30:62] = 255  # red in BGR
    rois = ext.regions([np.array([[30.0, 20.0, 32.0, 64.0]])])
    np.testing.assert_allclose(rois.numpy(), [[0, 30, 20, 62, 84]])
    seen = []
    ext.net.forward = lambda x: seen.append(x) or torch.zeros(len(x), 17, 16, 8)  # type: ignore[method-assign]
    ext(images, [np.array([[30.0, 20.0, 32.0, 64.0]])])
    np.testing.assert_allclose(seen[0][0, 0].numpy(), 1.0, atol=1e-6)  # R channel first
    np.testing.assert_allclose(seen[0][0, 1:].numpy(), 0.0, atol=1e-6)


def test_draw_skeletons_draws_only_confident_joints() -> None:
    from citytrack.visualize.draw import draw_skeletons

    kp = np.zeros((1, 17, 3))
    kp[0, :, 0], kp[0, :, 1] = 30, np.linspace(10, 110, 17)
    kp[0, 5:, 2] = 1.0
    img = draw_skeletons(np.zeros((128, 64, 3), np.uint8), kp)
    assert img[10:30, 28:33].sum() == 0  # face joints under the threshold
    assert img[60, 28:33].sum() > 0


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    module = KeypointModule(PoseNet(**TINY_NET), input_size=(64, 32), padding=1.2)
    ckpt = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(ckpt)
    torch.save(ckpt, tmp_path / "pose.ckpt")
    ext = KeypointExtractor.from_checkpoint(tmp_path / "pose.ckpt", device="cpu")
    assert ext.input_size == (64, 32) and ext.padding == 1.2
    x = torch.rand(2, 3, 64, 32)
    module.eval()
    torch.testing.assert_close(ext.net(x), module.net(x))


def save_module(module: KeypointModule, path: Path, perturb: bool = False) -> None:
    """`module` as a Lightning checkpoint at `path` (weights moved off their init first when `perturb`)."""
    if perturb:
        with torch.no_grad():
            for p in module.net.parameters():
                p.add_(torch.randn_like(p))
    ckpt = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}
    module.on_save_checkpoint(ckpt)
    torch.save(ckpt, path)


def test_warm_start_copies_the_checkpoint_weights_and_refuses_another_net(tmp_path: Path) -> None:
    source = KeypointModule(PoseNet(**TINY_NET), input_size=(64, 32))
    save_module(source, tmp_path / "pose.ckpt", perturb=True)
    warm = KeypointModule(PoseNet(**TINY_NET), input_size=(64, 32), init_from=str(tmp_path / "pose.ckpt"))
    for (name, a), b in zip(source.net.state_dict().items(), warm.net.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=name)
    saved = {"state_dict": warm.state_dict(), "hyper_parameters": dict(warm.hparams)}
    warm.on_save_checkpoint(saved)
    assert saved["hyper_parameters"]["init_from"] is None  # a rebuilt module must not load the source again
    with pytest.raises(ValueError, match="pose.ckpt.*differs"):
        KeypointModule(PoseNet(**{**TINY_NET, "width": 8}), init_from=str(tmp_path / "pose.ckpt"))
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        KeypointModule(PoseNet(**TINY_NET), init_from=str(tmp_path / "missing.ckpt"))


def test_skip_connections_feed_the_head_and_start_silent_from_a_net_without(tmp_path: Path) -> None:
    """`skip=True` adds lateral maps at the head's strides; warm-started from a skip-less net it
    computes exactly that net's heatmaps until the laterals learn a scale, and the reverse is refused."""
    source = KeypointModule(PoseNet(**{**TINY_NET, "feature_index": -2}), input_size=(64, 32))  # stride 16: 2 deconvs
    save_module(source, tmp_path / "plain.ckpt", perturb=True)

    net = PoseNet(**{**TINY_NET, "feature_index": -2, "skip": True})
    assert len(net.lateral) == 2 and net.backbone.feature_info.reduction() == [4, 8, 16]
    warm = KeypointModule(net, input_size=(64, 32), init_from=str(tmp_path / "plain.ckpt"))
    x = torch.rand(2, 3, 64, 32)
    source.eval(), warm.eval()
    torch.testing.assert_close(warm.net(x), source.net(x))
    with torch.no_grad():
        for lateral in warm.net.lateral:
            lateral[1].weight.fill_(1.0)
    assert warm.net(x).shape == (2, 17, 16, 8)
    assert not torch.allclose(warm.net(x), source.net(x))
    # the last lateral reads the backbone's stride-4 map (the finest detail)
    calls = []
    warm.net.lateral[-1].register_forward_hook(lambda m, i, o: calls.append(i[0].shape))
    warm.net(x)
    assert calls == [torch.Size([2, 64, 16, 8])]  # resnet18's stride-4 level: 64 channels

    save_module(warm, tmp_path / "skip.ckpt")
    again = KeypointExtractor.from_checkpoint(tmp_path / "skip.ckpt", device="cpu")
    assert again.net.config["skip"] is True
    torch.testing.assert_close(again.net(x), warm.net(x))
    with pytest.raises(ValueError, match="skip.ckpt.*differs"):
        KeypointModule(PoseNet(**{**TINY_NET, "feature_index": -2}), init_from=str(tmp_path / "skip.ckpt"))


def test_export_keeps_what_inference_and_evaluation_read(tmp_path: Path) -> None:
    from citytrack.models.pose.export import main

    module = KeypointModule(PoseNet(**TINY_NET), input_size=(64, 32), padding=1.2)
    ckpt = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams), "epoch": 3,
            "optimizer_states": [{"state": {0: torch.zeros(1000)}}], "lr_schedulers": [{}]}
    module.on_save_checkpoint(ckpt)
    torch.save(ckpt, tmp_path / "last.ckpt")
    assert main([f"ckpt={tmp_path / 'last.ckpt'}", f"out={tmp_path / 'ship' / 'pose.ckpt'}"]) == 0
    assert main([f"ckpt={tmp_path / 'last.ckpt'}", f"out={tmp_path / 'pose16.ckpt'}", "half=true"]) == 0
    shipped = torch.load(tmp_path / "ship" / "pose.ckpt", weights_only=False)
    assert set(shipped) == {"state_dict", "hyper_parameters", "epoch", "pose_net"}
    half = torch.load(tmp_path / "pose16.ckpt", weights_only=False)
    assert all(v.dtype in (torch.float16, torch.int64) for v in half["state_dict"].values())
    x = torch.rand(2, 3, 64, 32)
    module.eval()
    for name, tol in (("ship/pose.ckpt", 0.0), ("pose16.ckpt", 2e-3)):
        ext = KeypointExtractor.from_checkpoint(tmp_path / name, device="cpu")
        assert ext.padding == 1.2
        torch.testing.assert_close(ext.net(x), module.net(x), atol=tol, rtol=tol)
    with pytest.raises(FileNotFoundError, match="nothing.ckpt"):
        main([f"ckpt={tmp_path / 'nothing.ckpt'}", f"out={tmp_path / 'x.ckpt'}"])
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="other.ckpt.*not a KeypointModule"):
        main([f"ckpt={tmp_path / 'other.ckpt'}", f"out={tmp_path / 'x.ckpt'}"])
    assert not (tmp_path / "x.ckpt").exists()


def test_weight_average_evaluates_exports_and_warm_starts(tmp_path: Path) -> None:
    """With `ema_decay` the module trains `net`, but evaluation, a raw checkpoint's readers and the export
    all see the average; the exported file is a plain module (no average) holding the averaged weights."""
    from citytrack.models.pose.export import export_pose_checkpoint

    torch.manual_seed(0)
    module = KeypointModule(PoseNet(**TINY_NET), partial(torch.optim.Adam, lr=3e-3), input_size=(64, 32),
                            ema_decay=0.5, ema_tau=1.0)
    opt = module.configure_optimizers()
    batch = module.prepare_batch(_batch(), train=False)
    for i in range(3):
        loss = module.compute_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        module.on_train_batch_end(None, batch, i)
    assert int(module.ema.updates) == 3
    module.eval()
    x = batch["input"]
    averaged, trained = module.ema.module(x), module.net(x)
    assert not torch.allclose(averaged, trained)  # the average lags the trained weights
    torch.testing.assert_close(module.heatmaps(x), averaged)

    save_module(module, tmp_path / "last.ckpt")
    torch.testing.assert_close(KeypointExtractor.from_checkpoint(tmp_path / "last.ckpt", device="cpu").net(x), averaged)
    warm = KeypointModule(PoseNet(**TINY_NET), input_size=(64, 32), init_from=str(tmp_path / "last.ckpt")).eval()
    torch.testing.assert_close(warm.net(x), averaged)

    export_pose_checkpoint(tmp_path / "last.ckpt", tmp_path / "pose.ckpt")
    shipped = torch.load(tmp_path / "pose.ckpt", weights_only=False)
    assert shipped["hyper_parameters"]["ema_decay"] == 0.0
    assert not any(k.startswith("ema.") for k in shipped["state_dict"])
    rebuilt = KeypointModule(PoseNet(**TINY_NET), input_size=(64, 32), ema_decay=0.0).eval()
    rebuilt.load_state_dict(shipped["state_dict"])
    torch.testing.assert_close(rebuilt.heatmaps(x), averaged)
