"""citytrack.visualize: id colours, boxes, the bird's-eye map and the multi-camera scene video."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from citytrack.data.video import VideoReader, probe_video
from citytrack.multicam.calibration import (
    CameraCalibration,
    intrinsics_from_fov,
    look_at_rotation,
)
from citytrack.visualize import (
    SceneRenderer,
    SceneVideoWriter,
    WorldToPixel,
    birds_eye_background,
    camera_colour,
    camera_footprint,
    draw_tracks,
    id_colour,
    scene_extent,
    scene_snapshot,
)
from citytrack.visualize.scene import TITLE_HEIGHT

W, H = 320, 180


def _camera(
    center: tuple[float, float, float], target=(0.0, 0.0, 0.0), size=(W, H), hfov=70.0
) -> CameraCalibration:
    R = look_at_rotation(center, target)
    return CameraCalibration.from_intrinsics_extrinsics(
        intrinsics_from_fov(*size, hfov), R, -R @ np.asarray(center), size
    )


def _person_box(cal: CameraCalibration, xy: tuple[float, float], height: float = 1.7) -> np.ndarray:
    """xywh box of a person standing at ground `xy`: from the projected head and foot points."""
    foot, head = cal.project([[xy[0], xy[1], 0.0], [xy[0], xy[1], height]])
    h = foot[1] - head[1]
    return np.array([foot[0] - 0.3 * h, head[1], 0.6 * h, h])


CAMS = {1: _camera((0.0, -10.0, 6.0)), 2: _camera((10.0, 0.0, 6.0))}
SIZES = {1: (W, H), 2: (W, H)}


def _rows(frame: int, people: dict[int, tuple[float, float]], cams=(1, 2)) -> np.ndarray:
    """AIC24 rows `camera obj frame x y w h xworld yworld` of `people` {id: ground xy} seen by `cams`."""
    out = [[c, pid, frame, *_person_box(CAMS[c], xy), *xy] for pid, xy in people.items() for c in cams]
    return np.array(out, dtype=np.float64)


def _grey(value: int = 100) -> np.ndarray:
    return np.full((H, W, 3), value, dtype=np.uint8)


# ----------------------------------------------------------------------------- colours and boxes
def test_id_colours_stable_bright_and_distinct_for_neighbours() -> None:
    colours = [id_colour(i) for i in range(300)]
    assert colours == [id_colour(i) for i in range(300)]  # stable
    assert id_colour(np.int64(7)) == id_colour(7) == id_colour(7.0)
    for c in colours:
        assert len(c) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in c)
        assert max(c) >= 250  # bright
    steps = np.abs(np.diff(np.array(colours, dtype=int), axis=0)).sum(axis=1)
    assert steps.min() > 150, "neighbouring ids must not get similar colours"
    assert len({camera_colour(c) for c in range(6)}) == 6


def test_draw_tracks_colours_box_by_id() -> None:
    img = np.zeros((100, 200, 3), np.uint8)
    draw_tracks(
        img, np.array([[10, 20, 50, 60], [100, 20, 40, 60]]), np.array([4, 9]), thickness=3, labels=False
    )
    assert tuple(img[50, 10]) == id_colour(4) and tuple(img[50, 60]) == id_colour(4)
    assert tuple(img[50, 100]) == id_colour(9)
    assert tuple(img[50, 30]) == (0, 0, 0)  # boxes are outlines
    scaled = np.zeros((100, 200, 3), np.uint8)
    draw_tracks(
        scaled, np.array([[10, 20, 50, 60]]), [4], scale=0.5, offset=(100, 0), thickness=3, labels=False
    )
    assert tuple(scaled[25, 105]) == id_colour(4)
    with pytest.raises(ValueError, match="2 boxes but 1 ids"):
        draw_tracks(img, np.zeros((2, 4)), [1])


# ----------------------------------------------------------------------------- bird's-eye map
def test_world_to_pixel_maps_known_points() -> None:
    canvas, w2p = birds_eye_background([CAMS[1]], [(W, H)], (400, 200), extent=(-10.0, 10.0, 0.0, 10.0))
    assert canvas.shape == (200, 400, 3) and canvas.dtype == np.uint8
    np.testing.assert_allclose(
        w2p([[0.0, 5.0], [-10.0, 10.0], [10.0, 0.0], [5.0, 2.5]]),
        [[200, 100], [0, 0], [400, 200], [300, 150]],
    )
    np.testing.assert_allclose(w2p.to_world(w2p([[3.0, 4.0]])), [[3.0, 4.0]])
    hom = w2p.matrix @ np.array([5.0, 2.5, 1.0])
    np.testing.assert_allclose(hom[:2] / hom[2], [300, 150])
    # A taller extent than the canvas keeps the aspect: 20 m high in 200 px -> 10 px/m, centred in x.
    fit = WorldToPixel.fit((0.0, 10.0, 0.0, 20.0), (400, 200))
    np.testing.assert_allclose(fit([[5.0, 10.0], [0.0, 20.0]]), [[200, 100], [150, 0]])


def test_footprints_clamped_extent_and_homography_only() -> None:
    far = _camera((0.0, -10.0, 3.0), target=(0.0, 40.0, 1.5))  # sees the horizon
    fp = camera_footprint(far, (W, H), max_range=25.0)
    assert len(fp) >= 3 and np.isfinite(fp).all()
    assert np.linalg.norm(fp - far.camera_center[:2], axis=1).max() <= 25.0 + 1e-6
    assert np.linalg.norm(fp - far.camera_center[:2], axis=1).max() > 24.0  # cut at the range, not before
    down = _camera((0.0, 0.0, 8.0), target=(0.0, 0.1, 0.0))
    x0, x1, y0, y1 = scene_extent([down], [(W, H)])
    assert x0 < 0 < x1 and y0 < 0 < y1 and x1 - x0 < 30
    # A homography alone: footprint and map, but no camera position to draw.
    h_only = CameraCalibration.from_homography(CAMS[1].homography, (W, H))
    canvas, _ = birds_eye_background([h_only], None, 300)
    assert len(camera_footprint(h_only, (W, H))) >= 3 and canvas.shape == (300, 300, 3)
    sky = _camera((0.0, 0.0, 3.0), target=(0.0, 10.0, 6.0))  # sees no ground: framed by its position only
    assert len(camera_footprint(sky, (W, H))) == 0
    assert scene_extent([sky], [(W, H)], margin=0.0) == (0.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="extent"):
        scene_extent([], [])


# ----------------------------------------------------------------------------- scene video
def _tile_origin(renderer: SceneRenderer, k: int) -> tuple[int, int]:
    r, c = divmod(k, renderer.columns)
    return c * renderer.tile_width, TITLE_HEIGHT + r * renderer.tile_height


def _box_left_edge(renderer: SceneRenderer, k: int, box: np.ndarray) -> tuple[int, int]:
    """Pixel (row, col) on the left edge of `box` (camera pixels) in tile `k` of the picture."""
    ox, oy = _tile_origin(renderer, k)
    s = renderer.tile_width / W
    return round(oy + (box[1] + 0.6 * box[3]) * s), round(ox + box[0] * s)


def test_scene_video_same_id_same_colour_in_every_camera(tmp_path: Path) -> None:
    path = tmp_path / "scene.mp4"
    people = {7: (0.0, 0.0), 3: (2.0, 1.0)}
    n = 6
    with SceneVideoWriter(
        path, [1, 2], SIZES, CAMS, fps=10, tile_width=320, trail=3, box_thickness=6
    ) as video:
        # 2 tiles side by side, then the bird's-eye panel (at least 360 px square); a title bar on top
        assert video.size == (2 * 320 + 360, TITLE_HEIGHT + 360)
        pictures = []
        for f in range(n):
            frames = {1: _grey(), 2: _grey()} if f != 2 else {1: _grey()}  # camera 2 has no frame 2
            pictures.append(video.write(f, frames, _rows(f, people)))
    renderer = video.renderer
    assert renderer.columns == 2 and renderer.rows == 1
    info = probe_video(path)
    assert info.size == video.size and video.frames_written == n
    with VideoReader(path) as reader:
        decoded = [img for _, img in reader]
    assert len(decoded) == n and decoded[0].shape == (video.size[1], video.size[0], 3)

    box_a, box_b = _person_box(CAMS[1], people[7]), _person_box(CAMS[2], people[7])
    pa, pb = _box_left_edge(renderer, 0, box_a), _box_left_edge(renderer, 1, box_b)
    gx, gy = np.round(video.world_to_px([people[7]])[0]).astype(int)
    bev = (TITLE_HEIGHT + gy, renderer.columns * renderer.tile_width + gx)
    want = np.array(id_colour(7))
    for picture, image in zip(pictures, decoded, strict=True):
        for r, c in (pa, pb, bev):  # drawn exactly, and still that colour after video compression
            assert tuple(picture[r, c]) == id_colour(7)
            patch = image[r - 1 : r + 2, c - 1 : c + 2].reshape(-1, 3).astype(int)
            assert np.abs(np.median(patch, axis=0) - want).max() < 40, (r, c, patch)
    # The camera without a frame gets the grey "no video" tile; its boxes are still drawn.
    ox, oy = _tile_origin(renderer, 1)
    assert tuple(pictures[2][oy + 5, ox + renderer.tile_width - 5]) == (96, 96, 96)
    assert tuple(pictures[1][oy + 5, ox + renderer.tile_width - 5]) == (100, 100, 100)
    assert tuple(pictures[2][pb]) == id_colour(7)


def test_scene_trails_are_short_and_restart() -> None:
    renderer = SceneRenderer([1, 2], SIZES, CAMS, tile_width=160, trail=3)
    for f in range(6):
        renderer.update_trails(f, _rows(f, {1: (0.1 * f, 0.0)} if f < 2 else {2: (1.0, 0.1 * f)}))
    assert set(renderer._trails) == {2} and [p[0] for p in renderer._trails[2]] == [3, 4, 5]
    renderer.update_trails(0, _rows(0, {5: (0.0, 0.0)}))  # going back: a new sequence
    assert set(renderer._trails) == {5}


def test_grid_layout() -> None:
    four = {
        c: _camera((10.0 * np.cos(a), 10.0 * np.sin(a), 6.0)) for c, a in zip(range(4), np.arange(4) * 1.5)
    }
    renderer = SceneRenderer(list(four), dict.fromkeys(four, (W, H)), four, tile_width=200)
    assert (renderer.columns, renderer.rows) == (2, 2)
    assert renderer.size == (2 * 200 + 360, TITLE_HEIGHT + 360)
    assert all(v % 2 == 0 for v in renderer.size)
    picture = renderer.render(0, {}, np.zeros((0, 9)))
    assert picture.shape == (renderer.size[1], renderer.size[0], 3)


def test_scene_video_leaves_nothing_on_error(tmp_path: Path) -> None:
    path = tmp_path / "scene.mp4"
    with (
        pytest.raises(RuntimeError, match="boom"),
        SceneVideoWriter(path, [1, 2], SIZES, CAMS, fps=10, tile_width=160) as video,
    ):
        video.write(0, {1: _grey(), 2: _grey()}, _rows(0, {1: (0.0, 0.0)}))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    path.write_bytes(b"old")  # an existing file is left as it was
    with (
        pytest.raises(ValueError, match="AI City 2024 rows"),
        SceneVideoWriter(path, [1, 2], SIZES, CAMS, fps=10, tile_width=160) as video,
    ):
        video.write(0, {1: _grey()}, np.zeros((2, 5)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.mp4"] and path.read_bytes() == b"old"
    with pytest.raises(RuntimeError, match="outside"):
        SceneVideoWriter(tmp_path / "x.mp4", [1], SIZES, CAMS, fps=10).write(0, {}, np.zeros((0, 9)))


def test_scene_snapshot_is_a_png_picture() -> None:
    table = np.concatenate([_rows(f, {7: (0.2 * f, 0.0), 3: (2.0, 0.1 * f)}) for f in range(10)])
    frames = {2: {1: _grey(), 2: _grey()}, 8: {1: _grey()}}
    snap = scene_snapshot([1, 2], SIZES, CAMS, frames, table, tile_width=160)
    tile_h = 90
    assert snap.dtype == np.uint8 and snap.shape[2] == 3
    assert snap.shape[1] > 2 * 160 and snap.shape[0] >= TITLE_HEIGHT + 2 * tile_h
    ok, png = cv2.imencode(".png", snap)
    assert ok and len(png) > 1000
    # frame 8 of camera 2 has no video: grey tile in the second row, second column.
    assert tuple(snap[TITLE_HEIGHT + tile_h + 80, 160 + 150]) == (96, 96, 96)
