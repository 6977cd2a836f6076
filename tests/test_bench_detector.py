"""`python -m citytrack.bench detector`: its JSON line, and the precision / memory-format switches it reports."""

from __future__ import annotations

import json

import pytest

from citytrack.bench import detector as bench

TINY = ["--device", "cpu", "--batch", "2", "--img-size", "256", "--steps", "1", "--warmup", "1",
        "--frame-size", "160x96", "--backbone", "regnetx_002", "--neck-channels", "16"]  # fmt: skip


def _run(capsys: pytest.CaptureFixture[str], *extra: str) -> dict:
    assert bench.main([*TINY, *extra]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_defaults_on_cpu_are_fp32_nchw(capsys: pytest.CaptureFixture[str]) -> None:
    result = _run(capsys)
    assert result["benchmark"] == "detector" and result["device"] == "cpu"
    assert result["precision"] == "fp32" and result["channels_last"] is False  # NHWC is a CUDA-only path
    assert result["train_images_per_s"] > 0 and result["infer_images_per_s"] > 0
    assert (result["batch"], result["img_size"], result["frame_size"]) == (2, 256, "160x96")


def test_precision_switch_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "--precision", "bf16")["precision"] == "bf16-mixed"


def test_fp32_baseline_turns_off_bf16_inference() -> None:
    """The module's inference autocast follows `bf16_inference` (CUDA only; the CPU is fp32 regardless)."""
    from citytrack.models.detector.module import DetectorModule
    from citytrack.models.detector.net import YoloxNet

    module = DetectorModule(YoloxNet("resnet18", 1, neck_channels=16), img_size=64)
    assert module.bf16_inference is True
    module.bf16_inference = False
    assert DetectorModule.bf16_inference is True  # an instance's switch, not the class's
