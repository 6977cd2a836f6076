"""Small inference checkpoint of a trained segmenter: `python -m citytrack.models.spatial_embedding.export ckpt=PATH out=FILE.pt`.

Keeps the net's weights in fp16 and the net / loss / clustering settings, drops the optimizer
state (a Lightning checkpoint of the CPU net is ~3x larger); `load_spatial_embedding` and
`segmenter=synthetic_cpu` read either kind.
"""

from __future__ import annotations

import sys

from citytrack.utils.cli import run_cli


def main(argv: list[str] | None = None) -> int:
    args = dict(a.split("=", 1) for a in (sys.argv[1:] if argv is None else argv) if "=" in a)
    if "ckpt" not in args or "out" not in args:
        print("usage: python -m citytrack.models.spatial_embedding.export ckpt=PATH out=FILE.pt")
        return 2
    from citytrack.models.spatial_embedding.module import load_spatial_embedding, save_inference_checkpoint

    path = save_inference_checkpoint(load_spatial_embedding(args["ckpt"]), args["out"])
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, fp16 inference weights)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
