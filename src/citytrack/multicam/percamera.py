"""`multicam=none`: every per-camera track is its own identity, the baseline association is measured against."""

from __future__ import annotations

import numpy as np

from citytrack.multicam.tracks import CAM, GLOBAL_ID, LOCAL_ID, CameraInfo, SceneTracks


class PerCameraIds:
    """Global id = a new number per (camera, local track id), in order of first appearance."""

    def reset(self, cameras: dict[int, CameraInfo], fps: float) -> None:
        self._ids: dict[tuple[int, int], int] = {}

    def update(self, frame: int, rows: np.ndarray, features: np.ndarray | None) -> np.ndarray:
        out = np.empty(len(rows))
        for i, (cam, lid) in enumerate(rows[:, [CAM, LOCAL_ID]].astype(np.int64)):
            out[i] = self._ids.setdefault((int(cam), int(lid)), len(self._ids) + 1)
        return out

    def finish(self, tracks: SceneTracks) -> np.ndarray:
        table = tracks.table.copy()
        if len(table) and (table[:, GLOBAL_ID] < 1).any():  # rows that did not come through update
            table[:, GLOBAL_ID] = self.update(-1, table, None)
        return table
