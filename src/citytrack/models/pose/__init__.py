"""Top-down keypoint estimation: `PoseNet` (SimpleBaseline), `KeypointModule` (training), `KeypointExtractor` (inference).

The COCO-17 joint names, skeleton and flip order live in `citytrack.data.formats.coco` and are
re-exported here.
"""

from citytrack.data.formats.coco import COCO_FLIP_INDEX, COCO_KEYPOINTS, COCO_SKELETON

__all__ = ["COCO_FLIP_INDEX", "COCO_KEYPOINTS", "COCO_SKELETON"]
