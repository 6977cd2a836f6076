"""Tracking benchmark: our trackers against BoxMOT's on the same detections, in one run.

    python -m citytrack.bench tracking [--trackers sort,bytetrack,boxmot-bytetrack]
        [--groups mot15-sort6,pets09,mot17-02] [--repeat 3] [--out results.json --out results.md]

For every sequence group (MOTChallenge folders under ``--data``, default ``../shared/data``)
each tracker runs over every frame's public detections (``det/det.txt``) and the result
is scored with ``citytrack.eval.evaluate_sequences`` (IoU 0.5; MOT15 rules for MOT15,
MOT17 distractor handling for MOT17). Printed per group and tracker: HOTA, MOTA, IDF1,
IDs and association-only frames per second, plus, for an algorithm that both we and
BoxMOT implement, our FPS / BoxMOT's FPS and our HOTA minus BoxMOT's.

Trackers:

- ours (``sort``, ``deepsort``, ``bytetrack``, ``botsort``): built with
  ``hydra.utils.instantiate(OmegaConf.load(<conf-dir>/tracker/<name>.yaml))``, fed
  ``(N, 5) [x, y, w, h, score]`` with ``update(dets, frame=f)``, ``reset()`` per sequence;
  DeepSORT gets no embeddings. Every sequence runs at the configs' 30 fps, as BoxMOT's
  YAML fixes it, so both sides keep the same lost-track buffers; ``infer.py task=mot``
  instead scales ByteTrack/BoT-SORT buffers by each sequence's frame rate (PETS09 is 7 fps),
  so its figures for those sequences differ slightly from this table's.
- BoxMOT 25.0.0 (``boxmot-bytetrack``, ``boxmot-botsort``, ``boxmot-ocsort``): Python
  backend with the package's YAML defaults (BoT-SORT with ``use_embeddings=False``,
  ``use_cmc=False``), a fresh tracker per sequence, fed ``(N, 6) [x1, y1, x2, y2, conf,
  cls=0]`` and a blank ``H x W x 3`` frame of the sequence size (``update`` requires an
  image; nothing reads it with embeddings and CMC off). BoxMOT is not a runtime
  dependency (``pip install --no-deps boxmot==25.0.0``); its trackers are skipped with a
  message when it is missing.

Timing covers only the ``update`` calls (``time.perf_counter``), not file reading, box
conversion, image allocation or scoring. With ``--repeat N`` every sequence is tracked
N times; FPS uses each sequence's fastest run (frames / seconds summed over the group),
metrics come from the first run.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from citytrack.data.formats.mot import load_sequence
from citytrack.eval.mot_metrics import evaluate_sequences, format_table
from citytrack.utils.io import atomic_open
from citytrack.utils.paths import config_dir

GROUPS: dict[str, tuple[str, ...]] = {
    "mot15-sort6": tuple(
        f"mot15/{s}"
        for s in ("TUD-Campus", "ETH-Sunnyday", "ETH-Pedcross2", "ADL-Rundle-8", "Venice-2", "KITTI-17")
    ),
    "pets09": ("mot15/PETS09-S2L1",),
    "mot17-02": ("mot17/MOT17-02-FRCNN",),
}
"""Sequence groups: folders relative to ``--data`` (the SORT paper's six MOT15 sequences, ...)."""

OURS: tuple[str, ...] = ("sort", "deepsort", "bytetrack", "botsort", "bytetrack_official", "botsort_official")
"""conf/tracker/<name>.yaml configs run by default: our defaults (BoxMOT 25's values) and the presets
with the official repositories' MOT17 settings."""
BOXMOT: dict[str, tuple[str, tuple[tuple[str, Any], ...]]] = {
    "boxmot-bytetrack": ("bytetrack", ()),
    "boxmot-botsort": ("botsort", (("use_cmc", False), ("use_embeddings", False))),
    "boxmot-ocsort": ("ocsort", ()),
}
"""BoxMOT tracker name and option overrides (sorted by key, as ``TrackerSpec`` requires)."""
PAIRS: dict[str, str] = {
    "bytetrack": "boxmot-bytetrack",
    "botsort": "boxmot-botsort",
    "bytetrack_official": "boxmot-bytetrack",
    "botsort_official": "boxmot-botsort",
}
"""Our tracker -> BoxMOT's implementation of the same algorithm (ratio columns)."""
ALL_TRACKERS: tuple[str, ...] = OURS + tuple(BOXMOT)


@dataclass
class SequenceInput:
    name: str
    det: np.ndarray
    gt: np.ndarray
    width: int
    height: int
    num_frames: int


@dataclass
class RunResult:
    """One tracker on one group: metrics of the OVERALL row and association speed."""

    group: str
    tracker: str
    HOTA: float
    MOTA: float
    IDF1: float
    IDs: int
    FPS: float
    frames: int
    seconds: float
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    fps_ratio: float | None = None
    hota_delta: float | None = None


# --------------------------------------------------------------------------- data
def load_group(data_root: Path, group: str) -> list[SequenceInput]:
    """Read det, gt and image size of every sequence of ``group``."""
    if group not in GROUPS:
        raise ValueError(f"unknown group {group!r}; available: {', '.join(GROUPS)}")
    out = []
    for rel in GROUPS[group]:
        seq = load_sequence(data_root / rel)
        if seq.det is None or seq.gt is None:
            raise FileNotFoundError(f"{seq.root}: the benchmark needs det/det.txt and gt/gt.txt")
        last = int(max(seq.info.seq_length, seq.det[:, 0].max() if len(seq.det) else 0))
        out.append(
            SequenceInput(
                name=seq.info.name or Path(rel).name,
                det=seq.det,
                gt=seq.gt,
                width=int(seq.info.im_width),
                height=int(seq.info.im_height),
                num_frames=last,
            )
        )
    return out


def _frame_slices(det: np.ndarray, num_frames: int) -> list[np.ndarray]:
    """Detections of frames 1..num_frames (empty arrays for frames without any)."""
    order = np.argsort(det[:, 0], kind="stable")
    det = det[order]
    frames = np.arange(1, num_frames + 1)
    lo = np.searchsorted(det[:, 0], frames, side="left")
    hi = np.searchsorted(det[:, 0], frames, side="right")
    return [det[a:b] for a, b in zip(lo, hi, strict=True)]


# --------------------------------------------------------------------------- trackers
Runner = Callable[[SequenceInput], tuple[np.ndarray, float]]
"""Track one sequence; returns the MOTChallenge result table and the seconds spent in update."""


def _pack(rows: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(rows) if rows else np.zeros((0, 10))


def _result_rows(frame: int, boxes_xywh: np.ndarray, ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
    n = len(ids)
    t = np.empty((n, 10))
    t[:, 0] = frame
    t[:, 1] = ids
    t[:, 2:6] = boxes_xywh
    t[:, 6] = scores
    t[:, 7:] = -1
    return t


def make_ours(name: str, conf_dir: Path) -> Runner:
    """Runner of our tracker ``name`` built from ``<conf_dir>/tracker/<name>.yaml``."""
    import hydra.utils
    from omegaconf import OmegaConf

    path = conf_dir / "tracker" / f"{name}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: tracker config not found (run from the repository root or pass --conf-dir)")
    tracker = hydra.utils.instantiate(OmegaConf.load(path))

    def run(seq: SequenceInput) -> tuple[np.ndarray, float]:
        tracker.reset()
        inputs = [np.ascontiguousarray(d[:, 2:7]) for d in _frame_slices(seq.det, seq.num_frames)]
        outputs: list[np.ndarray] = []
        seconds = 0.0
        for frame, dets in enumerate(inputs, start=1):
            t0 = time.perf_counter()
            out = tracker.update(dets, frame=frame)
            seconds += time.perf_counter() - t0
            outputs.append(out)
        rows = [
            _result_rows(f, o[:, :4], o[:, 4], o[:, 5]) for f, o in enumerate(outputs, start=1) if len(o)
        ]
        return _pack(rows), seconds

    return run


def boxmot_available() -> str | None:
    """None when BoxMOT can be imported, else the reason it cannot."""
    try:
        import boxmot  # noqa: F401
        from boxmot.trackers.factory import create_tracker  # noqa: F401
    except Exception as err:  # noqa: BLE001 - ImportError or a broken optional dependency
        return f"boxmot is not installed or broken ({type(err).__name__}: {err}); pip install --no-deps boxmot==25.0.0"
    return None


def make_boxmot(name: str) -> Runner:
    """Runner of BoxMOT's tracker (YAML defaults, Python backend)."""
    import logging

    from boxmot.trackers.factory import create_tracker
    from boxmot.trackers.specs import TrackerSpec

    logging.getLogger("boxmot").setLevel(logging.WARNING)
    boxmot_name, options = BOXMOT[name]

    def run(seq: SequenceInput) -> tuple[np.ndarray, float]:
        tracker = create_tracker(TrackerSpec(name=boxmot_name, options=options))
        image = np.zeros((seq.height, seq.width, 3), dtype=np.uint8)
        inputs = []
        for d in _frame_slices(seq.det, seq.num_frames):
            x = np.empty((len(d), 6))
            x[:, 0:2] = d[:, 2:4]
            x[:, 2:4] = d[:, 2:4] + d[:, 4:6]
            x[:, 4] = d[:, 6]
            x[:, 5] = 0
            inputs.append(x)
        outputs: list[np.ndarray] = []
        seconds = 0.0
        for x in inputs:
            t0 = time.perf_counter()
            out = tracker.update(x, image)
            seconds += time.perf_counter() - t0
            outputs.append(np.asarray(out))
        rows = []
        for f, o in enumerate(outputs, start=1):
            if len(o):
                xywh = np.concatenate([o[:, 0:2], o[:, 2:4] - o[:, 0:2]], axis=1)
                rows.append(_result_rows(f, xywh, o[:, 4] + 1, o[:, 5]))  # BoxMOT ids start at 0
        return _pack(rows), seconds

    return run


def make_runner(name: str, conf_dir: Path) -> Runner:
    if name in OURS:
        return make_ours(name, conf_dir)
    if name in BOXMOT:
        return make_boxmot(name)
    raise ValueError(f"unknown tracker {name!r}; available: {', '.join(ALL_TRACKERS)}")


# --------------------------------------------------------------------------- benchmark
def run_group(
    group: str, sequences: Sequence[SequenceInput], tracker: str, runner: Runner, repeat: int
) -> RunResult:
    """Track every sequence ``repeat`` times; score the first run, time the fastest."""
    preds: dict[str, np.ndarray] = {}
    best: dict[str, float] = {}
    for seq in sequences:
        for r in range(repeat):
            table, seconds = runner(seq)
            if r == 0:
                preds[seq.name] = table
            best[seq.name] = min(seconds, best.get(seq.name, float("inf")))
    gts = {s.name: s.gt for s in sequences}
    df = evaluate_sequences(gts, preds)
    overall = df.loc["OVERALL"]
    frames = sum(s.num_frames for s in sequences)
    seconds = sum(best.values())
    return RunResult(
        group=group,
        tracker=tracker,
        HOTA=float(overall["HOTA"]),
        MOTA=float(overall["MOTA"]),
        IDF1=float(overall["IDF1"]),
        IDs=int(overall["IDs"]),
        FPS=frames / seconds if seconds > 0 else float("inf"),
        frames=frames,
        seconds=seconds,
        metrics={str(k): {c: float(v) for c, v in row.items()} for k, row in df.iterrows()},
    )


def add_ratios(results: list[RunResult]) -> None:
    """Fill ``fps_ratio`` (ours / BoxMOT) and ``hota_delta`` (ours - BoxMOT) for paired algorithms."""
    index = {(r.group, r.tracker): r for r in results}
    for r in results:
        other = index.get((r.group, PAIRS.get(r.tracker, "")))
        if other is not None:
            r.fps_ratio = r.FPS / other.FPS if other.FPS > 0 else None
            r.hota_delta = r.HOTA - other.HOTA


COLUMNS = ("group", "tracker", "HOTA", "MOTA", "IDF1", "IDs", "FPS", "FPS ours/BoxMOT", "HOTA ours-BoxMOT")


def _cells(r: RunResult) -> list[str]:
    return [
        r.group,
        r.tracker,
        f"{r.HOTA:.1f}",
        f"{r.MOTA:.1f}",
        f"{r.IDF1:.1f}",
        str(r.IDs),
        f"{r.FPS:.0f}",
        "" if r.fps_ratio is None else f"{r.fps_ratio:.2f}x",
        "" if r.hota_delta is None else f"{r.hota_delta:+.1f}",
    ]


def to_markdown(results: Sequence[RunResult]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in results]
    return "\n".join(lines) + "\n"


def print_table(results: Sequence[RunResult]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich is a runtime dependency
        print(to_markdown(results))
        return
    table = Table(title="Tracking benchmark (association-only FPS)")
    for i, col in enumerate(COLUMNS):
        table.add_column(col, justify="left" if i < 2 else "right")
    previous = None
    for r in results:
        cells = _cells(r)
        if r.group == previous:
            cells[0] = ""
        elif previous is not None:
            table.add_section()
        previous = r.group
        table.add_row(*cells)
    Console(width=160).print(table)


def _meta(args: argparse.Namespace) -> dict[str, Any]:
    import importlib.metadata as md

    versions = {}
    for pkg in ("citytrack", "boxmot", "numpy", "scipy", "lap", "motmetrics"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "versions": versions,
        "repeat": args.repeat,
        "data": str(args.data),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_outputs(paths: Sequence[Path], results: Sequence[RunResult], meta: dict[str, Any]) -> None:
    """Write ``.json`` (everything, per-sequence metrics included) or ``.md`` (the table), atomically."""
    for path in paths:
        if path.suffix == ".json":
            payload = {"meta": meta, "results": [asdict(r) for r in results]}
            with atomic_open(path) as fh:
                json.dump(payload, fh, indent=2)
        elif path.suffix in {".md", ".markdown"}:
            with atomic_open(path) as fh:
                fh.write(to_markdown(results))
        else:
            raise ValueError(f"{path}: --out must end in .json, .md or .markdown")


def _split(values: Sequence[str]) -> list[str]:
    return [v for item in values for v in item.split(",") if v]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m citytrack.bench tracking", description=__doc__.splitlines()[0])
    p.add_argument("--trackers", nargs="+", default=list(ALL_TRACKERS), help=f"any of {', '.join(ALL_TRACKERS)}")
    p.add_argument("--groups", nargs="+", default=list(GROUPS), help=f"any of {', '.join(GROUPS)}")
    p.add_argument("--repeat", type=int, default=1, help="track each sequence N times; FPS from the fastest")
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder holding mot15/ and mot17/")
    p.add_argument("--conf-dir", type=Path, default=config_dir(), help="Hydra config tree with tracker/<name>.yaml")
    p.add_argument("--out", type=Path, action="append", default=[], help="results .json or .md (repeatable)")
    p.add_argument("--per-sequence", action="store_true", help="also print each tracker's per-sequence table")
    args = p.parse_args(list(argv))
    args.trackers = _split(args.trackers)
    args.groups = _split(args.groups)
    for t in args.trackers:
        if t not in ALL_TRACKERS:
            p.error(f"unknown tracker {t!r}; available: {', '.join(ALL_TRACKERS)}")
    for g in args.groups:
        if g not in GROUPS:
            p.error(f"unknown group {g!r}; available: {', '.join(GROUPS)}")
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    for out in args.out:
        if out.suffix not in {".json", ".md", ".markdown"}:
            p.error(f"--out {out}: must end in .json, .md or .markdown")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if not args.data.is_dir():
        print(f"data folder {args.data} does not exist (pass --data)", file=sys.stderr)
        return 2
    trackers = list(args.trackers)
    skipped = [t for t in trackers if t in BOXMOT]
    reason = boxmot_available() if skipped else None
    if reason is not None:
        print(f"skipping {', '.join(skipped)}: {reason}", file=sys.stderr)
        trackers = [t for t in trackers if t not in BOXMOT]
    runners = {t: make_runner(t, args.conf_dir) for t in trackers}
    results: list[RunResult] = []
    for group in args.groups:
        sequences = load_group(args.data, group)
        for name in trackers:
            result = run_group(group, sequences, name, runners[name], args.repeat)
            results.append(result)
            print(
                f"{group:12s} {name:18s} HOTA {result.HOTA:5.1f} MOTA {result.MOTA:5.1f} IDF1 {result.IDF1:5.1f} "
                f"IDs {result.IDs:4d} FPS {result.FPS:7.0f}",
                flush=True,
            )
            if args.per_sequence:
                import pandas as pd

                print(format_table(pd.DataFrame.from_dict(result.metrics, orient="index")))
    add_ratios(results)
    print_table(results)
    if args.out:
        write_outputs(args.out, results, _meta(args))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
