"""Dispatch `python -m citytrack.bench <name> [args...]` to `citytrack.bench.<name>.main`."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import citytrack.bench as bench_pkg
from citytrack.utils.allocator import keep_freed_memory


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(bench_pkg.__path__) if not m.name.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = available()
    if not argv or argv[0] in {"-h", "--help"}:
        print(f"usage: python -m citytrack.bench {{{','.join(names)}}} [args...]")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in names:
        print(f"unknown benchmark {name!r}; available: {', '.join(names)}", file=sys.stderr)
        return 2
    keep_freed_memory()  # CPU timings without page-fault churn, as the entry scripts run (utils/allocator.py)
    module = importlib.import_module(f"citytrack.bench.{name}")
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
