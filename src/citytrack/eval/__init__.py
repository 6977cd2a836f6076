"""citytrack.eval: tracking (CLEAR/identity/HOTA), ReID and detection metrics."""

from citytrack.eval.hota import ALPHAS, HotaResult, combine_hota, hota_sequence
from citytrack.eval.mot_metrics import (
    METRIC_KEYS,
    box_iou,
    evaluate_mot,
    evaluate_sequences,
    format_table,
    preprocess_sequence,
)

__all__ = [
    "ALPHAS",
    "METRIC_KEYS",
    "HotaResult",
    "box_iou",
    "combine_hota",
    "evaluate_mot",
    "evaluate_sequences",
    "format_table",
    "hota_sequence",
    "preprocess_sequence",
]
