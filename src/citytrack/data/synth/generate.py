"""Generate a synthetic dataset: world -> renderers -> layout writers, one scene at a time."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from citytrack.data.synth.config import compose_config, overrides_from_kwargs, validate
from citytrack.data.synth.render import CameraRenderer, PoseCache
from citytrack.data.synth.world import build_world
from citytrack.data.synth.writers import SINKS, ReidWriter, write_meta

log = logging.getLogger(__name__)


def resolve_config(cfg: DictConfig | Mapping[str, Any] | None = None, **overrides: Any) -> DictConfig:
    """A full, validated synth config from a composed DictConfig, or from keyword overrides."""
    if isinstance(cfg, DictConfig):
        out = cfg.copy()
        if overrides:
            out = OmegaConf.merge(out, OmegaConf.from_dotlist(overrides_from_kwargs(overrides)))
    else:
        kwargs = {**(dict(cfg) if cfg else {}), **overrides}
        out = compose_config(overrides_from_kwargs(kwargs))
    assert isinstance(out, DictConfig)
    validate(out)
    return out


def generate(cfg: DictConfig | Mapping[str, Any] | None = None, out: str | Path | None = None, **overrides: Any) -> Path:
    """Render and write a dataset; returns its root. `meta.json` is removed first and written last."""
    if out is not None:
        overrides["out"] = str(out)
    cfg = resolve_config(cfg, **overrides)
    spec = validate(cfg)
    if OmegaConf.is_missing(cfg, "out"):
        from citytrack.data.synth.world import SynthConfigError

        raise SynthConfigError("synth config: out=DIR is required")
    root = Path(cfg.out)
    root.mkdir(parents=True, exist_ok=True)
    (root / "meta.json").unlink(missing_ok=True)
    reid = ReidWriter(root / "reid", cfg.reid, cfg.scenes * spec.people, cfg.seed)
    scenes = []
    for s in range(cfg.scenes):
        world = build_world(spec, cfg.seed, s, id_offset=s * spec.people)
        sink = SINKS[cfg.layout.name](world, root, str(cfg.split), cfg, s * spec.cameras)
        poses = PoseCache(world)
        renderers = [CameraRenderer(world, cam, poses=poses) for cam in world.cameras]
        min_px = int(cfg.gt.min_visible_pixels)
        bar = tqdm(total=spec.frames * spec.cameras, desc=f"scene {s + 1}/{cfg.scenes}", unit="cam-frame",
                   disable=not cfg.progress, leave=False)
        try:
            for f in range(spec.frames):
                for c, r in enumerate(renderers):
                    fr = r.render(f)
                    keep = fr.visible_pixels >= min_px
                    sink.add(c, fr, keep)
                    reid.add(world, c, fr, keep)
                    bar.update(1)
        except BaseException:
            sink.abort()
            raise
        finally:
            bar.close()
        scenes.append(sink.close())
    reid_info = reid.finish()
    write_meta(root, cfg, scenes, reid_info)
    log.info("synthetic %s dataset written to %s", cfg.layout.name, root)
    return root


def ensure_synthetic_dataset(root: str | Path, **overrides: Any) -> Path:
    """Generate the dataset into `root` unless `root/meta.json` says it is complete; returns `root`.

    A folder without meta.json (an interrupted run) is regenerated. An existing dataset is
    reused as is, even when `overrides` differ from its config (a warning says so): delete
    the folder to regenerate.
    """
    root = Path(root)
    meta = root / "meta.json"
    if meta.is_file():
        import json

        stored = json.loads(meta.read_text()).get("config", {})
        wanted = OmegaConf.to_container(resolve_config(None, out=str(root), **overrides), resolve=True)
        assert isinstance(wanted, dict)
        diff = [k for k in wanted if k not in ("out", "progress") and stored.get(k) != wanted[k]]
        if diff:
            log.warning("%s exists with a different config (%s); reusing it. Delete it to regenerate.", root, ", ".join(diff))
        return root
    return generate(None, out=root, **overrides)


__all__ = ["ensure_synthetic_dataset", "generate", "resolve_config"]
