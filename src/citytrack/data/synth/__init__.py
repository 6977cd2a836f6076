"""Procedural, calibrated multi-camera world that writes the real datasets' layouts.

- `generate(cfg_or_kwargs, out)`: render a dataset (`python -m citytrack.data.synth out=DIR ...`).
- `ensure_synthetic_dataset(root, **overrides)`: generate into `root` unless `root/meta.json` exists.
- `build_world`, `CameraRenderer`: the world and the renderer, for in-memory use.
"""

from citytrack.data.synth.generate import ensure_synthetic_dataset, generate, resolve_config
from citytrack.data.synth.render import CameraRenderer, FrameRender, PoseCache
from citytrack.data.synth.world import SceneSpec, SynthConfigError, World, build_world

__all__ = [
    "CameraRenderer",
    "FrameRender",
    "PoseCache",
    "SceneSpec",
    "SynthConfigError",
    "World",
    "build_world",
    "ensure_synthetic_dataset",
    "generate",
    "resolve_config",
]
