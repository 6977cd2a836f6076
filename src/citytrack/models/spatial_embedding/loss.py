"""SpatialEmbedding loss (PointTrack's `MOTSSeg2Loss`) and the binary Lovász hinge it uses.

Targets are KITTI MOTS id maps `(B, H, W)`: `class * 1000 + instance`, 0 background, 10000
an ignore region. For each instance `k` (pixel set `S_k`) of a configured class:

- centre `C_k` = mean of the pixel coordinates over `S_k`; `sigma_k` = mean sigma over `S_k`;
- `phi_k(i) = exp(-sum_axis exp(10 sigma_k) (e_i - C_k)^2)` (`embedding.gaussian`);
- instance loss: Lovász hinge of `2 phi_k - 1` against `1[S_k]`;
- smoothness: `mean_{i in S_k} (sigma_i - sigma_k.detach())^2`, before the exp;
- seed, foreground: `foreground_weight * sum_{i in S_k} (seed_{c_k,i} - phi_k(i).detach())^2`.

Seed, background, per class channel `c`: `sum seed_c^2` over background pixels, plus
`other_class_weight * sum seed_c^2` over pixels of every other class (the reference's
"not car" pixels, weight 10). Ignore regions give no seed loss and are left out of the
Lovász hinge. Instance and smoothness losses are averaged over the image's instances, the
seed loss is divided by `H * W`; the total `w_inst L_inst + w_var L_var + w_seed L_seed` is
averaged over the batch. Instances of one image are handled together as `(K, H * W)` rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from citytrack.data.formats.kitti_mots import IGNORE_ID
from citytrack.models.spatial_embedding.embedding import decode, gaussian, pixel_coordinates


def lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovász extension of the Jaccard loss w.r.t. sorted errors, per row of `(K, N)` 0/1 labels."""
    gts = gt_sorted.sum(1, keepdim=True)
    intersection = gts - gt_sorted.cumsum(1)
    union = gts + (1.0 - gt_sorted).cumsum(1)  # >= 1 everywhere: the first pixel is in the union
    jaccard = 1.0 - intersection / union
    return torch.diff(jaccard, dim=1, prepend=torch.zeros_like(jaccard[:, :1]))


def lovasz_hinge(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary Lovász hinge (Berman et al. 2018) of each row: `(K, N)` logits and 0/1 labels -> `(K,)`.

    A 1-d input gives a scalar. The loss is the Lovász extension of the Jaccard loss evaluated at
    the hinge errors `relu(1 - logit * sign)`; its value does not depend on how ties are ordered,
    a row without positives costs its largest error, and `N = 0` costs 0 (with a gradient path).
    """
    flat = logits.ndim == 1
    logits2 = logits.unsqueeze(0) if flat else logits
    labels2 = (labels.unsqueeze(0) if flat else labels).to(logits2.dtype)
    if logits2.shape[1] == 0:
        out = logits2.sum(1) * 0.0
    else:
        errors = 1.0 - logits2 * (2.0 * labels2 - 1.0)
        errors_sorted, perm = torch.sort(errors, dim=1, descending=True)
        grad = lovasz_grad(labels2.gather(1, perm))
        out = (F.relu(errors_sorted) * grad).sum(1)
    return out[0] if flat else out


BACKGROUND, IGNORE, OTHER_CLASS = -1, -2, -3


def class_lookup(ids: torch.Tensor, classes: Sequence[int]) -> torch.Tensor:
    """Seed channel of each pixel: its class's index in `classes`, else `BACKGROUND`, `IGNORE` or `OTHER_CLASS`."""
    cls = torch.div(ids, 1000, rounding_mode="floor")
    out = torch.full_like(ids, OTHER_CLASS)
    out[ids == 0] = BACKGROUND
    out[ids == IGNORE_ID] = IGNORE
    for c, k in enumerate(classes):
        out[(cls == k) & (ids != IGNORE_ID)] = c
    return out


class SpatialEmbeddingLoss(nn.Module):
    """Instance (Lovász) + smoothness + seed loss of SpatialEmbedding; weights 1 / 10 / 1 as published.

    Args:
        n_sigma: sigma channels of the net (2: per axis).
        foreground_weight: weight of the foreground seed regression (10 for KITTI MOTS).
        other_class_weight: weight of the background seed loss on pixels of other classes (10).
        w_inst / w_var / w_seed: weights of the three terms.
    """

    def __init__(
        self,
        n_sigma: int = 2,
        foreground_weight: float = 10.0,
        other_class_weight: float = 10.0,
        w_inst: float = 1.0,
        w_var: float = 10.0,
        w_seed: float = 1.0,
    ) -> None:
        super().__init__()
        self.n_sigma = int(n_sigma)
        self.foreground_weight = float(foreground_weight)
        self.other_class_weight = float(other_class_weight)
        self.w_inst, self.w_var, self.w_seed = float(w_inst), float(w_var), float(w_seed)
        self.config: dict[str, Any] = {
            "n_sigma": self.n_sigma,
            "foreground_weight": self.foreground_weight,
            "other_class_weight": self.other_class_weight,
            "w_inst": self.w_inst,
            "w_var": self.w_var,
            "w_seed": self.w_seed,
        }

    def forward(
        self, prediction: torch.Tensor, ids: torch.Tensor, classes: Sequence[int]
    ) -> dict[str, torch.Tensor]:
        """Terms `loss`, `instance`, `variance`, `seed` of a batch.

        prediction `(B, 2 + n_sigma + C, H, W)`; ids `(B, H, W)` KITTI MOTS ids; classes: KITTI ids of the seed channels.
        """
        if prediction.shape[1] != 2 + self.n_sigma + len(classes):
            raise ValueError(
                f"prediction has {prediction.shape[1]} channels, expected 2 + {self.n_sigma} + {len(classes)}"
            )
        if ids.shape != prediction.shape[:1] + prediction.shape[2:]:
            raise ValueError(f"ids {tuple(ids.shape)} do not match the prediction {tuple(prediction.shape)}")
        with torch.autocast(
            prediction.device.type, enabled=False
        ):  # the loss runs in float32 under bf16 training
            terms = [self._image(p, i.long(), classes) for p, i in zip(prediction, ids, strict=True)]
        out = {k: torch.stack([t[k] for t in terms]).mean() for k in ("instance", "variance", "seed")}
        out["loss"] = self.w_inst * out["instance"] + self.w_var * out["variance"] + self.w_seed * out["seed"]
        return out

    def _image(
        self, prediction: torch.Tensor, ids: torch.Tensor, classes: Sequence[int]
    ) -> dict[str, torch.Tensor]:
        h, w = prediction.shape[-2:]
        e = decode(prediction, self.n_sigma)
        ids = ids.reshape(-1)
        channel = class_lookup(ids, classes)
        zero = prediction.sum() * 0.0  # keeps every output in the graph, as the reference does

        # background seeds: every channel to 0 on background, and on pixels of the other classes
        seed_loss = zero + e.seed[:, channel == BACKGROUND].pow(2).sum()
        for c in range(len(classes)):
            other = (channel == OTHER_CLASS) | ((channel >= 0) & (channel != c))
            seed_loss = seed_loss + self.other_class_weight * e.seed[c, other].pow(2).sum()

        fg = torch.nonzero(channel >= 0).squeeze(1)
        if fg.numel() == 0:
            return {"instance": zero, "variance": zero, "seed": seed_loss / (h * w)}
        inst_ids, inverse = torch.unique(ids[fg], return_inverse=True)
        k = len(inst_ids)
        member = torch.zeros(k, ids.numel(), dtype=torch.bool, device=ids.device)
        member[inverse, fg] = True  # (K, N): pixel i belongs to instance k
        counts = torch.bincount(inverse, minlength=k).unsqueeze(1).float()  # (K, 1)

        def instance_mean(values: torch.Tensor) -> torch.Tensor:  # (D, N) -> (K, D) means over each S_k
            return values.new_zeros(k, values.shape[0]).index_add_(0, inverse, values[:, fg].T) / counts

        xym = pixel_coordinates(h, w, prediction.device).reshape(2, -1)
        centres = instance_mean(xym)  # mean pixel coordinate (to_center)
        sigma_mean = instance_mean(e.sigma)  # (K, n_sigma)
        sq = (e.sigma[:, fg].T - sigma_mean.detach()[inverse]).pow(2).sum(1)  # (|fg|,)
        var = sq.new_zeros(k).index_add_(0, inverse, sq)
        var_loss = (var / (counts.squeeze(1) * self.n_sigma)).mean()

        phi = gaussian(e.emb, centres, sigma_mean)  # (K, N)
        valid = channel != IGNORE
        if bool(valid.all()):
            inst_loss = lovasz_hinge(2.0 * phi - 1.0, member).mean()
        else:
            inst_loss = lovasz_hinge(2.0 * phi[:, valid] - 1.0, member[:, valid]).mean()

        fg_phi = phi[inverse, fg].detach()
        fg_seed = e.seed[channel[fg], fg]
        seed_loss = seed_loss + self.foreground_weight * (fg_seed - fg_phi).pow(2).sum()
        return {"instance": inst_loss, "variance": var_loss, "seed": seed_loss / (h * w)}
