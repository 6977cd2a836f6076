"""The package namespace re-exports every format module's public names."""

from __future__ import annotations

from citytrack.data import formats
from citytrack.data.formats import aicity, coco, kitti_mots, mot, reid


def test_all_names_resolve_to_the_module_objects() -> None:
    modules = (aicity, coco, kitti_mots, mot, reid)
    for name in formats.__all__:
        value = getattr(formats, name)
        owners = [m for m in modules if getattr(m, name, None) is value]
        assert owners or name == "FormatError", name
    assert formats.read_mot is mot.read_mot and formats.scan_veri776 is reid.scan_veri
