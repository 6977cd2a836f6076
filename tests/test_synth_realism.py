"""People of the synthetic world as real footage shows them: amodal full-body boxes, dull clothes,
carried objects, varied walking speeds, children."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from citytrack.data.synth import CameraRenderer, PoseCache, SynthConfigError, body, build_world
from citytrack.data.synth.config import compose_config, scene_spec
from citytrack.data.synth.keypoints import world_keypoints
from citytrack.data.synth.world import CARRY_KINDS, SceneSpec, SynthCamera, World, make_appearance


def _window(cam: SynthCamera, x0: int, y0: int, width: int, height: int) -> SynthCamera:
    """The camera's view through the image window at (x0, y0) of `width` x `height` (it may reach beyond the
    image): the same rays, pixel (x, y) of the window is pixel (x + x0, y + y0) of the camera."""
    K = cam.K.copy()
    K[:2, 2] -= (x0, y0)
    return dataclasses.replace(cam, K=K, width=width, height=height)


def _alone(world: World, agent: int) -> World:
    """The world with only `agent` in it and no occluders."""
    present = np.zeros_like(world.traj.present)
    present[:, agent] = world.traj.present[:, agent]
    return dataclasses.replace(world, occluders=[], traj=dataclasses.replace(world.traj, present=present))


def test_full_box_is_the_tight_box_of_the_whole_silhouette() -> None:
    """Amodal: the full box of a person, occluded by others and occluders and cut by the image border, is
    the tight box of their silhouette drawn alone in a larger image with the same rays."""
    spec = SceneSpec(cameras=2, people=10, frames=4, width=400, height=240, area=(8.0, 6.0), occluders=4)
    world = build_world(spec, 11)
    poses = PoseCache(world)
    W, H, pad = 120, 70, 400  # the tested camera sees the middle of the view, where people are cut by its border
    checked = hidden = cut = 0
    for full_view in world.cameras:
        cam = _window(full_view, (spec.width - W) // 2, (spec.height - H) // 2, W, H)
        r = CameraRenderer(world, cam, poses=poses)
        frames = [r.render(f) for f in range(spec.frames)]
        frames = [(fr.frame, fr.agents.copy(), fr.full_boxes.copy(), fr.visible_pixels.copy()) for fr in frames]
        for a in {int(a) for _, agents, _, _ in frames for a in agents}:
            alone = _alone(world, a)
            big = CameraRenderer(alone, _window(cam, -pad, -pad, W + 2 * pad, H + 2 * pad), noise=False, poses=PoseCache(alone))
            for f, agents, boxes, seen in frames:
                if a not in agents:
                    continue
                fr = big.render(f)
                assert fr.agents.tolist() == [a]
                if fr.visible_pixels[0] != fr.full_pixels[0]:
                    continue  # cut by the larger image too: no complete silhouette to compare with
                box = boxes[agents.tolist().index(a)]
                # each edge touches the silhouette: within 1 px (the two projections differ in the last bits)
                x, y, w, h = cv2.boundingRect((fr.id_map == a + 1).astype(np.uint8))
                np.testing.assert_allclose(box, [x - pad, y - pad, w, h], atol=1)
                checked += 1
                hidden += seen[agents.tolist().index(a)] < (fr.id_map[pad : pad + H, pad : pad + W] == a + 1).sum()
                cut += box[0] < 0 or box[1] < 0 or box[0] + box[2] > W or box[1] + box[3] > H
    assert checked > 30 and hidden > 3 and cut > 3  # people occluded (by others or occluders) and cut were among them


def test_full_box_follows_the_body_not_a_cylinder() -> None:
    """The box spans head to feet and is about as wide as a person (real MOT boxes: w/h ~0.41), and the
    projected foot point lies inside it, a few percent of its height above the bottom edge."""
    spec = SceneSpec(cameras=3, people=12, frames=12, width=480, height=270)
    world = build_world(spec, 2)
    poses = PoseCache(world)
    aspect, above = [], []
    for cam in world.cameras:
        r = CameraRenderer(world, cam, poses=poses)
        for f in range(0, spec.frames, 2):
            fr = r.render(f)
            present, pts = poses(f)
            present = present.tolist()
            _, y, w, h = fr.full_boxes.T
            for k, a in enumerate(fr.agents.tolist()):
                if h[k] < 40:
                    continue
                head, foot = cam.calibration.project(pts[present.index(a), [body.HEAD_TOP, body.FOOT]])
                assert y[k] <= head[1] + 1 and foot[1] < y[k] + 1.05 * h[k] + 1
                aspect.append(w[k] / h[k])
                above.append((y[k] + h[k] - fr.foot_image[k, 1]) / h[k])
    assert len(aspect) > 40
    assert 0.33 < np.mean(aspect) < 0.5  # the old symmetric cylinder box was ~0.57
    assert 0.02 < np.median(above) < 0.1 and np.min(above) > -0.05  # below the box only while a stride lifts the feet


def test_carried_objects_are_part_of_the_person() -> None:
    """A backpack, bag, handbag or suitcase adds pixels with the person's id and can widen the box; objects
    nobody carries cost nothing (their points sit on the pelvis)."""
    spec = SceneSpec(cameras=3, people=1, frames=12, width=320, height=180, occluders=0, area=(6.0, 4.0))
    base = build_world(spec, 3)
    base.traj.present[:] = True
    pixels, widths = {}, {}
    for kind in CARRY_KINDS:
        world = dataclasses.replace(base, agents=[dataclasses.replace(
            base.agents[0], appearance=dataclasses.replace(base.agents[0].appearance, carry=kind))])
        poses = PoseCache(world)
        px = wd = 0.0
        for cam in world.cameras:
            r = CameraRenderer(world, cam, poses=poses)
            for f in range(spec.frames):
                fr = r.render(f)
                assert int((fr.id_map == 1).sum()) == fr.visible_pixels.sum()  # the id map holds the object too
                px += fr.full_pixels.sum()
                wd += fr.full_boxes[:, 2].sum()
        pixels[kind], widths[kind] = px, wd
    for kind in CARRY_KINDS[1:]:
        assert pixels[kind] > 1.02 * pixels["none"], kind
    assert widths["suitcase"] > 1.1 * widths["none"] and widths["handbag"] > widths["none"]
    shape = body.BodyShape(np.array([1.7, 1.7]), np.array([1.0, 1.0]), np.array([0, CARRY_KINDS.index("suitcase")]))
    pts = body.body_points(np.zeros((2, 2)), np.zeros(2), np.zeros(2), np.ones(2), shape)
    for code, idx in body.CARRIED_POINTS.items():
        np.testing.assert_array_equal(pts[0, list(idx)], np.broadcast_to(pts[0, body.PELVIS], (len(idx), 3)))
        assert (code == body.SUITCASE) != np.allclose(pts[1, list(idx)], pts[1, body.PELVIS])
    assert pts[1, body.CASE0:body.CASE0 + 8, 2].min() < 0.05  # the suitcase stands on its wheels


def test_children_are_shorter_walk_with_adults_and_share_the_skeleton() -> None:
    spec = SceneSpec(cameras=1, people=80, frames=4, width=160, height=96, child_prob=0.3)
    world = build_world(spec, 7)
    heights = np.array([a.appearance.height for a in world.agents])
    child = heights < 1.45
    assert 10 < child.sum() < 40
    assert heights[child].min() >= 1.0 and heights[child].max() <= 1.4 and heights[~child].min() >= 1.5
    first_adult = int(np.argmax(~child))
    for a in world.agents:
        if child[a.index] and a.index > first_adult:  # an adult was there to walk with
            members = [b for b in world.agents if b.group == a.group]
            assert a.group != a.index and any(not child[b.index] for b in members)
            assert a.speed == world.agents[a.group].speed
    assert all(world.agents[i].appearance.carry in ("none", "backpack") for i in np.flatnonzero(child))
    # COCO joints of a child are an adult's scaled by stature (same pose, nothing carried)
    shape = body.BodyShape(np.array([1.1, 1.76]), np.array([1.0, 1.0]), np.zeros(2, dtype=np.int64))
    pts = body.body_points(np.zeros((2, 2)), np.full(2, 0.3), np.full(2, 1.1), np.full(2, 0.9), shape)
    joints, _ = world_keypoints(pts)
    np.testing.assert_allclose(joints[0] / 1.1, joints[1] / 1.76, atol=1e-12)


def test_children_render_shorter() -> None:
    """A child and an adult side by side at the same distance: the boxes keep their statures' ratio."""
    spec = SceneSpec(cameras=1, people=2, frames=1, width=320, height=180, occluders=0, area=(6.0, 4.0))
    world = build_world(spec, 1)
    cam = world.cameras[0]
    ahead = np.array([0.0, 0.0]) - cam.center[:2]
    ahead /= np.linalg.norm(ahead)
    side = np.array([-ahead[1], ahead[0]])
    tr = world.traj
    tr.present[:] = True
    tr.swing[:] = 0.0
    for k, (height, offset) in enumerate(((1.15, -0.5), (1.8, 0.5))):
        world.agents[k].appearance.height = height
        world.agents[k].appearance.carry = "none"
        tr.position[0, k] = side * offset
        tr.heading[0, k] = np.arctan2(side[1], side[0])
    fr = CameraRenderer(world, cam).render(0)
    h = dict(zip(fr.agents.tolist(), fr.full_boxes[:, 3].tolist(), strict=True))
    assert h[0] / h[1] == pytest.approx(1.15 / 1.8, rel=0.08)


def test_clothes_are_mostly_dull_and_dark() -> None:
    rng = np.random.default_rng(0)
    apps = [make_appearance(rng, SceneSpec()) for _ in range(400)]
    upper = np.array([a.upper for a in apps])
    lower = np.array([a.lower for a in apps])
    dark = upper.max(axis=1) < 100  # black, charcoal, dark grey, navy, brown, dark green, burgundy
    assert dark.mean() > 0.35 and lower.max(axis=1).__lt__(100).mean() > 0.3
    blue = (lower[:, 0] > lower[:, 2] + 40) & (lower[:, 0] < 200)  # denim and navy trousers
    assert blue.mean() > 0.2
    bright = [make_appearance(rng, SceneSpec(dark_clothes_prob=0.0)).upper for _ in range(100)]
    assert min(max(c) for c in bright) >= 114  # saturated colours at >= 45% value: never dark
    kinds = {a.carry for a in apps}
    assert kinds == set(CARRY_KINDS)
    assert 0.4 < np.mean([a.carry != "none" for a in apps]) < 0.6


def test_walking_speeds_vary_with_a_few_slow_walkers() -> None:
    world = build_world(SceneSpec(cameras=1, people=200, frames=2, width=160, height=96), 5)
    leaders = np.array([a.speed for a in world.agents if a.group == a.index])
    assert leaders.min() >= 0.4 and leaders.max() <= 1.8
    assert 0.03 < (leaders < 0.8).mean() < 0.2 and (leaders > 1.5).mean() > 0.1 and leaders.std() > 0.2


def test_realism_knobs_in_the_config() -> None:
    cfg = compose_config(["out=x"])
    assert scene_spec(cfg) == SceneSpec()  # the dataclass defaults are the config's (tests build worlds from either)
    spec = scene_spec(compose_config(["out=x", "world.child_prob=0.5", "world.carry_prob=0", "world.speed=[1.0,1.2]",
                                      "world.slow_prob=0", "world.dark_clothes_prob=1"]))
    assert spec.child_prob == 0.5 and spec.carry_prob == 0 and spec.speed == (1.0, 1.2) and spec.dark_clothes_prob == 1
    world = build_world(dataclasses.replace(spec, people=30, cameras=1, frames=2, width=160, height=96), 0)
    assert all(a.appearance.carry == "none" for a in world.agents)
    assert all(1.0 <= world.agents[a.group].speed <= 1.2 for a in world.agents)
    for bad, key in (("world.child_prob=1.5", "child_prob"), ("world.speed=[1.5,1.0]", "speed"),
                     ("world.carry_prob=-0.1", "carry_prob")):
        with pytest.raises(SynthConfigError, match=key):
            scene_spec(compose_config(["out=x", bad]))


def test_people_are_deterministic_by_seed() -> None:
    spec = SceneSpec(cameras=1, people=30, frames=5, width=160, height=96, child_prob=0.2)
    a, b, c = build_world(spec, 9), build_world(spec, 9), build_world(spec, 10)
    assert [x.appearance for x in a.agents] == [x.appearance for x in b.agents]
    assert [x.speed for x in a.agents] == [x.speed for x in b.agents]
    np.testing.assert_array_equal(a.traj.position, b.traj.position)
    assert [x.appearance for x in a.agents] != [x.appearance for x in c.agents]


def test_relief_shades_people_only_and_keeps_ground_truth() -> None:
    """`world.body_shading` / `world.cloth_texture`: the same world, ground truth and background; people's
    pixels darker at their outlines and garment edges than inside, and mottled; off by default."""
    flat_spec = SceneSpec(cameras=1, people=12, frames=3, width=320, height=180, occluders=0, noise_sigma=(0.0, 0.0),
                          jpeg_quality=(100, 100), motion_blur=(0.0, 0.0))
    shaded_spec = dataclasses.replace(flat_spec, body_shading=(0.6, 0.6))
    textured_spec = dataclasses.replace(flat_spec, cloth_texture=(0.4, 0.4))
    frames = {}
    for name, spec in (("flat", flat_spec), ("shaded", shaded_spec), ("textured", textured_spec)):
        world = build_world(spec, 4)
        fr = CameraRenderer(world, world.cameras[0]).render(2)
        frames[name] = (fr.image.astype(np.float32), fr.id_map.copy(), fr.full_boxes.copy(), fr.visible_pixels.copy())
    flat, ids = frames["flat"][0], frames["flat"][1]
    people = ids > 0
    assert people.sum() > 500
    for name in ("shaded", "textured"):
        image, id_map, boxes, visible = frames[name]
        np.testing.assert_array_equal(id_map, ids)
        np.testing.assert_array_equal(boxes, frames["flat"][2])
        np.testing.assert_array_equal(visible, frames["flat"][3])
        np.testing.assert_array_equal(image[~people], flat[~people])  # the scene around people is untouched
        assert np.abs(image[people] - flat[people]).mean() > 3.0
    # shading: a person's own outline pixels lose more brightness than its inner pixels
    ratio = frames["shaded"][0].sum(-1) / np.maximum(flat.sum(-1), 1.0)
    outline = people & (cv2.erode(people.astype(np.uint8), np.ones((3, 3), np.uint8)) == 0)
    inner = cv2.erode(people.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert inner.sum() > 50
    assert ratio[outline].mean() < ratio[inner].mean() - 0.1
    # texture: brightness varies within what was one flat colour, both ways
    tex = frames["textured"][0].sum(-1) / np.maximum(flat.sum(-1), 1.0)
    assert (tex[people] > 1.05).mean() > 0.1 and (tex[people] < 0.95).mean() > 0.1
    # the knobs are in the config, off by default, and validated
    assert scene_spec(compose_config(["out=x"])).body_shading == (0.0, 0.0)
    spec = scene_spec(compose_config(["out=x", "world.body_shading=[0.2,0.6]", "world.cloth_texture=[0,0.3]"]))
    assert spec.body_shading == (0.2, 0.6) and spec.cloth_texture == (0.0, 0.3)
    with pytest.raises(SynthConfigError, match="body_shading"):
        scene_spec(compose_config(["out=x", "world.body_shading=[0.6,0.2]"]))
