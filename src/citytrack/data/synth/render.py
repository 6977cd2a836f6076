"""Rasterise a `World` into camera images, instance id maps, boxes and visibilities.

Speed comes from doing the expensive things once per camera and nothing per pixel in
Python per frame:

- the static background (ground texture with its markings warped through the camera's
  homography, sky, haze, buildings with windows and doors, occluders and street clutter
  with their shadows, lighting, the camera's tone, blur and compression) is rendered once
  per camera, and so is its noisy version for each image of a small per-camera bank of
  sensor noise: a frame starts as one copy of a noisy background;
- body points of all people are computed for a chunk of frames at once (`PoseCache`) and
  projected per camera and frame in one matrix product;
- each visible person is drawn with a dozen or two `cv2.line/circle/fillConvexPoly` calls
  (fixed-point coordinates) into a small 1-channel label crop (0 = empty, k = colour k),
  which is then coloured by a per-person look-up table, given the same sensor noise as the
  background, and copied into the frame and the id map through itself as the mask, back to
  front (painter's algorithm over people and occluders by depth), only inside the
  silhouette's box;
- optionally (`world.body_shading`, `world.cloth_texture`; off by default) the coloured silhouette
  gets relief before the noise: darker towards its outline and garment edges (a box blur of its label
  crop's inner pixels) and a mottle from a per-camera texture fixed to the person;
- an occluder or clutter sprite is pasted again (from the noisy background) only when
  someone drawn behind it overlaps it;
- per frame, the camera's blur and compression are redone only around people, then the
  frame's exposure gain is applied (`imaging.py`); ground truth is of the ideal image.

Ground truth per person and frame (`FrameRender`):

- `full_boxes`: the FULL (amodal) box, as MOTChallenge and AI City annotate: the tight box
  of the person's whole rasterised silhouette (limbs with their thickness, head, hair and
  carried objects) as if nobody and no image border occluded it, so it can extend beyond
  the image. Same pixel convention as `visible_boxes`: x, y are the first column and row of
  the silhouette, w, h its extent in pixels; pixel i covers image coordinates [i, i + 1), as
  in the calibration (principal point at W / 2) and the projected ground truth, so the box is
  the silhouette's continuous extent (`raster.fixed_point` draws in this convention) and a
  fully visible person's two boxes are equal.
- `foot_world` / `foot_image`: the person's ground point (between the feet) and its exact
  projection through the camera's calibration. It is not a box corner: horizontally it lies
  near the full box's centre (within 0.2 w for 80% of boxes: the stride, an arm or a bag on
  one side move the box), vertically above the bottom edge by a few percent of the box
  height (median ~6% on the default scenes: the drawn soles reach ~5 cm below the ground,
  and in a stride the nearer foot is lower in the image); it is below the edge (by up to
  ~3% of the height) only while a long stride lifts both feet (the hip height is fixed).
- `visible_boxes`: the tight box of the person's visible pixels in the id map.
- `visibility`: visible pixels / pixels of the unoccluded, unclipped silhouette.
- `keypoints`: `(N, 17, 3)` COCO-17 joints, x, y in image pixels and COCO visibility
  (0 outside the image, 1 occluded, 2 visible) decided on the final id map; the mapping from
  the body and the rules are in `keypoints.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import NormalDist

import cv2
import numpy as np

from citytrack.data.synth import body, keypoints
from citytrack.data.synth.facades import Facade, facade_quads
from citytrack.data.synth.imaging import Imager
from citytrack.data.synth.raster import ONE, SHIFT, fixed_point
from citytrack.data.synth.solids import Solid, block, shadow_outline
from citytrack.data.synth.world import SynthCamera, World

LITE_PIXELS = 56.0  # people shorter than this (pixels) are drawn with fewer parts
NOISE_BANK = 6
# Standard normal quantiles at the centres of 256 equal-probability bins (noise from random bytes).
_NORMAL_QUANTILES = np.array([NormalDist().inv_cdf((i + 0.5) / 256) for i in range(256)])
SKY_TOP = np.array([205, 160, 110], dtype=np.float32)  # BGR
SKY_HORIZON = np.array([235, 225, 215], dtype=np.float32)


@dataclass
class FrameRender:
    """One camera at one frame. `image` and `id_map` belong to the renderer: copy them to keep them."""

    frame: int
    image: np.ndarray  # (H, W, 3) uint8 BGR
    id_map: np.ndarray  # (H, W) uint16: scene agent index + 1, 0 = nobody
    agents: np.ndarray  # (N,) scene agent indices drawn in this camera (possibly fully occluded)
    full_boxes: np.ndarray  # (N, 4) xywh
    visible_boxes: np.ndarray  # (N, 4) xywh, zeros where nothing is visible
    full_pixels: np.ndarray  # (N,)
    visible_pixels: np.ndarray  # (N,)
    foot_world: np.ndarray  # (N, 2)
    foot_image: np.ndarray  # (N, 2)
    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, 17, 3)))  # (N, 17, 3) x, y, COCO v

    @property
    def visibility(self) -> np.ndarray:
        return self.visible_pixels / np.maximum(self.full_pixels, 1)


@dataclass
class _Sprite:
    """An occluder as seen by one camera: its pixels, its mask, its box and its depth."""

    x0: int
    y0: int
    patch: np.ndarray
    mask: np.ndarray  # bool
    depth: float

    def __post_init__(self) -> None:
        self.mask8 = self.mask.view(np.uint8)  # the same pixels as an OpenCV mask

    @property
    def box(self) -> tuple[int, int, int, int]:
        h, w = self.mask.shape
        return self.x0, self.y0, self.x0 + w, self.y0 + h


class PoseCache:
    """Body points (and COCO-17 world joints) of everyone present, computed for `chunk` frames at once
    and shared by all cameras.

    Chunks start at multiples of `chunk`, so a frame's points are the same whichever order
    frames and cameras are rendered in (and in whichever process).
    """

    def __init__(self, world: World, chunk: int = 16) -> None:
        self.world = world
        self.chunk = max(1, int(chunk))
        self.shape = body.BodyShape.from_appearances([a.appearance for a in world.agents])
        self._start = 0
        self._frames: list[tuple[np.ndarray, np.ndarray]] = []
        self._keypoints: list[tuple[np.ndarray, np.ndarray]] = []

    def __call__(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """(agent indices present (A,), world points (A, J, 3))."""
        self._load(frame)
        return self._frames[frame - self._start]

    def keypoints(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """COCO-17 world joints (A, 17, 3) and face outward directions (A, 5, 2) of the people of
        `frame`, in the order of `__call__` (see `keypoints.world_keypoints`)."""
        self._load(frame)
        return self._keypoints[frame - self._start]

    def _load(self, frame: int) -> None:
        if not self._start <= frame < self._start + len(self._frames):
            tr = self.world.traj
            f0 = frame // self.chunk * self.chunk
            present = tr.present[f0 : f0 + self.chunk]
            if not 0 <= frame < f0 + len(present):
                raise IndexError(f"frame {frame} outside the world's {len(tr.present)} frames")
            fi, ai = np.nonzero(present)
            fi = fi + f0
            pts = body.body_points(tr.position[fi, ai], tr.heading[fi, ai], tr.phase[fi, ai], tr.swing[fi, ai], self.shape.take(ai))
            joints, outward = keypoints.world_keypoints(pts)
            ends = np.cumsum(present.sum(axis=1)).tolist()
            starts = [0, *ends[:-1]]
            self._start = f0
            self._frames = [(ai[i:j], pts[i:j]) for i, j in zip(starts, ends, strict=True)]
            self._keypoints = [(joints[i:j], outward[i:j]) for i, j in zip(starts, ends, strict=True)]


def _shade(colour: tuple[int, int, int], factor: float, haze: float = 0.0) -> np.ndarray:
    c = np.asarray(colour, dtype=np.float32) * factor
    return c * (1 - haze) + SKY_HORIZON * haze


_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def mottle(rng: np.random.Generator, height: int, width: int, amplitude: float, cells: tuple[float, ...] = (5.0, 20.0)) -> np.ndarray:
    """A `(height, width)` uint8 multiplier (128 = 1) of smooth random blotches, one layer per blotch size in
    `cells` (pixels), standard deviation `amplitude / 2`: folds, prints and dirt on clothes."""
    out = np.zeros((height, width), dtype=np.float32)
    for size in cells:
        gh, gw = max(2, round(height / size)) + 1, max(2, round(width / size)) + 1
        out += cv2.resize(rng.standard_normal((gh, gw)).astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    out *= amplitude * 0.5 / max(float(out.std()), 1e-6)
    return np.clip(128.0 * (1.0 + out), 0, 255).astype(np.uint8)


class CameraRenderer:
    """Renders one camera of a world; build once per camera, call `render(frame)` per frame."""

    def __init__(self, world: World, camera: SynthCamera, noise: bool = True, poses: PoseCache | None = None) -> None:
        self.world = world
        self.cam = camera
        self.W, self.H = camera.width, camera.height
        self.P = camera.projection / np.linalg.norm(camera.projection[2, :3])  # w = depth in metres
        self.focal = float(camera.K[0, 0])
        self.center = camera.center
        self.poses = poses or PoseCache(world)
        self.ground_depth: np.ndarray | None = None
        self.imager = Imager(camera.imaging, world.dusk, world.frames, self.W, self.H)
        self.background = self._render_ground()
        self._draw_skyline(self.background)
        self.sprites = self._make_sprites()
        self._draw_occluder_shadows(self.background)
        self.background_full = self.background.copy()
        for sp in sorted(self.sprites, key=lambda s: -s.depth):
            self._paste(self.background_full, None, sp)
        self.imager.apply_tone(self.background_full)  # white balance and dusk, once; palettes below get the same
        self.sprite_items = [(sp.depth, 1, j) for j, sp in enumerate(self.sprites)]
        self.heights = np.array([a.appearance.height for a in world.agents])
        self.image = np.empty((self.H, self.W, 3), dtype=np.uint8)
        self.id_map = np.zeros((self.H, self.W), dtype=np.uint16)
        # Per-person scratch: a 1-channel label crop (0 = empty, k + 1 = colour key k) and a
        # uint16 crop for writing ids through the silhouette mask.
        self.scratch = np.zeros((64, 64), dtype=np.uint8)
        self.scratch16 = np.zeros((64, 64), dtype=np.uint16)
        # Draw ops resolved for this camera: (kind, point a, point b, size (2 r for capsules, r * ONE for
        # spheres, in metres), label = colour key + 1, hull point indices); and per person a colour
        # look-up table from label to the lit colour, used once per person to colour the silhouette.
        self.ops: list[tuple[list[list[tuple]], list[list[tuple]]]] = []
        self.palettes: list[np.ndarray] = []
        for a in world.agents:
            lut = np.zeros((256, 1, 3), dtype=np.uint8)
            for k, c in enumerate(body.person_colours(a.appearance)):
                lut[k + 1, 0] = camera.light(c)
            self.palettes.append(self.imager.apply_tone(lut))
            per_lod = []
            for lite in (False, True):
                per_lod.append([
                    [
                        (kind, pi[0], pi[1] if len(pi) > 1 else 0,
                         2 * r if kind == body.CAPSULE else r * ONE, ck + 1, np.asarray(pi, dtype=np.int64))
                        for kind, pi, r, ck in order
                    ]
                    for order in body.draw_orders(a.appearance, lite)
                ])
            self.ops.append((per_lod[0], per_lod[1]))
        # Sensor noise: a bank of noise images; the noisy background of each is precomputed, so a
        # frame starts as one copy, and only people's pixels get noise added per frame. Noise is
        # Gaussian quantised to 256 equally likely levels (tails cut at 2.9 sigma): random bytes
        # through a quantile table, ~6x faster to make than normal draws at 1080p.
        self.noise: list[tuple[np.ndarray, np.ndarray]] = []
        self.backgrounds: list[np.ndarray] = [self.background_full]
        if noise and camera.noise_sigma > 0:
            rng = np.random.default_rng([world.noise_seed, camera.index])
            levels = np.rint(camera.noise_sigma * _NORMAL_QUANTILES)
            pos_lut = np.clip(levels, 0, 255).astype(np.uint8)
            neg_lut = np.clip(-levels, 0, 255).astype(np.uint8)
            self.backgrounds = []
            for _ in range(NOISE_BANK):
                u = np.frombuffer(rng.bytes(self.H * self.W * 3), dtype=np.uint8).reshape(self.H, self.W, 3)
                pos, neg = cv2.LUT(u, pos_lut), cv2.LUT(u, neg_lut)
                self.noise.append((pos, neg))
                self.backgrounds.append(cv2.subtract(cv2.add(self.background_full, pos), neg))
        # The camera's blur and compression of the static scene, once per background of the bank.
        self.backgrounds = [self.imager.finish_static(bg) for bg in self.backgrounds]
        # People's relief (`world.body_shading`, `world.cloth_texture`; off by default): strengths drawn per
        # camera from a stream of their own, so a world without them renders exactly as before.
        self.shading, self.texture = 0.0, None
        spec = world.spec
        if spec.body_shading[1] > 0 or spec.cloth_texture[1] > 0:
            rng = np.random.default_rng([world.noise_seed, camera.index, 1])
            self.shading = float(rng.uniform(*spec.body_shading))
            amplitude = float(rng.uniform(*spec.cloth_texture))
            if amplitude > 0:
                px = self.H / 360.0  # blotches 5 and 20 px at 640x360, the same share of a person at any size
                self.texture = mottle(rng, 2 * self.H, 2 * self.W, amplitude, (5.0 * px, 20.0 * px))
                self.texture_offsets = rng.integers(0, [self.H, self.W], size=(len(world.agents), 2)).tolist()

    # ------------------------------------------------------------------ static background
    def _render_ground(self) -> np.ndarray:
        g = self.world.ground
        ss = 2  # supersample the warp, then area-average: no shimmering tiles far away
        S = np.diag([ss, ss, 1.0])
        M = S @ self.cam.calibration.homography @ g.world_from_texture()
        big = cv2.warpPerspective(g.image, M, (self.W * ss, self.H * ss), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        img = cv2.resize(big, (self.W, self.H), interpolation=cv2.INTER_AREA).astype(np.float32)
        # Per-pixel ground point: horizon (w <= 0 means sky) and distance for the haze.
        u = np.arange(self.W, dtype=np.float64)[None, :] + 0.5
        v = np.arange(self.H, dtype=np.float64)[:, None] + 0.5
        Hi = self.cam.calibration.homography_inv
        w = Hi[2, 0] * u + Hi[2, 1] * v + Hi[2, 2]
        ground = w > 1e-12
        with np.errstate(divide="ignore", invalid="ignore"):
            inv_w = (1.0 / np.where(ground, w, np.nan)).astype(np.float32)
            gx = ((Hi[0, 0] - Hi[2, 0] * self.center[0]) * u + (Hi[0, 1] - Hi[2, 1] * self.center[0]) * v).astype(np.float32)
            gx += np.float32(Hi[0, 2] - Hi[2, 2] * self.center[0])
            gy = ((Hi[1, 0] - Hi[2, 0] * self.center[1]) * u + (Hi[1, 1] - Hi[2, 1] * self.center[1]) * v).astype(np.float32)
            gy += np.float32(Hi[1, 2] - Hi[2, 2] * self.center[1])
            dist = cv2.magnitude(gx, gy) * inv_w  # ground distance from the camera (NaN in the sky)
        # haze = 1 - exp(-max(dist - 15, 0) / 60); 1 in the sky.
        haze = cv2.exp(np.minimum(np.fmax(dist - np.float32(15.0), np.float32(0.0)), np.float32(1e4)) * np.float32(-1 / 60.0))
        haze = np.where(ground, np.float32(1.0) - haze, np.float32(1.0))[..., None]
        img += (SKY_HORIZON - img) * haze
        dist = np.where(ground, dist, np.float32(np.inf))
        # Sky: gradient from the horizon up.
        sky = ~ground
        if sky.any():
            rows = np.nonzero(sky.any(axis=1))[0]
            t = np.clip((rows.max() - v[: rows.max() + 1]) / max(self.H * 0.5, 1.0), 0, 1)[..., None].astype(np.float32)
            sky_img = np.broadcast_to(SKY_HORIZON * (1 - t) + SKY_TOP * t, (len(t), self.W, 3))
            part = img[: rows.max() + 1]
            s_mask = sky[: rows.max() + 1]
            part[s_mask] = sky_img[s_mask]
        self.ground_depth = dist
        return self._light(img)

    def _light(self, img: np.ndarray) -> np.ndarray:
        out = img * (self.cam.gain * self.cam.cast.astype(np.float32))
        return np.clip(out, 0, 255).astype(np.uint8)

    def _project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        hom = pts @ self.P[:, :3].T + self.P[:, 3]
        depth = hom[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = hom[..., :2] / depth[..., None]
        return uv, depth

    def _draw_solid(self, canvas: np.ndarray, mask: np.ndarray | None, solid: Solid, origin: tuple[int, int], haze: float) -> None:
        """Fill the faces of a convex solid that face the camera (back faces culled, no sorting needed)."""
        uv, _ = self._project(solid.vertices)
        pts = fixed_point(uv, origin)
        firsts = solid.vertices[[f[0] for f in solid.faces]]
        facing = np.einsum("ij,ij->i", solid.normals, self.center - firsts) > 0
        sun_light = 0.55 + 0.45 * np.maximum(solid.normals @ self.world.sun, 0.0)
        for k in np.flatnonzero(facing).tolist():
            light = min(1.0, sun_light[k] + 0.1) if solid.normals[k, 2] > 0.5 else sun_light[k]
            col = _shade(solid.colour, light * solid.shade[k], haze)
            col = np.clip(col * self.cam.gain * self.cam.cast, 0, 255)
            poly = pts[solid.faces[k]]
            # Sprites are drawn without anti-aliasing so that colour and mask agree exactly.
            cv2.fillConvexPoly(canvas, poly, tuple(float(x) for x in col), cv2.LINE_8 if mask is not None else cv2.LINE_AA, SHIFT)
            if mask is not None:
                cv2.fillConvexPoly(mask, poly, 255, cv2.LINE_8, SHIFT)

    def _draw_facade(self, img: np.ndarray, facade: Facade, haze: float) -> None:
        """Windows and doors on the walls of a building that face the camera (`clutter.facade_quads`)."""
        quads, colours, walls = facade_quads(facade, self.world.dusk)
        if not len(quads):
            return
        normals = facade.solid.normals[walls]
        keep = np.einsum("ij,ij->i", normals, self.center - quads[:, 0]) > 0
        uv, depth = self._project(quads[keep].reshape(-1, 3))
        uv, depth = uv.reshape(-1, 4, 2), depth.reshape(-1, 4)
        seen = (depth > 0.5).all(axis=1) & (np.ptp(uv, axis=1).max(axis=1) > 0.7)  # in front, not sub-pixel
        light = 0.55 + 0.45 * np.maximum(normals[keep] @ self.world.sun, 0.0)
        col = colours[keep] * light[:, None] * (1 - haze) + SKY_HORIZON * haze
        col = np.clip(col * self.cam.gain * self.cam.cast, 0, 255)
        pts = fixed_point(uv)
        for k in np.flatnonzero(seen).tolist():
            cv2.fillConvexPoly(img, pts[k], tuple(float(x) for x in col[k]), cv2.LINE_AA, SHIFT)

    def _draw_skyline(self, img: np.ndarray) -> None:
        """Buildings far to near, each with its windows and doors: the skyline and the near fronts."""
        blds = []
        for f in self.world.buildings:
            _, d = self._project(f.solid.vertices)
            if (d > 0.5).all():
                blds.append((float(np.linalg.norm(f.solid.centroid[:2] - self.center[:2])), f))
        for dist, f in sorted(blds, key=lambda x: -x[0]):
            haze = float(1.0 - np.exp(-max(dist - 15.0, 0.0) / 60.0))
            self._draw_solid(img, None, f.solid, (0, 0), haze)
            self._draw_facade(img, f, haze)

    def _draw_occluder_shadows(self, img: np.ndarray) -> None:
        """Shadows of occluders and clutter on the ground (weaker at dusk)."""
        sun = self.world.sun
        if sun[2] <= 0.05:
            return
        mask = np.zeros((self.H, self.W), dtype=np.uint8)
        outlines = []
        for occ in self.world.occluders:
            c = occ.corners()
            top = c[4:, :2] - sun[:2] / sun[2] * occ.size[2]
            outlines.append(np.vstack([c[:4, :2], top]))
        outlines += [shadow_outline(part, sun) for prop in self.world.clutter for part in prop.parts]
        for ground in outlines:
            uv, depth = self._project(np.c_[ground, np.zeros(len(ground))])
            if not np.isfinite(uv).all() or (depth <= 0.1).any():  # not (all) in front of the camera
                continue
            hull = cv2.convexHull(fixed_point(uv))
            cv2.fillConvexPoly(mask, hull, 255, cv2.LINE_AA, SHIFT)
        if mask.any():
            f = 1.0 - 0.35 * (1.0 - 0.6 * self.world.dusk) * (mask.astype(np.float32) / 255.0)
            img[:] = np.clip(img * f[..., None], 0, 255).astype(np.uint8)

    def _make_sprites(self) -> list[_Sprite]:
        """Occluders and clutter as sprites: drawn into the background, pasted again over people behind them."""
        things = [([block(occ.center, 0.0, occ.size, occ.yaw, occ.colour)], occ.center) for occ in self.world.occluders]
        things += [(prop.parts, prop.center) for prop in self.world.clutter]
        sprites = []
        for solids, ground_point in things:
            verts = np.vstack([s.vertices for s in solids])
            uv, d = self._project(verts)
            if (d <= 0.2).any():
                continue
            x0, y0 = np.floor(uv.min(axis=0)).astype(int) - 1
            x1, y1 = np.ceil(uv.max(axis=0)).astype(int) + 2
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, self.W), min(y1, self.H)
            if x1 <= x0 or y1 <= y0:
                continue
            patch = np.zeros((y1 - y0, x1 - x0, 3), dtype=np.uint8)
            mask = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
            for solid in sorted(solids, key=lambda s: -float(np.linalg.norm(s.centroid - self.center))):  # far parts first
                self._draw_solid(patch, mask, solid, (x0, y0), 0.0)
            m = mask > 0
            if not m.any():
                continue
            depth = float(self._project(np.array([[*ground_point, 0.0]]))[1][0])
            sprites.append(_Sprite(int(x0), int(y0), patch, m, depth))
        return sprites

    @staticmethod
    def _paste(img: np.ndarray, id_map: np.ndarray | None, sp: _Sprite) -> None:
        x0, y0, x1, y1 = sp.box
        np.copyto(img[y0:y1, x0:x1], sp.patch, where=sp.mask[..., None])
        if id_map is not None:
            id_map[y0:y1, x0:x1][sp.mask] = 0

    def _repaste(self, bg: np.ndarray, sp: _Sprite) -> None:
        """Put an occluder back in front of people drawn behind it (its pixels from the frame's background)."""
        x0, y0, x1, y1 = sp.box
        cv2.copyTo(bg[y0:y1, x0:x1], sp.mask8, self.image[y0:y1, x0:x1])
        zeros = self._buffer16(y1 - y0, x1 - x0)
        zeros.fill(0)
        cv2.copyTo(zeros, sp.mask8, self.id_map[y0:y1, x0:x1])

    def _buffer16(self, h: int, w: int) -> np.ndarray:
        if self.scratch16.shape[0] < h or self.scratch16.shape[1] < w:
            self.scratch16 = np.zeros((max(h, self.scratch16.shape[0]) + 32, max(w, self.scratch16.shape[1]) + 32), dtype=np.uint16)
        return self.scratch16[:h, :w]

    # ------------------------------------------------------------------ per frame
    def render(self, frame: int) -> FrameRender:
        """`frame` as this camera records it (`imaging.py`: blur, compression, exposure on the ideal
        render; ground truth untouched); the returned image and id map are overwritten by the next call."""
        fr = self._draw_frame(frame)
        self.imager.finish_frame(frame, fr.image, fr.id_map, fr.visible_boxes[fr.visible_pixels > 0])
        return fr

    def _draw_frame(self, frame: int) -> FrameRender:
        """Draw `frame` (the ideal render)."""
        idx, pts = self.poses(frame)
        img, ids = self.image, self.id_map
        k = frame % len(self.backgrounds)
        bg = self.backgrounds[k]
        noise = self.noise[k] if self.noise else None
        np.copyto(img, bg)
        ids.fill(0)
        n = len(idx)
        if n == 0:
            return FrameRender(frame, img, ids, np.zeros(0, dtype=np.int64), np.zeros((0, 4)), np.zeros((0, 4)),
                               np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros((0, 2)), np.zeros((0, 2)))
        uv, depth = self._project(pts)
        min_depth = depth.min(axis=1)
        ok = min_depth > 0.3
        r_px = 0.08 * self.focal * self.heights[idx] / np.maximum(min_depth, 0.3)
        with np.errstate(invalid="ignore"):
            lo = np.floor(np.nan_to_num(uv.min(axis=1)) - r_px[:, None]).astype(np.int64) - 1
            hi = np.ceil(np.nan_to_num(uv.max(axis=1)) + r_px[:, None]).astype(np.int64) + 2
        # Generous bounds: whole silhouettes are rasterised even beyond the image border.
        ok &= (hi[:, 0] > 0) & (lo[:, 0] < self.W) & (hi[:, 1] > 0) & (lo[:, 1] < self.H)
        ok &= (hi - lo).max(axis=1) < 4 * max(self.W, self.H)
        foot_depth = depth[:, body.FOOT]
        to_cam = self.center[:2] - pts[:, body.FOOT, :2]
        hd = self.world.traj.heading[frame, idx]
        fwd = np.stack([np.cos(hd), np.sin(hd)], axis=1)
        front = (fwd * to_cam).sum(axis=1) > 0
        left = (np.stack([-fwd[:, 1], fwd[:, 0]], axis=1) * to_cam).sum(axis=1) > 0
        view = (2 * front + left).tolist()
        lite = (uv[:, body.FOOT, 1] - uv[:, body.HEAD_TOP, 1] < LITE_PIXELS).tolist()
        pelvis_scale = (self.focal / np.maximum(depth[:, body.PELVIS], 0.3)).tolist()
        lo_l, hi_l = lo.tolist(), hi.tolist()

        items: list[tuple[float, int, int]] = [(d, 0, i) for i, d in enumerate(foot_depth.tolist()) if ok[i]]
        items += self.sprite_items
        items.sort(key=lambda t: -t[0])
        dirty: list[tuple[int, int, int, int]] = []
        drawn: dict[int, tuple[int, int, int, int, int, int, int, int, int]] = {}
        for _d, kind, i in items:
            if kind == 1:
                sp = self.sprites[i]
                bx0, by0, bx1, by1 = sp.box
                if any(x0 < bx1 and bx0 < x1 and y0 < by1 and by0 < y1 for x0, y0, x1, y1 in dirty):
                    self._repaste(bg, sp)
                    dirty.append(sp.box)
                continue
            res = self._draw_person(int(idx[i]), uv[i], lo_l[i], hi_l[i], view[i], lite[i], pelvis_scale[i], noise)
            if res is not None:
                drawn[i] = res
                if res[2] > res[0]:
                    dirty.append(res[:4])
        # Ground truth from the final id map, inside each silhouette's box.
        keys = sorted(drawn)
        N = len(keys)
        full_boxes = np.zeros((N, 4))
        vis_boxes = np.zeros((N, 4))
        full_px = np.zeros(N, dtype=np.int64)
        vis_px = np.zeros(N, dtype=np.int64)
        for r, i in enumerate(keys):
            cx0, cy0, cx1, cy1, count, *extent = drawn[i]
            full_px[r] = count
            full_boxes[r] = extent
            if cx1 <= cx0:
                continue
            m = cv2.compare(ids[cy0:cy1, cx0:cx1], int(idx[i]) + 1, cv2.CMP_EQ)
            c = cv2.countNonZero(m)
            vis_px[r] = c
            if c:
                bx, by, bw, bh = cv2.boundingRect(m)
                vis_boxes[r] = (cx0 + bx, cy0 + by, bw, bh)
        sel = np.asarray(keys, dtype=np.int64)
        joints, outward = self.poses.keypoints(frame)
        kps = keypoints.project_keypoints(joints[sel], outward[sel], self.P, self.center, ids, idx[sel] + 1)
        return FrameRender(
            frame, img, ids, idx[sel], full_boxes, vis_boxes, full_px, vis_px,
            pts[sel, body.FOOT, :2].copy(), uv[sel, body.FOOT].copy(), kps,
        )

    def _relief(self, colour: np.ndarray, labels: np.ndarray, agent: int, ox: int, oy: int, height: int) -> None:
        """Give a flat-coloured silhouette crop (`colour`, in place; `labels` its label crop) relief: darker
        towards the outline and every garment edge (`self.shading`: a blurred map of the pixels that are
        neither), times the camera's mottle texture (`self.texture`), fixed to the person (`ox`, `oy`: the
        crop's offset in the person's box, `height` the box's), so it moves with them."""
        factor = None
        if self.shading > 0:
            edges = cv2.morphologyEx(labels, cv2.MORPH_GRADIENT, _CROSS)
            inner = cv2.bitwise_and(cv2.compare(edges, 0, cv2.CMP_EQ), cv2.compare(labels, 0, cv2.CMP_GT))
            k = 2 * max(1, round(height / 30.0)) + 1  # a box blur: constant cost whatever the person's size
            inner = cv2.blur(inner, (k, k))
            factor = cv2.convertScaleAbs(inner, alpha=self.shading * 128.0 / 255.0, beta=128.0 * (1.0 - self.shading))
        if self.texture is not None:
            h, w = labels.shape
            tx, ty = self.texture_offsets[agent]
            tx, ty = (tx + ox) % self.W, (ty + oy) % self.H
            tex = self.texture[ty : ty + h, tx : tx + w]
            factor = tex if factor is None else cv2.multiply(factor, tex, scale=1.0 / 128.0)
        cv2.multiply(colour, cv2.cvtColor(factor, cv2.COLOR_GRAY2BGR), dst=colour, scale=1.0 / 128.0)

    def _draw_person(
        self, agent: int, uv: np.ndarray, lo: list[int], hi: list[int], view: int, lite: bool, scale: float,
        noise: tuple[np.ndarray, np.ndarray] | None,
    ) -> tuple[int, int, int, int, int, int, int, int, int] | None:
        """Rasterise one person into the label crop and composite it into the frame and the id map.

        Returns the silhouette's box clipped to the image (x0, y0, x1, y1; empty when it lies
        outside), its pixel count, and its whole (unclipped) box x, y, w, h: the full box.
        """
        x0, y0 = lo
        x1, y1 = hi
        w, h = x1 - x0, y1 - y0
        if self.scratch.shape[0] < h or self.scratch.shape[1] < w:
            self.scratch = np.zeros((max(h, self.scratch.shape[0]) + 32, max(w, self.scratch.shape[1]) + 32), dtype=np.uint8)
        work = self.scratch[:h, :w]
        work.fill(0)
        pts_arr = fixed_point(uv, (x0, y0))
        pts = pts_arr.tolist()
        line, circle, fill, hull = cv2.line, cv2.circle, cv2.fillConvexPoly, cv2.convexHull
        for kind, a, b, size, label, members in self.ops[agent][1 if lite else 0][view]:
            if kind == 0:  # capsule: a thick line has round caps
                line(work, pts[a], pts[b], label, max(1, int(size * scale + 0.5)), 8, SHIFT)
            elif kind == 1:  # sphere: a disc
                circle(work, pts[a], max(8, int(size * scale)), label, -1, 8, SHIFT)
            else:  # convex hull of a box or torso slab
                fill(work, hull(pts_arr[members]), label, 8, SHIFT)
        count = cv2.countNonZero(work)
        if count == 0:
            return None
        bx, by, bw, bh = cv2.boundingRect(work)
        bx, by = x0 + bx, y0 + by
        # Composite the in-image part of the silhouette: colour by look-up, noise, copy through the mask.
        sx0, sy0 = max(bx, 0), max(by, 0)
        sx1, sy1 = min(bx + bw, self.W), min(by + bh, self.H)
        if sx1 <= sx0 or sy1 <= sy0:
            return 0, 0, 0, 0, count, bx, by, bw, bh
        labels = work[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0]
        colour = cv2.LUT(cv2.cvtColor(labels, cv2.COLOR_GRAY2BGR), self.palettes[agent])
        if self.shading > 0 or self.texture is not None:
            self._relief(colour, labels, agent, sx0 - bx, sy0 - by, bh)
        if noise is not None:
            cv2.add(colour, noise[0][sy0:sy1, sx0:sx1], dst=colour)
            cv2.subtract(colour, noise[1][sy0:sy1, sx0:sx1], dst=colour)
        cv2.copyTo(colour, labels, self.image[sy0:sy1, sx0:sx1])
        idv = self._buffer16(sy1 - sy0, sx1 - sx0)
        idv.fill(agent + 1)
        cv2.copyTo(idv, labels, self.id_map[sy0:sy1, sx0:sx1])
        return sx0, sy0, sx1, sy1, count, bx, by, bw, bh
