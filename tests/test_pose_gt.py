"""Keypoint ground truth of the synthetic world: projection, visibility against the id map, the json files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from citytrack.data.formats import aicity, coco
from citytrack.data.formats.errors import FormatError
from citytrack.data.synth import CameraRenderer, PoseCache, build_world, generate
from citytrack.data.synth import keypoints as synth_kp
from citytrack.data.synth.body import ANKLE_L, FACE, HEAD_TOP, SHO_R
from citytrack.data.synth.pose_crops import crop_region
from citytrack.data.synth.world import Occluder, SceneSpec

SMALL = {"cameras": 2, "people": 6, "frames": 10, "width": 320, "height": 192, "progress": False,
         "pose": {"stride": 3, "min_height": 20, "min_keypoints": 3, "test_fraction": 0.5}}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(None, out=tmp_path_factory.mktemp("pose_gt"), seed=4, **SMALL)


def test_world_points_follow_the_body() -> None:
    world = build_world(SceneSpec(cameras=1, people=3, frames=2, width=160, height=96), 1)
    idx, pts = PoseCache(world)(0)
    joints, outward = PoseCache(world).keypoints(0)
    np.testing.assert_array_equal(joints[:, coco.COCO_KEYPOINTS.index("right_shoulder")], pts[:, SHO_R])
    np.testing.assert_array_equal(joints[:, coco.COCO_KEYPOINTS.index("left_ankle")], pts[:, ANKLE_L])
    height = pts[:, HEAD_TOP, 2]
    heading = world.traj.heading[0, idx]
    fwd = np.c_[np.cos(heading), np.sin(heading)]
    # the nose is 0.052 H in front of the face centre, the left eye left of the right eye
    np.testing.assert_allclose(((joints[:, 0, :2] - pts[:, FACE, :2]) * fwd).sum(1), 0.052 * height, atol=1e-9)
    left = np.c_[-fwd[:, 1], fwd[:, 0]]
    assert (((joints[:, 1, :2] - joints[:, 2, :2]) * left).sum(1) > 0).all()
    np.testing.assert_allclose(outward[:, 0], fwd, atol=1e-9)


def test_projection_and_visibility_match_the_id_map() -> None:
    spec = SceneSpec(cameras=2, people=12, frames=6, width=240, height=144, area=(12.0, 9.0))  # some leave the view
    world = build_world(spec, 5)
    poses = PoseCache(world)
    counts = np.zeros(3, dtype=int)
    for cam in world.cameras:
        r = CameraRenderer(world, cam, poses=poses)
        for f in range(spec.frames):
            fr = r.render(f)
            idx, _ = poses(f)
            joints, _ = poses.keypoints(f)
            rows = [int(np.flatnonzero(idx == a)[0]) for a in fr.agents]
            # exact projection through the camera's own calibration
            uv = cam.calibration.project(joints[rows].reshape(-1, 3)).reshape(-1, 17, 2) if len(rows) else np.zeros((0, 17, 2))
            kp = fr.keypoints
            on = kp[..., 2] > 0
            np.testing.assert_allclose(kp[..., :2][on], uv[on], atol=1e-6)
            inside = (uv[..., 0] >= 0) & (uv[..., 0] < spec.width) & (uv[..., 1] >= 0) & (uv[..., 1] < spec.height)
            np.testing.assert_array_equal(on, inside)
            for n, a in enumerate(fr.agents):
                for j in np.flatnonzero(on[n]):
                    # the joint's pixel (pixel i covers [i, i + 1)) and its 8 neighbours, moved inside at the edge
                    x, y = np.clip(np.floor(kp[n, j, :2]).astype(int), 1, [spec.width - 2, spec.height - 2])
                    patch = fr.id_map[y - 1 : y + 2, x - 1 : x + 2]
                    if kp[n, j, 2] == 2:
                        assert (patch == a + 1).any()
                    elif j > 4:  # body joints are occluded only by someone or something else
                        assert not (patch == a + 1).any()
            counts += np.bincount(kp[..., 2].astype(int).ravel(), minlength=3)
    assert counts.min() > 0, counts


def test_joints_behind_an_occluder_are_occluded() -> None:
    """A wall between camera and person hides every joint (v = 1), none is marked visible."""
    spec = SceneSpec(cameras=1, people=1, frames=1, width=160, height=96, occluders=0)
    world = build_world(spec, 0)
    world.traj.position[:] = 0.0
    world.traj.present[:] = True
    world.occluders.append(Occluder("box", np.array([0.0, 0.0]), np.array([3.0, 3.0, 3.0]), 0.0, (90, 90, 90)))
    fr = CameraRenderer(world, world.cameras[0]).render(0)
    assert fr.visible_pixels[0] == 0
    v = fr.keypoints[0, :, 2]
    assert (v[v > 0] == 1).all() and (v > 0).any()


def test_visibility_rules_on_a_hand_made_id_map() -> None:
    id_map = np.zeros((20, 30), dtype=np.uint16)
    id_map[5:8, 5:8] = 3  # person 3 around (6, 6)
    id_map[10, 20] = 4  # another person's pixel next to (21, 10)
    uv = np.zeros((1, 17, 2))
    uv[0, :] = [6.2, 5.9]
    uv[0, 1] = [21.4, 10.0]  # neighbour pixel is someone else's: occluded
    uv[0, 2] = [-0.5, 3.0]  # left of the image
    uv[0, 3] = [10.0, 19.6]  # rounds to row 20: still inside, occluded
    depth = np.ones((1, 17))
    depth[0, 4] = -1.0  # behind the camera
    turned = np.zeros((1, 17), dtype=bool)
    turned[0, 5] = True
    v = synth_kp.keypoint_visibility(uv, depth, id_map, np.array([3]), turned)[0]
    assert v[0] == 2 and v[1] == 1 and v[2] == 0 and v[3] == 1 and v[4] == 0 and v[5] == 1 and v[6] == 2


def test_scene_keypoints_json_beside_the_ground_truth(dataset: Path) -> None:
    scene = aicity.load_aic24_scene(aicity.list_aic24_scenes(dataset, "train")[0])
    gt = aicity.read_aic24_ground_truth(scene.ground_truth)
    world = build_world(SceneSpec(cameras=2, people=6, frames=10, width=320, height=192), 4)
    poses = PoseCache(world)
    for c, cam in enumerate(scene.cameras):
        path = cam.calibration.parent / "keypoints.json"
        people = coco.coco_to_image_keypoints(coco.load_coco_keypoints(path))
        assert sorted(people) == list(range(10))
        rows = gt[gt[:, 0] == cam.camera_id]
        assert sum(len(p.boxes) for p in people.values()) == len(rows)
        r = CameraRenderer(world, world.cameras[c], poses=poses)
        for f, p in people.items():
            fr = r.render(f)
            keep = fr.visible_pixels >= 10
            want = fr.keypoints[keep]
            want[want[..., 2] == 0] = 0
            np.testing.assert_allclose(p.keypoints, want, atol=1e-3)
            ids = {world.agents[a].global_id for a in fr.agents[keep]}
            assert set(p.track_ids.tolist()) == ids
            frame_rows = rows[rows[:, 2] == f]
            np.testing.assert_allclose(p.boxes[np.argsort(p.track_ids)], frame_rows[np.argsort(frame_rows[:, 1]), 3:7], atol=6e-3)  # gt: 2 decimals


def test_pose_crops_map_back_to_the_frame(dataset: Path) -> None:
    pose = dataset / "pose"
    train = coco.load_coco_keypoints(pose / "person_keypoints_train.json")
    test = coco.load_coco_keypoints(pose / "person_keypoints_test.json")
    assert train.dataset["categories"][0]["keypoints"] == list(coco.COCO_KEYPOINTS)
    ids = [{a["track_id"] for a in c.dataset["annotations"]} for c in (train, test)]
    assert ids[0] and ids[1] and not ids[0] & ids[1]  # split by identity
    world = build_world(SceneSpec(cameras=2, people=6, frames=10, width=320, height=192), 4)
    poses = PoseCache(world)
    renderers = [CameraRenderer(world, cam, poses=poses) for cam in world.cameras]
    checked = 0
    for ann in train.dataset["annotations"][:12]:
        img = train.imgs[ann["image_id"]]
        assert (pose / "images" / img["file_name"]).is_file() and img["frame"] % 3 == 0
        fr = renderers[img["camera"] - 1].render(img["frame"])
        n = [world.agents[a].global_id for a in fr.agents].index(ann["track_id"])
        x0, y0, x1, y1 = img["crop_box"]
        assert (x0, y0, x1, y1) == crop_region(fr.full_boxes[n], (128, 256), 1.4)
        kp = np.asarray(ann["keypoints"], dtype=float).reshape(17, 3)
        back = kp[:, :2] / [128 / (x1 - x0), 256 / (y1 - y0)] + [x0, y0]
        on = kp[:, 2] > 0
        np.testing.assert_allclose(back[on], fr.keypoints[n, on, :2], atol=2e-3)
        np.testing.assert_array_equal(kp[:, 2], fr.keypoints[n, :, 2])
        checked += 1
    assert checked


def test_keypoints_json_round_trip_and_errors(tmp_path: Path) -> None:
    kp = np.zeros((17, 3))
    kp[:, 0], kp[:, 1], kp[:, 2] = np.arange(17) + 0.25, 2.5, 2
    kp[3, 2], kp[4] = 1, (7.0, 8.0, 0)
    ann = coco.keypoint_annotation(7, [1, 2, 30, 40], kp, 600.0, track_id=12)
    data = coco.build_coco_keypoints_dataset([{"id": 7, "file_name": "a.jpg", "width": 64, "height": 128}], [ann])
    path = tmp_path / "kp.json"
    coco.write_coco_keypoints(path, data)
    back = coco.coco_to_image_keypoints(coco.load_coco_keypoints(path))[7]
    want = kp.copy()
    want[4] = 0  # unlabelled joints are written as 0, 0, 0
    np.testing.assert_allclose(back.keypoints[0], want)
    assert back.track_ids.tolist() == [12] and ann["num_keypoints"] == 16
    bad = {**data, "annotations": [{**data["annotations"][0], "num_keypoints": 3}]}
    with pytest.raises(FormatError, match="num_keypoints"):
        coco.write_coco_keypoints(tmp_path / "bad.json", bad)
