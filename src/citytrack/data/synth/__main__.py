"""`python -m citytrack.data.synth out=DIR [scenes=1 cameras=4 people=12 frames=60 layout=aic24 ...]`.

Arguments are Hydra overrides of `conf/synth/synth.yaml`; `layout=` picks `conf/synth/layout/*.yaml`.
"""

from __future__ import annotations

import sys

from citytrack.data.synth.config import compose_config
from citytrack.data.synth.generate import generate
from citytrack.data.synth.world import SynthConfigError


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print(__doc__)
        return 0
    try:
        cfg = compose_config(args)
        root = generate(cfg)
    except SynthConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {cfg.layout.name} dataset to {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
