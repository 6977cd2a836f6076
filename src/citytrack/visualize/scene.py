"""The multi-camera picture of a tracking result: camera tiles plus a bird's-eye panel.

Input is the AI City 2024 table (`camera_id obj_id frame_id x y w h xworld yworld`, obj_id a
global id): boxes are drawn in every camera in `id_colour(obj_id)`, so one person has one
colour in all cameras, and the world points of the frame are drawn in the bird's-eye panel
with a short trail per global id.

    with SceneVideoWriter(out / "scene.mp4", cams, sizes, calibrations, fps=10) as video:
        for frame_id, frames in ...:                       # frames: {camera_id: BGR image}
            video.write(frame_id, frames, table[table[:, FRAME_ID] == frame_id])

`scene_snapshot` draws one still picture of a few frames (for the README and docs).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

import cv2
import numpy as np

from citytrack.data.formats.aicity import BH, BX, CAMERA_ID, FRAME_ID, OBJ_ID, XWORLD, YWORLD
from citytrack.data.video import AtomicVideoWriter
from citytrack.multicam.calibration import CameraCalibration
from citytrack.visualize.birdseye import (
    Extent,
    WorldToPixel,
    birds_eye_background,
    draw_world_tracks,
    scene_extent,
)
from citytrack.visualize.draw import FONT, camera_colour, draw_label, draw_tracks

__all__ = [
    "SceneRenderer",
    "SceneVideoWriter",
    "as_rows",
    "birds_eye_background",
    "scene_snapshot",
    "world_points",
]

TITLE_HEIGHT = 32
TILE_BACKGROUND = (40, 40, 40)
NO_VIDEO = (96, 96, 96)
PANEL_BACKGROUND = (25, 25, 25)


def as_rows(rows: np.ndarray | None) -> np.ndarray:
    """`rows` as a float `(n, 9+)` AIC24 table; None or an empty array give `(0, 9)`."""
    if rows is None or np.size(rows) == 0:
        return np.zeros((0, 9))
    table = np.asarray(rows, dtype=np.float64)
    if table.ndim == 1:
        table = table[None]
    if table.ndim != 2 or table.shape[1] < 9:
        raise ValueError(
            f"expected (n, 9+) AI City 2024 rows (camera_id obj_id frame_id x y w h xworld yworld), "
            f"got shape {table.shape}"
        )
    return table


def world_points(rows: np.ndarray) -> dict[int, np.ndarray]:
    """`{global id: (x, y)}`: the mean finite world point of each id's rows (cameras may disagree slightly)."""
    rows = as_rows(rows)
    out: dict[int, np.ndarray] = {}
    ok = np.isfinite(rows[:, [XWORLD, YWORLD]]).all(axis=1)
    for gid in np.unique(rows[ok, OBJ_ID]).astype(int):
        out[int(gid)] = rows[ok & (rows[:, OBJ_ID] == gid)][:, [XWORLD, YWORLD]].mean(axis=0)
    return out


def _grid_shape(n: int) -> tuple[int, int]:
    """(columns, rows) of the camera grid: 1 -> 1x1, 2 -> 2x1, 3-4 -> 2x2, 5-6 -> 3x2, 7-9 -> 3x3."""
    cols = max(1, math.ceil(math.sqrt(n)))
    return cols, max(1, math.ceil(n / cols))


def _even(v: int) -> int:
    return v + (v % 2)


def _tile_height(sizes: Sequence[tuple[int, int]], tile_width: int) -> int:
    """Tiles share the tallest camera's height at `tile_width` (even, for video codecs)."""
    return _even(max(round(float(tile_width * h / w)) for w, h in sizes))


class SceneRenderer:
    """Draws camera tiles and the bird's-eye panel of one scene; keeps the per-id world trails.

    `image_sizes[cam]` is the camera's `(width, height)`: boxes are in those pixels. Each image is
    scaled to `tile_width` (aspect kept; tiles share the tallest camera's height). `trail` is the
    trail length in frames. `extent` fixes the bird's-eye map; by default it covers the cameras'
    ground footprints (cut at `max_range`).
    """

    def __init__(
        self,
        camera_ids: Sequence[int],
        image_sizes: Mapping[int, tuple[int, int]],
        calibrations: Mapping[int, CameraCalibration],
        tile_width: int = 480,
        trail: int = 30,
        *,
        extent: Extent | None = None,
        max_range: float = 30.0,
        bev_size: int | None = None,
        title: str = "",
    ) -> None:
        if not camera_ids:
            raise ValueError("SceneRenderer needs at least one camera")
        missing = [c for c in camera_ids if c not in image_sizes]
        if missing:
            raise ValueError(f"no image size for cameras {missing}")
        self.camera_ids = [int(c) for c in camera_ids]
        self.image_sizes = {c: (int(image_sizes[c][0]), int(image_sizes[c][1])) for c in self.camera_ids}
        self.tile_width = int(tile_width)
        self.tile_height = _tile_height(list(self.image_sizes.values()), self.tile_width)
        self.trail = int(trail)
        self.title = title
        self.columns, self.rows = _grid_shape(len(self.camera_ids))
        grid_h = self.rows * self.tile_height
        self.bev_size = _even(int(bev_size) if bev_size is not None else max(grid_h, 360))
        self.body_height = max(grid_h, self.bev_size)
        self.size = (
            _even(self.columns * self.tile_width + self.bev_size),
            _even(self.body_height + TITLE_HEIGHT),
        )
        cams = [c for c in self.camera_ids if c in calibrations]
        self.background, self.world_to_px = birds_eye_background(
            [calibrations[c] for c in cams],
            [self.image_sizes[c] for c in cams],
            self.bev_size,
            extent,
            names=[f"cam {c}" for c in cams],
            max_range=max_range,
        )
        self._trails: dict[int, deque[tuple[int, float, float]]] = {}
        self._last_frame: int | None = None

    # ------------------------------------------------------------------ pieces
    def camera_tile(
        self,
        camera_id: int,
        image: np.ndarray | None,
        rows: np.ndarray,
        label: str | None = None,
        box_thickness: int = 2,
    ) -> np.ndarray:
        """One camera's tile: the image scaled into the tile (grey "no video" when None), boxes, label."""
        w, h = self.image_sizes[camera_id]
        s = min(self.tile_width / w, self.tile_height / h)
        dw, dh = round(float(w * s)), round(float(h * s))
        ox, oy = (self.tile_width - dw) // 2, (self.tile_height - dh) // 2
        tile = np.full((self.tile_height, self.tile_width, 3), TILE_BACKGROUND, dtype=np.uint8)
        if image is None:
            tile[oy : oy + dh, ox : ox + dw] = NO_VIDEO
            (tw, th), _ = cv2.getTextSize("no video", FONT, 0.8, 2)
            cv2.putText(
                tile,
                "no video",
                (ox + (dw - tw) // 2, oy + (dh + th) // 2),
                FONT,
                0.8,
                (200, 200, 200),
                2,
                cv2.LINE_AA,
            )
        else:
            if image.ndim == 2:
                image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
            interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
            tile[oy : oy + dh, ox : ox + dw] = cv2.resize(image, (dw, dh), interpolation=interp)
        rows = as_rows(rows)
        mine = rows[rows[:, CAMERA_ID] == camera_id]
        draw_tracks(
            tile, mine[:, BX : BH + 1], mine[:, OBJ_ID], scale=s, offset=(ox, oy), thickness=box_thickness
        )
        index = self.camera_ids.index(camera_id)
        draw_label(tile, label or f"camera {camera_id}", (6, 20), camera_colour(index), 0.5)
        cv2.rectangle(tile, (0, 0), (self.tile_width - 1, self.tile_height - 1), (30, 30, 30), 1)
        return tile

    def camera_grid(
        self, frames: Mapping[int, np.ndarray], rows: np.ndarray, box_thickness: int = 2
    ) -> np.ndarray:
        """All camera tiles in a `columns x rows` grid (empty slots dark)."""
        grid = np.full(
            (self.rows * self.tile_height, self.columns * self.tile_width, 3),
            PANEL_BACKGROUND,
            dtype=np.uint8,
        )
        for k, cam in enumerate(self.camera_ids):
            r, c = divmod(k, self.columns)
            grid[
                r * self.tile_height : (r + 1) * self.tile_height,
                c * self.tile_width : (c + 1) * self.tile_width,
            ] = self.camera_tile(cam, frames.get(cam), rows, box_thickness=box_thickness)
        return grid

    def update_trails(self, frame_id: int, rows: np.ndarray) -> dict[int, np.ndarray]:
        """Add this frame's world points to the trails (restart on a frame going back); returns them."""
        if self._last_frame is not None and frame_id < self._last_frame:
            self._trails.clear()
        self._last_frame = frame_id
        current = world_points(rows)
        for gid, (x, y) in current.items():
            self._trails.setdefault(gid, deque(maxlen=max(self.trail, 1))).append(
                (frame_id, float(x), float(y))
            )
        for gid in list(self._trails):
            trail = self._trails[gid]
            while trail and trail[0][0] <= frame_id - self.trail:
                trail.popleft()
            if not trail:
                del self._trails[gid]
        return current

    def bev_panel(self, current: Mapping[int, np.ndarray]) -> np.ndarray:
        """The bird's-eye panel: background, trails, and labelled dots at `current` world points."""
        canvas = self.background.copy()
        trails = {g: np.array([(x, y) for _, x, y in t]) for g, t in self._trails.items()}
        draw_world_tracks(canvas, self.world_to_px, trails, current)
        draw_label(canvas, "bird's-eye view", (8, 20), (235, 235, 235), 0.5)
        return canvas

    def title_bar(self, width: int, left: str, right: str = "") -> np.ndarray:
        bar = np.full((TITLE_HEIGHT, width, 3), PANEL_BACKGROUND, dtype=np.uint8)
        text = f"{left}   {self.title}" if self.title else left
        cv2.putText(bar, text, (10, 22), FONT, 0.6, (235, 235, 235), 1, cv2.LINE_AA)
        if right:
            tw = cv2.getTextSize(right, FONT, 0.55, 1)[0][0]
            cv2.putText(bar, right, (width - tw - 10, 22), FONT, 0.55, (200, 200, 200), 1, cv2.LINE_AA)
        return bar

    # ------------------------------------------------------------------ whole picture
    def render(
        self, frame_id: int, frames: Mapping[int, np.ndarray], rows: np.ndarray, box_thickness: int = 2
    ) -> np.ndarray:
        """The full picture of one frame, `self.size` (width, height); advances the trails."""
        rows = as_rows(rows)
        current = self.update_trails(int(frame_id), rows)
        out = np.full((self.size[1], self.size[0], 3), PANEL_BACKGROUND, dtype=np.uint8)
        grid = self.camera_grid(frames, rows, box_thickness)
        body = TITLE_HEIGHT
        out[body : body + grid.shape[0], : grid.shape[1]] = grid
        out[body : body + self.bev_size, grid.shape[1] : grid.shape[1] + self.bev_size] = self.bev_panel(
            current
        )
        n_ids = len(np.unique(rows[:, OBJ_ID]))
        out[:TITLE_HEIGHT] = self.title_bar(self.size[0], f"frame {int(frame_id)}", f"{n_ids} ids in view")
        return out


class SceneVideoWriter:
    """Writes the multi-camera picture of a tracking result, one video frame per `write`.

    `camera_ids` fixes the tile order (cameras missing from a `write`'s `frames` get a grey
    "no video" tile, their boxes still drawn); `image_sizes[cam]` is `(width, height)` of the
    camera's pixels, `calibrations[cam]` its calibration (cameras without one are left out of
    the bird's-eye map). Use as a context manager: the video appears at `path` only when the
    block ends without error (`citytrack.data.video.AtomicVideoWriter`).
    """

    def __init__(
        self,
        path: str | Path,
        camera_ids: list[int],
        image_sizes: dict[int, tuple[int, int]],
        calibrations: dict[int, CameraCalibration],
        fps: float,
        tile_width: int = 480,
        trail: int = 30,
        fourcc: str = "mp4v",
        *,
        extent: Extent | None = None,
        max_range: float = 30.0,
        title: str = "",
        box_thickness: int = 2,
    ) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.fourcc = fourcc
        self.box_thickness = int(box_thickness)
        self.renderer = SceneRenderer(
            camera_ids,
            image_sizes,
            calibrations,
            tile_width,
            trail,
            extent=extent,
            max_range=max_range,
            title=title,
        )
        self.frames_written = 0
        self._video: AtomicVideoWriter | None = None

    @property
    def size(self) -> tuple[int, int]:
        """Video frame `(width, height)`."""
        return self.renderer.size

    @property
    def world_to_px(self) -> WorldToPixel:
        """Ground to bird's-eye-panel pixels (the panel starts at `(columns * tile_width, TITLE_HEIGHT)`)."""
        return self.renderer.world_to_px

    def __enter__(self) -> Self:
        self._video = AtomicVideoWriter(self.path, self.fps, self.size, self.fourcc)
        self._video.__enter__()
        return self

    def write(self, frame_id: int, frames: Mapping[int, np.ndarray], rows: np.ndarray) -> np.ndarray:
        """Draw frame `frame_id` (`frames` `{camera_id: BGR}`, `rows` its `(n, 9+)` AIC24 rows), append it, return it."""
        if self._video is None:
            raise RuntimeError("SceneVideoWriter.write outside its `with` block")
        picture = self.renderer.render(frame_id, frames, rows, self.box_thickness)
        self._video.write(picture)
        self.frames_written += 1
        return picture

    def __exit__(self, exc_type, exc, tb) -> bool:
        video, self._video = self._video, None
        return bool(video.__exit__(exc_type, exc, tb)) if video is not None else False


def scene_snapshot(
    camera_ids: Sequence[int],
    image_sizes: Mapping[int, tuple[int, int]],
    calibrations: Mapping[int, CameraCalibration],
    frames: Mapping[int, Mapping[int, np.ndarray]],
    rows: np.ndarray,
    *,
    tile_width: int = 320,
    trail: int | None = None,
    extent: Extent | None = None,
    max_range: float = 30.0,
    title: str = "",
) -> np.ndarray:
    """One still picture (BGR uint8, PNG-able) of a few frames of a tracking result.

    `frames` is `{frame_id: {camera_id: BGR image}}`; each frame is one row of camera tiles
    (all cameras side by side, boxes coloured by global id). On the right, the bird's-eye view
    shows every id's world track from `trail` frames before the first shown frame (default: from
    the start) up to the last shown frame, with a labelled dot where it is at the last one. The
    map frames those tracks and the cameras unless `extent` is given.
    `rows` is the whole `(N, 9+)` AIC24 table (other frames are ignored).
    """
    if not frames:
        raise ValueError("scene_snapshot needs at least one frame")
    table = as_rows(rows)
    shown = sorted(int(f) for f in frames)
    grid_h = len(shown) * _tile_height([image_sizes[c] for c in camera_ids], tile_width)
    first = shown[0] - trail if trail is not None else -np.inf
    span = table[(table[:, FRAME_ID] >= first) & (table[:, FRAME_ID] <= shown[-1])]
    if extent is None:  # frame the tracks and the cameras: people stay large when cameras see far
        cams = [c for c in camera_ids if c in calibrations]
        extent = scene_extent(
            [calibrations[c] for c in cams],
            [image_sizes[c] for c in cams],
            max_range,
            points=span[:, [XWORLD, YWORLD]],
            footprints=False,
        )
    renderer = SceneRenderer(
        camera_ids,
        image_sizes,
        calibrations,
        tile_width,
        extent=extent,
        max_range=max_range,
        bev_size=max(grid_h, 360),
        title=title,
    )
    grid = np.vstack(
        [
            np.hstack(
                [
                    renderer.camera_tile(
                        c, frames[f].get(c), table[table[:, FRAME_ID] == f], label=f"camera {c}  frame {f}"
                    )
                    for c in renderer.camera_ids
                ]
            )
            for f in shown
        ]
    )
    trails: dict[int, list[np.ndarray]] = {}
    for f in np.unique(span[:, FRAME_ID]):
        for gid, xy in world_points(span[span[:, FRAME_ID] == f]).items():
            trails.setdefault(gid, []).append(xy)
    canvas = renderer.background.copy()
    draw_world_tracks(
        canvas,
        renderer.world_to_px,
        {g: np.array(t) for g, t in trails.items()},
        world_points(table[table[:, FRAME_ID] == shown[-1]]),
    )
    draw_label(
        canvas, f"bird's-eye view: world tracks up to frame {shown[-1]}", (8, 20), (235, 235, 235), 0.5
    )
    h = max(grid.shape[0], canvas.shape[0])
    body = np.full((h, grid.shape[1] + canvas.shape[1], 3), PANEL_BACKGROUND, dtype=np.uint8)
    body[: grid.shape[0], : grid.shape[1]] = grid
    body[: canvas.shape[0], grid.shape[1] :] = canvas
    n_ids = len(np.unique(table[table[:, FRAME_ID] <= shown[-1], OBJ_ID]))
    bar = renderer.title_bar(
        body.shape[1],
        f"{len(camera_ids)} cameras, frames {', '.join(map(str, shown))}",
        f"{n_ids} global ids",
    )
    return np.vstack([bar, body])
