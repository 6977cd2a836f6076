"""Street clutter: drawn into the background, never ground truth, in perspective, seeded, out of people's way."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from citytrack.data.synth import CameraRenderer, SynthConfigError, build_world, generate
from citytrack.data.synth.clutter import WALKER_CLEARANCE, ClutterSpec, Prop
from citytrack.data.synth.solids import prism
from citytrack.data.synth.world import SceneSpec, World

SPEC = SceneSpec(cameras=3, people=8, frames=6, width=320, height=192)
NO_CLUTTER = ClutterSpec(**{f.name: 0 for f in dataclasses.fields(ClutterSpec) if f.type == "int"})


def _empty(world: World) -> World:
    """The same world with nobody in it."""
    world.traj.present[:] = False
    return world


def test_clutter_is_drawn_but_never_ground_truth() -> None:
    with_clutter = _empty(build_world(SPEC, 4))
    without = _empty(build_world(dataclasses.replace(SPEC, clutter=NO_CLUTTER), 4))
    assert len(with_clutter.clutter) > 20 and not without.clutter
    # People, cameras and occluders do not depend on the clutter settings.
    np.testing.assert_array_equal(with_clutter.traj.position, without.traj.position)
    changed = 0
    for cam_a, cam_b in zip(with_clutter.cameras, without.cameras, strict=True):
        a = CameraRenderer(with_clutter, cam_a, noise=False).render(0)
        img_a = a.image.copy()
        b = CameraRenderer(without, cam_b, noise=False).render(0)
        # Nothing of the clutter reaches the ground truth.
        assert len(a.agents) == 0 and a.full_boxes.shape == (0, 4) and not a.id_map.any()
        changed += int((np.abs(img_a.astype(int) - b.image.astype(int)).max(axis=2) > 30).sum())
    assert changed > 0.02 * SPEC.width * SPEC.height * len(with_clutter.cameras)


def test_prop_hides_a_person_behind_it() -> None:
    """Depth order: a person standing right behind a pole (seen from the camera) loses the pole's pixels."""
    spec = dataclasses.replace(SPEC, people=1, occluders=0, clutter=NO_CLUTTER)
    world = build_world(spec, 2)
    cam = world.cameras[0]
    # A 3 m, 0.3 m wide post on the line from the camera to the plaza's centre, a person 2 m behind it.
    to_centre = -cam.center[:2] / np.linalg.norm(cam.center[:2])
    post_at = cam.center[:2] + to_centre * (np.linalg.norm(cam.center[:2]) - 3.0)
    world.clutter = [Prop("poles", post_at, [prism(post_at, 0.0, 3.0, 0.15, 0.15, (40, 40, 40))])]
    world.traj.position[:, 0] = post_at + to_centre * 2.0
    world.traj.present[:] = True
    fr = CameraRenderer(world, cam, noise=False).render(0)
    assert len(fr.agents) == 1
    assert 0 < fr.visible_pixels[0] < fr.full_pixels[0] * 0.9
    assert int((fr.id_map == 1).sum()) == fr.visible_pixels[0]


def test_poles_project_like_people_of_their_height() -> None:
    """A pole of height h at a ground point is h / 1.7 as tall in the image as a 1.7 m person there, and its
    rendered sprite spans the projection of its vertices (the top and bottom caps included)."""
    world = build_world(dataclasses.replace(SPEC, cameras=4), 11)
    poles = [p for p in world.clutter if p.kind == "poles"]
    assert poles
    alone = _empty(build_world(dataclasses.replace(SPEC, cameras=4, occluders=0, clutter=NO_CLUTTER), 11))
    checked = 0
    for pole in poles:
        v = pole.vertices()
        height, width = float(v[:, 2].max()), float(np.ptp(v[:, 0]))
        assert 1.0 <= height <= 3.05 and 0.08 <= width <= 0.45  # a band may stick out by 1 cm
        for cam in world.cameras:
            P = cam.projection
            pts = np.array([[*pole.center, 0.0, 1.0], [*pole.center, height, 1.0], [*pole.center, 1.7, 1.0]]) @ P.T
            uv = pts[:, :2] / pts[:, 2:]
            if pts[0, 2] <= 0 or not ((uv >= 0) & (uv < [cam.width, cam.height])).all():
                continue
            pole_px, person_px = uv[0, 1] - uv[1, 1], uv[0, 1] - uv[2, 1]
            assert pole_px > 0 and pole_px / person_px == pytest.approx(height / 1.7, rel=0.08)
            alone.clutter = [pole]
            sprite = CameraRenderer(alone, alone.cameras[cam.index], noise=False).sprites[0]
            hom = np.c_[v, np.ones(len(v))] @ P.T
            assert sprite.mask.any(axis=1).sum() == pytest.approx(np.ptp(hom[:, 1] / hom[:, 2]), abs=2.5)
            checked += 1
    assert checked > 0


def test_clutter_deterministic_and_seeded() -> None:
    a, b, c = build_world(SPEC, 5), build_world(SPEC, 5), build_world(SPEC, 6)

    def layout(w: World) -> list[tuple[str, bytes]]:
        return [(p.kind, p.vertices().tobytes()) for p in w.clutter]

    assert layout(a) == layout(b) and layout(a) != layout(c)
    assert np.array_equal(a.ground.image, b.ground.image)  # the markings too
    assert all(np.array_equal(x.solid.vertices, y.solid.vertices) for x, y in zip(a.buildings, b.buildings, strict=True))


def test_clutter_keeps_out_of_peoples_way_and_cameras_view() -> None:
    spec = dataclasses.replace(SPEC, people=20, frames=60, cameras=4)
    for seed in range(3):
        world = build_world(spec, seed)
        walkers = world.traj.position[world.traj.present]
        hx, hy = spec.area[0] / 2 + spec.walk_margin, spec.area[1] / 2 + spec.walk_margin
        assert any(p.inside for p in world.clutter)
        for prop in world.clutter:
            lo, hi = prop.footprint()
            gap = np.maximum(np.maximum(lo - walkers, walkers - hi), 0.0)
            assert np.hypot(gap[:, 0], gap[:, 1]).min() >= WALKER_CLEARANCE - 1e-9
            if not prop.inside:  # in the street band, off the walk rectangle
                assert (lo >= [hx + 0.8, hy + 0.8]).any() or (hi <= [-hx - 0.8, -hy - 0.8]).any()
            for cam in world.cameras:
                hom = np.c_[prop.vertices(), np.ones(len(prop.vertices()))] @ cam.projection.T
                depth = hom[:, 2] / np.linalg.norm(cam.projection[2, :3])
                if (depth <= 0.3).all():  # behind the camera: the renderer skips it
                    continue
                assert (depth > 0.3).all()  # never across a camera's image plane
                uv = hom[:, :2] / hom[:, 2:]
                lo_px = np.clip(uv.min(axis=0), 0, [cam.width, cam.height])
                hi_px = np.clip(uv.max(axis=0), 0, [cam.width, cam.height])
                assert np.prod(hi_px - lo_px) <= spec.clutter.max_view * cam.width * cam.height + 1e-6


def test_counts_follow_the_config() -> None:
    spec = dataclasses.replace(SPEC, clutter=dataclasses.replace(NO_CLUTTER, poles=3, vehicles=2, facades=2))
    world = build_world(spec, 1)
    kinds = sorted(p.kind for p in world.clutter)
    assert kinds == ["poles"] * 3 + ["vehicles"] * 2
    assert len(world.buildings) == 18 + 2  # the skyline and two near fronts


@pytest.mark.parametrize(
    "override,key",
    [({"world": {"clutter": {"poles": -1}}}, "world.clutter.poles"),
     ({"world": {"clutter": {"trees": 1.5}}}, "world.clutter.trees"),
     ({"world": {"clutter": {"inside": 2}}}, "world.clutter.inside"),
     ({"world": {"clutter": {"max_view": 0}}}, "world.clutter.max_view"),
     ({"world": {"clutter": {"rockets": 3}}}, "rockets")],
)
def test_bad_clutter_config_names_the_key(tmp_path: Path, override: dict, key: str) -> None:
    with pytest.raises(SynthConfigError, match=key.replace(".", r"\.")):
        generate(None, out=tmp_path / "x", cameras=1, people=1, frames=1, width=64, height=48, progress=False, **override)
