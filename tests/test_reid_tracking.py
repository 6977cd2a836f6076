"""Appearance in the trackers: a swap behind an occlusion that motion gets wrong and the ReID embedder gets right.

Two rendered synthetic people stand side by side, vanish for a few frames (occluded, no
detections) and reappear with their places swapped. Motion alone (IoU / Kalman) gives each
track the person now standing where it was; DeepSORT with the trained embedder
(`checkpoints/reid_synthetic_osnet.ckpt`, run through the tracker's `embedder` callback,
so crops, colour order, input size and the gallery are all exercised) keeps the identities.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from citytrack.bench import reid_tracking
from citytrack.data.synth.generate import ensure_synthetic_dataset
from citytrack.data.synth.render import CameraRenderer, PoseCache
from citytrack.data.synth.world import SceneSpec, build_world
from citytrack.models.reid.extractor import FeatureExtractor
from citytrack.tracking.deepsort import DeepSort

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "checkpoints" / "reid_synthetic_osnet.ckpt"
CROP_HW = (96, 48)


@pytest.fixture(scope="module")
def people() -> list[np.ndarray]:
    """Two fully visible, differently dressed people of a small rendered world (seed 7, not a training
    seed), BGR crops. The pair is chosen from the world's own clothing colours (the most different upper +
    lower garments), not from the embeddings: the realistic palette dresses many people alike in dark
    colours, which no appearance model can tell apart at a glance either."""
    world = build_world(SceneSpec(cameras=1, people=12, frames=1, width=640, height=360), 7)
    fr = CameraRenderer(world, world.cameras[0], poses=PoseCache(world)).render(0)
    ok = np.flatnonzero((fr.visibility > 0.95) & (fr.full_boxes[:, 3] > 40))
    assert len(ok) >= 4
    looks = [world.agents[fr.agents[r]].appearance for r in ok]
    clothes = np.array([[*a.upper, *a.lower] for a in looks], dtype=np.float64)
    gap = np.linalg.norm(clothes[:, None] - clothes[None], axis=-1)
    i, j = np.unravel_index(np.argmax(gap), gap.shape)
    crops = []
    for r in ok[[i, j]]:
        x, y, w, h = np.round(fr.full_boxes[r]).astype(int)
        crops.append(cv2.resize(fr.image[y : y + h, x : x + w], CROP_HW[::-1], interpolation=cv2.INTER_LINEAR))
    return crops


@pytest.fixture(scope="module")
def extractor() -> FeatureExtractor:
    assert CKPT.is_file(), f"{CKPT} is committed with the repository"
    return FeatureExtractor.from_checkpoint(CKPT, device="cpu")


def _frame(crops: list[np.ndarray], xs: list[int], reverse: bool = False) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Grey frame with person i at x = xs[i] (later ones drawn over earlier ones).

    Detections are listed by position (left to right, or right to left with `reverse`), as a
    detector would, not by person: returns the frame, the `(N, 5)` detections and the person
    of each detection.
    """
    img = np.full((200, 300, 3), 120, np.uint8)
    h, w = CROP_HW
    for crop, x in zip(crops, xs, strict=True):
        img[50 : 50 + h, x : x + w] = crop
    order = [int(i) for i in np.argsort(xs)][:: -1 if reverse else 1]
    dets = np.array([[xs[i], 50, w, h, 0.9] for i in order], dtype=np.float64)
    return img, dets, order


def _swap_sequence(crops: list[np.ndarray], reverse: bool) -> list[tuple[np.ndarray, np.ndarray, list[int]]]:
    """10 frames side by side, 3 hidden, 8 with the places swapped (detections listed in the
    other order after the swap with `reverse`)."""
    before = [_frame(crops, [100, 134]) for _ in range(10)]
    hidden = [(np.full((200, 300, 3), 120, np.uint8), np.zeros((0, 5)), [])] * 3
    after = [_frame(crops, [134, 100], reverse) for _ in range(8)]  # person 0 now stands where person 1 stood
    return before + hidden + after


def _ids(tracker: DeepSort, seq: list[tuple[np.ndarray, np.ndarray, list[int]]]) -> list[dict[int, int]]:
    """Per frame `{person: track id}` of the reported, matched tracks."""
    out = []
    for f, (img, dets, person) in enumerate(seq):
        rows = tracker.update(dets, frame=f, image=img)
        out.append({person[int(r[6])]: int(r[4]) for r in rows if r[6] >= 0})
    return out


@pytest.mark.parametrize("reverse", [False, True], ids=["same_order", "order_reversed_after"])
def test_embedder_keeps_ids_through_a_swap_that_motion_gets_wrong(people, extractor, reverse: bool) -> None:
    seq = _swap_sequence(people, reverse)
    motion = _ids(DeepSort(n_init=2, max_cosine_distance=0.5), seq)
    reid = _ids(DeepSort(n_init=2, max_cosine_distance=0.5, embedder=extractor.embed), seq)
    before = reid[9]
    assert set(before) == {0, 1} and motion[9] == before  # both trackers agree before the swap
    # motion alone hands each track to the person now standing at its old place: a swap
    assert motion[-1] == {0: before[1], 1: before[0]}
    # with embeddings each person keeps its own id (uninformative embeddings tie, and the
    # assignment then depends on the detection order: one of the two orders fails)
    assert reid[-1] == before


def test_embeddings_separate_the_two_people(people, extractor) -> None:
    img0, d0, p0 = _frame(people, [100, 134])
    img1, d1, p1 = _frame(people, [134, 100])
    a = extractor.embed(img0, d0[:, :4])[np.argsort(p0)]  # rows by person
    b = extractor.embed(img1, d1[:, :4])[np.argsort(p1)]
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    same = 1.0 - np.einsum("nd,nd->n", a, b)
    other = 1.0 - np.einsum("nd,nd->n", a, b[::-1])
    assert same.max() < 0.5 < other.min()


# ---------------------------------------------------------------------------- benchmark helpers


def test_make_detections_visibility_floor_keeps_the_random_draws() -> None:
    gt = np.array([[1, p, f, 10.0 * p, 20, 10, 20, 0, 0] for f in range(5) for p in (1, 2, 3)], dtype=np.float64)
    vis = np.tile([1.0, 0.1, 0.5], 5)
    all_dets = reid_tracking.make_detections(gt, 5, 0.0, 0.2, seed=3)
    floor = reid_tracking.make_detections(gt, 5, 0.0, 0.2, seed=3, visibility=vis, min_visibility=0.3)
    for a, b in zip(all_dets, floor, strict=True):
        assert 20.0 not in b[:, 0]  # person 2 (10 % visible) is never detected
        # the others are kept or dropped exactly as without the floor
        np.testing.assert_array_equal(a[a[:, 0] != 20.0], b)


def test_distance_stats_crossing_between_the_modes() -> None:
    rng = np.random.default_rng(0)
    same, diff = rng.normal(0.2, 0.08, 20000), rng.normal(0.8, 0.08, 20000)
    s = reid_tracking.distance_stats(same, diff)
    assert 0.44 <= s["crossing"] <= 0.56
    assert 0.45 <= s["eer_threshold"] <= 0.55 and s["eer"] < 0.001


DETECTOR_CKPT = ROOT / "checkpoints" / "detector_synthetic_cpu.pt"


@pytest.mark.skipif(not (CKPT.is_file() and DETECTOR_CKPT.is_file()), reason="checkpoints/ lacks the ReID or detector file")
def test_bench_tracks_a_detectors_boxes_with_the_appearance_options(tmp_path: Path, capsys) -> None:
    root = ensure_synthetic_dataset(tmp_path / "scene", scenes=1, seed=35, cameras=1, people=4, frames=12,
                                    width=320, height=180, fps=10, progress=False, workers=1)
    out = tmp_path / "r.json"
    assert reid_tracking.main(["--data", str(root), "--detector", str(DETECTOR_CKPT), "--relink-lost",
                               "--appearance-fusion", "gate", "--appearance-max-cover", "0.5", "--device", "cpu",
                               "--out", str(out)]) == 0
    assert f"boxes of {DETECTOR_CKPT}" in capsys.readouterr().out
    results = json.loads(out.read_text())["results"]
    assert set(results) == {f"{t} {m}" for t in ("deepsort", "botsort") for m in ("motion only", "with ReID")}
    # the detector found the people: a tracker fed nothing would score MOTA 0 and IDF1 0
    assert all(r["IDF1"] > 20 for r in results.values()), results
