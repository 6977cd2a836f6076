"""The training entry's own logic: which checkpoint is tested, the optimised metric, missing config."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf

from citytrack.train import _test_checkpoint, metric_value, train


def _trainer(best: str) -> SimpleNamespace:
    return SimpleNamespace(checkpoint_callback=SimpleNamespace(best_model_path=best))


def test_test_checkpoint_prefers_this_fits_best() -> None:
    cfg = OmegaConf.create({"ckpt_path": "given.ckpt"})
    assert _test_checkpoint(cfg, _trainer("best.ckpt")) == "best.ckpt"


def test_test_checkpoint_falls_back_to_given_ckpt_when_not_training() -> None:
    cfg = OmegaConf.create({"ckpt_path": "given.ckpt"})
    assert _test_checkpoint(cfg, _trainer("")) == "given.ckpt"
    assert _test_checkpoint(OmegaConf.create({"ckpt_path": None}), SimpleNamespace(checkpoint_callback=None)) is None


def test_metric_value_reads_tensors_and_names_missing_metric() -> None:
    assert metric_value({"val/mAP": torch.tensor(0.25)}, "val/mAP") == pytest.approx(0.25)
    assert metric_value({}, None) is None
    with pytest.raises(KeyError, match="val/rank1"):
        metric_value({"val/mAP": 0.1}, "val/rank1")


def test_train_without_experiment_says_what_to_run() -> None:
    with pytest.raises(ValueError, match="experiment=reid_synthetic"):
        train(OmegaConf.create({"data": None, "model": None}))


def test_metric_value_follows_dotted_paths_into_nested_results() -> None:
    result = {"sequences": ["a"], "metrics": {"OVERALL": {"HOTA": 51.5}}}  # the MOT runner's return value
    assert metric_value(result, "metrics.OVERALL.HOTA") == pytest.approx(51.5)
    with pytest.raises(KeyError, match="metrics.OVERALL.IDF1"):
        metric_value(result, "metrics.OVERALL.IDF1")
