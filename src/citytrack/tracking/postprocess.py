"""Offline post-processing of tracking results, as used by the AI City Challenge winners.

All functions take and return MOTChallenge tables `(N, 10)` (`formats/mot.py` columns
`frame, id, x, y, w, h, conf, cls, vis, z`), sorted by `(id, frame)` on return.

- `linear_interpolation`: fill gaps of at most `max_gap` missing frames inside a track.
- `gaussian_smoothed_interpolation` (GSI, StrongSORT): interpolate, then replace each
  track's boxes by a Gaussian-process regression over time (RBF kernel, length scale
  `tau * log(tau^3 / len)` clipped to `[1 / tau, tau^2]`).
- `remove_border_boxes`: drop boxes touching the image border (cut-off people).
- `filter_short_tracks`: drop tracks with fewer than `min_length` boxes.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from citytrack.data.formats.mot import FRAME, ID, H, W, X, Y


def _check(table: np.ndarray) -> np.ndarray:
    table = np.asarray(table, dtype=np.float64)
    if table.ndim != 2 or table.shape[1] < 6:
        raise ValueError(f"expected a MOT table (N, 10), got shape {table.shape}")
    return table


def _sorted_by_track(table: np.ndarray) -> np.ndarray:
    return table[np.lexsort((table[:, FRAME], table[:, ID]))]


def _track_slices(table: np.ndarray) -> list[slice]:
    """Slices of consecutive rows of each id in a table sorted by (id, frame)."""
    if not len(table):
        return []
    starts = np.flatnonzero(np.r_[True, np.diff(table[:, ID]) != 0])
    ends = np.r_[starts[1:], len(table)]
    return [slice(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def linear_interpolation(table: np.ndarray, max_gap: int = 20) -> np.ndarray:
    """Fill missing frames of each track by linear interpolation of the box.

    A gap of `g` missing frames (`1 <= g <= max_gap`) between two boxes of the same id is
    filled; interpolated rows copy the confidence and extra columns of the earlier box.
    """
    table = _sorted_by_track(_check(table))
    if not len(table):
        return table
    frames, ids = table[:, FRAME], table[:, ID]
    step = np.diff(frames)
    gaps = np.flatnonzero((ids[1:] == ids[:-1]) & (step > 1) & (step <= max_gap + 1))
    if not len(gaps):
        return table
    counts = (step[gaps] - 1).astype(np.int64)
    left = np.repeat(gaps, counts)
    # offset 1..g within each gap
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + 1
    frac = offset / np.repeat(step[gaps], counts)
    new = table[left].copy()
    new[:, FRAME] = frames[left] + offset
    new[:, X : H + 1] = table[left, X : H + 1] + frac[:, None] * (table[left + 1, X : H + 1] - table[left, X : H + 1])
    return _sorted_by_track(np.concatenate([table, new]))


def gaussian_smooth(table: np.ndarray, tau: float = 10.0, noise: float = 1.0) -> np.ndarray:
    """Smooth each track's `x, y, w, h` over time by Gaussian-process regression.

    The posterior mean `K (K + noise I)^-1 y` with an RBF kernel of length scale
    `clip(tau * log(tau^3 / n), 1 / tau, tau^2)` (StrongSORT's GSI); longer tracks get a
    shorter length scale. `noise` is the observation noise relative to the unit kernel
    amplitude (StrongSORT uses a near-zero value, which only interpolates).
    """
    table = _sorted_by_track(_check(table)).copy()
    for part in _track_slices(table):
        n = part.stop - part.start
        if n < 3:
            continue
        t = table[part, FRAME]
        length = float(np.clip(tau * np.log(tau**3 / n), 1.0 / tau, tau**2))
        kernel = np.exp(-0.5 * np.square((t[:, None] - t[None, :]) / length))
        y = table[part, X : H + 1]
        mean = y.mean(axis=0)
        factor = cho_factor(kernel + noise * np.eye(n), lower=True)
        table[part, X : H + 1] = mean + kernel @ cho_solve(factor, y - mean)
    return table


def gaussian_smoothed_interpolation(
    table: np.ndarray, max_gap: int = 20, tau: float = 10.0, noise: float = 1.0
) -> np.ndarray:
    """GSI (StrongSORT): linear interpolation of gaps, then Gaussian-process smoothing."""
    return gaussian_smooth(linear_interpolation(table, max_gap=max_gap), tau=tau, noise=noise)


def remove_border_boxes(table: np.ndarray, image_width: int, image_height: int, margin: float = 0.0) -> np.ndarray:
    """Drop boxes within `margin` pixels of (or beyond) any image border."""
    if image_width <= 0 or image_height <= 0:
        raise ValueError(
            f"remove_border_boxes needs the image size, got {image_width}x{image_height} "
            "(a sequence without seqinfo.ini or images has none)"
        )
    table = _check(table)
    x, y, w, h = table[:, X], table[:, Y], table[:, W], table[:, H]
    inside = (x > margin) & (y > margin) & (x + w < image_width - margin) & (y + h < image_height - margin)
    return table[inside]


def filter_short_tracks(table: np.ndarray, min_length: int = 10) -> np.ndarray:
    """Drop every track with fewer than `min_length` boxes (mostly false positives)."""
    table = _check(table)
    if not len(table):
        return table
    _, inverse, counts = np.unique(table[:, ID], return_inverse=True, return_counts=True)
    return table[counts[inverse] >= min_length]


def postprocess(
    table: np.ndarray,
    image_size: tuple[int, int] | None = None,
    interpolation: str | None = None,
    max_gap: int = 20,
    tau: float = 10.0,
    noise: float = 1.0,
    border_margin: float | None = None,
    min_track_length: int = 0,
) -> np.ndarray:
    """Apply the configured steps in the winners' order: short tracks, border, interpolation.

    `interpolation` is None, "linear" or "gsi"; `image_size` is `(width, height)` and is
    needed when `border_margin` is set.
    """
    if min_track_length > 0:
        table = filter_short_tracks(table, min_track_length)
    if border_margin is not None:
        if image_size is None:
            raise ValueError("remove_border_boxes needs the image size")
        table = remove_border_boxes(table, image_size[0], image_size[1], border_margin)
    if interpolation == "linear":
        table = linear_interpolation(table, max_gap=max_gap)
    elif interpolation == "gsi":
        table = gaussian_smoothed_interpolation(table, max_gap=max_gap, tau=tau, noise=noise)
    elif interpolation not in (None, "none"):
        raise ValueError(f"interpolation must be None, 'linear' or 'gsi', got {interpolation!r}")
    return _sorted_by_track(_check(table))
