"""SpatialEmbedding inference: cluster seed and embedding maps into instance masks.

PointTrack's `Cluster.cluster_mots_wo_points`, per class seed channel:

1. Foreground = pixels whose seed exceeds `seed_thresh` (0.5). With several classes a pixel
   belongs to the foreground of its highest seed only, so classes never share pixels. A class
   whose foreground has at most `min_pixel` (160) pixels yields nothing.
2. While more than `min_pixel` foreground pixels are unclustered:
   pick the unclustered pixel with the highest seed; stop when its seed is below `threshold`
   (0.94); mark it clustered; its embedding `e_seed` is the centre and `s = exp(10 sigma_seed)`;
   the proposal is every foreground pixel with `exp(-sum s (e - e_seed)^2) > proposal_thresh`
   (0.5); accept it as an instance (score = the seed) when it has more than `min_pixel` pixels
   and more than `min_unclustered` (50 %) of them are still unclustered; in either case mark the
   proposal clustered.
3. Later instances take the pixels they share with earlier ones (the reference's instance map),
   so masks never overlap; an instance left without pixels is dropped.

Each iteration works on the foreground pixels only, in one vectorised step and one host sync.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from citytrack.models.spatial_embedding.embedding import decode, gaussian


@dataclass
class InstanceMasks:
    """Instances of one image: non-overlapping `masks (N, H, W)` bool, KITTI `classes (N,)` long, `scores (N,)` float."""

    masks: torch.Tensor
    classes: torch.Tensor
    scores: torch.Tensor

    def __len__(self) -> int:
        return int(self.masks.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the image."""
        return int(self.masks.shape[-2]), int(self.masks.shape[-1])

    def to(self, device: torch.device | str) -> InstanceMasks:
        return InstanceMasks(self.masks.to(device), self.classes.to(device), self.scores.to(device))

    @classmethod
    def empty(cls, height: int, width: int, device: torch.device | str = "cpu") -> InstanceMasks:
        return cls(
            torch.zeros(0, height, width, dtype=torch.bool, device=device),
            torch.zeros(0, dtype=torch.long, device=device),
            torch.zeros(0, dtype=torch.float32, device=device),
        )


class Clusterer:
    """Seed-driven clustering of one image's net output (thresholds as published for KITTI MOTS).

    Args:
        n_sigma: sigma channels of the net.
        seed_thresh: foreground seed threshold.
        threshold: lowest seed that may start an instance.
        min_pixel: smallest foreground / proposal (pixels); also the stopping count of unclustered pixels.
        proposal_thresh: Gaussian value above which a pixel joins the proposal.
        min_unclustered: share of a proposal that must still be unclustered to accept it.
    """

    def __init__(
        self,
        n_sigma: int = 2,
        seed_thresh: float = 0.5,
        threshold: float = 0.94,
        min_pixel: int = 160,
        proposal_thresh: float = 0.5,
        min_unclustered: float = 0.5,
    ) -> None:
        self.n_sigma = int(n_sigma)
        self.seed_thresh = float(seed_thresh)
        self.threshold = float(threshold)
        self.min_pixel = int(min_pixel)
        self.proposal_thresh = float(proposal_thresh)
        self.min_unclustered = float(min_unclustered)
        self.config: dict[str, Any] = {
            "n_sigma": self.n_sigma,
            "seed_thresh": self.seed_thresh,
            "threshold": self.threshold,
            "min_pixel": self.min_pixel,
            "proposal_thresh": self.proposal_thresh,
            "min_unclustered": self.min_unclustered,
        }

    @torch.no_grad()
    def __call__(
        self, prediction: torch.Tensor, classes: Sequence[int], min_pixel: int | None = None
    ) -> InstanceMasks:
        """Instances of one image's `(2 + n_sigma + C, H, W)` output; `classes` are the seed channels' KITTI ids.

        `min_pixel` overrides the configured count (e.g. scaled by the square of a downscale factor).
        """
        if prediction.ndim != 3 or prediction.shape[0] != 2 + self.n_sigma + len(classes):
            raise ValueError(
                f"expected a (2 + {self.n_sigma} + {len(classes)}, H, W) output, got {tuple(prediction.shape)}"
            )
        with torch.autocast(prediction.device.type, enabled=False):
            return self._cluster(prediction, classes, self.min_pixel if min_pixel is None else int(min_pixel))

    def _cluster(self, prediction: torch.Tensor, classes: Sequence[int], min_pixel: int) -> InstanceMasks:
        h, w = prediction.shape[-2:]
        e = decode(prediction, self.n_sigma)
        best_score, best_class = e.seed.max(0)
        instance_map = torch.zeros(h * w, dtype=torch.long, device=prediction.device)
        inst_classes: list[int] = []
        scores: list[float] = []
        for c, kitti_class in enumerate(classes):
            fg = torch.nonzero((best_class == c) & (best_score > self.seed_thresh)).squeeze(1)
            if fg.numel() <= min_pixel:
                continue
            labels, found = self._cluster_class(
                e.emb[:, fg], e.sigma[:, fg], e.seed[c, fg], min_pixel, first=len(scores) + 1
            )
            claimed = labels > 0
            instance_map[fg[claimed]] = labels[claimed]
            scores += found
            inst_classes += [int(kitti_class)] * len(found)
        if not scores:
            return InstanceMasks.empty(h, w, prediction.device)
        numbers = torch.arange(1, len(scores) + 1, device=prediction.device)
        masks = instance_map.view(1, h, w) == numbers.view(-1, 1, 1)
        keep = masks.flatten(1).any(1)
        return InstanceMasks(
            masks[keep],
            torch.tensor(inst_classes, dtype=torch.long, device=prediction.device)[keep],
            torch.tensor(scores, dtype=torch.float32, device=prediction.device)[keep],
        )

    def _cluster_class(
        self, emb: torch.Tensor, sigma: torch.Tensor, seed: torch.Tensor, min_pixel: int, first: int
    ) -> tuple[torch.Tensor, list[float]]:
        """Instance numbers (from `first`, 0 = none) of `P` foreground pixels and the accepted seeds' scores."""
        labels = torch.zeros(seed.shape[0], dtype=torch.long, device=seed.device)
        unclustered = torch.ones(seed.shape[0], dtype=torch.bool, device=seed.device)
        remaining = seed.shape[0]
        scores: list[float] = []
        while remaining > min_pixel:
            score_t, i = torch.where(unclustered, seed, -1.0).max(0)
            unclustered[i] = False
            dist = gaussian(emb, emb[:, i].view(1, 2), sigma[:, i].view(1, -1))[0]
            proposal = dist > self.proposal_thresh
            score, size, fresh = torch.stack(
                [score_t, proposal.sum().float(), (proposal & unclustered).sum().float()]
            ).tolist()
            if score < self.threshold:
                break
            if size > min_pixel and fresh / size > self.min_unclustered:
                labels[proposal] = first + len(scores)
                scores.append(float(score))
            unclustered &= ~proposal
            remaining -= 1 + int(fresh)
        return labels, scores
