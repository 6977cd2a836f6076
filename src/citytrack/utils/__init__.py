"""Small shared helpers: atomic file writing, config-driven construction, paths."""

from citytrack.utils.io import atomic_open, atomic_path

__all__ = ["atomic_open", "atomic_path"]
