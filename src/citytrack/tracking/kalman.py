"""Constant-velocity Kalman filters that predict and update every track in one array op.

Means are `(T, n)` and covariances `(T, n, n)`; measurements `(T, m)` with the first `m`
state entries observed (`H = [I 0]`), so `H P H^T` and `P H^T` are slices, not products.
Three parameterisations share the same code and differ only in the noise model:

- `SortKalman`: state `(u, v, s, r, u', v', s')` (centre, area, aspect ratio w/h), the
  fixed noise of Bewley et al. 2016 (SORT, filterpy settings).
- `XyahKalman`: `(u, v, a, h, ...)` with noise proportional to the height (DeepSORT,
  ByteTrack).
- `XywhKalman`: `(u, v, w, h, ...)` with noise proportional to width and height
  separately (BoT-SORT), so the width follows the target instead of a fixed aspect.
"""

from __future__ import annotations

import numpy as np

from citytrack.tracking.matching import CHI2INV95  # noqa: F401  (re-exported for gating users)
from citytrack.utils.boxes import xywh_to_xyxy


class BatchedKalmanFilter:
    """Linear Kalman filter over `T` independent tracks, constant-velocity motion.

    Subclasses give the measurement <-> box conversion and the diagonal noise stds:
    `_init_std(z)`, `_process_std(mean)`, `_measurement_std(mean)`, each `(T, k)`.
    """

    ndim_z: int = 4
    ndim_x: int = 8
    #: velocity entries of the box size, zeroed before predicting a lost track so it stops
    #: growing (ByteTrack: the height's; BoT-SORT: width's and height's)
    size_velocity_dims: tuple[int, ...] = ()

    def __init__(self) -> None:
        self._motion = np.eye(self.ndim_x)
        for i in range(self.ndim_x - self.ndim_z):
            self._motion[i, self.ndim_z + i] = 1.0  # position += velocity (dt = 1 frame)
        self._motion_t = self._motion.T.copy()

    # -- box conversions --------------------------------------------------------------
    def boxes_to_measurements(self, xywh: np.ndarray) -> np.ndarray:
        """`(N, 4)` top-left boxes to `(N, ndim_z)` measurements."""
        raise NotImplementedError

    def states_to_boxes(self, mean: np.ndarray) -> np.ndarray:
        """`(T, ndim_x)` states to `(T, 4)` top-left boxes."""
        raise NotImplementedError

    def states_to_xyxy(self, mean: np.ndarray) -> np.ndarray:
        """`(T, ndim_x)` states to `(T, 4)` corner boxes (what the IoU costs use)."""
        return xywh_to_xyxy(self.states_to_boxes(mean))

    # -- noise -----------------------------------------------------------------------
    def _init_std(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _process_std(self, mean: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _measurement_std(self, mean: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # -- filter ----------------------------------------------------------------------
    def initiate(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New tracks from measurements `(N, ndim_z)`: zero velocity, diagonal covariance."""
        z = np.asarray(z, dtype=np.float64).reshape(-1, self.ndim_z)
        mean = np.zeros((len(z), self.ndim_x))
        mean[:, : self.ndim_z] = z
        var = np.square(self._init_std(z))
        cov = np.zeros((len(z), self.ndim_x, self.ndim_x))
        idx = np.arange(self.ndim_x)
        cov[:, idx, idx] = var
        return mean, cov

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`x <- F x`, `P <- F P F^T + Q` for all tracks; Q from the pre-motion state."""
        if len(mean) == 0:
            return mean, cov
        q = np.square(self._process_std(mean))
        mean = mean @ self._motion_t
        cov = self._motion @ cov @ self._motion_t
        cov.reshape(len(cov), -1)[:, :: self.ndim_x + 1] += q  # diagonal, no index arrays
        return mean, cov

    def project(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Measurement-space mean `(T, m)` and innovation covariance `S = H P H^T + R` `(T, m, m)`."""
        m = self.ndim_z
        r = np.square(self._measurement_std(mean))
        s = cov[:, :m, :m].copy()
        s.reshape(len(s), -1)[:, :: m + 1] += r
        return mean[:, :m].copy(), s

    def update(self, mean: np.ndarray, cov: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Correct `T` tracks with their matched measurements `z` `(T, m)` in one batched solve."""
        if len(mean) == 0:
            return mean, cov
        m = self.ndim_z
        z_mean, s = self.project(mean, cov)
        pht = cov[:, :, :m]  # P H^T, (T, n, m)
        # K = P H^T S^-1  <=>  S K^T = H P  (S symmetric)
        gain = np.linalg.solve(s, np.swapaxes(pht, 1, 2)).swapaxes(1, 2)  # (T, n, m)
        innovation = np.asarray(z, dtype=np.float64).reshape(-1, m) - z_mean
        new_mean = mean + (gain @ innovation[:, :, None])[:, :, 0]
        new_cov = cov - gain @ s @ np.swapaxes(gain, 1, 2)
        return new_mean, new_cov

    def gating_distance(
        self, mean: np.ndarray, cov: np.ndarray, z: np.ndarray, only_position: bool = False
    ) -> np.ndarray:
        """Squared Mahalanobis distance `(T, N)` between every track and measurement.

        Compare with `CHI2INV95[4]` (or `[2]` with `only_position`, centre only).
        """
        z = np.asarray(z, dtype=np.float64).reshape(-1, self.ndim_z)
        if len(mean) == 0 or len(z) == 0:
            return np.zeros((len(mean), len(z)))
        z_mean, s = self.project(mean, cov)
        if only_position:
            z_mean, s, z = z_mean[:, :2], s[:, :2, :2], z[:, :2]
        chol = np.linalg.cholesky(s)  # (T, k, k)
        diff = z[None, :, :] - z_mean[:, None, :]  # (T, N, k)
        # solve L y = d for every (track, det) pair: batched over tracks, N right-hand sides
        y = np.linalg.solve(chol, np.swapaxes(diff, 1, 2))  # (T, k, N)
        return np.sum(y * y, axis=1)


class XyahKalman(BatchedKalmanFilter):
    """DeepSORT/ByteTrack filter: state `(u, v, a, h)` + velocities, noise scaled by height."""

    size_velocity_dims = (7,)  # h velocity (ByteTrack leaves the aspect velocity alone)

    def __init__(self, std_weight_position: float = 1.0 / 20, std_weight_velocity: float = 1.0 / 160) -> None:
        super().__init__()
        self.std_weight_position = std_weight_position
        self.std_weight_velocity = std_weight_velocity
        p, v = std_weight_position, std_weight_velocity
        # std = h * scale + const: the aspect-ratio entries get small constants instead
        self._init_scale = np.array([2 * p, 2 * p, 0, 2 * p, 10 * v, 10 * v, 0, 10 * v])
        self._init_const = np.array([0, 0, 1e-2, 0, 0, 0, 1e-5, 0])
        self._process_scale = np.array([p, p, 0, p, v, v, 0, v])
        self._process_const = np.array([0, 0, 1e-2, 0, 0, 0, 1e-5, 0])
        self._meas_scale = np.array([p, p, 0, p])
        self._meas_const = np.array([0, 0, 1e-1, 0])

    def boxes_to_measurements(self, xywh: np.ndarray) -> np.ndarray:
        b = np.asarray(xywh, dtype=np.float64).reshape(-1, 4)
        z = np.empty((len(b), 4))
        z[:, 0] = b[:, 0] + b[:, 2] / 2
        z[:, 1] = b[:, 1] + b[:, 3] / 2
        z[:, 2] = b[:, 2] / b[:, 3]
        z[:, 3] = b[:, 3]
        return z

    def states_to_boxes(self, mean: np.ndarray) -> np.ndarray:
        out = np.empty((len(mean), 4))
        h = mean[:, 3]
        w = mean[:, 2] * h
        out[:, 0] = mean[:, 0] - w / 2
        out[:, 1] = mean[:, 1] - h / 2
        out[:, 2] = w
        out[:, 3] = h
        return out

    def _init_std(self, z: np.ndarray) -> np.ndarray:
        return z[:, 3:4] * self._init_scale + self._init_const

    def _process_std(self, mean: np.ndarray) -> np.ndarray:
        return mean[:, 3:4] * self._process_scale + self._process_const

    def _measurement_std(self, mean: np.ndarray) -> np.ndarray:
        return mean[:, 3:4] * self._meas_scale + self._meas_const


class XywhKalman(BatchedKalmanFilter):
    """BoT-SORT filter: state `(u, v, w, h)` + velocities, noise scaled by w and h separately."""

    size_velocity_dims = (6, 7)  # w and h velocities

    def __init__(self, std_weight_position: float = 1.0 / 20, std_weight_velocity: float = 1.0 / 160) -> None:
        super().__init__()
        self.std_weight_position = std_weight_position
        self.std_weight_velocity = std_weight_velocity
        p, v = std_weight_position, std_weight_velocity
        # std = w * scale_w + h * scale_h: x and w entries follow the width, y and h the height
        wmask = np.array([1.0, 0, 1, 0, 1, 0, 1, 0])
        weights = {"init": (2 * p, 10 * v), "process": (p, v)}
        self._scales = {
            k: (wmask * np.r_[[kp] * 4, [kv] * 4], (1 - wmask) * np.r_[[kp] * 4, [kv] * 4])
            for k, (kp, kv) in weights.items()
        }
        self._scales["meas"] = (wmask[:4] * p, (1 - wmask[:4]) * p)

    def boxes_to_measurements(self, xywh: np.ndarray) -> np.ndarray:
        b = np.asarray(xywh, dtype=np.float64).reshape(-1, 4)
        z = b.copy()
        z[:, :2] += b[:, 2:] / 2
        return z

    def states_to_boxes(self, mean: np.ndarray) -> np.ndarray:
        out = mean[:, :4].copy()
        out[:, :2] -= mean[:, 2:4] / 2
        return out

    def _std(self, which: str, wh: np.ndarray) -> np.ndarray:
        sw, sh = self._scales[which]
        return wh[:, 0:1] * sw + wh[:, 1:2] * sh

    def _init_std(self, z: np.ndarray) -> np.ndarray:
        return self._std("init", z[:, 2:4])

    def _process_std(self, mean: np.ndarray) -> np.ndarray:
        return self._std("process", mean[:, 2:4])

    def _measurement_std(self, mean: np.ndarray) -> np.ndarray:
        return self._std("meas", mean[:, 2:4])


class SortKalman(BatchedKalmanFilter):
    """SORT's filter: state `(u, v, s, r, u', v', s')`, s = area, r = aspect w/h (no r velocity).

    Noise as in the SORT repository (filterpy): `R[2:, 2:] *= 10`, `P0[4:, 4:] *= 1000`,
    `P0 *= 10`, `Q[-1, -1] *= 0.01`, `Q[4:, 4:] *= 0.01`.
    """

    ndim_z = 4
    ndim_x = 7

    def __init__(self) -> None:
        super().__init__()
        self._r_std = np.sqrt(np.array([1.0, 1.0, 10.0, 10.0]))
        self._p0_std = np.sqrt(np.array([10.0, 10.0, 10.0, 10.0, 1e4, 1e4, 1e4]))
        self._q_std = np.sqrt(np.array([1.0, 1.0, 1.0, 1.0, 1e-2, 1e-2, 1e-4]))

    def boxes_to_measurements(self, xywh: np.ndarray) -> np.ndarray:
        b = np.asarray(xywh, dtype=np.float64).reshape(-1, 4)
        z = np.empty((len(b), 4))
        z[:, 0] = b[:, 0] + b[:, 2] / 2
        z[:, 1] = b[:, 1] + b[:, 3] / 2
        z[:, 2] = b[:, 2] * b[:, 3]
        z[:, 3] = b[:, 2] / b[:, 3]
        return z

    def states_to_boxes(self, mean: np.ndarray) -> np.ndarray:
        """NaN boxes where the area or aspect went non-positive (SORT deletes those tracks)."""
        out = np.empty((len(mean), 4))
        with np.errstate(invalid="ignore", divide="ignore"):
            w = np.sqrt(mean[:, 2] * mean[:, 3])
            h = mean[:, 2] / w
        out[:, 0] = mean[:, 0] - w / 2
        out[:, 1] = mean[:, 1] - h / 2
        out[:, 2] = w
        out[:, 3] = h
        return out

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """SORT stops the area velocity when it would make the area non-positive."""
        if len(mean):
            mean = mean.copy()
            mean[mean[:, 6] + mean[:, 2] <= 0, 6] = 0.0
        return super().predict(mean, cov)

    def _init_std(self, z: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._p0_std, (len(z), self.ndim_x))

    def _process_std(self, mean: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._q_std, (len(mean), self.ndim_x))

    def _measurement_std(self, mean: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._r_std, (len(mean), self.ndim_z))
