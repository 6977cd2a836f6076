"""OpenCV's built-in HOG + linear SVM people detector (Dalal & Triggs 2005), the classical baseline.

Its window is 64x128 pixels, so people shorter than ~100 px are missed unless the frame is
upscaled first (`upscale`). The window holds the person with about 16 pixels of margin on all
four sides (Dalal & Triggs, sec. 6.1); with `person_box` that margin is removed, so the boxes
are comparable with tight ground-truth boxes. Scores are the SVM margins OpenCV returns, used
to rank detections for average precision.
"""

from __future__ import annotations

import cv2
import numpy as np


class HogPersonDetector:
    """`detect(frame BGR) -> (N, 5) x, y, w, h, score` with `cv2.HOGDescriptor_getDefaultPeopleDetector`."""

    def __init__(
        self,
        upscale: float = 1.0,
        win_stride: int = 8,
        padding: int = 8,
        scale: float = 1.05,
        hit_threshold: float = 0.0,
        group_threshold: float = 2.0,
        person_box: bool = True,
    ) -> None:
        if not hasattr(cv2, "HOGDescriptor"):
            raise RuntimeError(
                f"this OpenCV ({cv2.__version__}, {cv2.__file__}) has no HOGDescriptor; OpenCV 5 moved it out of "
                "the main package: install opencv-python-headless<5"
            )
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.upscale = float(upscale)
        self.win_stride = (int(win_stride), int(win_stride))
        self.padding = (int(padding), int(padding))
        self.scale = float(scale)
        self.hit_threshold = float(hit_threshold)
        self.group_threshold = float(group_threshold)
        self.person_box = bool(person_box)

    def detect(self, frame: np.ndarray) -> np.ndarray:
        if frame is None or frame.ndim != 3 or frame.size == 0:
            raise ValueError(f"expected an HxWx3 BGR frame, got {None if frame is None else frame.shape}")
        image = frame
        if self.upscale != 1.0:
            image = cv2.resize(frame, None, fx=self.upscale, fy=self.upscale, interpolation=cv2.INTER_LINEAR)
        rects, weights = self.hog.detectMultiScale(
            image,
            hitThreshold=self.hit_threshold,
            winStride=self.win_stride,
            padding=self.padding,
            scale=self.scale,
            groupThreshold=self.group_threshold,
        )
        if len(rects) == 0:
            return np.zeros((0, 5))
        boxes = np.asarray(rects, dtype=np.float64).reshape(-1, 4) / self.upscale
        if self.person_box:  # drop the window's 16 px margin: 16/64 of the width, 16/128 of the height per side
            mx, my = boxes[:, 2] * 0.25, boxes[:, 3] * 0.125
            boxes = np.column_stack([boxes[:, 0] + mx, boxes[:, 1] + my, boxes[:, 2] - 2 * mx, boxes[:, 3] - 2 * my])
        scores = np.asarray(weights, dtype=np.float64).reshape(-1, 1)
        return np.concatenate([boxes, scores], 1)

    def __call__(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        return [self.detect(f) for f in frames]
