"""Camera imaging: heights and lenses sampled in range, effects change pixels but never ground truth, dusk."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from citytrack.data.synth import CameraRenderer, PoseCache, SynthConfigError, build_world, generate
from citytrack.data.synth.imaging import CameraImaging, Imager, blur_kernel, exposure_gains, tone_lut
from citytrack.data.synth.world import SceneSpec

SPEC = SceneSpec(cameras=2, people=10, frames=4, width=320, height=192, area=(10.0, 8.0))
STRONG = CameraImaging(blur=4.0, blur_angle=0.7, jpeg_quality=40, flicker=0.05, temperature=0.1, seed=3)


def test_camera_heights_and_lenses_in_range() -> None:
    spec = dataclasses.replace(SPEC, cameras=8, camera_height=(2.5, 15.0), camera_hfov=(35.0, 95.0))
    heights, tilts = [], []
    for seed in range(4):
        for cam in build_world(spec, seed).cameras:
            heights.append(cam.center[2])
            assert 35.0 <= cam.hfov <= 95.0
            axis = cam.R[2]  # optical axis in world coordinates
            tilts.append(np.degrees(np.arcsin(-axis[2])))  # degrees below the horizon
    heights, tilts = np.array(heights), np.array(tilts)
    assert heights.min() >= 2.5 and heights.max() <= 15.0
    assert heights.min() < 5.0 and heights.max() > 12.5  # the whole range is used
    # High cameras look steeply down (PETS09, MOT17-04), low ones nearly level.
    assert tilts[heights > 12].min() > 40.0 and tilts[heights < 5].max() < 30.0


def test_imaging_sampled_in_configured_ranges() -> None:
    spec = dataclasses.replace(SPEC, cameras=12, motion_blur=(1.0, 3.0), jpeg_quality=(40, 60), white_balance=0.05,
                               flicker=0.02)
    cams = build_world(spec, 9).cameras
    for cam in cams:
        im = cam.imaging
        assert 1.0 <= im.blur <= 3.0 and 40 <= im.jpeg_quality <= 60 and abs(im.temperature) <= 0.05
        assert im.flicker == 0.02
    assert len({c.imaging.seed for c in cams}) == len(cams)  # each camera flickers on its own
    # The geometry of a seed does not depend on the imaging settings.
    plain = build_world(dataclasses.replace(spec, motion_blur=(0.0, 0.0), jpeg_quality=(100, 100)), 9).cameras
    assert all(np.array_equal(a.projection, b.projection) for a, b in zip(cams, plain, strict=True))


def test_effects_change_the_image_not_the_ground_truth() -> None:
    world = build_world(SPEC, 3)
    poses = PoseCache(world)
    seen = 0
    for cam in world.cameras:
        cam.imaging = CameraImaging()
        ideal = CameraRenderer(world, cam, poses=poses)
        cam.imaging = STRONG
        real = CameraRenderer(world, cam, poses=poses)
        for f in range(SPEC.frames):
            a, b = ideal.render(f), real.render(f)
            assert not np.array_equal(a.image, b.image)
            np.testing.assert_array_equal(a.id_map, b.id_map)
            for field in ("agents", "full_boxes", "visible_boxes", "full_pixels", "visible_pixels", "foot_image",
                          "keypoints"):
                np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
            seen += len(a.agents)
    assert seen > 0


def test_per_frame_effects_stay_near_people() -> None:
    """Blur and compression are redone per frame only around people: elsewhere a frame is its background
    (before the exposure gain), so they cost little and the static scene looks the same in every frame."""
    world = build_world(SPEC, 3)
    cam = world.cameras[0]
    cam.imaging = dataclasses.replace(STRONG, flicker=0.0)
    r = CameraRenderer(world, cam)
    far = 0
    for f in range(SPEC.frames):
        fr = r.render(f)
        bg = r.backgrounds[f % len(r.backgrounds)]
        near = np.zeros(fr.id_map.shape, dtype=bool)
        for x, y, w, h in fr.visible_boxes[fr.visible_pixels > 0].astype(int):
            near[max(y - 40, 0): y + h + 40, max(x - 40, 0): x + w + 40] = True
        np.testing.assert_array_equal(fr.image[~near], bg[~near])  # repasted occluders come from bg too
        far += int((~near).sum())
    assert far > 0


def test_dusk_is_darker_warmer_and_flatter() -> None:
    day, dusk = build_world(SPEC, 5), build_world(SPEC, 5)
    day.dusk, dusk.dusk = 0.0, 1.0
    for cam_day, cam_dusk in zip(day.cameras, dusk.cameras, strict=True):
        cam_day.imaging = cam_dusk.imaging = CameraImaging()
        a = CameraRenderer(day, cam_day, noise=False).render(0).image.astype(float)
        b = CameraRenderer(dusk, cam_dusk, noise=False).render(0).image.astype(float)
        assert b.mean() < 0.7 * a.mean()
        assert b[..., 2].mean() / b[..., 0].mean() > 1.2 * a[..., 2].mean() / a[..., 0].mean()  # red over blue
        assert b.std() < 0.7 * a.std()


def test_dusk_probability_draws_dusk_scenes() -> None:
    spec = dataclasses.replace(SPEC, dusk_prob=1.0)
    assert all(0.5 <= build_world(spec, s).dusk <= 1.0 for s in range(3))
    assert build_world(dataclasses.replace(SPEC, dusk_prob=0.0), 0).dusk == 0.0


def test_imaging_building_blocks() -> None:
    assert blur_kernel(1.2, 0.0) is None
    k = blur_kernel(5.0, np.pi / 2)
    assert k is not None and k.sum() == pytest.approx(1.0) and k.shape == (5, 5)
    assert k[:, 2].sum() > 0.9  # a vertical line
    assert tone_lut(0.0, 0.0) is None
    warm = tone_lut(0.1, 0.0)
    assert warm is not None and warm[200, 0, 2] > warm[200, 0, 1] > warm[200, 0, 0]
    g = exposure_gains(CameraImaging(flicker=0.03, seed=1), 4000)
    assert g.std() == pytest.approx(0.03, rel=0.15) and np.abs(np.diff(g)).mean() < g.std()  # smooth, not white
    assert np.array_equal(g, exposure_gains(CameraImaging(flicker=0.03, seed=1), 4000))
    assert np.array_equal(exposure_gains(CameraImaging(), 5), np.ones(5))
    # A neutral chain leaves an image alone.
    img = np.random.default_rng(0).integers(0, 255, (32, 48, 3), dtype=np.uint8)
    im = Imager(CameraImaging(), 0.0, 3, 48, 32)
    out = im.finish_static(img.copy())
    im.finish_frame(1, out, np.ones((32, 48), dtype=np.uint16), np.array([[0, 0, 48, 32]]))
    np.testing.assert_array_equal(out, img)


@pytest.mark.parametrize(
    "override,key",
    [({"world": {"motion_blur": [3.0, 1.0]}}, "world.motion_blur"),
     ({"world": {"jpeg_quality": [5, 90]}}, "world.jpeg_quality"),
     ({"world": {"flicker": -0.1}}, "world.flicker"),
     ({"world": {"white_balance": 0.9}}, "world.white_balance"),
     ({"world": {"dusk_prob": 1.5}}, "world.dusk_prob")],
)
def test_bad_imaging_config_names_the_key(tmp_path: Path, override: dict, key: str) -> None:
    with pytest.raises(SynthConfigError, match=key.replace(".", r"\.")):
        generate(None, out=tmp_path / "x", cameras=1, people=1, frames=1, width=64, height=48, progress=False, **override)
