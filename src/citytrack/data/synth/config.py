"""Compose and check the synth config (`conf/synth/synth.yaml` plus a `layout/<name>.yaml`).

The command line goes through Hydra's compose API. The Python API (`generate`,
`ensure_synthetic_dataset`) is also called from inside other Hydra apps (a datamodule under
`train.py`), where Hydra's global state is already taken; there the same files are merged
with OmegaConf directly, giving the identical config.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf

from citytrack.data.synth.city import CitySpec
from citytrack.data.synth.clutter import ClutterSpec
from citytrack.data.synth.world import SceneSpec, SynthConfigError
from citytrack.utils.paths import config_dir

CONFIG_DIR = config_dir() / "synth"
LAYOUTS = ("aic24", "aic23", "mot", "kitti_mots", "aic19")


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_value_text(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, str):
        return value if value and all(c.isalnum() or c in "/._-~" for c in value) else repr(value)
    return str(value)


def merge_overrides(base: Mapping[str, Any], over: Mapping[str, Any] | None) -> dict[str, Any]:
    """World overrides `over` merged into `base` with OmegaConf (nested keys too), as plain containers:
    how a second training world states only what differs from the first."""
    return dict(OmegaConf.to_container(OmegaConf.merge(dict(base), dict(over or {})), resolve=True))  # type: ignore[arg-type]


def overrides_from_kwargs(kwargs: Mapping[str, Any], prefix: str = "") -> list[str]:
    """`{"cameras": 2, "world": {"area": [8, 6]}}` -> `["cameras=2", "world.area=[8,6]"]`."""
    out = []
    for key, value in kwargs.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out += overrides_from_kwargs(value, prefix=f"{name}.")
        else:
            out.append(f"{name}={_value_text(value)}")
    return out


def _compose_manually(overrides: Sequence[str]) -> DictConfig:
    base = OmegaConf.load(CONFIG_DIR / "synth.yaml")
    assert isinstance(base, DictConfig)
    layout = "aic24"
    rest = []
    for o in overrides:
        key, _, value = o.partition("=")
        if key.lstrip("+") == "layout":
            layout = value.strip("'\"")
        else:
            rest.append(o.lstrip("+"))
    if layout not in LAYOUTS:
        raise SynthConfigError(f"synth config: layout must be one of {LAYOUTS}, got {layout!r}")
    base.pop("defaults", None)
    cfg = OmegaConf.merge(base, {"layout": OmegaConf.load(CONFIG_DIR / "layout" / f"{layout}.yaml")})
    cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(rest))
    assert isinstance(cfg, DictConfig)
    return cfg


def compose_config(overrides: Sequence[str] = ()) -> DictConfig:
    """The synth config with Hydra-style `key=value` overrides (`layout=mot` picks the layout group)."""
    if not (CONFIG_DIR / "synth.yaml").is_file():
        raise SynthConfigError(f"synth config folder {CONFIG_DIR} not found (set CITYTRACK_CONFIG_DIR)")
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return _compose_manually(overrides)
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return compose(config_name="synth", overrides=list(overrides))
    except Exception as err:  # hydra's own errors: unknown key, bad group option
        if type(err).__module__.startswith("hydra") or type(err).__module__.startswith("omegaconf"):
            raise SynthConfigError(f"synth config: {err}") from None
        raise


def scene_spec(cfg: DictConfig) -> SceneSpec:
    """The `SceneSpec` of a composed config, validated (raises `SynthConfigError`)."""
    w = cfg.world
    try:
        spec = SceneSpec(
            cameras=cfg.cameras, people=cfg.people, frames=cfg.frames, fps=float(cfg.fps),
            width=cfg.width, height=cfg.height, area=tuple(w.area), occluders=int(w.occluders),
            camera_height=tuple(w.camera_height), camera_hfov=tuple(w.camera_hfov),
            camera_distance=tuple(w.camera_distance), walk_margin=float(w.walk_margin),
            group_prob=float(w.group_prob), stop_prob=float(w.stop_prob), texture_ppm=float(w.texture_ppm),
            noise_sigma=tuple(w.noise_sigma), gain=tuple(w.gain), colour_cast=float(w.colour_cast),
            speed=tuple(w.speed), slow_prob=float(w.slow_prob), child_prob=float(w.child_prob),
            carry_prob=float(w.carry_prob), dark_clothes_prob=float(w.dark_clothes_prob),
            motion_blur=tuple(w.motion_blur), jpeg_quality=tuple(w.jpeg_quality), flicker=float(w.flicker),
            white_balance=float(w.white_balance), dusk_prob=float(w.dusk_prob),
            body_shading=tuple(w.body_shading), cloth_texture=tuple(w.cloth_texture),
            clutter=ClutterSpec.from_mapping(OmegaConf.to_container(w.clutter)),  # type: ignore[arg-type]
        )
    except (TypeError, ValueError) as err:
        raise SynthConfigError(f"synth config: {err}") from None
    spec.validate()
    return spec


def validate(cfg: DictConfig) -> SceneSpec:
    """Check the whole config; returns the scene spec."""
    spec = scene_spec(cfg)
    if not isinstance(cfg.scenes, int) or cfg.scenes <= 0:
        raise SynthConfigError(f"synth config: scenes must be a positive integer, got {cfg.scenes!r}")
    if cfg.layout.name not in LAYOUTS:
        raise SynthConfigError(f"synth config: layout must be one of {LAYOUTS}, got {cfg.layout.name!r}")
    if not isinstance(cfg.seed, int):
        raise SynthConfigError(f"synth config: seed must be an integer, got {cfg.seed!r}")
    r = cfg.reid
    if r.stride < 1 or not 0 <= r.test_fraction <= 1 or min(r.size) < 8:
        raise SynthConfigError(f"synth config: reid needs stride >= 1, test_fraction in [0, 1], size >= 8; got {OmegaConf.to_container(r)}")
    p = cfg.pose
    if p.stride < 0 or not 0 <= p.test_fraction <= 1 or min(p.size) < 8 or p.pad < 1 or not 0 <= p.min_keypoints <= 17:
        raise SynthConfigError(f"synth config: pose needs stride >= 0, test_fraction in [0, 1], size >= 8, pad >= 1, "
                               f"min_keypoints in [0, 17]; got {OmegaConf.to_container(p)}")
    if cfg.layout.name == "kitti_mots" and cfg.scenes * cfg.people > 999:
        raise SynthConfigError("synth config: kitti_mots ids are 2000 + person id, so scenes * people must be <= 999")
    if cfg.gt.min_visible_pixels < 1:
        raise SynthConfigError(f"synth config: gt.min_visible_pixels must be >= 1, got {cfg.gt.min_visible_pixels!r}")
    if cfg.layout.name == "aic19":
        CitySpec.from_config(cfg)  # the vehicle world's own keys (layout.city.*)
    return spec
