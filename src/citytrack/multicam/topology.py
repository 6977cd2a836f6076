"""Spatio-temporal constraints between far-apart vehicle cameras (AI City 2019 Track 1).

A vehicle seen by camera A and later by camera B must have had the time to drive from where it
left A to where it entered B, must have left A heading towards B and arrived at B coming from
A's side; two cameras that see it at the same time must put it at the same ground point. These
tests decide which tracklet pairs may ever be linked (`feasible_pairs`); appearance only ranks
the pairs that pass (`vehicle_link.py`).

The travel model is learned from training ground truth (`TravelModel.fit`: quantiles of the
effective speed `distance / gap` between consecutive camera visits, widened by margins), so it
transfers to cities whose cameras it never saw; `CameraTopology` adds what a user knows about a
real deployment: which camera pairs connect at all and their travel-time windows (seconds).
Times are scene seconds, i.e. with the `cam_timestamp` offsets applied; ground points are
metres (`ground_scale` converts a GPS calibration, as AI City 2019's real files map
latitude/longitude).

    python -m citytrack.multicam.topology fit <dataset or SXX folders...> [--out FILE] [--zones roi --topology-out FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

EARTH_RADIUS_M = 6_371_000.0


@dataclass
class Tracklet:
    """One camera's track of one vehicle, summarised for cross-camera linking.

    `times` are scene seconds of its frames; `ground` the `(N, 2)` metric ground points of its
    boxes (NaN where a box bottom maps above the horizon); `feature` the L2-normalised mean
    appearance (None without ReID); `rows` indexes the runner's per-camera output table;
    `entry_zone` / `exit_zone` the camera's zone (`zones.py`) of its first / last box: 0 inside the
    view, -1 when the camera has no zone map.
    """

    camera: int
    track_id: int
    frames: np.ndarray
    times: np.ndarray
    ground: np.ndarray
    feature: np.ndarray | None = None
    rows: np.ndarray | None = None
    label: int = -1  # ground-truth id when known (fitting, diagnostics)
    entry_zone: int = -1
    exit_zone: int = -1
    _ends_cache: dict[tuple[bool, float], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    @property
    def start(self) -> float:
        return float(self.times[0])

    @property
    def end(self) -> float:
        return float(self.times[-1])

    def _ends(self, first: bool, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        """Ground point at the first / last time and the velocity, from a line fitted over the
        first / last `seconds` (robust to one box's noise, exact for a steady drive); computed once
        per tracklet, since every pair test asks for it."""
        key = (first, float(seconds))
        if key not in self._ends_cache:
            self._ends_cache[key] = self._fit_end(first, seconds)
        return self._ends_cache[key]

    def _fit_end(self, first: bool, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        ok = np.isfinite(self.ground).all(1)
        t, g = self.times[ok], self.ground[ok]
        if len(t) == 0:
            return np.full(2, np.nan), np.zeros(2)
        sel = t <= t[0] + seconds if first else t >= t[-1] - seconds
        ts, gs = t[sel], g[sel]
        if len(ts) < 2 or ts[-1] - ts[0] < 1e-6:
            return np.median(gs, axis=0), np.zeros(2)
        at = ts[0] if first else ts[-1]
        fits = [np.polyfit(ts - at, gs[:, k], 1) for k in range(2)]
        return np.array([f[1] for f in fits]), np.array([f[0] for f in fits])

    def entry(self, seconds: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Ground point where it entered the view and its velocity (m/s) over the first `seconds`."""
        return self._ends(True, seconds)

    def exit(self, seconds: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Ground point where it left the view and its velocity over the last `seconds`."""
        return self._ends(False, seconds)

    def position_at(self, t: np.ndarray) -> np.ndarray:
        """Ground points `(len(t), 2)` interpolated at scene times `t` (NaN outside the tracklet)."""
        ok = np.isfinite(self.ground).all(1)
        out = np.full((len(t), 2), np.nan)
        if ok.sum() < 1:
            return out
        tt, gg = self.times[ok], self.ground[ok]
        inside = (t >= tt[0]) & (t <= tt[-1])
        for k in range(2):
            out[inside, k] = np.interp(t[inside], tt, gg[:, k])
        return out


@dataclass
class TravelModel:
    """How fast vehicles get from one camera's exit to another camera's entry, and the other
    physical tests (see the module docstring).

    A sequential pair (B starts `gap > 0` s after A ends, exit-to-entry distance `d` m) is
    feasible when `d / v_max - slack <= gap <= d / v_min + max_wait + slack`; an overlapping pair
    when its median ground distance over the shared times is at most `overlap_distance`.
    `direction_cos`: the exit velocity at A and the entry velocity at B must both point along the
    A->B displacement with cosine above it (vehicles do not reverse); skipped for vehicles slower
    than `min_speed` or pairs closer than `min_direction_distance`. One camera's tracks are one
    vehicle's fragments when the later starts at most `same_camera_max_gap` s after the earlier
    ends, never when both run at once, unless their ground points stay within
    `same_camera_duplicate` m (a part box riding on its vehicle's box; 0: never); with zone maps, up
    to `same_camera_interior_gap` s (when larger) if the earlier ended and the later started inside
    the view, outside every entry/exit zone: the vehicle was lost in view (occluded, stopped), it did
    not drive out and back.

    Feasible pairs also get a soft cost (`pair_cost`), in units of what true pairs show in the
    training ground truth: overlapping pairs their ground distance over `overlap_scale` (the true
    pairs' median); sequential pairs `|log(v_needed / v_seen)|` over `speed_ratio_scale`, where
    `v_needed = d / gap` and `v_seen` is the faster of the exit and entry speeds (vehicles keep
    their cruise speed between cameras, so a pair that needs another speed is less likely).
    """

    v_min: float = 2.0
    v_max: float = 25.0
    max_wait: float = 10.0
    slack: float = 1.0
    overlap_distance: float = 8.0
    overlap_tolerance: float = 0.5
    direction_cos: float = -0.2
    min_speed: float = 1.0
    min_direction_distance: float = 15.0
    same_camera_max_gap: float = 5.0
    same_camera_distance: float = 15.0
    same_camera_duplicate: float = 0.0
    same_camera_interior_gap: float = 0.0
    overlap_scale: float = 4.0
    speed_ratio_scale: float = 0.12
    fitted_on: dict[str, Any] = field(default_factory=dict)

    # ---------------------------------------------------------------- learning
    @classmethod
    def fit(cls, tracklets: Sequence[Tracklet], quantile: float = 0.01, margin: float = 0.25, **overrides: Any) -> TravelModel:
        """Learn `v_min`, `v_max` and `max_wait` from ground-truth tracklets (`label` = vehicle id).

        Consecutive visits of one vehicle to two cameras give effective speeds `d / gap`: `v_max`
        is their upper `quantile` widened by `margin`, `v_min` the lower one narrowed by it;
        `max_wait` the upper `quantile` of the stops seen (the gap beyond driving on at the vehicle's
        own exit or entry speed), widened by `margin`.
        Overlapping visits give the ground distance two cameras see a vehicle apart at once.
        """
        by_id: dict[int, list[Tracklet]] = {}
        for t in tracklets:
            if t.label >= 0:
                by_id.setdefault(t.label, []).append(t)
        speeds, overlaps, ratios, waits = [], [], [], []
        for visits in by_id.values():
            visits = sorted(visits, key=lambda t: t.start)
            for a, b in pairwise(visits):
                if a.camera == b.camera:
                    continue
                gap = b.start - a.end
                if gap > 0.3:
                    (pa, va), (pb, vb) = a.exit(), b.entry()
                    d = float(np.linalg.norm(pb - pa))
                    if np.isfinite(d) and d > 5.0:
                        speeds.append(d / gap)
                        seen = max(float(np.linalg.norm(va)), float(np.linalg.norm(vb)), 1.0)
                        ratios.append(abs(np.log(d / gap / seen)))
                        waits.append(max(gap - d / seen, 0.0))  # time beyond driving on at the seen speed
                else:
                    dist = overlap_distance(a, b)
                    if np.isfinite(dist):
                        overlaps.append(dist)
        if len(speeds) < 5:
            raise ValueError(f"TravelModel.fit: only {len(speeds)} camera-to-camera transitions in the ground truth; "
                             "need at least 5 (more scenes, longer videos)")
        speeds_a = np.asarray(speeds)
        v_max = float(np.quantile(speeds_a, 1 - quantile) * (1 + margin))
        v_min = float(max(np.quantile(speeds_a, quantile) * (1 - margin), 0.5))
        params: dict[str, Any] = {"v_max": v_max, "v_min": v_min}
        params["speed_ratio_scale"] = float(max(np.median(ratios), 0.02))
        params["max_wait"] = float(np.quantile(waits, 1 - quantile) * (1 + margin))
        if overlaps:
            params["overlap_distance"] = float(max(np.quantile(overlaps, 1 - quantile) * (1 + margin), 3.0))
            params["overlap_scale"] = float(max(np.median(overlaps), 0.5))
        params["fitted_on"] = {"transitions": len(speeds), "overlaps": len(overlaps),
                               "speed_quantiles": [round(float(q), 2) for q in np.quantile(speeds_a, [0.01, 0.5, 0.99])]}
        params.update(overrides)
        return cls(**params)

    def to_json(self, path: str | Path) -> None:
        from citytrack.utils.io import atomic_open

        with atomic_open(Path(path)) as fh:
            json.dump(asdict(self), fh, indent=1)

    @classmethod
    def from_json(cls, path: str | Path) -> TravelModel:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: travel model not found")
        try:
            data = json.loads(path.read_text())
            return cls(**data)
        except (json.JSONDecodeError, TypeError) as err:
            raise ValueError(f"{path}: not a travel model ({err})") from None


@dataclass
class CameraTopology:
    """What is known about a deployment's road network: which camera pairs connect and how long
    the drive between them takes (seconds, `[lo, hi]`), e.g. from the city's map or from a
    labelled period. `pairs` keys are `"cA,cB"` camera numbers (either order); with `only_pairs`
    every pair not listed is refused (the AI City 2019 winners' hand-made topology).

    `zone_links` refine a pair by entry/exit zones (`zones.py`), directed: `"cA:i>cB:j": [lo, hi]`
    says a vehicle leaving camera A through zone i enters camera B through zone j `lo`..`hi` s
    later. When vehicles drive from A to B along zone links, a visit that left A through a zone and
    one that entered B through a zone link only along a listed link (the AI City 2021 winner's
    crossroad-zone gate); a track lost or found inside the view (zone 0), or one that left by the
    zone it came in by (a fragment), keeps the travel model's tests. Learned by `fit_zone_links`.
    """

    pairs: dict[tuple[int, int], tuple[float, float]] = field(default_factory=dict)
    only_pairs: bool = False
    zone_links: dict[tuple[int, int, int, int], tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, pairs: Mapping[str, Sequence[float]] | None, only_pairs: bool = False,
                    zone_links: Mapping[str, Sequence[float]] | None = None, file: str | Path | None = None) -> CameraTopology:
        """From config mappings, or from a json `file` (`to_json`; config entries are added to it)."""
        if file:
            path = Path(file)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: camera topology not found")
            try:
                data = json.loads(path.read_text())
                pairs = {**data.get("pairs", {}), **(pairs or {})}
                zone_links = {**data.get("zone_links", {}), **(zone_links or {})}
                only_pairs = bool(only_pairs or data.get("only_pairs", False))
            except (json.JSONDecodeError, AttributeError) as err:
                raise ValueError(f"{path}: not a camera topology ({err})") from None
        parsed: dict[tuple[int, int], tuple[float, float]] = {}
        for key, window in (pairs or {}).items():
            try:
                a, b = (_camera_number(p) for p in str(key).split(","))
            except ValueError:
                raise ValueError(f"camera topology: pair {key!r}: {window!r} must be 'cA,cB': [lo, hi] seconds") from None
            parsed[(min(a, b), max(a, b))] = _window(key, window)
        links: dict[tuple[int, int, int, int], tuple[float, float]] = {}
        for key, window in (zone_links or {}).items():
            try:
                (ca, za), (cb, zb) = (str(side).split(":") for side in str(key).split(">"))
                link = (_camera_number(ca), int(za), _camera_number(cb), int(zb))
            except ValueError:
                raise ValueError(f"camera topology: zone link {key!r} must be 'cA:zone>cB:zone': [lo, hi] seconds") from None
            links[link] = _window(key, window)
        return cls(parsed, bool(only_pairs), links)

    def to_json(self, path: str | Path) -> None:
        from citytrack.utils.io import atomic_open

        data = {"pairs": {f"c{a:03d},c{b:03d}": list(w) for (a, b), w in sorted(self.pairs.items())},
                "only_pairs": self.only_pairs,
                "zone_links": {f"c{a:03d}:{i}>c{b:03d}:{j}": list(w) for (a, i, b, j), w in sorted(self.zone_links.items())}}
        with atomic_open(Path(path)) as fh:
            json.dump(data, fh, indent=1)

    def window(self, a: int, b: int) -> tuple[float, float] | None:
        return self.pairs.get((min(a, b), max(a, b)))

    def zone_gated(self, a: int, b: int) -> bool:
        """Whether vehicles drive from camera `a` to camera `b` along zone links, so only those links join them."""
        return any(ca == a and cb == b for ca, _, cb, _ in self.zone_links)

    def zone_window(self, first: Tracklet, second: Tracklet) -> tuple[float, float] | None | bool:
        """For `first` seen before `second` on two cameras: the travel-time window of the zone link
        `first` left by and `second` came in by; None when the cameras are zone-linked but not by
        these zones (refused); False when zones cannot decide (no links from `first`'s camera to
        `second`'s, or a track without a zone end: lost or found inside the view, or one that left by
        the zone it came in by, a fragment)."""
        left, came = first.exit_zone, second.entry_zone
        if left <= 0 or came <= 0 or left == first.entry_zone or came == second.exit_zone:
            return False
        if not self.zone_gated(first.camera, second.camera):
            return False
        return self.zone_links.get((first.camera, left, second.camera, came))


def _camera_number(text: str) -> int:
    return int(str(text).strip().lstrip("c"))


def _window(key: Any, window: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in window)
    except (ValueError, TypeError):
        raise ValueError(f"camera topology: {key!r}: {window!r} must be [lo, hi] seconds") from None
    if lo > hi:
        raise ValueError(f"camera topology: {key!r} has lo {lo} > hi {hi}")
    return lo, hi


def fit_zone_links(tracklets: Sequence[Tracklet], margin: float = 0.25, slack: float = 0.0,
                   min_count: int = 1, overlap_tolerance: float = 0.5) -> dict[tuple[int, int, int, int], tuple[float, float]]:
    """Zone links seen in ground-truth tracklets (`label` = vehicle id, zones set): for each
    `(camera A, exit zone, camera B, entry zone)` of a vehicle's visit and any later visit that at
    least `min_count` vehicles drove, the window
    from the shortest to the longest gap seen, widened by `margin` of itself and `slack` seconds
    (`pair_feasible` adds the travel model's `slack` on top, as for camera-pair windows).
    Visits that overlap in time (overlapping views) and visits without a zone are not links."""
    by_id: dict[int, list[Tracklet]] = {}
    for t in tracklets:
        if t.label >= 0:
            by_id.setdefault(t.label, []).append(t)
    gaps: dict[tuple[int, int, int, int], list[float]] = {}
    for visits in by_id.values():
        visits = sorted(visits, key=lambda t: t.start)
        # every later visit, not only the next: linking asks every pair of a cluster to be feasible,
        # so A -> C must be a link when vehicles drive A -> B -> C
        for k, a in enumerate(visits):
            for b in visits[k + 1:]:
                gap = b.start - a.end
                if a.camera != b.camera and gap > overlap_tolerance and a.exit_zone > 0 and b.entry_zone > 0:
                    gaps.setdefault((a.camera, a.exit_zone, b.camera, b.entry_zone), []).append(gap)
    out = {}
    for key, g in sorted(gaps.items()):
        if len(g) >= min_count:
            lo, hi = min(g), max(g)
            spread = margin * (hi - lo)
            out[key] = (round(max(lo - spread - slack, 0.0), 2), round(hi + spread + slack, 2))
    return out


def overlap_distance(a: Tracklet, b: Tracklet, tolerance: float = 0.5) -> float:
    """Median ground distance of two tracklets over the scene times both cover; for tracklets that
    only come within `tolerance` seconds of each other, the distance between the facing ends (NaN
    when they are further apart in time)."""
    lo, hi = max(a.start, b.start), min(a.end, b.end)
    if hi < lo - tolerance:
        return float("nan")
    if hi < lo:
        first, second = (a, b) if a.start <= b.start else (b, a)
        return float(np.linalg.norm(second.entry()[0] - first.exit()[0]))
    t = np.concatenate([a.times[(a.times >= lo) & (a.times <= hi)], b.times[(b.times >= lo) & (b.times <= hi)]])
    d = np.linalg.norm(a.position_at(t) - b.position_at(t), axis=1)
    d = d[np.isfinite(d)]
    return float(np.median(d)) if len(d) else float("nan")


def _heading_ok(v: np.ndarray, disp: np.ndarray, model: TravelModel) -> bool:
    speed = float(np.linalg.norm(v))
    if speed < model.min_speed:
        return True
    return float(v @ disp) / (speed * float(np.linalg.norm(disp))) > model.direction_cos


def pair_feasible(a: Tracklet, b: Tracklet, model: TravelModel, topology: CameraTopology | None = None) -> bool:
    """Whether tracklets `a` and `b` can be the same vehicle under the travel model and topology."""
    first, second = (a, b) if a.start <= b.start else (b, a)
    gap = second.start - first.end
    if a.camera == b.camera:
        if gap <= 0:  # one camera sees two tracks at once: two vehicles, unless one box rides on the other
            return bool(model.same_camera_duplicate > 0
                        and overlap_distance(a, b, model.overlap_tolerance) <= model.same_camera_duplicate)
        lost_in_view = first.exit_zone == 0 and second.entry_zone == 0
        if gap > model.same_camera_max_gap and not (lost_in_view and gap <= model.same_camera_interior_gap):
            return False
        d = float(np.linalg.norm(second.entry()[0] - first.exit()[0]))
        return not np.isfinite(d) or d <= model.same_camera_distance + model.v_max * gap
    window = topology.window(a.camera, b.camera) if topology is not None else None
    if topology is not None and topology.only_pairs and window is None:
        return False
    if gap <= model.overlap_tolerance:
        dist = overlap_distance(a, b, model.overlap_tolerance)
        return bool(np.isfinite(dist) and dist <= model.overlap_distance)
    zone_window = topology.zone_window(first, second) if topology is not None and topology.zone_links else False
    if zone_window is not False:
        return zone_window is not None and zone_window[0] - model.slack <= gap <= zone_window[1] + model.slack
    if window is not None:
        return window[0] - model.slack <= gap <= window[1] + model.slack
    (p_exit, v_exit), (p_entry, v_entry) = first.exit(), second.entry()
    disp = p_entry - p_exit
    d = float(np.linalg.norm(disp))
    if not np.isfinite(d):
        return True  # no ground point (above the horizon): time alone cannot refuse it
    if not d / model.v_max - model.slack <= gap <= d / model.v_min + model.max_wait + model.slack:
        return False
    if d >= model.min_direction_distance:
        return _heading_ok(v_exit, disp, model) and _heading_ok(v_entry, disp, model)
    return True


def pair_cost(a: Tracklet, b: Tracklet, model: TravelModel) -> float:
    """Soft space-time cost of a feasible pair (see `TravelModel`); 0 for one camera's fragments."""
    if a.camera == b.camera:
        return 0.0
    first, second = (a, b) if a.start <= b.start else (b, a)
    gap = second.start - first.end
    if gap <= model.overlap_tolerance:
        dist = overlap_distance(a, b, model.overlap_tolerance)
        return float(dist / model.overlap_scale) if np.isfinite(dist) else 0.0
    (p_exit, v_exit), (p_entry, v_entry) = first.exit(), second.entry()
    d = float(np.linalg.norm(p_entry - p_exit))
    if not np.isfinite(d) or d < 1.0:
        return 0.0
    seen = max(float(np.linalg.norm(v_exit)), float(np.linalg.norm(v_entry)), model.min_speed)
    return float(abs(np.log(d / gap / seen)) / model.speed_ratio_scale)


def pair_costs(tracklets: Sequence[Tracklet], model: TravelModel, feasible: np.ndarray) -> np.ndarray:
    """`(N, N)` `pair_cost` of the feasible pairs (0 elsewhere: the hard filter decides those)."""
    n = len(tracklets)
    cost = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            if feasible[i, j]:
                cost[i, j] = cost[j, i] = pair_cost(tracklets[i], tracklets[j], model)
    return cost


def overlapping_views(tracklets: Sequence[Tracklet], model: TravelModel) -> np.ndarray:
    """`(N, N)` bool: pairs of two cameras whose tracklets run at the same time (within
    `overlap_tolerance`), the pairs `pair_feasible` and `pair_cost` judge by their ground distance."""
    cams = np.array([t.camera for t in tracklets])
    start = np.array([t.start for t in tracklets])
    end = np.array([t.end for t in tracklets])
    later_start = np.maximum(start[:, None], start[None, :])
    earlier_end = np.minimum(end[:, None], end[None, :])
    return (cams[:, None] != cams[None, :]) & (later_start - earlier_end <= model.overlap_tolerance)


def overlap_evidence(tracklets: Sequence[Tracklet], model: TravelModel, feasible: np.ndarray, costs: np.ndarray,
                     cap: float = 3.0) -> np.ndarray:
    """`(N, N)`: for feasible pairs of two cameras that see the vehicle at the same time, their
    `pair_costs` (median ground distance over `overlap_scale`, what true pairs show) capped at
    `cap`, minus 1: below 0 when the views agree better than a typical true pair, up to `cap - 1`
    when they disagree. 0 for every other pair (one camera's fragments, sequential visits)."""
    return np.where(feasible & overlapping_views(tracklets, model), np.minimum(costs, cap) - 1.0, 0.0)


def feasible_pairs(tracklets: Sequence[Tracklet], model: TravelModel | None,
                   topology: CameraTopology | None = None) -> np.ndarray:
    """`(N, N)` bool: pairs that may be linked. Without a model only the same-camera rule holds
    (one camera never sees one vehicle twice at once): the appearance-only ablation."""
    n = len(tracklets)
    ok = np.ones((n, n), dtype=bool)
    for i in range(n):
        for j in range(i + 1, n):
            a, b = tracklets[i], tracklets[j]
            if model is None:
                value = a.camera != b.camera or a.end < b.start or b.end < a.start
            else:
                value = pair_feasible(a, b, model, topology)
            ok[i, j] = ok[j, i] = value
    return ok


def ground_scale(points: np.ndarray) -> tuple[np.ndarray, float] | None:
    """If `points` look like GPS (latitude, longitude) degrees, the origin and scale that turn them
    into local metres (equirectangular: enough over a city); None for metric grounds."""
    pts = points[np.isfinite(points).all(1)]
    if len(pts) == 0:
        return None
    lat_ok = np.abs(pts[:, 0]).max() <= 90 and np.abs(pts[:, 1]).max() <= 180
    if not (lat_ok and np.ptp(pts, axis=0).max() < 0.5 and np.abs(pts).max() > 1.0):
        return None
    origin = np.median(pts, axis=0)
    return origin, float(np.deg2rad(1.0) * EARTH_RADIUS_M)


def to_metres(points: np.ndarray, gps: tuple[np.ndarray, float] | None) -> np.ndarray:
    """Ground points in metres: unchanged for a metric ground, local east/north metres for GPS."""
    if gps is None:
        return points
    origin, scale = gps
    out = (points - origin) * scale
    out[:, 1] *= np.cos(np.deg2rad(origin[0]))  # longitude degrees shrink with latitude
    return out[:, ::-1].copy()  # (lat, lon) -> (east, north)


# --------------------------------------------------------------------------- CLI: fit from training ground truth
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m citytrack.multicam.topology",
                                description="Learn the vehicle travel model from AI City 2019 ground truth.")
    sub = p.add_subparsers(dest="cmd", required=True)
    fit = sub.add_parser("fit", help="fit v_min / v_max / overlap distance from gt/gt.txt of SXX folders")
    fit.add_argument("paths", nargs="+", help="SXX folders, split folders or dataset roots")
    fit.add_argument("--out", default=None, help="write the model as json here")
    fit.add_argument("--quantile", type=float, default=0.01)
    fit.add_argument("--margin", type=float, default=0.25)
    fit.add_argument("--zones", choices=("none", "roi", "file"), default="none",
                     help="also learn entry/exit zone links (zones.py): from roi.jpg's frame-edge road, or each camera's zones.png")
    fit.add_argument("--zone-band", type=int, default=12, help="pixels: frame-edge width of --zones roi")
    fit.add_argument("--topology-out", default=None,
                     help="write the zone links as a camera topology json (task.pipeline.topology.file=...)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from citytrack.data.formats.aicity.aic19 import list_aic19_scenes
    from citytrack.multicam.vehicle_link import ground_truth_tracklets
    from citytrack.multicam.zones import ZoneConfig

    scenes: list[Path] = []
    for p in args.paths:
        path = Path(p)
        scenes += [path] if path.name[:1] == "S" and path.name[1:].isdigit() else list_aic19_scenes(path)
    if not scenes:
        raise SystemExit(f"no SXX scene folders under {args.paths}")
    zones = ZoneConfig(source=args.zones, band=args.zone_band)
    tracklets = [t for s in scenes for t in ground_truth_tracklets(s, zones)]
    model = TravelModel.fit(tracklets, quantile=args.quantile, margin=args.margin)
    model.fitted_on["scenes"] = [str(s) for s in scenes]
    print(json.dumps(asdict(model), indent=1))
    if args.out:
        model.to_json(args.out)
    if args.zones != "none":
        topology = CameraTopology(zone_links=fit_zone_links(tracklets, margin=args.margin,
                                                            overlap_tolerance=model.overlap_tolerance))
        print(f"{len(topology.zone_links)} zone links:")
        for (a, i, b, j), (lo, hi) in topology.zone_links.items():
            print(f"  c{a:03d}:{i}>c{b:03d}:{j}: [{lo}, {hi}]")
        if args.topology_out:
            topology.to_json(args.topology_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
