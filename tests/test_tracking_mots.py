"""MOTS mask trackers: PointTrack's association and the mask-IoU baseline."""

from __future__ import annotations

from pathlib import Path

import hydra
import numpy as np
import pytest
from omegaconf import OmegaConf

from citytrack.data.formats.kitti_mots import decode_masks
from citytrack.tracking.mots import (
    POINTTRACK_PARAMS,
    MaskIoUTracker,
    PointTrackTracker,
    assign_by_similarity,
    mask_iou,
)

H, W = 60, 120


def disk(cx: float, cy: float, r: float = 8.0) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def frame_of(*centres: tuple[float, float]) -> np.ndarray:
    return np.stack([disk(x, y) for x, y in centres]) if centres else np.zeros((0, H, W), bool)


def ids(records) -> list[int]:
    return [r.obj_id for r in records]


def pointtrack(keep_alive: int = 30) -> PointTrackTracker:
    p = POINTTRACK_PARAMS[2]
    return PointTrackTracker(
        {
            2: {
                "scale": p.scale,
                "offset": p.offset,
                "iou_weight": p.iou_weight,
                "threshold": p.threshold,
                "keep_alive": keep_alive,
            }
        }
    )


E_A, E_B = np.zeros(4), np.array([0.0, 0.0, 0.0, 3.0])  # two identities 3 apart: well inside the offset 9.45


@pytest.mark.parametrize("make", [pointtrack, lambda: MaskIoUTracker(0.3)])
def test_ids_kept_for_moving_blobs(make) -> None:
    tracker = make()
    out = []
    for t in range(12):
        masks = frame_of((20 + 3 * t, 20), (100 - 3 * t, 42))
        emb = np.stack([E_A, E_B]) if tracker.uses_embeddings else None
        records = tracker.update(t, masks, np.array([2, 2]), emb)
        out.append(ids(records))
        np.testing.assert_array_equal(decode_masks(records), masks)  # the records carry the masks
        assert all(r.frame == t and r.class_id == 2 and (r.height, r.width) == (H, W) for r in records)
    assert out == [[2001, 2002]] * 12


def test_pointtrack_follows_appearance_when_blobs_swap_places() -> None:
    # the two blobs jump to each other's place: IoU says swap, the embeddings say stay
    tracker = pointtrack()
    tracker.update(0, frame_of((20, 20), (80, 20)), np.array([2, 2]), np.stack([E_A, E_B]))
    records = tracker.update(1, frame_of((80, 20), (20, 20)), np.array([2, 2]), np.stack([E_A, E_B]))
    assert ids(records) == [2001, 2002]
    iou = MaskIoUTracker(0.3)
    iou.update(0, frame_of((20, 20), (80, 20)), np.array([2, 2]))
    assert ids(iou.update(1, frame_of((80, 20), (20, 20)), np.array([2, 2]))) == [2002, 2001]


def test_pointtrack_forbids_low_similarity_pairs() -> None:
    tracker = pointtrack()
    p = POINTTRACK_PARAMS[2]
    tracker.update(0, frame_of((20, 20)), np.array([2]), E_A[None])
    # same place (IoU 1) but an embedding so far that sim <= threshold: a new track
    far = (p.offset + p.iou_weight / p.scale - p.threshold / p.scale) + 0.01
    assert p.scale * (p.offset - far) + p.iou_weight <= p.threshold
    records = tracker.update(1, frame_of((20, 20)), np.array([2]), np.array([[far, 0, 0, 0]]))
    assert ids(records) == [2002]
    # just inside the gate: matched
    near = far - 0.02
    records = tracker.update(2, frame_of((20, 20)), np.array([2]), np.array([[far + near, 0, 0, 0]]))
    assert ids(records) == [2002]


@pytest.mark.parametrize("make", [lambda k: pointtrack(k), lambda k: MaskIoUTracker(0.3, keep_alive=k)])
def test_tracks_dropped_after_keep_alive(make) -> None:
    tracker = make(5)
    emb = E_A[None] if tracker.uses_embeddings else None
    none = np.zeros((0, 4)) if tracker.uses_embeddings else None
    assert ids(tracker.update(0, frame_of((20, 20)), np.array([2]), emb)) == [2001]
    for t in range(1, 5):
        assert tracker.update(t, frame_of(), np.zeros(0, int), none) == []
    assert ids(tracker.update(5, frame_of((20, 20)), np.array([2]), emb)) == [
        2001
    ]  # 5 frames later: still alive
    for t in range(6, 11):
        tracker.update(t, frame_of(), np.zeros(0, int), none)
    assert ids(tracker.update(11, frame_of((20, 20)), np.array([2]), emb)) == [2002]  # 6 frames: forgotten


def test_mask_iou_baseline_gates_at_its_threshold() -> None:
    from citytrack.data.formats.kitti_mots import mask_record

    def iou(a: np.ndarray, b: np.ndarray) -> float:
        return float(
            mask_iou([mask_record(0, 2001, a).coco_rle()], [mask_record(0, 2001, b).coco_rle()])[0, 0]
        )

    start, step, jump = disk(20, 20), disk(25, 20), disk(37, 20)
    assert iou(start, step) > 0.3 >= iou(step, jump)
    assert iou(start, step) == pytest.approx(float((start & step).sum() / (start | step).sum()))
    tracker = MaskIoUTracker(iou_threshold=0.3)
    assert ids(tracker.update(0, start[None], np.array([2]))) == [2001]
    assert ids(tracker.update(1, step[None], np.array([2]))) == [2001]
    assert ids(tracker.update(2, jump[None], np.array([2]))) == [2002]


def test_classes_are_associated_apart_and_numbered_per_class() -> None:
    tracker = MaskIoUTracker()
    masks = frame_of((20, 20), (60, 20), (100, 20))
    assert ids(tracker.update(0, masks, np.array([1, 2, 1]))) == [1001, 2001, 1002]
    # the car's mask is now where the pedestrian was: no cross-class match, a new car id
    assert ids(tracker.update(1, frame_of((60, 20)), np.array([1]))) == [1003]


def test_assignment_is_global_and_gated() -> None:
    sim = np.array([[0.9, 0.8], [0.85, 0.1]])
    matches, unmatched = assign_by_similarity(sim, threshold=0.5)
    assert sorted(map(tuple, matches.tolist())) == [(0, 1), (1, 0)]  # 0.8 + 0.85 beats 0.9 + nothing
    assert unmatched.tolist() == []
    matches, unmatched = assign_by_similarity(np.array([[0.5, 0.2]]), threshold=0.5)
    assert len(matches) == 0 and unmatched.tolist() == [0]


def test_id_overflow_is_an_error() -> None:
    tracker = MaskIoUTracker()
    masks = np.zeros((1000, 4, 4), bool)
    masks[:, 0, 0] = True
    with pytest.raises(OverflowError, match="below 1000"):
        tracker.update(0, masks, np.full(1000, 2))


def test_pointtrack_needs_embeddings_and_known_classes() -> None:
    with pytest.raises(ValueError, match="embeddings"):
        pointtrack().update(0, frame_of((20, 20)), np.array([2]))
    with pytest.raises(KeyError, match="class 1"):
        pointtrack().update(0, frame_of((20, 20)), np.array([1]), E_A[None])


@pytest.mark.parametrize("name, cls", [("pointtrack", PointTrackTracker), ("mask_iou", MaskIoUTracker)])
def test_configs_build_a_fresh_tracker_per_sequence(config_dir: Path, name: str, cls: type) -> None:
    cfg = OmegaConf.load(config_dir / "mots_tracker" / f"{name}.yaml")
    factory = hydra.utils.instantiate(cfg)
    a, b = factory(), factory()
    assert isinstance(a, cls) and a is not b
    if cls is PointTrackTracker:
        assert a.params == POINTTRACK_PARAMS
