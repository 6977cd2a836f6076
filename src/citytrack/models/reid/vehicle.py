"""Vehicle ReID scoring as the AI City 2019 Track 2 winner did it (wzgwzg/AICity, `Track2(ReID)/`).

Features are the mean of the image's and its horizontal flip's embedding, L2-normalised; the
query x gallery distance is their squared Euclidean distance. Two attribute similarities, the dot
product of the type heads' softmax vectors (`S_type`) and of the orientation heads' (`S_dir`),
averaged per track where track information exists, add penalties to that distance:

- type: `+type_penalty` where `S_type < type_threshold` (the two crops are almost surely different
  types). The winner applied it only when camera c035 was involved and `d > 3.0` on its 7-model
  concatenated features; here it applies to every pair, the distance gate is `type_min_dist`.
- orientation: for declared opposite-facing camera pairs (the winner: c006-c009, c007-c008), where
  traffic seen from the front by one camera is seen from the rear by the other, `+dir_penalty`
  where `S_dir >= dir_threshold`: the same orientation in both views is implausible.

k-reciprocal re-ranking (Zhong et al. 2017) runs on the full (query + gallery) matrices with the
winner's `k1=70, k2=10, lambda=0.1`. Its input is the (penalised) squared distance, passed to
`eval.reid_metrics.re_ranking` as the winner passed it to its copy of the same function, which
squares it once more and divides each column by its maximum. The winner's order is kept for the
combined score: penalties on the q-g, q-q and g-g matrices, re-ranking, the penalties again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from citytrack.eval.reid_metrics import re_ranking
from citytrack.models.reid.extractor import FeatureExtractor
from citytrack.models.reid.heads import Classifier
from citytrack.multicam.calibration import CameraCalibration

#: the four scores the runner compares (`metrics.json`), in the order of the winner's ablation
VARIANTS = ("plain", "penalties", "rerank", "both")


# ---------------------------------------------------------------------- features
def squared_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`|a|^2 + |b|^2 - 2 a.b` for every pair, (A, B) float32, clipped at 0 (rounding)."""
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def track_mean(values: np.ndarray, tracks: np.ndarray | None) -> np.ndarray:
    """Rows averaged over each track (the winner's per-track type vector); track -1 = a track of its own."""
    values = np.asarray(values, dtype=np.float32)
    if tracks is None:
        return values
    tracks = np.asarray(tracks)
    if len(tracks) != len(values):
        raise ValueError(f"{len(tracks)} track ids for {len(values)} rows")
    out = values.copy()
    known = tracks >= 0
    if known.any():
        ids, inverse = np.unique(tracks[known], return_inverse=True)
        sums = np.zeros((len(ids), values.shape[1]), np.float32)
        np.add.at(sums, inverse, values[known])
        out[known] = (sums / np.bincount(inverse, minlength=len(ids))[:, None])[inverse]
    return out


def attribute_similarity(p_a: np.ndarray, p_b: np.ndarray) -> np.ndarray:
    """`S = p_a . p_b^T` of softmax vectors: the probability that both crops have the same class."""
    return np.asarray(p_a, dtype=np.float32) @ np.asarray(p_b, dtype=np.float32).T


# ---------------------------------------------------------------------- penalties
def type_penalty(
    dist: np.ndarray, s_type: np.ndarray, threshold: float = 0.1, penalty: float = 5.0, min_dist: float = 0.0
) -> np.ndarray:
    """`dist + penalty` where `S_type < threshold` and `dist > min_dist` (a copy)."""
    if dist.shape != s_type.shape:
        raise ValueError(f"distance {dist.shape} and type similarity {s_type.shape} differ in shape")
    return dist + penalty * ((s_type < threshold) & (dist > min_dist))


def opposite_camera_mask(cams_a: np.ndarray, cams_b: np.ndarray, pairs: Sequence[Sequence[int]]) -> np.ndarray:
    """(A, B) True where the two cameras form one of the (unordered) opposite-facing `pairs`."""
    cams_a, cams_b = np.asarray(cams_a), np.asarray(cams_b)
    mask = np.zeros((len(cams_a), len(cams_b)), dtype=bool)
    for pair in pairs:
        if len(pair) != 2:
            raise ValueError(f"an opposite camera pair has two cameras, got {list(pair)}")
        x, y = int(pair[0]), int(pair[1])
        mask |= ((cams_a == x)[:, None] & (cams_b == y)[None, :]) | ((cams_a == y)[:, None] & (cams_b == x)[None, :])
    return mask


def orientation_penalty(
    dist: np.ndarray,
    s_dir: np.ndarray,
    cams_a: np.ndarray,
    cams_b: np.ndarray,
    opposite_pairs: Sequence[Sequence[int]],
    threshold: float = 0.03,
    penalty: float = 2.5,
) -> np.ndarray:
    """`dist + penalty` for pairs of opposite-facing cameras whose orientations agree (`S_dir >= threshold`)."""
    if dist.shape != s_dir.shape:
        raise ValueError(f"distance {dist.shape} and orientation similarity {s_dir.shape} differ in shape")
    return dist + penalty * (opposite_camera_mask(cams_a, cams_b, opposite_pairs) & (s_dir >= threshold))


def view_direction(calibration: CameraCalibration, image_size: tuple[int, int]) -> np.ndarray:
    """Unit ground-plane direction a camera looks along: from the ground under its image's bottom
    centre to the ground under its image centre (`image_size` = (width, height))."""
    w, h = image_size
    ground = calibration.image_to_ground(np.array([[w / 2.0, 0.95 * h], [w / 2.0, h / 2.0]]))
    d = np.asarray(ground[1] - ground[0], dtype=np.float64)
    norm = float(np.linalg.norm(d))
    if not np.isfinite(norm) or norm == 0:
        raise ValueError("the image centre and bottom map to the same ground point: no viewing direction")
    return d / norm


def opposite_camera_pairs(views: dict[int, tuple[str, np.ndarray]], min_angle: float = 140.0) -> list[tuple[int, int]]:
    """Camera pairs of one scene whose viewing directions are at least `min_angle` degrees apart.

    `views`: camera number -> (scene, unit ground direction). Two cameras looking at each other
    along a road see a vehicle's front in one view and its rear in the other: the winner's
    hand-declared opposite pairs (c006-c009, c007-c008), derived here from the calibration.
    """
    cams = sorted(views)
    pairs = []
    for i, a in enumerate(cams):
        for b in cams[i + 1 :]:
            (scene_a, da), (scene_b, db) = views[a], views[b]
            if scene_a == scene_b and np.degrees(np.arccos(np.clip(float(da @ db), -1.0, 1.0))) >= min_angle:
                pairs.append((a, b))
    return pairs


# ---------------------------------------------------------------------- one set of crops
@dataclass
class Embeddings:
    """What the scorer needs of a set of crops: unit features, head softmaxes by name, cameras, tracks."""

    feats: np.ndarray  # (N, D), unit norm
    probs: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (N, C) softmax
    cams: np.ndarray | None = None  # (N,) camera numbers; -1 unknown
    tracks: np.ndarray | None = None  # (N,) track ids; -1 = none

    def __post_init__(self) -> None:
        n = len(self.feats)
        self.cams = np.full(n, -1) if self.cams is None else np.asarray(self.cams)
        for name, p in self.probs.items():
            if len(p) != n:
                raise ValueError(f"{len(p)} {name} probabilities for {n} features")
        if len(self.cams) != n or (self.tracks is not None and len(self.tracks) != n):
            raise ValueError(f"cameras / tracks do not match the {n} features")

    def track_probs(self, name: str) -> np.ndarray | None:
        p = self.probs.get(name)
        return None if p is None else track_mean(p, self.tracks)


@dataclass
class VehicleScoring:
    """The winner's distance pipeline with its constants as defaults; `distances` gives every variant.

    `opposite_cameras`: camera-number pairs that face opposite traffic directions (empty = no
    orientation penalty). `type_head` / `orientation_head`: the names of the auxiliary heads.
    """

    type_threshold: float = 0.1
    type_penalty: float = 5.0
    type_min_dist: float = 0.0
    opposite_cameras: Sequence[Sequence[int]] = ()
    dir_threshold: float = 0.03
    dir_penalty: float = 2.5
    k1: int = 70
    k2: int = 10
    lambda_value: float = 0.1
    type_head: str = "vehicle_type"
    orientation_head: str = "orientation"

    def penalise(self, dist: np.ndarray, a: Embeddings, b: Embeddings) -> np.ndarray:
        """`dist` (A, B) plus the type and orientation penalties the heads of `a` and `b` allow."""
        out = np.asarray(dist, dtype=np.float32)
        ta, tb = a.track_probs(self.type_head), b.track_probs(self.type_head)
        if ta is not None and tb is not None:
            out = type_penalty(out, attribute_similarity(ta, tb), self.type_threshold, self.type_penalty, self.type_min_dist)
        oa, ob = a.track_probs(self.orientation_head), b.track_probs(self.orientation_head)
        if oa is not None and ob is not None and len(self.opposite_cameras):
            s_dir = attribute_similarity(oa, ob)
            out = orientation_penalty(out, s_dir, a.cams, b.cams, self.opposite_cameras, self.dir_threshold, self.dir_penalty)
        return out.astype(np.float32)

    def rerank(self, qg: np.ndarray, qq: np.ndarray, gg: np.ndarray) -> np.ndarray:
        """k-reciprocal re-ranking of squared distances (see the module docstring for the input scale)."""
        return re_ranking(qg, qq, gg, k1=self.k1, k2=self.k2, lambda_value=self.lambda_value)

    def distances(
        self, query: Embeddings, gallery: Embeddings, variants: Sequence[str] = VARIANTS
    ) -> dict[str, np.ndarray]:
        """Query x gallery distance matrices for the requested `VARIANTS` (lower = more similar)."""
        unknown = set(variants) - set(VARIANTS)
        if unknown:
            raise ValueError(f"unknown scoring variants {sorted(unknown)}; known: {list(VARIANTS)}")
        qg = squared_distance(query.feats, gallery.feats)
        out: dict[str, np.ndarray] = {}
        if "plain" in variants:
            out["plain"] = qg
        if "penalties" in variants or "both" in variants:
            qg_pen = self.penalise(qg, query, gallery)
            if "penalties" in variants:
                out["penalties"] = qg_pen
        if "rerank" in variants or "both" in variants:
            qq = squared_distance(query.feats, query.feats)
            gg = squared_distance(gallery.feats, gallery.feats)
            if "rerank" in variants:
                out["rerank"] = self.rerank(qg, qq, gg)
            if "both" in variants:
                # a crop against itself stays at 0: a flat softmax (S = |p|^2 < threshold) must not penalise it
                qq_pen, gg_pen = self.penalise(qq, query, query), self.penalise(gg, gallery, gallery)
                np.fill_diagonal(qq_pen, 0.0)
                np.fill_diagonal(gg_pen, 0.0)
                reranked = self.rerank(qg_pen, qq_pen, gg_pen)
                out["both"] = self.penalise(reranked, query, gallery)
        return {v: out[v] for v in variants}


def top_k_indices(dist: np.ndarray, k: int = 100) -> np.ndarray:
    """(Q, min(k, G)) gallery indices (0-based) of each query row, nearest first (stable order on ties)."""
    return np.argsort(dist, axis=1, kind="stable")[:, : min(int(k), dist.shape[1])]


# ---------------------------------------------------------------------- the network
class VehicleReIDModel:
    """A trained `ReIDModule` for vehicle scoring: flip-averaged features plus the auxiliary heads' softmax.

    The heads see the unflipped crop only: a mirrored vehicle has the mirrored orientation.
    """

    def __init__(self, extractor: FeatureExtractor, heads: dict[str, Classifier] | None = None) -> None:
        self.extractor = extractor
        self.heads = {k: h.to(extractor.device).eval() for k, h in (heads or {}).items()}

    @property
    def input_size(self) -> tuple[int, int]:
        return self.extractor.input_size

    @classmethod
    def from_checkpoint(
        cls, path: str | Path | None, device: str | torch.device = "auto", batch_size: int = 128
    ) -> VehicleReIDModel:
        """Net from `FeatureExtractor.from_checkpoint`, heads from the `aux_heads` hyper-parameter + weights."""
        if not path:
            raise ValueError("vehicle ReID needs ckpt=<a ReIDModule checkpoint trained with aux_heads>")
        extractor = FeatureExtractor.from_checkpoint(path, device=device, batch_size=batch_size)
        ckpt = torch.load(Path(path), map_location="cpu", weights_only=False)
        sizes = dict((ckpt.get("hyper_parameters") or {}).get("aux_heads") or {})
        heads: dict[str, Classifier] = {}
        for name, classes in sizes.items():
            head = Classifier(extractor.dim, int(classes))
            prefix = f"aux_heads.{name}."
            state = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
            missing, unexpected = head.load_state_dict(state, strict=False)
            if missing or unexpected:
                raise ValueError(f"{path}: auxiliary head {name!r} does not match its weights ({missing}, {unexpected})")
            heads[name] = head
        return cls(extractor, heads)

    @torch.inference_mode()
    def embed(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(B, 3, H, W) RGB (uint8, or float in [0, 1]) -> unit features (B, D) and softmax per head."""
        x = images.to(self.extractor.device)
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        net = self.extractor.net
        raw = net(x).float()
        # the mean of the image's and the mirror image's embedding, normalised (sum: same direction)
        feats = F.normalize(raw + net(torch.flip(x, dims=[3])).float(), dim=1)
        probs = {name: torch.softmax(head(raw).float(), dim=1) for name, head in self.heads.items()}
        return feats, probs

    def embed_batches(self, batches: Iterable[torch.Tensor]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Concatenate `embed` over an iterable of image batches (e.g. a DataLoader's `image` tensors)."""
        feats: list[np.ndarray] = []
        probs: dict[str, list[np.ndarray]] = {k: [] for k in self.heads}
        for images in batches:
            f, p = self.embed(images)
            feats.append(f.cpu().numpy())
            for k, v in p.items():
                probs[k].append(v.cpu().numpy())
        if not feats:
            raise ValueError("no images to embed")
        return np.concatenate(feats), {k: np.concatenate(v) for k, v in probs.items()}
