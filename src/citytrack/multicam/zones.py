"""Entry/exit zones of vehicle cameras: where on the image a vehicle comes into or leaves the view.

A zone is a labelled image region (a road mouth at the frame edge, a lane's far end); a tracklet's
entry zone is the zone of its first box, its exit zone the zone of its last (0: it started or ended
inside the view, e.g. lost behind an occluder or stopped). Zones feed two rules:

- `CameraTopology.zone_links` (topology.py): a vehicle leaving camera A through zone i reaches camera B
  through zone j within a time window; where vehicles drive from A to B along zone links, tracks that
  left and came in through zones link only along them, as the AI City 2021 winner gates its
  cross-camera matching by crossroad zones (tracks lost or found inside the view are not gated).
- one camera's fragments: a track that ended inside the view and a later one that started inside it
  may be further apart in time (`TravelModel.same_camera_interior_gap`) than a track that left the view.

Sources (`ZoneConfig.source`):
- `file`: a `zones.png` beside the camera's `roi.jpg`, grey level = zone id (0 none), the form teams draw
  for the real AI City cameras;
- `polygons`: `{cXXX: {zone_id: [[x, y], ...]}}` in config;
- `roi`: automatic, for cameras nobody drew zones for: the parts of `roi.jpg`'s road within `band`
  pixels of the frame edge, one zone per connected part (each road leaving the picture).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from scipy import ndimage

from citytrack.data.formats.errors import FormatError, require_file

ZONES_FILE = "zones.png"


@dataclass
class ZoneMap:
    """One camera's zones: `labels` is the `(height, width)` zone id image (0: no zone); a box
    within `tolerance` pixels of a zone counts as in it."""

    labels: np.ndarray
    source: str = ""
    tolerance: float = 0.0
    _nearest: tuple[np.ndarray, np.ndarray] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def zone_ids(self) -> list[int]:
        return [int(z) for z in np.unique(self.labels) if z > 0]

    @classmethod
    def from_image(cls, path: str | Path, image_size: tuple[int, int]) -> ZoneMap:
        """`zones.png` (grey level = zone id), checked against the camera's `(width, height)`."""
        path = Path(path)
        require_file(path, "zone image")
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise FormatError(path, "zone image cannot be decoded")
        if img.ndim == 3:
            channels = img[..., :3]
            if not (channels == channels[..., :1]).all():
                raise FormatError(path, "zone image must be grey levels (pixel value = zone id), not colours")
            img = channels[..., 0]
        width, height = image_size
        if img.shape != (height, width):
            raise FormatError(path, f"zone image is {img.shape[1]}x{img.shape[0]} but the camera's images are {width}x{height}")
        if not (img > 0).any():
            raise FormatError(path, "zone image is all 0 (no zone)")
        return cls(img.astype(np.int32), str(path))

    @classmethod
    def from_polygons(cls, polygons: Mapping[Any, Sequence[Sequence[float]]], image_size: tuple[int, int],
                      name: str = "polygons") -> ZoneMap:
        """Zones drawn as pixel polygons `{zone_id: [[x, y], ...]}` (later zones paint over earlier ones)."""
        width, height = image_size
        labels = np.zeros((height, width), np.int32)
        for key, poly in polygons.items():
            try:
                zone = int(key)
                pts = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
            except (TypeError, ValueError):
                raise ValueError(f"{name}: zone {key!r} must be an integer id with a list of [x, y] points") from None
            if zone < 1 or len(pts) < 3:
                raise ValueError(f"{name}: zone {key!r} needs an id >= 1 and at least 3 points (got {len(pts)})")
            cv2.fillPoly(labels, [np.round(pts).astype(np.int32)], zone)
        if not (labels > 0).any():
            raise ValueError(f"{name}: the polygons cover no pixel of the {width}x{height} image")
        return cls(labels, name)

    @classmethod
    def from_roi(cls, roi: np.ndarray, band: int) -> ZoneMap:
        """Road within `band` pixels of the frame edge, one zone per connected part: where vehicles
        drive into and out of the picture. Parts are numbered clockwise from the top-left corner."""
        h, w = roi.shape
        edge = np.zeros_like(roi, dtype=bool)
        b = max(int(band), 1)
        edge[:b, :] = edge[-b:, :] = edge[:, :b] = edge[:, -b:] = True
        count, comp = cv2.connectedComponents((roi & edge).astype(np.uint8), connectivity=8)
        # clockwise order of each part's mean position around the image centre, from the top-left corner
        order = []
        for k in range(1, count):
            ys, xs = np.nonzero(comp == k)
            angle = np.arctan2(ys.mean() - h / 2, xs.mean() - w / 2)
            order.append(((angle - np.arctan2(-h / 2, -w / 2)) % (2 * np.pi), k))
        labels = np.zeros((h, w), np.int32)
        for zone, (_, k) in enumerate(sorted(order), start=1):
            labels[comp == k] = zone
        return cls(labels, f"roi band {b}px")

    def zone_at(self, uv: np.ndarray, tolerance: float | None = None) -> np.ndarray:
        """Zone id `(N,)` at pixel points `(N, 2)`: the zone under the point, else the nearest zone
        within `tolerance` pixels (default: the map's), else 0. Points outside the image are clipped
        onto its edge."""
        tolerance = self.tolerance if tolerance is None else tolerance
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        h, w = self.labels.shape
        if len(uv) == 0:
            return np.zeros(0, np.int32)
        ok = np.isfinite(uv).all(1)
        u = np.clip(np.nan_to_num(uv[:, 0]), 0, w - 1).round().astype(int)
        v = np.clip(np.nan_to_num(uv[:, 1]), 0, h - 1).round().astype(int)
        if self._nearest is None:  # distance to, and index of, the nearest zone pixel: computed once per camera
            dist, (iy, ix) = ndimage.distance_transform_edt(self.labels == 0, return_indices=True)
            self._nearest = (dist, self.labels[iy, ix])
        dist, nearest = self._nearest
        out = np.where(dist[v, u] <= tolerance, nearest[v, u], 0)
        return np.where(ok, out, 0).astype(np.int32)

    def box_zone(self, boxes_xywh: np.ndarray, tolerance: float | None = None) -> np.ndarray:
        """Zone `(N,)` of each box: that of its bottom centre (where it meets the road), else of its
        bottom corners (a box cut by the left or right frame edge has its contact at the corner)."""
        b = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
        bottom = b[:, 1] + b[:, 3]
        zone = self.zone_at(np.column_stack([b[:, 0] + b[:, 2] / 2, bottom]), tolerance)
        for x in (b[:, 0], b[:, 0] + b[:, 2]):
            miss = zone == 0
            if not miss.any():
                break
            zone[miss] = self.zone_at(np.column_stack([x[miss], bottom[miss]]), tolerance)
        return zone

    def outline(self) -> list[tuple[int, np.ndarray]]:
        """`(zone id, contour points)` of each zone, for drawing."""
        out = []
        for z in self.zone_ids:
            contours, _ = cv2.findContours((self.labels == z).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            out += [(z, c.reshape(-1, 2)) for c in contours]
        return out


@dataclass
class ZoneConfig:
    """Where a scene's zone maps come from (module docstring): `source` none | roi | file | polygons;
    `band` the frame-edge width of automatic zones; `tolerance` how far (pixels) outside a zone a
    box still counts as in it; `polygons` `{cXXX: {zone_id: [[x, y], ...]}}` for `source=polygons`."""

    source: str = "none"
    band: int = 12
    tolerance: float = 4.0
    polygons: dict[str, dict[Any, list[list[float]]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.source not in ("none", "roi", "file", "polygons"):
            raise ValueError(f"zones.source must be none, roi, file or polygons, not {self.source!r}")

    def maps(self, setups: Sequence[Any]) -> dict[int, ZoneMap]:
        """Zone map per camera id of `setups` (`Aic19CameraSetup`s); {} for `source=none`."""
        if self.source == "none":
            return {}
        out: dict[int, ZoneMap] = {}
        drawn = {int(str(k).strip().lstrip("c")): v for k, v in self.polygons.items()} if self.source == "polygons" else {}
        for s in setups:
            cam = s.camera.camera_id
            if self.source == "roi":
                out[cam] = ZoneMap.from_roi(s.roi, self.band)
            elif self.source == "file":
                out[cam] = ZoneMap.from_image(s.camera.dir / ZONES_FILE, s.image_size)
            elif cam in drawn:
                out[cam] = ZoneMap.from_polygons(drawn[cam], s.image_size, f"zones.polygons.c{cam:03d}")
        for zmap in out.values():
            zmap.tolerance = float(self.tolerance)
        if self.source == "polygons" and (missing := sorted(set(drawn) - set(out))):
            raise ValueError(f"zones.polygons name cameras the scene does not have: {[f'c{c:03d}' for c in missing]}")
        return out
