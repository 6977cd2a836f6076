"""PointTrack's input: instance crops and the point clouds sampled from them (Xu et al., ECCV 2020).

Each instance of a frame becomes a crop of its mask's box enlarged by `ex` on every side,
with a category map `mask_x` (0 background, 1 this instance, 2 another instance of the
same class). From a crop, `sample_points` draws, uniformly *with replacement*:

- `num_fg` foreground points (pixels of the instance): colour / 255 and the offset
  `((v - v_c), (u - u_c)) / 128` from the mask centroid;
- `num_env` environment points (every other pixel of the crop): the same five values plus
  the fixed 3-d embedding `CATEGORY_EMBEDDING[mask_x]` of what the pixel shows;
- the tight mask box `(x0, y0, x1, y1)` (inclusive pixel corners) divided by the image
  width and height, for the network's location embedding.

At training time N(0, `jitter`) is added to every offset. This follows
`detectRecog/PointTrack` (`MOTSInstanceMaskPool.py`, `MOTSTrackCarsValOffset`,
`MOTSTrackCarsTrain`): colour is in the image's own channel order (BGR as `cv2.imread`
gives it) and a crop with no environment pixel gets all-zero environment points.

Sampling is vectorised over all crops of a call: the crops' pixels are laid end to end,
foreground draws index the concatenated list of mask pixels, and an environment draw
`r < (crop area - mask area)` is mapped to the r-th non-mask pixel of its crop by one
`searchsorted` (no per-crop `nonzero` of the background).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

#: `config.py` of the reference: index 0 background, 1 the instance itself, 2 another instance
CATEGORY_EMBEDDING = np.array(
    [[0.94875249, 0.45567276, 0.16730145], [0.1, -0.1, 0.1], [0.5460203, -0.61925397, -2.63031583]],
    dtype=np.float32,
)
BACKGROUND, THIS_INSTANCE, OTHER_INSTANCE = 0, 1, 2
OFFSET_SCALE = 128.0
FG_CHANNELS = 5  # colour (3), offset v, u (2)
ENV_CHANNELS = 8  # colour (3), offset v, u (2), category embedding (3)


@dataclass
class InstanceCrop:
    """One instance cut from its frame: the enlarged box's pixels and category map."""

    image: np.ndarray  # (h, w, 3) uint8, the frame's channel order
    mask_x: np.ndarray  # (h, w) uint8: 0 background, 1 this instance, 2 other instance
    origin: tuple[int, int]  # (v0, u0) of the crop in the frame
    box: np.ndarray  # (4,) float32 tight mask box x0, y0, x1, y1 / (W, H, W, H)


@dataclass
class PointBatch:
    """Points of P instances; `*_vu` are the sampled pixels in crop coordinates (for checks and plots)."""

    fg: np.ndarray  # (P, num_fg, 5) float32
    env: np.ndarray  # (P, num_env, 8) float32
    box: np.ndarray  # (P, 4) float32
    fg_vu: np.ndarray  # (P, num_fg, 2) int64
    env_vu: np.ndarray  # (P, num_env, 2) int64, -1 where the crop has no environment pixel

    def __len__(self) -> int:
        return len(self.fg)

    def tensors(self) -> dict[str, torch.Tensor]:
        """The network's inputs as tensors: `fg`, `env`, `box`."""
        return {
            "fg": torch.from_numpy(self.fg),
            "env": torch.from_numpy(self.env),
            "box": torch.from_numpy(self.box),
        }


def mask_boxes_vu(masks: np.ndarray) -> np.ndarray:
    """Inclusive tight boxes `(N, 4)` `v0, u0, v1, u1` of `(N, H, W)` bool masks (one pass each axis)."""
    rows, cols = masks.any(axis=2), masks.any(axis=1)
    if not (rows.any(axis=1).all()):
        empty = np.flatnonzero(~rows.any(axis=1)).tolist()
        raise ValueError(f"masks {empty} are empty: PointTrack needs at least one pixel per instance")
    h, w = masks.shape[1:]
    v0, u0 = rows.argmax(axis=1), cols.argmax(axis=1)
    v1, u1 = h - 1 - rows[:, ::-1].argmax(axis=1), w - 1 - cols[:, ::-1].argmax(axis=1)
    return np.stack([v0, u0, v1, u1], axis=1).astype(np.int64)


def crop_instances(
    image: np.ndarray,
    masks: np.ndarray | torch.Tensor,
    classes: Sequence[int] | np.ndarray | None = None,
    ex: float = 0.2,
) -> list[InstanceCrop]:
    """Crops of every instance of one frame.

    Args:
        image: `(H, W, 3)` uint8 frame (BGR as read by OpenCV: the reference's order).
        masks: `(N, H, W)` bool instance masks, each non-empty.
        classes: `(N,)` class ids; "other instance" (`mask_x == 2`) means another mask of the
            same class, as in the reference, which builds one database per class. None = one class.
        ex: the box is enlarged by `ex` times its height (width) above and below (left and right).
    """
    if isinstance(masks, torch.Tensor):
        masks = masks.detach().cpu().numpy()
    masks = np.asarray(masks).astype(bool, copy=False)
    image = np.asarray(image)
    if masks.ndim != 3:
        raise ValueError(f"masks must be (N, H, W), got shape {masks.shape}")
    if image.ndim != 3 or image.shape[:2] != masks.shape[1:] or image.shape[2] != 3:
        raise ValueError(f"image {image.shape} must be (H, W, 3) with the masks' size {masks.shape[1:]}")
    n, h, w = masks.shape
    if n == 0:
        return []
    classes_arr = (
        np.zeros(n, dtype=np.int64) if classes is None else np.asarray(classes, dtype=np.int64).reshape(-1)
    )
    if len(classes_arr) != n:
        raise ValueError(f"{len(classes_arr)} classes for {n} masks")
    boxes = mask_boxes_vu(masks)
    # enlarged crop [a0, a1) x [b0, b1), the later reference version (clipped to the image, not to H - 1)
    vlen = boxes[:, 2] + 1 - boxes[:, 0]
    ulen = boxes[:, 3] + 1 - boxes[:, 1]
    dv, du = (ex * vlen).astype(np.int64), (ex * ulen).astype(np.int64)
    a0, a1 = np.maximum(boxes[:, 0] - dv, 0), np.minimum(boxes[:, 2] + 1 + dv, h)
    b0, b1 = np.maximum(boxes[:, 1] - du, 0), np.minimum(boxes[:, 3] + 1 + du, w)
    # per class: how many masks cover each pixel; a pixel outside instance k but covered is "other"
    cover = {int(c): masks[classes_arr == c].sum(axis=0, dtype=np.uint8) for c in np.unique(classes_arr)}
    norm = np.array([w, h, w, h], dtype=np.float32)
    xyxy = boxes[:, [1, 0, 3, 2]].astype(np.float32) / norm
    crops = []
    for k in range(n):
        own = masks[k, a0[k] : a1[k], b0[k] : b1[k]]
        covered = cover[int(classes_arr[k])][a0[k] : a1[k], b0[k] : b1[k]]
        mask_x = np.where(own, THIS_INSTANCE, np.where(covered > 0, OTHER_INSTANCE, BACKGROUND)).astype(
            np.uint8
        )
        crops.append(
            InstanceCrop(
                image=np.ascontiguousarray(image[a0[k] : a1[k], b0[k] : b1[k]]),
                mask_x=mask_x,
                origin=(int(a0[k]), int(b0[k])),
                box=xyxy[k],
            )
        )
    return crops


def sample_points(
    crops: Sequence[InstanceCrop],
    rng: np.random.Generator,
    num_fg: int = 1000,
    num_env: int = 500,
    jitter: float = 0.0,
) -> PointBatch:
    """Draw the foreground and environment points of every crop (with replacement), all crops at once.

    `jitter` is the standard deviation of the Gaussian noise added to the offsets (the
    reference's 0.001 at training time, 0 at test time). The same `rng` state gives the same points.
    """
    p = len(crops)
    if p == 0:
        return PointBatch(
            np.zeros((0, num_fg, FG_CHANNELS), np.float32),
            np.zeros((0, num_env, ENV_CHANNELS), np.float32),
            np.zeros((0, 4), np.float32),
            np.zeros((0, num_fg, 2), np.int64),
            np.zeros((0, num_env, 2), np.int64),
        )
    heights = np.array([c.mask_x.shape[0] for c in crops], dtype=np.int64)
    widths = np.array([c.mask_x.shape[1] for c in crops], dtype=np.int64)
    areas = heights * widths
    start = np.concatenate([[0], np.cumsum(areas)[:-1]])  # each crop's first pixel in the flat layout
    flat_x = np.concatenate([c.mask_x.reshape(-1) for c in crops])
    flat_rgb = np.concatenate([c.image.reshape(-1, 3) for c in crops])

    # mask pixels of every crop, in crop order then row-major order
    fg_pix = np.flatnonzero(flat_x == THIS_INSTANCE)
    owner = np.searchsorted(start, fg_pix, side="right") - 1
    count = np.bincount(owner, minlength=p)
    if (count == 0).any():
        raise ValueError(f"crops {np.flatnonzero(count == 0).tolist()} have no instance pixel (mask_x == 1)")
    first = np.concatenate([[0], np.cumsum(count)[:-1]])  # each crop's first entry in fg_pix
    local = fg_pix - start[owner]
    v_all, u_all = local // widths[owner], local % widths[owner]
    vc = np.bincount(owner, weights=v_all, minlength=p) / count
    uc = np.bincount(owner, weights=u_all, minlength=p) / count

    # foreground: uniform over the crop's mask pixels
    pick = first[:, None] + rng.integers(0, count[:, None], size=(p, num_fg))
    fg_global = fg_pix[pick]

    # environment: the r-th non-mask pixel of crop k is r + #{mask pixels j of k: local_j - rank_j <= r}
    n_env = areas - count
    r = rng.integers(0, np.maximum(n_env, 1)[:, None], size=(p, num_env))
    rank = np.arange(len(fg_pix)) - first[owner]
    key = start[owner] + local - rank  # sorted: within a crop non-decreasing, crops in disjoint ranges
    before = np.searchsorted(key, start[:, None] + r, side="right") - first[:, None]
    env_global = np.minimum(start[:, None] + r + before, len(flat_x) - 1)  # (clip: crops with no env pixel)

    def vu(global_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        loc = global_idx - start[:, None]
        return loc // widths[:, None], loc % widths[:, None]

    fv, fu = vu(fg_global)
    ev, eu = vu(env_global)
    fg = np.empty((p, num_fg, FG_CHANNELS), dtype=np.float32)
    fg[..., :3] = flat_rgb[fg_global] / np.float32(255.0)
    fg[..., 3] = (fv - vc[:, None]) / OFFSET_SCALE
    fg[..., 4] = (fu - uc[:, None]) / OFFSET_SCALE
    env = np.empty((p, num_env, ENV_CHANNELS), dtype=np.float32)
    env[..., :3] = flat_rgb[env_global] / np.float32(255.0)
    env[..., 3] = (ev - vc[:, None]) / OFFSET_SCALE
    env[..., 4] = (eu - uc[:, None]) / OFFSET_SCALE
    env[..., 5:] = CATEGORY_EMBEDDING[flat_x[env_global]]
    if jitter > 0:
        fg[..., 3:5] += rng.normal(0.0, jitter, size=(p, num_fg, 2)).astype(np.float32)
        env[..., 3:5] += rng.normal(0.0, jitter, size=(p, num_env, 2)).astype(np.float32)
    env_vu = np.stack([ev, eu], axis=-1)
    no_env = n_env == 0
    if no_env.any():  # the mask fills its whole crop: the reference feeds zeros
        env[no_env] = 0.0
        env_vu[no_env] = -1
    box = np.stack([c.box for c in crops]).astype(np.float32)
    return PointBatch(fg, env, box, np.stack([fv, fu], axis=-1), env_vu)


@dataclass
class PointSampler:
    """The sampling settings shared by training (the datamodule) and inference (`PointTrackModule.embed`).

    `ex`: box enlargement per side; `num_fg` / `num_env`: points per instance (1000 + 500 =
    the reference's 1500 at fg:bg 2:1); `jitter`: offset noise at training time.
    """

    ex: float = 0.2
    num_fg: int = 1000
    num_env: int = 500
    jitter: float = 0.001

    def crops(
        self,
        image: np.ndarray,
        masks: np.ndarray | torch.Tensor,
        classes: Sequence[int] | np.ndarray | None = None,
    ) -> list[InstanceCrop]:
        return crop_instances(image, masks, classes, ex=self.ex)

    def sample(
        self, crops: Sequence[InstanceCrop], rng: np.random.Generator, train: bool = False
    ) -> PointBatch:
        return sample_points(crops, rng, self.num_fg, self.num_env, self.jitter if train else 0.0)

    @property
    def config(self) -> dict[str, float | int]:
        return {"ex": self.ex, "num_fg": self.num_fg, "num_env": self.num_env, "jitter": self.jitter}
