"""Detectors of the scene runner: one call per step over the frames of every camera.

Both take a same-size batch of frames of several cameras at one frame index and return per
camera `(N, 5) x, y, w, h, score` arrays, so the runner does not care whether boxes come from a
network or, for ablations, from the scene's ground truth (`detector=gt`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from citytrack.data.formats.aicity import BH, BX, CAMERA_ID, FRAME_ID
from citytrack.data.scenes import SceneInput
from citytrack.models.detector.module import load_detector
from citytrack.utils.device import resolve_device


class CheckpointDetector:
    """A trained `DetectorModule` (`checkpoints/*.pt` or a Lightning .ckpt) run batched on the device."""

    def __init__(
        self,
        ckpt: str | Path,
        device: str = "auto",
        batch_size: int = 16,
        score_thresh: float | None = None,
        img_size: int | Sequence[int] | str | None = None,
        rect: bool = True,
    ) -> None:
        self.device = resolve_device(device)
        self.module = load_detector(ckpt, map_location=self.device)
        if self.device.type == "cuda" and self.module.hparams.channels_last:
            self.module.eval_net.to(memory_format=torch.channels_last)
        # "native": each frame's own resolution; a list of sizes: a multi-scale test (`DetectorModule.predict_images`)
        sizes = img_size if img_size is None or isinstance(img_size, int | str) else [int(s) for s in img_size]
        self.batch_size, self.score_thresh, self.img_size, self.rect = int(batch_size), score_thresh, sizes, rect

    def reset(self, scene: SceneInput) -> None:
        """Nothing per scene: the network does not know the scene."""

    def __call__(self, images: torch.Tensor, camera_ids: Sequence[int], frame: int) -> list[np.ndarray]:
        return self.module.predict_images(images, self.batch_size, self.score_thresh, self.img_size, self.rect)


class GroundTruthDetector:
    """Oracle: the scene's ground-truth boxes (score 1) of each camera and frame.

    With `jitter > 0` box corners move by that fraction of the box size (seeded), to see how
    association copes with imperfect but complete boxes.
    """

    def __init__(self, jitter: float = 0.0, seed: int = 0) -> None:
        self.jitter, self.seed = float(jitter), int(seed)
        self._index: dict[tuple[int, int], np.ndarray] = {}

    def reset(self, scene: SceneInput) -> None:
        if scene.ground_truth is None:
            raise FileNotFoundError(f"{scene.dir}: detector=gt needs the scene's ground truth, none was found")
        gt = scene.ground_truth
        self._rng = np.random.default_rng(self.seed)
        order = np.lexsort((gt[:, FRAME_ID], gt[:, CAMERA_ID]))
        gt = gt[order]
        keys = gt[:, [CAMERA_ID, FRAME_ID]].astype(np.int64)
        starts = np.flatnonzero(np.r_[True, (np.diff(keys, axis=0) != 0).any(axis=1)])
        ends = np.r_[starts[1:], len(gt)]
        self._index = {(int(keys[s, 0]), int(keys[s, 1])): gt[s:e, BX : BH + 1] for s, e in zip(starts, ends, strict=True)}

    def __call__(self, images: torch.Tensor, camera_ids: Sequence[int], frame: int) -> list[np.ndarray]:
        out = []
        for cam in camera_ids:
            boxes = self._index.get((int(cam), int(frame)), np.zeros((0, 4))).copy()
            if self.jitter > 0 and len(boxes):
                boxes += self._rng.normal(0, self.jitter, boxes.shape) * boxes[:, [2, 3, 2, 3]]
                boxes[:, 2:] = np.maximum(boxes[:, 2:], 1.0)
            out.append(np.c_[boxes, np.ones(len(boxes))])
        return out
