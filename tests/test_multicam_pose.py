"""Pose in the scene runner: foot points from keypoints, the pose stage of `ScenePipeline`, and the
online associator's pose reliability and part-weighted appearance (`pose=synthetic`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra.utils
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from citytrack.bench import pose as bench_pose
from citytrack.data.scenes import find_scene_dirs, load_scene
from citytrack.data.synth import ensure_synthetic_dataset
from citytrack.data.video import VideoReader
from citytrack.multicam.calibration import CameraCalibration, intrinsics_from_fov, look_at_rotation
from citytrack.multicam.foot import (
    ANKLES,
    ANTHROPOMETRIC_HEIGHTS,
    BOX,
    EXTRAPOLATED,
    VERTICAL,
    BoxBottomCentre,
    PoseFootPoint,
)
from citytrack.multicam.online import OnlineAssociator
from citytrack.multicam.pipeline import ScenePipeline
from citytrack.multicam.tracks import (
    CAM,
    SCT_COLUMNS,
    XWORLD,
    YWORLD,
    CameraInfo,
    SceneTracks,
    part_visibility,
)
from citytrack.utils.boxes import clip_xywh

REPO_ROOT = Path(__file__).resolve().parents[1]
SYNTH_HEIGHTS = {"ankle": 0.0156, "knee": 0.26, "hip": 0.52, "shoulder": 0.795, "head": 0.925}
LEVEL_JOINTS = {"ankle": (15, 16), "knee": (13, 14), "hip": (11, 12), "shoulder": (5, 6), "head": (0, 1, 2, 3, 4)}


# ----------------------------------------------------------------------------------- helpers
def skeleton(sole: tuple[float, float], stature: float, heights: dict[str, float] = SYNTH_HEIGHTS,
             lean: float = 0.0, conf: float = 0.9, hidden: tuple[str, ...] = ()) -> np.ndarray:
    """(17, 3) keypoints of a person standing at image point `sole`, `stature` px tall, the body axis
    tilted by `lean` px of x per px of height; joints of the `hidden` levels get confidence 0.
    Elbows and wrists sit between shoulders and hips."""
    kp = np.zeros((17, 3))
    for level, joints in LEVEL_JOINTS.items():
        up = heights[level] * stature
        for k, j in enumerate(joints):
            side = (-1) ** k * 0.05 * stature if level != "head" else (k - 2) * 0.01 * stature
            kp[j] = [sole[0] + lean * up + side, sole[1] - up, 0.0 if level in hidden else conf]
    for j, level_h in ((7, 0.63), (8, 0.63), (9, 0.5), (10, 0.5)):
        up = level_h * stature
        kp[j] = [sole[0] + lean * up, sole[1] - up, conf]
    return kp


class FakeKeypointExtractor:
    """Test double of `models.pose.extractor.KeypointExtractor`: a standing skeleton fitted to each box
    (sole `sole_offset` px above the box bottom centre); records every call."""

    def __init__(self, sole_offset: float = 0.0) -> None:
        self.sole_offset = sole_offset
        self.calls: list[tuple[torch.Tensor, list[np.ndarray]]] = []

    def __call__(self, images: torch.Tensor, boxes: list[np.ndarray]) -> list[np.ndarray]:
        assert images.dtype == torch.uint8 and images.ndim == 4 and images.shape[1] == 3 and len(images) == len(boxes)
        self.calls.append((images.clone(), [b.copy() for b in boxes]))
        out = []
        for b in boxes:
            out.append(np.stack([skeleton((x + w / 2, y + h - self.sole_offset), h) for x, y, w, h in b])
                       if len(b) else np.zeros((0, 17, 3)))
        return out


def _compose(*overrides: str) -> Any:
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return compose("infer", overrides=[f"paths.root_dir={REPO_ROOT}", "device=cpu", "task.pipeline.progress=false",
                                           *overrides])


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One tiny AI City 2024 scene of 2 cameras, 8 frames."""
    root = ensure_synthetic_dataset(tmp_path_factory.mktemp("pose"), scenes=1, seed=32, cameras=2, people=4, frames=8,
                                    width=320, height=180, fps=10, progress=False)
    return load_scene(find_scene_dirs(root / "train")[0])


# --------------------------------------------------------------------------------- foot point
def test_foot_below_the_ankles_not_at_the_box_bottom() -> None:
    fp = PoseFootPoint(joint_heights=SYNTH_HEIGHTS)
    kp = skeleton((200.0, 300.0), 150.0)
    box = np.array([[170.0, 140.0, 60.0, 180.0]])  # a loose box: its bottom is 20 px below the sole
    uv, rule = fp.estimate(box, kp[None])
    np.testing.assert_allclose(uv, [[200.0, 300.0]], atol=1e-6)
    assert rule.tolist() == [ANKLES]
    assert BoxBottomCentre()(box).tolist() == [[200.0, 320.0]]
    # with other proportions the sole is still below the ankles, by their ankle height
    uv_real = PoseFootPoint()(box, keypoints=kp[None])
    ankle_y = 300.0 - SYNTH_HEIGHTS["ankle"] * 150
    assert ankle_y < uv_real[0, 1] < 300.0 + 5


def test_foot_extrapolated_when_legs_hidden_or_leaning() -> None:
    fp = PoseFootPoint(joint_heights=SYNTH_HEIGHTS)
    upper = np.array([[170.0, 150.0, 60.0, 75.0]])  # the box of the visible upper body only
    for hidden in (("ankle",), ("ankle", "knee")):
        uv, rule = fp.estimate(upper, skeleton((200.0, 300.0), 150.0, hidden=hidden)[None])
        np.testing.assert_allclose(uv, [[200.0, 300.0]], atol=1e-6)
        assert rule.tolist() == [EXTRAPOLATED]
    assert BoxBottomCentre()(upper)[0, 1] == 225.0  # 75 px short
    # a body leaning in the image: the foot follows the body axis, not the image vertical
    kp = skeleton((200.0, 300.0), 150.0, lean=0.3, hidden=("ankle", "knee"))
    np.testing.assert_allclose(fp(upper, keypoints=kp[None]), [[200.0, 300.0]], atol=1e-6)


def test_joints_on_the_frame_edge_are_cut_not_seen() -> None:
    """A person cut by the bottom edge: the network puts the 'ankles' on the border, confidently;
    they are ignored and the foot is extrapolated below the image."""
    fp = PoseFootPoint(joint_heights=SYNTH_HEIGHTS, edge_margin=2)
    kp = skeleton((200.0, 300.0), 150.0)
    kp[[15, 16], 1] = 259.5  # clamped to the crop of a box clipped at y = 260
    box = np.array([[170.0, 150.0, 60.0, 110.0]])
    size = np.array([[640.0, 260.0]])
    uv, rule = fp.estimate(box, kp[None], size)
    np.testing.assert_allclose(uv, [[200.0, 300.0]], atol=1e-6)
    assert rule.tolist() == [EXTRAPOLATED] and uv[0, 1] > size[0, 1]
    # without the image size the border ankles are believed: the foot lands near the cut
    assert fp(box, keypoints=kp[None])[0, 1] < 265


def test_extrapolate_cut_keeps_the_amodal_box_for_legs_hidden_in_frame() -> None:
    """`extrapolate="cut"`: legs hidden behind something keep the (amodal) box bottom; a box cut by
    the frame bottom is still extrapolated; seen ankles still win."""
    fp = PoseFootPoint(joint_heights=SYNTH_HEIGHTS, extrapolate="cut")
    size = np.array([[640.0, 360.0], [640.0, 260.0], [640.0, 360.0]])
    boxes = np.array([[170.0, 150.0, 60.0, 160.0],   # amodal box of a person hidden below the hips
                      [170.0, 150.0, 60.0, 110.0],   # box clipped at the frame bottom (y = 260)
                      [170.0, 140.0, 60.0, 180.0]])  # feet seen, loose box
    kp = np.stack([skeleton((200.0, 300.0), 150.0, hidden=("ankle", "knee")),
                   skeleton((200.0, 300.0), 150.0, hidden=("ankle", "knee")),
                   skeleton((200.0, 300.0), 150.0)])
    uv, rule = fp.estimate(boxes, kp, size)
    assert rule.tolist() == [BOX, EXTRAPOLATED, ANKLES]
    np.testing.assert_allclose(uv, [[200.0, 310.0], [200.0, 300.0], [200.0, 300.0]], atol=1e-6)
    # the default extrapolates the hidden legs as well
    assert PoseFootPoint(joint_heights=SYNTH_HEIGHTS).estimate(boxes, kp, size)[1].tolist() == [EXTRAPOLATED] * 2 + [ANKLES]
    with pytest.raises(ValueError, match="extrapolate"):
        PoseFootPoint(extrapolate="never")


def test_fallback_to_the_box_and_vectorised_mix() -> None:
    fp = PoseFootPoint(joint_heights=SYNTH_HEIGHTS)
    boxes = np.array([[170.0, 140.0, 60.0, 180.0], [10.0, 20.0, 30.0, 90.0], [50, 60, 20, 50], [300, 40, 40, 100]])
    kps = np.stack([
        skeleton((200.0, 300.0), 150.0),                                              # ankles
        skeleton((25.0, 100.0), 80.0, hidden=("ankle", "knee", "hip", "shoulder")),   # head only: box
        np.zeros((17, 3)),                                                            # no pose: box
        skeleton((320.0, 150.0), 100.0, hidden=("ankle", "knee")),                    # extrapolated
    ])
    uv, rule = fp.estimate(boxes, kps)
    assert rule.tolist() == [ANKLES, BOX, BOX, EXTRAPOLATED]
    np.testing.assert_allclose(uv[[1, 2]], BoxBottomCentre()(boxes[[1, 2]]))
    np.testing.assert_allclose(uv[[0, 3]], [[200.0, 300.0], [320.0, 150.0]], atol=1e-6)
    for i in range(len(boxes)):  # row by row gives the same
        np.testing.assert_allclose(fp(boxes[i : i + 1], keypoints=kps[i : i + 1]), uv[i : i + 1])
    np.testing.assert_allclose(fp(boxes), BoxBottomCentre()(boxes))  # no keypoints at all
    assert fp(np.zeros((0, 4)), keypoints=np.zeros((0, 17, 3))).shape == (0, 2)
    with pytest.raises(ValueError, match="rise from ankle to head"):
        PoseFootPoint(joint_heights={**ANTHROPOMETRIC_HEIGHTS, "knee": 0.6})


def _camera(lens: bool = False) -> CameraCalibration:
    """A 1280x720 camera 6 m up, 12 m back, looking down at the origin; `lens`: with barrel distortion."""
    K = intrinsics_from_fov(1280, 720, 70.0)
    R = look_at_rotation((0.0, -12.0, 6.0), (0.0, 0.0, 0.0))
    t = -R @ np.array([0.0, -12.0, 6.0])
    calib = CameraCalibration.from_intrinsics_extrinsics(K, R, t, (1280, 720))
    if not lens:
        return calib
    return CameraCalibration(homography=calib.homography, projection=calib.projection, image_size=(1280, 720),
                             intrinsics=K, distortion=np.array([-0.25, 0.08, 0.0, 0.0, 0.0]))


def skeleton_3d(calib: CameraCalibration, ground: tuple[float, float], stature: float,
                hidden: tuple[str, ...] = ()) -> np.ndarray:
    """(17, 3) keypoints of an upright person of `stature` metres standing on `ground`, as the camera
    sees them (lens included): every joint of a level on the body axis at its height."""
    kp = np.zeros((17, 3))
    for level, joints in LEVEL_JOINTS.items():
        uv = calib.project(np.array([[ground[0], ground[1], SYNTH_HEIGHTS[level] * stature]]))[0]
        for j in joints:
            kp[j] = [uv[0], uv[1], 0.0 if level in hidden else 0.9]
    for j, level_h in ((7, 0.63), (8, 0.63), (9, 0.5), (10, 0.5)):
        kp[j, :2] = calib.project(np.array([[ground[0], ground[1], level_h * stature]]))[0]
        kp[j, 2] = 0.9
    return kp


def _world(calib: CameraCalibration, fp: PoseFootPoint, kps: np.ndarray, cal: bool = True) -> tuple[np.ndarray, np.ndarray]:
    boxes = np.tile([[600.0, 300.0, 40.0, 100.0]], (len(kps), 1))  # a box the 3D fit does not read
    uv, rule = fp.estimate(boxes, kps, np.tile([[1280.0, 720.0]], (len(kps), 1)), [calib] * len(kps) if cal else None)
    return calib.image_to_ground(uv), rule


@pytest.mark.parametrize("lens", [False, True])
def test_vertical_fit_finds_the_ground_point_without_the_feet(lens: bool) -> None:
    """Knees, hips, shoulders, head above one ground point: the fit recovers it exactly whether the legs
    are seen, hidden or only the head and shoulders are, through lens distortion too; the image rules
    (no calibration) err where the ankles are hidden and the body is foreshortened."""
    calib = _camera(lens)
    fp = PoseFootPoint(joint_heights=SYNTH_HEIGHTS, stature=1.71)
    ground = [(0.0, 0.0), (3.0, 2.0), (-4.0, 6.0)]
    for hidden in ((), ("ankle", "knee"), ("ankle", "knee", "hip")):
        kps = np.stack([skeleton_3d(calib, g, 1.71, hidden) for g in ground])
        world, rule = _world(calib, fp, kps)
        np.testing.assert_allclose(world, ground, atol=1e-6)
        assert rule.tolist() == [VERTICAL] * 3
    # a 1.90 m person seen whole: the spread of the levels pulls the stature off the 1.71 m prior
    # (held at 1.71 m the fit errs 0.35 m) ...
    tall = skeleton_3d(calib, (3.0, 2.0), 1.90)
    rigid = PoseFootPoint(joint_heights=SYNTH_HEIGHTS, stature=1.71, stature_sigma=1e-6)
    err_free, err_rigid = (np.linalg.norm(_world(calib, f, tall[None])[0] - [3.0, 2.0]) for f in (fp, rigid))
    # ... while one seen level leans on the prior: the ray meets 0.925 x 1.71 m, not 0.925 x 1.90 m
    head_only = skeleton_3d(calib, (3.0, 2.0), 1.90, ("ankle", "knee", "hip", "shoulder"))
    err_head = np.linalg.norm(_world(calib, fp, head_only[None])[0] - [3.0, 2.0])
    assert err_free < 0.1 and 0.3 < err_rigid < err_head
    # without calibrations (or without `stature`) the image rules answer, as before
    kps = np.stack([skeleton_3d(calib, g, 1.71, ("ankle", "knee")) for g in ground])
    plain = PoseFootPoint(joint_heights=SYNTH_HEIGHTS)
    world_img, rule_img = _world(calib, fp, kps, cal=False)
    assert rule_img.tolist() == [EXTRAPOLATED] * 3
    np.testing.assert_array_equal(world_img, _world(calib, plain, kps)[0])
    if lens:  # the image rule extrapolates in the distorted image: off by centimetres at least
        assert np.linalg.norm(world_img - ground, axis=1).max() > 0.01


def test_vertical_fit_falls_back_without_a_projection_or_upper_body() -> None:
    calib = _camera()
    homography_only = CameraCalibration.from_homography(calib.homography, (1280, 720))
    fp = PoseFootPoint(joint_heights=SYNTH_HEIGHTS, stature=1.71)
    kp = skeleton_3d(calib, (1.0, 1.0), 1.71)
    boxes = np.array([[600.0, 300.0, 40.0, 100.0]] * 2)
    legs_only = kp.copy()
    legs_only[[0, 1, 2, 3, 4, 5, 6, 11, 12, 13, 14], 2] = 0.0  # only the ankles seen: the box height scales them
    uv, rule = fp.estimate(boxes, np.stack([kp, legs_only]), None, [homography_only, calib])
    assert rule.tolist() == [ANKLES, ANKLES]
    np.testing.assert_array_equal(uv, PoseFootPoint(joint_heights=SYNTH_HEIGHTS).estimate(boxes, np.stack([kp, legs_only]))[0])
    with pytest.raises(ValueError, match="2 calibrations for 1 boxes"):
        fp.estimate(boxes[:1], kp[None], None, [calib, calib])
    with pytest.raises(ValueError, match="stature"):
        PoseFootPoint(stature=3.0)


# ----------------------------------------------------------------------------------- pipeline
def _pipeline(cfg: Any, **attrs: Any) -> ScenePipeline:
    p = hydra.utils.instantiate(cfg.task.pipeline)
    for k, v in attrs.items():
        setattr(p, k, v)
    return p


def test_pose_none_is_the_box_bottom_centre_pipeline(scene: Any) -> None:
    """`pose=none`: no pose stage, world points are the projected box bottom centres, and a pose stage
    whose keypoints nobody uses changes nothing."""
    cfg = _compose("detector=gt", "reid=none", "multicam=online", "pose=none")
    assert cfg.task.pipeline.keypoint_extractor is None and cfg.multicam.seed_min_joints == 0
    plain = _pipeline(cfg)
    assert plain.keypoint_extractor is None and isinstance(plain.foot_point, BoxBottomCentre)
    a = plain.run(scene)
    assert a.seconds.get("pose", 0.0) == 0.0 and a.tracks.keypoints is None
    t = a.tracks.table
    calib = {c.camera_id: c.calibration for c in scene.cameras}
    for cam in np.unique(t[:, CAM]):
        sel = t[:, CAM] == cam
        world = calib[int(cam)].image_to_ground(BoxBottomCentre()(t[sel, 3:7]))
        np.testing.assert_allclose(t[sel][:, [XWORLD, YWORLD]], world, rtol=1e-9, atol=1e-9)
    fake = FakeKeypointExtractor(sole_offset=10.0)
    b = _pipeline(cfg, keypoint_extractor=fake).run(scene)
    assert fake.calls and b.seconds["pose"] > 0
    np.testing.assert_array_equal(a.table, b.table)
    np.testing.assert_array_equal(a.tracks.table, b.tracks.table)


def test_pose_stage_batches_cameras_and_carries_keypoints(scene: Any) -> None:
    cfg = _compose("detector=gt", "reid=none", "multicam=online", "pose=synthetic", "pose.extractor=null",
                   "pose.foot_point.stature=null")  # the image rules: the fake's 2D skeletons are not 3D-consistent
    fake = FakeKeypointExtractor(sole_offset=10.0)
    received: list[np.ndarray | None] = []
    pipeline = _pipeline(cfg, keypoint_extractor=fake)
    assert isinstance(pipeline.foot_point, PoseFootPoint)
    associator = pipeline.make_associator()
    update = associator.update

    def spy(frame: int, rows: np.ndarray, features: Any, keypoints: np.ndarray | None = None) -> np.ndarray:
        received.append(keypoints)
        return update(frame, rows, features, keypoints=keypoints)

    associator.update = spy  # type: ignore[method-assign]
    pipeline._associator = associator
    run = pipeline.run(scene)
    # one extractor call per step over both cameras (same size), in BGR as decoded
    assert len(fake.calls) == run.frames == 8 and all(len(imgs) == 2 for imgs, _ in fake.calls)
    with VideoReader(scene.cameras[0].video, max_frames=1) as reader:
        _, first = next(iter(reader))
    np.testing.assert_array_equal(fake.calls[0][0][0].permute(1, 2, 0).numpy(), first)
    # keypoints row-aligned with the per-camera track table, and handed to the associator per frame
    t, kp = run.tracks.table, run.tracks.keypoints
    assert kp is not None and kp.shape == (len(t), 17, 3)
    assert sum(len(k) for k in received if k is not None) == len(t) and all(k is not None for k in received)
    np.testing.assert_allclose(kp[:, 0, 1], t[:, 4] + t[:, 6] - 10.0 - SYNTH_HEIGHTS["head"] * t[:, 6], atol=1e-3)
    # the foot point came from the keypoints: 10 px above the box bottom, projected (boxes inside the
    # image, so that no joint is on the border)
    calib = {c.camera_id: c.calibration for c in scene.cameras}
    w, h = run.image_sizes[int(t[0, CAM])]
    inside = (t[:, 3] > 2) & (t[:, 4] > 2) & (t[:, 3] + t[:, 5] < w - 2) & (t[:, 4] + t[:, 6] < h - 2)
    assert inside.sum() >= 10
    for cam in np.unique(t[:, CAM]):
        sel = (t[:, CAM] == cam) & inside
        foot = BoxBottomCentre()(t[sel, 3:7]) - [0.0, 10.0]
        np.testing.assert_allclose(t[sel][:, [XWORLD, YWORLD]], calib[int(cam)].image_to_ground(foot), atol=1e-4)  # float32 keypoints
    with pytest.raises(ValueError, match="keypoints"):
        SceneTracks(t, None, {}, 10.0, keypoints=kp[:-1])


class Upright(FakeKeypointExtractor):
    """Per box, the nearest ground-truth box of any camera and frame (clipped to the image with `size`);
    a 3D skeleton of a 1.71 m person on its world point, as that camera sees it."""

    def __init__(self, scene: Any, size: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.gt = scene.ground_truth
        self.boxes = self.gt[:, 3:7] if size is None else clip_xywh(self.gt[:, 3:7], size)
        self.calib = {c.camera_id: c.calibration for c in scene.cameras}

    def __call__(self, images: torch.Tensor, boxes: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        for b in boxes:
            rows = self.gt[[int(np.argmin(np.abs(self.boxes - box).sum(axis=1))) for box in b]]
            out.append(np.stack([skeleton_3d(self.calib[int(r[0])], (r[7], r[8]), 1.71) for r in rows])
                       if len(b) else np.zeros((0, 17, 3)))
        return out


def test_pipeline_fits_each_box_in_its_own_camera(scene: Any) -> None:
    """`pose=synthetic` (stature on): the runner hands each box its camera's calibration, so keypoints
    of a 1.71 m person standing on a ground-truth point come back as that point."""
    gt = scene.ground_truth
    cfg = _compose("detector=gt", "reid=none", "multicam=online", "pose=synthetic", "pose.extractor=null")
    assert cfg.pose.foot_point.stature == 1.71
    t = _pipeline(cfg, keypoint_extractor=Upright(scene)).run(scene).tracks.table
    truth = gt[[int(np.argmin(np.abs(gt[:, 3:7] - box).sum(axis=1))) for box in t[:, 3:7]]]
    assert (truth[:, 0] == t[:, CAM]).all() and len(np.unique(t[:, CAM])) == 2
    err = np.linalg.norm(t[:, [XWORLD, YWORLD]] - truth[:, 7:9], axis=1)
    assert np.median(err) < 1e-3 and np.mean(err < 0.01) > 0.9


# ------------------------------------------------------------------------------- association
CAMS2 = {c: CameraInfo(c, (1000, 1000)) for c in (1, 2)}


def _rows(cams: list[int], world: list[tuple[float, float]]) -> np.ndarray:
    rows = np.full((len(cams), len(SCT_COLUMNS)), -1.0)
    for i, (c, xy) in enumerate(zip(cams, world, strict=True)):
        rows[i, :10] = [c, 10 * c + i, 0, 100 + 100 * i, 100, 40, 120, xy[0], xy[1], 0.9]
    return rows


def test_only_well_seen_tracks_seed_clusters() -> None:
    full = skeleton((120.0, 220.0), 120.0)
    legs_hidden = skeleton((120.0, 220.0), 120.0, hidden=("ankle", "knee", "hip"))
    rows = _rows([1, 2], [(0.0, 0.0), (5.0, 5.0)])  # two people, one camera each
    kps = np.stack([full, legs_hidden])
    assoc = OnlineAssociator(seed_min_joints=7, unreliable_groups=False)
    assoc.reset(CAMS2, 10.0)
    ids = assoc.update(0, rows, None, keypoints=kps)
    assert assoc._reliable_now.tolist() == [True, False]
    assert ids[0] >= 1 and ids[1] == -1  # the poorly seen person starts no cluster
    off = OnlineAssociator(unreliable_groups=False)
    off.reset(CAMS2, 10.0)
    assert (off.update(0, rows, None, keypoints=kps) >= 1).all()  # the switch is off by default
    with pytest.raises(ValueError, match="keypoints"):
        assoc.update(1, rows, None)


def test_appearance_weighted_by_shared_visible_parts() -> None:
    """Two people seen by two cameras: world distance prefers the wrong pairing, appearance the right
    one. Appearance wins when both views see the whole body, loses when they share one part."""
    rows = _rows([1, 1, 2, 2], [(0.0, 0.0), (1.0, 0.0), (0.6, 0.0), (0.4, 0.0)])  # A, B | A', B'
    a = np.array([1.0, 0.0, 0.0])
    b = np.array([0.6, 0.8, 0.0])  # half cosine distance 0.2 to A
    feats = np.stack([a, b, a, b]).astype(np.float32)
    full = skeleton((120.0, 220.0), 120.0)
    head_only = skeleton((120.0, 220.0), 120.0, hidden=("ankle", "knee", "hip", "shoulder"))
    kw = {"normalize": "scale", "euc_thresh": 2.0, "emb_thresh": 0.45, "appearance_weight": 0.5}

    def pairing(kps: np.ndarray, weighting: bool) -> list[int]:
        assoc = OnlineAssociator(part_weighting=weighting, **kw)
        assoc.reset(CAMS2, 10.0)
        ids = assoc.update(0, rows, feats, keypoints=kps)
        return [int(ids[0] == ids[2]), int(ids[0] == ids[3])]

    seen_all = np.stack([full] * 4)
    seen_little = np.stack([full, full, head_only, head_only])
    assert pairing(seen_all, True) == [1, 0]  # right: A with A'
    assert pairing(seen_little, True) == [0, 1]  # appearance weight 0.5 x 1/5: world distance decides
    assert pairing(seen_little, False) == [1, 0]  # switch off: fixed weight 0.5
    parts = part_visibility(seen_little, 0.3)
    assert parts.sum(axis=1).tolist() == [5, 5, 1, 1]


def test_config_switches_pose_on_and_off() -> None:
    on = _compose("pose=synthetic")
    assert on.pose.extractor.path.endswith("checkpoints/pose_synthetic_cpu.ckpt")
    assert on.task.pipeline.keypoint_extractor._target_.endswith("KeypointExtractor.from_checkpoint")
    assert on.task.pipeline.foot_point._target_ == "citytrack.multicam.foot.PoseFootPoint"
    assoc = hydra.utils.instantiate(on.multicam)  # foot points only by default (they cost HOTA here)
    assert (assoc.seed_min_joints, assoc.part_weighting, assoc.bank_min_joints) == (0, False, 0)
    full = bench_pose.VARIANTS["full"]  # the AIC24 uses, as the benchmark switches them on
    assoc = hydra.utils.instantiate(_compose(*full).multicam)
    assert (assoc.seed_min_joints, assoc.part_weighting, assoc.bank_min_joints) == (7, True, 10) and assoc.uses_pose
    off = hydra.utils.instantiate(_compose("pose=none").multicam)
    assert (off.seed_min_joints, off.part_weighting, off.bank_min_joints) == (0, False, 0) and not off.uses_pose
    assert hydra.utils.instantiate(_compose("pose=synthetic", "multicam=offline").multicam) is not None


# ------------------------------------------------------------------------------- measurement
def test_feet_hidden_from_ground_truth_boxes() -> None:
    full = np.array([[100.0, 50, 40, 100], [110, 80, 40, 100], [300, 200, 40, 100], [500, 10, 40, 100]])
    cut, occluded = bench_pose.feet_hidden_from_boxes(full, (640, 250))
    assert cut.tolist() == [False, False, True, False]
    assert occluded.tolist() == [True, False, False, False]  # its feet are behind the nearer person


def test_bench_foot_error_pose_beats_the_box_on_cut_people(scene: Any) -> None:
    """With the ground-truth boxes clipped to the image, a skeleton at the true foot point (a perfect
    keypoint net) gives zero error; the box bottom errs on people cut by the frame edge."""
    calib = {c.camera_id: c.calibration for c in scene.cameras}

    class TrueFeet(FakeKeypointExtractor):
        """Skeleton on the ground truth's own foot point (its world point projected into its camera)."""

        def __init__(self, gt: np.ndarray) -> None:
            super().__init__()
            self.gt = gt
            self.feet = np.stack([calib[int(g[0])].ground_to_image(g[None, 7:9])[0] for g in gt])

        def __call__(self, images: torch.Tensor, boxes: list[np.ndarray]) -> list[np.ndarray]:
            clipped = clip_xywh(self.gt[:, 3:7], (images.shape[3], images.shape[2]))
            out = []
            for b in boxes:
                k = np.zeros((len(b), 17, 3))
                for i, box in enumerate(b):
                    j = np.argmin(np.abs(clipped - box).sum(axis=1))
                    k[i] = skeleton(tuple(self.feet[j]), self.gt[j, 6])
                out.append(k)
            return out

    gt = scene.ground_truth
    frames = gt[:, 2] == 0
    res = bench_pose.foot_errors(scene, TrueFeet(gt[frames]), PoseFootPoint(joint_heights=SYNTH_HEIGHTS), "gt",
                                 max_frames=1)
    assert len(res["err_box"]) == int(frames.sum())
    assert res["from_file"].all()  # the generator writes keypoints.json: feet hidden = no ankle marked visible
    ankle_seen = {c.camera_id: bench_pose.load_feet_visibility(c.video.parent / "keypoints.json") for c in scene.cameras}
    expected_hidden = []
    for cam in sorted(ankle_seen):  # the bench's order: cameras, then their ground-truth rows on the image
        rows = gt[frames & (gt[:, 0] == cam)]
        on_image = (clip_xywh(rows[:, 3:7], (320, 180))[:, 2:] >= 1).all(axis=1)
        expected_hidden += [not ankle_seen[cam][(0, int(o))] for o in rows[on_image, 1]]
    assert res["hidden"].tolist() == expected_hidden
    summary = bench_pose.error_summary(res)
    assert summary["all"]["pose"]["median"] < 0.02  # ground-truth files round world points and boxes
    assert summary["all"]["boxes"] == len(res["err_box"])
    assert res["cut"].any(), "the fixture scene has a person cut by the frame edge in frame 0"
    assert summary["cut_by_frame"]["box"]["median"] > 0.1 > summary["cut_by_frame"]["pose"]["median"]
    table = bench_pose.format_table({"scene": {"scenes": 1, "cameras": 2, "width": 320, "height": 180, "frames": 1,
                                               "people": 4, "seed": 32}, "pose": "test", "foot_error": {"gt": summary}})
    assert "gt / feet_hidden" in table and "feet hidden by" in table


def test_bench_foot_picture_draws_every_camera(scene: Any, tmp_path: Path) -> None:
    import cv2

    out = tmp_path / "foot.png"
    fp = PoseFootPoint(joint_heights=SYNTH_HEIGHTS, stature=1.71)
    res = bench_pose.foot_picture(out, scene, Upright(scene, (320, 180)), fp, frame=3)
    image = cv2.imread(str(out))
    assert image.shape == (2 * 180 + 30, 2 * 2 * 320, 3)  # two cameras side by side at 2x, and the legend
    assert res["people"] == int(((scene.ground_truth[:, 2] == 3)).sum()) > 0
    assert res["median_error_pose"] < 0.01 < res["median_error_box"]
    green = (np.abs(image[:360].astype(int) - bench_pose.POSE_FOOT).sum(axis=2) < 60).sum()
    assert green > 5 * res["people"]  # the pose foot dots are drawn
    with pytest.raises(ValueError, match="no frame 99"):
        bench_pose.foot_picture(tmp_path / "x.png", scene, Upright(scene), fp, frame=99)
    assert not (tmp_path / "x.png").exists()


def test_bench_hota_runs_through_the_scene_runner(scene: Any) -> None:
    """The HOTA part composes the runner's config per variant and scores with its own pieces."""
    result = bench_pose.hota_runs([scene], "cpu", ["none"], ["gt"], "synthetic", ["reid=none"], max_frames=4)
    m = result["gt/none"]
    assert 0 < m["HOTA"] <= 1 and 0 < m["AssA"] <= 1 and list(m["scenes"]) == [scene.name]
    assert "pose=none" in m["overrides"] and "detector=gt" in m["overrides"]
    foot = m["runner_foot_error"]
    assert foot["all"]["boxes"] > 0 and foot["all"]["median"] > 0 and 0 <= foot["feet_hidden"]["boxes"] <= foot["all"]["boxes"]


def test_runner_foot_errors_match_the_runner_table_to_the_truth(scene: Any) -> None:
    """A runner table that is the ground truth itself has no error; world points 1 m off err 1 m;
    boxes that match nothing are not counted."""
    from citytrack.data.formats.aicity import BH, BX, CAMERA_ID, FRAME_ID, OBJ_ID, XWORLD, YWORLD

    gt = scene.ground_truth
    table = np.full((len(gt), len(SCT_COLUMNS)), -1.0)
    table[:, 0], table[:, 1], table[:, 2] = gt[:, CAMERA_ID], gt[:, OBJ_ID], gt[:, FRAME_ID]
    table[:, 3:7], table[:, 7], table[:, 8] = gt[:, BX : BH + 1], gt[:, XWORLD], gt[:, YWORLD]
    exact = bench_pose.runner_foot_errors(scene, table)
    assert len(exact["err"]) > 0.9 * len(gt) and np.abs(exact["err"]).max() < 1e-6
    assert exact["hidden"].any() and not exact["hidden"].all()
    shifted = table.copy()
    shifted[:, 7] += 1.0
    shifted[::2, 3] += 1000.0  # every other box far off its person: unmatched
    off = bench_pose.runner_foot_errors(scene, shifted)
    assert 0 < len(off["err"]) < 0.6 * len(gt) and np.allclose(off["err"], 1.0)


def _track_world(calib: CameraCalibration, fp: PoseFootPoint, kp: np.ndarray, track: tuple[int, int]) -> np.ndarray:
    boxes = np.array([[600.0, 300.0, 40.0, 100.0]])
    uv, rule = fp.estimate(boxes, kp[None], np.array([[1280.0, 720.0]]), [calib], np.array([track]))
    assert rule.tolist() == [VERTICAL]
    return calib.image_to_ground(uv)[0]


def test_track_stature_keeps_a_child_on_the_ground_when_the_legs_are_hidden() -> None:
    """A 1.2 m child seen whole for a few frames, then head and shoulders only: with `track_stature`
    the pooled stature places the ground point right; the population prior (1.71 m) puts it metres off
    along the ray. Other tracks and a reset start from the prior again."""
    calib = _camera()
    whole = skeleton_3d(calib, (2.0, 3.0), 1.2)
    upper = skeleton_3d(calib, (2.0, 3.0), 1.2, ("ankle", "knee", "hip"))
    pooled = PoseFootPoint(joint_heights=SYNTH_HEIGHTS, stature=1.71, track_stature=True)
    plain = PoseFootPoint(joint_heights=SYNTH_HEIGHTS, stature=1.71)
    for _ in range(20):
        _track_world(calib, pooled, whole, (1, 7))
    err_pooled = np.linalg.norm(_track_world(calib, pooled, upper, (1, 7)) - [2.0, 3.0])
    err_plain = np.linalg.norm(_track_world(calib, plain, upper, (1, 7)) - [2.0, 3.0])
    err_other = np.linalg.norm(_track_world(calib, pooled, upper, (2, 7)) - [2.0, 3.0])  # same id, other camera
    assert err_plain > 1.0 and err_pooled < 0.1 * err_plain
    assert err_other == pytest.approx(err_plain, abs=1e-6)
    pooled.reset()
    assert np.linalg.norm(_track_world(calib, pooled, upper, (1, 7)) - [2.0, 3.0]) == pytest.approx(err_plain, abs=1e-6)


def test_track_stature_ignores_a_frame_that_contradicts_the_track() -> None:
    """Once a track's stature is known, a frame whose own estimate is far outside it (a keypoint failure,
    a switched track) is not pooled, and the pooled evidence is capped at `stature_floor`."""
    calib = _camera()
    fp = PoseFootPoint(joint_heights=SYNTH_HEIGHTS, stature=1.71, track_stature=True, stature_floor=0.05)
    for _ in range(20):
        _track_world(calib, fp, skeleton_3d(calib, (0.0, 0.0), 1.8), (0, 1))
    info, info_mean = fp._statures[(0, 1)]
    assert info == pytest.approx(0.05**-2) and info_mean / info == pytest.approx(1.8, abs=1e-3)
    _track_world(calib, fp, skeleton_3d(calib, (0.0, 0.0), 1.1), (0, 1))  # 0.7 m shorter: not the same body
    assert fp._statures[(0, 1)] == (info, info_mean)
    with pytest.raises(ValueError, match="track keys"):
        fp.estimate(np.zeros((1, 4)), skeleton_3d(calib, (0.0, 0.0), 1.8)[None], None, [calib], np.zeros((2, 2)))


def test_box_bottom_joins_the_fit_as_the_sole() -> None:
    """With `box_sigma`, an amodal box reaching the ground pins a hidden-legged child's ground point (the
    stature follows from box bottom to head); a box cut by the frame's bottom edge does not join."""
    calib = _camera()
    ground = (2.0, 3.0)
    upper = skeleton_3d(calib, ground, 1.2, ("ankle", "knee", "hip"))
    sole = calib.project(np.array([[ground[0], ground[1], 0.0]]))[0]
    head = upper[0, :2]
    box = np.array([[sole[0] - 20.0, head[1], 40.0, sole[1] - head[1]]])  # bottom centre on the ground point
    size = np.array([[1280.0, 720.0]])
    with_box = PoseFootPoint(joint_heights=SYNTH_HEIGHTS, stature=1.71, box_sigma=0.01)
    loose = PoseFootPoint(joint_heights=SYNTH_HEIGHTS, stature=1.71, box_sigma=0.05)
    plain = PoseFootPoint(joint_heights=SYNTH_HEIGHTS, stature=1.71)
    errs = [np.linalg.norm(calib.image_to_ground(fp.estimate(box, upper[None], size, [calib])[0])[0] - ground)
            for fp in (with_box, loose, plain)]
    assert errs[0] < 0.1 < errs[1] < 0.5 and errs[2] > 1.0  # a looser box leans more on the 1.71 m prior
    cut_size = np.array([[1280.0, box[0, 1] + box[0, 3] + 1.0]])  # the frame ends at the box bottom
    uv_cut = with_box.estimate(box, upper[None], cut_size, [calib])[0]
    np.testing.assert_allclose(uv_cut, plain.estimate(box, upper[None], cut_size, [calib])[0])
    with pytest.raises(ValueError, match="box_sigma"):
        PoseFootPoint(box_sigma=0.0)
