"""PointTrack (Xu et al., ECCV 2020): instance embeddings from point clouds sampled in and around masks.

- `points`: instance crops and point sampling (`PointSampler`, `crop_instances`, `sample_points`);
- `net`: `PointTrackNet`, the foreground / environment / location network;
- `module`: `PointTrackModule` (triplet training, `embed` for the MOTS trackers), `load_pointtrack`.
The association itself is `citytrack.tracking.mots.PointTrackTracker`.
"""

from citytrack.models.pointtrack.module import PointTrackModule, load_pointtrack
from citytrack.models.pointtrack.net import PointTrackNet
from citytrack.models.pointtrack.points import PointSampler, crop_instances, sample_points

__all__ = [
    "PointSampler",
    "PointTrackModule",
    "PointTrackNet",
    "crop_instances",
    "load_pointtrack",
    "sample_points",
]
