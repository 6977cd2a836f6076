"""Camera imaging: what a real camera does to the ideal render, sampled per camera, applied cheaply.

Why: a detector trained on clean renders learns their cleanliness. Real footage has a white
balance per camera, dusk scenes (darker, warmer, flatter), exposure that pumps from frame to
frame, motion blur and compression artefacts.

Where each effect is applied, so that the per-frame cost stays small (the render speed targets):

- tone (white balance temperature, dusk): one 8-bit look-up table per camera, applied once to
  the static background and once to each person's palette, never per frame;
- motion blur: a short linear kernel; the background bank is blurred once, and per frame only
  the pixels at and around people are blurred (through a dilated id-map mask);
- compression: JPEG at the camera's quality; the background bank is compressed once, and per
  frame only the 16-pixel-aligned blocks around people are re-encoded (JPEG codes 16x16 blocks
  independently, so this is what compressing the whole frame does there);
- rolling exposure: a per-frame gain (a smooth random walk), one saturating multiply per frame.

Ground truth (id map, boxes, keypoints) describes the ideal image and is never touched. Lens
distortion is not simulated: the calibrated layouts rely on the pinhole homography.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

JPEG_BLOCK = 16  # MCU size with 4:2:0 chroma subsampling (OpenCV's default)


@dataclass(frozen=True)
class CameraImaging:
    """One camera's imaging chain; the neutral default changes nothing."""

    blur: float = 0.0  # linear blur kernel length in pixels; under 1.5 none
    blur_angle: float = 0.0  # radians
    jpeg_quality: int = 100  # 100: no compression
    flicker: float = 0.0  # standard deviation of the per-frame exposure gain
    temperature: float = 0.0  # white balance error: > 0 warm (red up, blue down), < 0 cool
    seed: int = 0  # of the per-frame gains


def sample_camera_imaging(rng: np.random.Generator, blur: tuple[float, float], jpeg_quality: tuple[int, int],
                          flicker: float, white_balance: float) -> CameraImaging:
    """Draw one camera's chain from the configured ranges (`world.motion_blur`, ...)."""
    return CameraImaging(
        blur=float(rng.uniform(*blur)),
        blur_angle=float(rng.uniform(0, np.pi)),
        jpeg_quality=int(rng.integers(jpeg_quality[0], jpeg_quality[1] + 1)),
        flicker=float(flicker),
        temperature=float(rng.uniform(-white_balance, white_balance)),
        seed=int(rng.integers(2**31)),
    )


def tone_lut(temperature: float, dusk: float) -> np.ndarray | None:
    """(256, 1, 3) uint8 per-channel table (BGR) for white balance and dusk; None when it is the identity.

    Dusk (0 day .. 1 dusk): half as bright, a third less contrast (about a dim mid grey),
    and warmer (red up, blue down), as streets look after sunset under sodium and LED light.
    """
    if abs(temperature) < 1e-4 and dusk <= 0:
        return None
    x = np.arange(256, dtype=np.float64)[:, None]
    wb = np.array([1.0 - temperature, 1.0, 1.0 + temperature])
    mid, contrast, gain = 110.0, 1.0 - 0.35 * dusk, 1.0 - 0.5 * dusk
    warm = np.array([1.0 - 0.2 * dusk, 1.0 + 0.02 * dusk, 1.0 + 0.12 * dusk])
    out = (mid + (x * wb - mid) * contrast) * gain * warm
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)[:, None, :]


def blur_kernel(length: float, angle: float) -> np.ndarray | None:
    """A normalised line kernel `length` pixels long at `angle`; None under 1.5 pixels."""
    if length < 1.5:
        return None
    k = int(np.ceil(length)) | 1
    ss = 8  # draw supersampled, then area-average: fractional lengths and angles stay smooth
    canvas = np.zeros((k * ss, k * ss), dtype=np.float32)
    c = (k * ss - 1) / 2
    d = np.array([np.cos(angle), np.sin(angle)]) * (length - 1) * ss / 2
    p0, p1 = np.round((c - d[0], c - d[1])).astype(int), np.round((c + d[0], c + d[1])).astype(int)
    cv2.line(canvas, tuple(int(v) for v in p0), tuple(int(v) for v in p1), 1.0, ss)
    kernel = cv2.resize(canvas, (k, k), interpolation=cv2.INTER_AREA)
    return kernel / kernel.sum()


def exposure_gains(imaging: CameraImaging, frames: int) -> np.ndarray:
    """(frames,) per-frame gain: 1 + flicker x a unit-variance AR(1) walk (auto exposure pumping)."""
    if imaging.flicker <= 0 or frames <= 0:
        return np.ones(max(frames, 0))
    rng = np.random.default_rng(imaging.seed)
    phi = 0.8
    e = rng.standard_normal(frames) * np.sqrt(1 - phi**2)
    z = np.empty(frames)
    z[0] = rng.standard_normal()
    for f in range(1, frames):
        z[f] = phi * z[f - 1] + e[f]
    return np.clip(1.0 + imaging.flicker * z, 0.5, 1.5)


def _merge(boxes: list[list[int]]) -> list[list[int]]:
    """Union overlapping boxes (x0, y0, x1, y1) until none overlap: each pixel is processed once."""
    out: list[list[int]] = []
    for b in sorted(boxes):
        merged = True
        while merged:
            merged = False
            for o in out:
                if b[0] < o[2] and o[0] < b[2] and b[1] < o[3] and o[1] < b[3]:
                    out.remove(o)
                    b = [min(b[0], o[0]), min(b[1], o[1]), max(b[2], o[2]), max(b[3], o[3])]
                    merged = True
                    break
        out.append(b)
    return out


class Imager:
    """One camera's imaging chain at render time: static parts once, per-frame parts on people's pixels."""

    def __init__(self, imaging: CameraImaging, dusk: float, frames: int, width: int, height: int) -> None:
        self.tone = tone_lut(imaging.temperature, dusk)
        self.kernel = blur_kernel(imaging.blur, imaging.blur_angle)
        self.radius = 0 if self.kernel is None else self.kernel.shape[0] // 2
        self.dilate = None if self.kernel is None else np.ones((2 * self.radius + 1,) * 2, dtype=np.uint8)
        self.jpeg = [int(cv2.IMWRITE_JPEG_QUALITY), int(imaging.jpeg_quality)] if imaging.jpeg_quality < 100 else None
        # Gains are quantised to 1/256 so that frames without a visible change skip the multiply.
        self.gains = np.rint(exposure_gains(imaging, frames) * 256) / 256
        self.W, self.H = width, height

    def apply_tone(self, image: np.ndarray) -> np.ndarray:
        """Colour tone of an 8-bit BGR image or (256, 1, 3) palette, in place."""
        if self.tone is not None:
            cv2.LUT(image, self.tone, dst=image)
        return image

    def finish_static(self, image: np.ndarray) -> np.ndarray:
        """Blur and compress a background of the bank (noise already added): once per camera."""
        out = image if self.kernel is None else cv2.filter2D(image, -1, self.kernel, borderType=cv2.BORDER_REPLICATE)
        return out if self.jpeg is None else self._jpeg(out)

    def _jpeg(self, image: np.ndarray) -> np.ndarray:
        ok, buf = cv2.imencode(".jpg", image, self.jpeg)
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        return cv2.imdecode(buf, cv2.IMREAD_COLOR)

    def finish_frame(self, frame: int, image: np.ndarray, id_map: np.ndarray, boxes: np.ndarray) -> None:
        """Per-frame imaging, in place: blur and compress around the people's visible `boxes` (xywh), then gain."""
        if (self.kernel is not None or self.jpeg is not None) and len(boxes):
            r, B = self.radius, JPEG_BLOCK
            regions = []
            for x, y, w, h in np.asarray(boxes, dtype=np.int64).tolist():
                x0, y0, x1, y1 = x - r, y - r, x + w + r, y + h + r  # the blur smears this far
                if self.jpeg is not None:  # out to the compression blocks
                    x0, y0, x1, y1 = x0 // B * B, y0 // B * B, -(-x1 // B) * B, -(-y1 // B) * B
                regions.append([max(x0, 0), max(y0, 0), min(x1, self.W), min(y1, self.H)])
            for x0, y0, x1, y1 in _merge(regions):
                roi = image[y0:y1, x0:x1]
                if self.kernel is not None:
                    px0, py0, px1, py1 = max(x0 - r, 0), max(y0 - r, 0), min(x1 + r, self.W), min(y1 + r, self.H)
                    blurred = cv2.filter2D(image[py0:py1, px0:px1], -1, self.kernel, borderType=cv2.BORDER_REPLICATE)
                    mask = cv2.dilate(cv2.compare(id_map[y0:y1, x0:x1], 0, cv2.CMP_GT), self.dilate)
                    cv2.copyTo(blurred[y0 - py0 : y1 - py0, x0 - px0 : x1 - px0], mask, roi)
                if self.jpeg is not None:
                    roi[:] = self._jpeg(roi)
        g = float(self.gains[frame]) if frame < len(self.gains) else 1.0
        if g != 1.0:
            cv2.convertScaleAbs(image, dst=image, alpha=g)
