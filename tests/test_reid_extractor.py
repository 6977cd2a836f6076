"""FeatureExtractor: unit-norm (N, D) per frame, batch == one by one, crops match a direct crop+resize."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from citytrack.models.reid.backbones import ReIDNet
from citytrack.models.reid.extractor import FeatureExtractor


@pytest.fixture(scope="module")
def extractor() -> FeatureExtractor:
    torch.manual_seed(0)
    net = ReIDNet("osnet_x0_25")
    # non-trivial BN statistics so eval mode is not an identity
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net(torch.rand(8, 3, 64, 32))
    return FeatureExtractor(net, input_size=(64, 32), device="cpu", batch_size=3)


def _frames() -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(3)]
    frames[2] = rng.integers(0, 256, (100, 90, 3), dtype=np.uint8)  # frames may differ in size
    boxes = [
        np.array([[10, 10, 30, 60], [100.5, 20.25, 40, 80]], dtype=np.float32),
        np.zeros((0, 4), dtype=np.float32),
        np.array([[0, 0, 20, 40], [50, 30, 35, 65], [-5, 60, 20, 50]], dtype=np.float32),  # last one leaves the frame
    ]
    return frames, boxes


def test_unit_norm_shapes_per_frame(extractor: FeatureExtractor) -> None:
    frames, boxes = _frames()
    feats = extractor(frames, boxes)
    assert [f.shape for f in feats] == [(2, 128), (0, 128), (3, 128)]
    for f in feats:
        assert f.dtype == np.float32
        if len(f):
            np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(feats[0][0], feats[0][1])


def test_batch_equals_one_by_one(extractor: FeatureExtractor) -> None:
    frames, boxes = _frames()
    batched = extractor(frames, boxes)
    for frame, b, expected in zip(frames, boxes, batched, strict=True):
        np.testing.assert_allclose(extractor.embed(frame, b), expected, atol=1e-5)


def test_roi_align_crop_matches_direct_crop(extractor: FeatureExtractor) -> None:
    # a box of exactly the input size at integer position is an exact copy of the pixels (BGR -> RGB)
    frame = np.random.default_rng(1).integers(0, 256, (80, 60, 3), dtype=np.uint8)
    crop = extractor.crops([frame], [np.array([[5, 7, 32, 64]], dtype=np.float32)])[0]
    direct = torch.from_numpy(frame[7:71, 5:37, ::-1].copy()).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(crop, direct, atol=1e-5, rtol=0)


def test_tensor_frames_accepted(extractor: FeatureExtractor) -> None:
    frames, boxes = _frames()
    rgb = torch.from_numpy(frames[0][..., ::-1].copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)
    np.testing.assert_allclose(extractor(rgb, boxes[:1])[0], extractor(frames[:1], boxes[:1])[0], atol=1e-5)


def test_bad_input_raises(extractor: FeatureExtractor, tmp_path) -> None:
    frames, boxes = _frames()
    with pytest.raises(ValueError, match="frames"):
        extractor(frames[:2], boxes)
    with pytest.raises(ValueError, match="positive width"):
        extractor.embed(frames[0], np.array([[0, 0, 0, 10]], dtype=np.float32))
    with pytest.raises(ValueError, match="BGR"):
        extractor.embed(frames[0][..., 0], boxes[0])
    with pytest.raises(FileNotFoundError, match="not found"):
        FeatureExtractor.from_checkpoint(tmp_path / "missing.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="not a ReIDModule checkpoint"):
        FeatureExtractor.from_checkpoint(tmp_path / "other.ckpt")
