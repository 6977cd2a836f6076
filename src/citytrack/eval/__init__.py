"""citytrack.eval: tracking (CLEAR/identity/HOTA), multi-camera (AI City), ReID and detection metrics."""

from typing import Any

from citytrack.eval.hota import ALPHAS, HotaResult, combine_hota, hota_sequence
from citytrack.eval.mot_metrics import (
    METRIC_KEYS,
    box_iou,
    evaluate_mot,
    evaluate_sequences,
    format_table,
    preprocess_sequence,
)

# The multi-camera names load on first use: `python -m citytrack.eval.mtmc` would otherwise find
# the module already imported by this package and runpy warns that it runs it a second time.
_MTMC_NAMES = (
    "AIC19_KEYS",
    "AIC23_KEYS",
    "evaluate_aic19_mtmc",
    "evaluate_aic23_idf1",
    "evaluate_aic24",
    "evaluate_per_camera",
    "load_ground_truth",
)


def __getattr__(name: str) -> Any:
    if name in _MTMC_NAMES:
        from citytrack.eval import mtmc

        return getattr(mtmc, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AIC19_KEYS",
    "AIC23_KEYS",
    "ALPHAS",
    "METRIC_KEYS",
    "HotaResult",
    "box_iou",
    "combine_hota",
    "evaluate_aic19_mtmc",
    "evaluate_aic23_idf1",
    "evaluate_aic24",
    "evaluate_mot",
    "evaluate_per_camera",
    "evaluate_sequences",
    "format_table",
    "hota_sequence",
    "load_ground_truth",
    "preprocess_sequence",
]
