"""Benchmarks: `python -m citytrack.bench <name> [args]` runs `citytrack.bench.<name>.main(args)`."""
