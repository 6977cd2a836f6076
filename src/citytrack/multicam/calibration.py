"""Pinhole camera model and the ground-plane homography between image and world.

Multi-camera tracking needs one thing from a calibration above all: where on the ground
(world `z = 0`) a person's foot point is. With a 3x4 projection matrix `P = K [R | t]`
a ground point `(x, y, 0, 1)` maps to the image through the columns 0, 1 and 3 of `P`,
so the ground-to-image homography is `H = P[:, [0, 1, 3]]` and its inverse takes an image
foot point back to the ground. AI City 2024 ships both (`"camera projection matrix"` and
`"homography matrix"`); older sets ship only `H`, hence `from_homography`.

Conventions
-----------
- World: `x, y` on the ground, `z` up (metres in the synthetic world). Camera: `x` right,
  `y` down, `z` forward; a point is in front of the camera when its camera depth is > 0.
- `P` and `H` are normalised on construction so that the homogeneous scale `w` of a point
  in front of the camera is positive (`P` so that `det(P[:, :3]) > 0`).
- Lens distortion (AI City 2019 fisheye cameras): a calibration may carry the lens model
  `intrinsics` `K` and `distortion` coefficients (OpenCV's `k1 k2 p1 p2 [k3 ...]`). `H` and `P`
  then describe the *undistorted* image, so `image_to_ground` undistorts image points first
  (`multicam/lens.py`) and `ground_to_image` / `project` distort their result. The batched
  torch functions have no lens model and refuse such cameras (`stack_calibrations`, `to_torch`).
- Degenerate input: a singular `H` (camera centre on the ground plane, or a broken file)
  raises `CalibrationError`. Points that cannot be mapped, i.e. image points on or above
  the horizon for `image_to_ground` and ground/world points on or behind the camera plane
  for `ground_to_image` / `project`, come back as NaN rows rather than as far-away garbage.
  The batched torch functions follow the same NaN rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from citytrack.multicam.lens import LensError, check_lens, distort_points, undistort_points

if TYPE_CHECKING:  # torch is imported where the batched functions run: the synth workers never need it
    import torch
    from torch import Tensor

# w below this, relative to the magnitude of the terms summed into it (sum_j |M[-1, j] * p_j|),
# counts as "on the horizon / camera plane". Relative to the terms, not to max|M|: a homography in
# GPS-like coordinates has entries ~1e10 in its translation column while w stays the depth in metres.
_W_EPS = 1e-9


class CalibrationError(ValueError):
    """A calibration cannot be used: wrong shape, non-finite, or singular."""


def _as_matrix(name: str, value: object, shape: tuple[int, int]) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != shape:
        raise CalibrationError(f"{name} must have shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise CalibrationError(f"{name} has non-finite entries: {arr.tolist()}")
    return arr


def _as_points(name: str, value: object, dim: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 1 and arr.shape[0] == dim:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"{name} must have shape (N, {dim}), got {arr.shape}")
    return arr


def _apply_homogeneous(M: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """`M @ [pts, 1]` dehomogenised; rows whose scale `w` is not clearly positive become NaN.

    "Clearly" is scale-invariant: `w <= eps * sum_j |M[-1, j] p_j|` (the size of the terms whose
    cancellation gives `w`), so neither the matrix scale nor large coordinate offsets change it.
    """
    hom = pts @ M[:, :-1].T + M[:, -1]
    w = hom[:, -1:]
    scale = np.abs(pts) @ np.abs(M[-1, :-1]) + abs(M[-1, -1])
    bad = w[:, 0] <= _W_EPS * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        out = hom[:, :-1] / w
    out[bad] = np.nan
    return out


def _equilibrate(H: np.ndarray) -> np.ndarray:
    """`H` with unit-norm columns, then unit-norm rows (zero ones left as they are).

    A diagonal rescaling keeps a singular matrix singular but removes the spread that a change of
    units alone causes (GPS-like ground coordinates put ~1e10 in the translation column), so the
    singular-value test below does not reject a well-defined homography for its units.
    """
    H = H / np.where((n := np.linalg.norm(H, axis=-2, keepdims=True)) > 0, n, 1.0)
    return H / np.where((n := np.linalg.norm(H, axis=-1, keepdims=True)) > 0, n, 1.0)


# smallest singular value, relative to the largest, of the equilibrated H that still counts as invertible
_SINGULAR_RTOL = 1e-12


def _homography_singular_values(H: np.ndarray) -> np.ndarray:
    return np.linalg.svd(_equilibrate(H), compute_uv=False)


def is_singular_homography(H: np.ndarray) -> bool:
    """The one singularity test of a ground homography: the AI City readers reject a file and
    `CameraCalibration` raises on exactly the same matrices (also `invert_homographies`).

    Scale-invariant: the smallest singular value of the equilibrated `H` (see `_equilibrate`)
    at most `1e-12` times the largest; non-finite matrices count as singular.
    """
    H = np.asarray(H, dtype=np.float64)
    if not np.isfinite(H).all():
        return True
    s = _homography_singular_values(H)
    return bool(not s[0] > 0 or s[-1] <= _SINGULAR_RTOL * s[0])


def _check_invertible(H: np.ndarray, what: str) -> np.ndarray:
    if is_singular_homography(H):
        raise CalibrationError(
            f"{what} is singular (singular values {_homography_singular_values(H).tolist()}): the camera "
            "centre lies on the ground plane or the matrix is broken"
        )
    return np.linalg.inv(H)


def look_at_rotation(center: Sequence[float], target: Sequence[float], up: Sequence[float] = (0, 0, 1)) -> np.ndarray:
    """World-to-camera rotation of a camera at `center` looking at `target` (x right, y down, z forward)."""
    c = np.asarray(center, dtype=np.float64)
    fwd = np.asarray(target, dtype=np.float64) - c
    norm = np.linalg.norm(fwd)
    if norm == 0:
        raise CalibrationError("camera centre and target coincide")
    fwd /= norm
    right = np.cross(fwd, np.asarray(up, dtype=np.float64))
    rn = np.linalg.norm(right)
    if rn < 1e-9:
        raise CalibrationError("viewing direction is parallel to the up vector; choose another up")
    right /= rn
    down = np.cross(fwd, right)
    return np.stack([right, down, fwd])


def intrinsics_from_fov(width: int, height: int, hfov_deg: float) -> np.ndarray:
    """K of a pinhole camera with square pixels, principal point at the centre, focal from the horizontal FOV."""
    if not 0 < hfov_deg < 180:
        raise CalibrationError(f"horizontal field of view must be in (0, 180) degrees, got {hfov_deg}")
    f = (width / 2.0) / np.tan(np.radians(hfov_deg) / 2.0)
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


@dataclass
class CameraCalibration:
    """One camera: projection matrix when known, and always the ground homography.

    Build it with `from_projection`, `from_intrinsics_extrinsics` or `from_homography`.
    `homography` maps ground `(x, y, 1)` to image `(u, v, 1)`; `homography_inv` the other way.
    `intrinsics` and `distortion` (both or neither) are the lens model of a distorting camera:
    `homography` and `projection` then map to the undistorted image (module docstring).
    """

    homography: np.ndarray
    projection: np.ndarray | None = None
    image_size: tuple[int, int] | None = None  # (width, height)
    intrinsics: np.ndarray | None = None
    distortion: np.ndarray | None = None
    homography_inv: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.homography = _as_matrix("homography", self.homography, (3, 3))
        if self.projection is not None:
            self.projection = _as_matrix("projection", self.projection, (3, 4))
        if (self.intrinsics is None) != (self.distortion is None):
            raise CalibrationError("a lens model needs both intrinsics and distortion coefficients")
        if self.intrinsics is not None:
            try:
                self.intrinsics, self.distortion = check_lens(self.intrinsics, self.distortion)
            except LensError as err:
                raise CalibrationError(str(err)) from None
        self.homography_inv = _check_invertible(self.homography, "ground homography")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_projection(cls, P: np.ndarray, image_size: tuple[int, int] | None = None) -> CameraCalibration:
        """From a 3x4 projection matrix; `H = P[:, [0, 1, 3]]`. Raises if `P[:, :3]` is singular."""
        P = _as_matrix("projection", P, (3, 4))
        det = np.linalg.det(P[:, :3])
        if abs(det) <= 1e-12 * np.abs(P[:, :3]).max() ** 3:
            raise CalibrationError(f"projection matrix has a singular 3x3 part (det {det:.3g}); not a finite camera")
        if det < 0:
            P = -P  # so that w = depth > 0 in front of the camera
        return cls(homography=P[:, [0, 1, 3]].copy(), projection=P, image_size=image_size)

    @classmethod
    def from_intrinsics_extrinsics(
        cls, K: np.ndarray, R: np.ndarray, t: np.ndarray, image_size: tuple[int, int] | None = None
    ) -> CameraCalibration:
        """From `K` (3x3), world-to-camera rotation `R` (3x3) and translation `t` (3,): `P = K [R | t]`."""
        K = _as_matrix("K", K, (3, 3))
        R = _as_matrix("R", R, (3, 3))
        t = np.asarray(t, dtype=np.float64).reshape(-1)
        if t.shape != (3,):
            raise CalibrationError(f"t must have 3 entries, got {t.shape}")
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-6) or np.linalg.det(R) < 0:
            raise CalibrationError("R must be a rotation matrix (orthonormal, det +1)")
        return cls.from_projection(K @ np.hstack([R, t[:, None]]), image_size=image_size)

    @classmethod
    def from_homography(
        cls,
        H: np.ndarray,
        image_size: tuple[int, int] | None = None,
        intrinsics: np.ndarray | None = None,
        distortion: np.ndarray | None = None,
    ) -> CameraCalibration:
        """From a ground-to-image homography only (no `project`, no `camera_center`).

        The sign of `H` decides which side of the horizon is "ground in front of the camera".
        When `image_size` is given, `H` is flipped if needed so that the image centre is a
        valid ground point (cameras look down at the ground); otherwise the sign is kept.
        `intrinsics` / `distortion`: the lens model when `H` maps to the undistorted image.
        """
        calib = cls(homography=H, image_size=image_size, intrinsics=intrinsics, distortion=distortion)
        if image_size is not None:
            centre = calib.undistort(np.array([[image_size[0] / 2.0, image_size[1] / 2.0]]))[0]
            if calib.homography_inv[2] @ np.append(centre, 1.0) < 0:
                calib.homography, calib.homography_inv = -calib.homography, -calib.homography_inv
        return calib

    # ------------------------------------------------------------------ geometry
    @property
    def has_projection(self) -> bool:
        return self.projection is not None

    def _require_projection(self, what: str) -> np.ndarray:
        if self.projection is None:
            raise CalibrationError(f"{what} needs a projection matrix; this calibration has only a homography")
        return self.projection

    @property
    def has_lens(self) -> bool:
        return self.intrinsics is not None

    def undistort(self, uv: np.ndarray) -> np.ndarray:
        """Image points `(N, 2)` to the undistorted image `H` / `P` map to (a float copy without a lens)."""
        uv = _as_points("uv", uv, 2)
        if self.intrinsics is None:
            return uv.copy()
        return undistort_points(uv, self.intrinsics, self.distortion)

    def distort(self, uv: np.ndarray) -> np.ndarray:
        """The inverse of `undistort`: undistorted image points `(N, 2)` to the camera's pixels."""
        uv = _as_points("uv", uv, 2)
        if self.intrinsics is None:
            return uv.copy()
        return distort_points(uv, self.intrinsics, self.distortion)

    def ground_to_image(self, xy: np.ndarray) -> np.ndarray:
        """Ground points `(N, 2)` to image `(N, 2)`; points on/behind the camera plane give NaN."""
        return self.distort(_apply_homogeneous(self.homography, _as_points("xy", xy, 2)))

    def image_to_ground(self, uv: np.ndarray) -> np.ndarray:
        """Image points `(N, 2)` to ground `(N, 2)` (undistorted first); on/above the horizon give NaN."""
        return _apply_homogeneous(self.homography_inv, self.undistort(uv))

    def project(self, xyz: np.ndarray) -> np.ndarray:
        """World points `(N, 3)` to image `(N, 2)`; points on/behind the camera plane give NaN."""
        P = self._require_projection("project")
        return self.distort(_apply_homogeneous(P, _as_points("xyz", xyz, 3)))

    def depth(self, xyz: np.ndarray) -> np.ndarray:
        """Camera-frame depth `(N,)` of world points (in world units when `P = K[R|t]` with `K[2,2] = 1`)."""
        P = self._require_projection("depth")
        xyz = _as_points("xyz", xyz, 3)
        return (xyz @ P[2, :3] + P[2, 3]) / np.linalg.norm(P[2, :3])

    def in_front(self, xyz: np.ndarray) -> np.ndarray:
        """Boolean `(N,)`: the world point lies in front of the camera."""
        return self.depth(xyz) > 0

    def in_image(self, uv: np.ndarray) -> np.ndarray:
        """Boolean `(N,)`: finite image points inside `[0, width) x [0, height)` (needs `image_size`)."""
        if self.image_size is None:
            raise CalibrationError("in_image needs image_size")
        uv = _as_points("uv", uv, 2)
        w, h = self.image_size
        with np.errstate(invalid="ignore"):
            return (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)

    @property
    def camera_center(self) -> np.ndarray:
        """World position `(3,)` of the optical centre: the right null vector of `P`."""
        P = self._require_projection("camera_center")
        return -np.linalg.solve(P[:, :3], P[:, 3])

    def decompose(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`K, R, t` with `P ~ K [R | t]`, positive focal lengths and `K[2, 2] = 1` (RQ decomposition)."""
        P = self._require_projection("decompose")
        M = P[:, :3]
        # RQ of M through QR of the row-reversed transpose.
        flip = np.eye(3)[::-1]
        q, r = np.linalg.qr((flip @ M).T)
        K = flip @ r.T @ flip
        R = flip @ q.T
        signs = np.diag(np.sign(np.diag(K)))
        K, R = K @ signs, signs @ R
        t = np.linalg.solve(K, P[:, 3])  # P = K [R | K^-1 p4]
        return K / K[2, 2], R, t

    def to_torch(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> dict[str, Tensor]:
        """`{"H", "H_inv"[, "P"]}` as tensors for the batched functions (float32 by default).

        Raises `CalibrationError` for a camera with a lens model: the batched functions do not undistort.
        """
        import torch

        _require_no_lens([self])
        dtype = dtype or torch.float32
        out = {
            "H": torch.as_tensor(self.homography, dtype=dtype, device=device),
            "H_inv": torch.as_tensor(self.homography_inv, dtype=dtype, device=device),
        }
        if self.projection is not None:
            out["P"] = torch.as_tensor(self.projection, dtype=dtype, device=device)
        return out


def _require_no_lens(cams: Sequence[CameraCalibration]) -> None:
    lens = [i for i, c in enumerate(cams) if c.has_lens]
    if lens:
        raise CalibrationError(
            f"camera index {lens[0]} has lens distortion, which the batched functions do not model; "
            "map its points with CameraCalibration.image_to_ground"
        )


def stack_calibrations(
    cams: Sequence[CameraCalibration], device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> dict[str, Tensor]:
    """`{"H": (C,3,3), "H_inv": (C,3,3)[, "P": (C,3,4)]}` for the batched functions (P only when all have one).

    Raises `CalibrationError` for a camera with a lens model: the batched functions do not undistort.
    """
    import torch

    if not cams:
        raise CalibrationError("stack_calibrations needs at least one camera")
    _require_no_lens(cams)
    dtype = dtype or torch.float32
    out = {
        "H": torch.as_tensor(np.stack([c.homography for c in cams]), dtype=dtype, device=device),
        "H_inv": torch.as_tensor(np.stack([c.homography_inv for c in cams]), dtype=dtype, device=device),
    }
    if all(c.projection is not None for c in cams):
        out["P"] = torch.as_tensor(np.stack([c.projection for c in cams]), dtype=dtype, device=device)  # type: ignore[misc]
    return out


def _apply_homogeneous_batched(M: Tensor, pts: Tensor, name: str) -> Tensor:
    """`M (C, k+1, d+1)` applied to `pts (C, N, d)` or `(N, d)` (broadcast to every camera) -> `(C, N, k)`."""
    import torch

    if M.ndim != 3:
        raise ValueError(f"{name}: matrices must be (C, r, c), got {tuple(M.shape)}")
    d = M.shape[-1] - 1
    if pts.shape[-1] != d or pts.ndim not in (2, 3):
        raise ValueError(f"{name}: points must be (C, N, {d}) or (N, {d}), got {tuple(pts.shape)}")
    if pts.ndim == 3 and pts.shape[0] != M.shape[0]:
        raise ValueError(f"{name}: {M.shape[0]} cameras but points for {pts.shape[0]}")
    pts = pts.to(M.dtype)
    hom = torch.matmul(pts, M[:, :, :d].transpose(1, 2)) + M[:, None, :, d]
    w = hom[..., -1:]
    # Same scale-invariant rule as `_apply_homogeneous`: w against the terms summed into it.
    scale = torch.matmul(pts.abs(), M[:, -1:, :d].abs().transpose(1, 2)) + M[:, None, -1:, d].abs()
    eps = torch.finfo(M.dtype).eps if M.dtype != torch.float64 else _W_EPS
    bad = w <= eps * scale
    out = hom[..., :-1] / w
    return torch.where(bad, torch.full_like(out, float("nan")), out)


def ground_to_image_batched(H: Tensor, xy: Tensor) -> Tensor:
    """Ground `(C, N, 2)` (or `(N, 2)` for all cameras) to image `(C, N, 2)` through `H (C, 3, 3)`; NaN behind."""
    return _apply_homogeneous_batched(H, xy, "ground_to_image_batched")


def image_to_ground_batched(H_inv: Tensor, uv: Tensor) -> Tensor:
    """Image `(C, N, 2)` to ground `(C, N, 2)` through the inverse homographies `(C, 3, 3)`; NaN above the horizon."""
    return _apply_homogeneous_batched(H_inv, uv, "image_to_ground_batched")


def project_batched(P: Tensor, xyz: Tensor) -> Tensor:
    """World `(C, N, 3)` (or `(N, 3)`) to image `(C, N, 2)` through `P (C, 3, 4)`; NaN behind the camera."""
    return _apply_homogeneous_batched(P, xyz, "project_batched")


def invert_homographies(H: Tensor) -> Tensor:
    """`(C, 3, 3)` inverses; raises `CalibrationError` naming the first singular camera."""
    import torch

    bad = [i for i, h in enumerate(H.detach().double().cpu().numpy()) if is_singular_homography(h)]
    if bad:
        raise CalibrationError(f"homography of camera index {bad[0]} is singular")
    return torch.linalg.inv(H)


def image_to_ground_ragged(H_inv: Tensor, uv: Tensor, camera_index: Tensor) -> Tensor:
    """Image points `(N, 2)` of many cameras to the ground `(N, 2)` in one call.

    `camera_index (N,)` names each point's camera in `H_inv (C, 3, 3)`: the ragged form of
    `image_to_ground_batched` for a frame where every camera has its own number of boxes.
    NaN above the horizon, as everywhere in this module.
    """
    if uv.ndim != 2 or uv.shape[-1] != 2:
        raise ValueError(f"image_to_ground_ragged: points must be (N, 2), got {tuple(uv.shape)}")
    if camera_index.shape != uv.shape[:1]:
        raise ValueError(f"image_to_ground_ragged: {len(camera_index)} camera indices for {len(uv)} points")
    return _apply_homogeneous_batched(H_inv[camera_index.long()], uv[:, None, :], "image_to_ground_ragged")[:, 0]


def calibration_from_aicity(record: object, image_size: tuple[int, int] | None = None) -> CameraCalibration:
    """`CameraCalibration` of an AI City record (`formats.aicity.Aic24Calibration` or `Aic19Calibration`).

    The 3x4 projection matrix is used when the record has one (it also gives the camera centre);
    otherwise the ground homography (ground -> image, as the files store it), with the record's
    lens model (`intrinsics`, `distortion`: AI City 2019 fisheye cameras) when it has one. A broken
    matrix raises `CalibrationError`.
    """
    projection = getattr(record, "projection", None)
    if projection is not None:
        return CameraCalibration.from_projection(projection, image_size)
    homography = getattr(record, "homography", None)
    if homography is None:
        raise CalibrationError(f"{type(record).__name__} has neither a projection nor a homography matrix")
    return CameraCalibration.from_homography(
        homography, image_size, getattr(record, "intrinsics", None), getattr(record, "distortion", None)
    )
