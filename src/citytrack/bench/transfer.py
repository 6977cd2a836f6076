"""`python -m citytrack.bench transfer`: does what the synthetic world taught carry over to real footage?

    OMP_NUM_THREADS=1 python -m citytrack.bench transfer [--parts detection,tracking] [--datasets pets,mot17] \
        [--detectors ours,hog,frcnn] [--ckpt checkpoints/detector_synthetic_cpu.pt] \
        [--reid-ckpt checkpoints/reid_synthetic_osnet.ckpt] [--stride 1] [--max-frames N] [--img-size checkpoint] \
        [--json results.json] [--picture transfer.png]

Detection (`--parts detection`), on every real frame with ground truth under `--data` (`../shared/data`):

- `pets`: the PETS09-S2L1 view 001 clip (480x360, 795 frames), every `--stride`-th frame, against the MOT15
  ground truth scaled by 0.625 (MOT15 is annotated at 768x576).
- `mot17`: the MOT17-02 frames present in `img1/` (4 of 600) at 1920x1080.

Three detectors: ours (`--ckpt`, scores down to 0.001 as COCO wants, at the checkpoint's input size;
`--img-size native` runs each frame at its own resolution, which the synthetic street frames of
`--parts sizes` favour but real frames do not: checkpoints/README.md), OpenCV's HOG (frames upscaled by
`--hog-upscale`, the same on both datasets, so its 64x128 window fits PETS's ~50 px people), and the public
Faster R-CNN detections of each sequence's `det/det.txt` (PETS's MOT15 file scaled by 0.625). Scored with
`citytrack.eval.detection.DetectionEvaluator` (pycocotools mAP@.5 and mAP@[.5:.95]).

Ground-truth rules (`split_ground_truth`), preprocessing apart from the metric:

- MOT17: class-1 pedestrians with a non-zero mark and visibility >= `--min-visibility` (0.5, as TrackEval's
  MOT17Det evaluation `--MIN_VIS 0.5`) are ground truth. The distractor classes 2, 7, 8, 12 (person on
  vehicle, static person, distractor, reflection) and less visible pedestrians are ignore regions, handed to
  the evaluator as COCO crowd regions: a detection that matches no real box and whose intersection over its
  own area with an ignore box reaches the IoU threshold is neither TP nor FP (at mAP@.5 that is IoA >= 0.5;
  at IoU .95 it needs IoA .95). Other classes (vehicles, occluders) are neither: detections on them are FPs,
  as in `citytrack.eval.mot_metrics`.
- MOT15 (PETS): the 174 zero-marked rows (of 4650; people the annotators excluded, which the MOT15 devkit
  drops from the ground truth) are ignore regions.

Test size (`--parts sizes`): our detector's mAP at each `--size-grid` input size on held-out synthetic
street frames (`SIZE_WORLD`, 1920x1080), scored like MOT17: a test size is chosen there, never on the
real ground truth.

Tracking (`--parts tracking`) on the PETS clip: our detector's boxes at the checkpoint's score threshold
(0.1, ByteTrack's low threshold, as `infer.py`'s `CheckpointDetector` gives them), the same boxes to every
run, tracked by DeepSORT and BoT-SORT built from `conf/tracker/{deepsort,botsort}.yaml` (composed as
`infer.py tracker=...` composes them; each applies its own score thresholds), each with our ReID embeddings
(`--reid-ckpt`) and motion-only. DeepSORT also filters the boxes at 0.6 (it has no low-score stage;
deep_sort_app's 0.3 was set for another detector, 0.6 was chosen on a synthetic scene,
`DEEPSORT_MIN_CONFIDENCE`). The other override is DeepSORT's appearance gate, 0.52 instead of the paper's
0.2: deepsort.yaml says to set it from the model's same-id / other-id distances, and 0.52 is where they cross
for this checkpoint on the synthetic training world (`bench reid_tracking --distances`). Nothing is tuned on
the real ground truth. Trackers run at the clip's frame rate and get every frame (BoT-SORT's camera-motion
compensation). Scored by `citytrack.eval.mot_metrics.evaluate_sequences` (MOT15 rules; IDF1, MOTA, HOTA).
`--tracker-override [deepsort:|botsort:]KEY=VALUE` adds a Hydra override to one tracker's config or to both
(`tracker.appearance_max_cover=0.5`, `botsort:tracker.relink_lost=true`): the options' PETS figures are in
checkpoints/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from citytrack.bench.reid_tracking import SYNTH_MAX_COSINE_DISTANCE, to_mot
from citytrack.data.formats.mot import (
    CONF,
    FRAME,
    H,
    W,
    X,
    Y,
    frame_groups,
    ground_truth_roles,
    load_sequence,
    read_mot,
)
from citytrack.data.video import VideoError, VideoReader, probe_video

DATA = Path("../shared/data")  # from the repository root, as `bench tracking --data`
PETS_VIDEO = Path("video/pets09_s2l1_view001.avi")
PETS_SEQ = Path("mot15/PETS09-S2L1")
PETS_SCALE = 0.625  # MOT15 PETS09-S2L1 is annotated at 768x576, the clip is 480x360
MOT17_SEQ = Path("mot17/MOT17-02-FRCNN")
DETECTORS = ("ours", "hog", "frcnn")
DETECTOR_NAMES = {"ours": "ours (synthetic)", "hog": "OpenCV HOG", "frcnn": "public Faster R-CNN"}
DEEPSORT_MIN_CONFIDENCE = 0.6
"""DeepSORT's detection score filter on our detector's output (deepsort.yaml keeps 0.0 for saved, already
filtered MOT detections): DeepSORT has no low-score stage, so boxes at 0.1 would all start tracks.
deep_sort_app's 0.3 was set for its own detector; 0.6 is where DeepSORT with ReID scores best on a synthetic
scene with checkpoints/detector_synthetic_cpu.pt's boxes (`bench reid_tracking --trackers deepsort --detector
... --deepsort-min-confidence 0.3..0.7`: IDF1 72.1, 74.2, 78.3, 78.8, 73.6; checkpoints/README.md)."""
TRACKER_OVERRIDES: dict[str, list[str]] = {
    "deepsort": [f"tracker.max_cosine_distance={SYNTH_MAX_COSINE_DISTANCE}",
                 f"tracker.min_confidence={DEEPSORT_MIN_CONFIDENCE}"],
    "botsort": [],
}
PICTURE_TILE_WIDTH = 480
PICTURE_SCORE = 0.3

Detect = Callable[[list[np.ndarray]], list[np.ndarray]]
"""A detector: a batch of BGR frames -> per frame `(N, 5) x, y, w, h, score`."""


# --------------------------------------------------------------------------- ground truth
def split_ground_truth(
    table: np.ndarray, min_visibility: float = 0.5, scale: float = 1.0
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """A MOT gt table -> (`{frame: (N, 4) xywh}` ground truth, `{frame: (M, 4) xywh}` ignore regions).

    The rules are `formats.mot.ground_truth_roles` (MOT16/17 classes and visibility, MOT15 zero marks).
    """
    table = np.array(table, dtype=np.float64)
    table[:, X : H + 1] *= scale
    real, ignore = ground_truth_roles(table, min_visibility)
    boxes = {f: rows[:, X : H + 1] for f, rows in frame_groups(table[real]).items()}
    regions = {f: rows[:, X : H + 1] for f, rows in frame_groups(table[ignore]).items()}
    return boxes, regions


def public_detections(path: Path, scale: float = 1.0) -> dict[int, np.ndarray]:
    """A MOTChallenge det.txt -> `{frame: (N, 5) x, y, w, h, score}` in image pixels."""
    det = read_mot(path, kind="det")
    det[:, X : H + 1] *= scale
    return {f: rows[:, [X, Y, W, H, CONF]] for f, rows in frame_groups(det).items()}


def evaluate(
    dets: Mapping[int, np.ndarray],
    frames: Sequence[int],
    gt: Mapping[int, np.ndarray],
    ignore: Mapping[int, np.ndarray] | None = None,
) -> dict[str, float]:
    """COCO mAP of per-frame detections on `frames`, with `ignore` boxes as crowd regions."""
    from citytrack.eval.detection import DetectionEvaluator, mot_frames_to_coco

    preds, targets = mot_frames_to_coco(dict(dets), dict(gt), list(frames), dict(ignore or {}))
    ev = DetectionEvaluator()
    ev.update(preds, targets)
    return ev.compute()


# --------------------------------------------------------------------------- detection
@dataclass
class RealSet:
    """The scored frames of one real sequence with its ground truth, ignore regions and public detections."""

    name: str
    frames: list[int]
    gt: dict[int, np.ndarray]
    ignore: dict[int, np.ndarray]
    public: dict[int, np.ndarray] | None
    dets: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    images: dict[int, np.ndarray] = field(default_factory=dict)


def run_detectors(
    stream: Iterable[tuple[int, np.ndarray]],
    detectors: Mapping[str, Detect],
    wanted: Mapping[str, set[int]],
    keep: set[int],
    out: RealSet,
    chunk: int = 8,
) -> int:
    """Run each detector on its `wanted` frames as `(frame, image)` pairs stream by, `chunk` frames per
    call, into `out.dets` / `out.seconds`; keep the images of the frames in `keep`. Returns the frames read."""
    buffer: list[tuple[int, np.ndarray]] = []
    n = 0

    def flush() -> None:
        for name, detect in detectors.items():
            todo = [(f, img) for f, img in buffer if f in wanted[name]]
            if todo:
                t0 = time.perf_counter()
                boxes = detect([img for _, img in todo])
                out.seconds[name] = out.seconds.get(name, 0.0) + time.perf_counter() - t0
                out.dets.setdefault(name, {}).update(zip([f for f, _ in todo], boxes, strict=True))
        buffer.clear()

    for frame, image in stream:
        n += 1
        if frame in keep:
            out.images[frame] = image
        buffer.append((frame, image))
        if len(buffer) == chunk:
            flush()
    flush()
    for name in detectors:
        out.dets.setdefault(name, {})
    return n


def video_frames(video: Path, max_frames: int | None, desc: str) -> Iterator[tuple[int, np.ndarray]]:
    """The clip's frames as `(1-based frame, BGR image)` with a progress bar."""
    try:
        with VideoReader(video, max_frames=max_frames) as reader:
            for index, image in tqdm(reader, total=reader.frames_left, desc=desc, unit="frame"):
                yield index + 1, image
    except VideoError as err:
        raise SystemExit(str(err)) from None


def image_frames(paths: Mapping[int, Path], desc: str) -> Iterator[tuple[int, np.ndarray]]:
    for frame, path in tqdm(paths.items(), desc=desc, unit="frame"):
        image = cv2.imread(str(path))
        if image is None:
            raise SystemExit(f"{path}: cannot read the image")
        yield frame, image


def picks(frames: Sequence[int], n: int) -> set[int]:
    """`n` evenly spaced frames of `frames` (for the picture)."""
    if not frames or n <= 0:
        return set()
    return {frames[i] for i in np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int)}


def detect_pets(args: argparse.Namespace, detectors: Mapping[str, Detect], all_ours: bool) -> RealSet:
    """PETS09-S2L1: one decode of the clip; ours on every frame when tracking needs them, else the scored ones."""
    video = args.data / PETS_VIDEO
    total = probe_video(video).frame_count
    total = min(total, args.max_frames) if args.max_frames else total
    gt, ignore = split_ground_truth(read_mot(args.data / PETS_SEQ / "gt" / "gt.txt", kind="gt"), scale=PETS_SCALE)
    scored = [f for f in range(1, total + 1, args.stride) if f in gt or f in ignore]
    public = public_detections(args.data / PETS_SEQ / "det" / "det.txt", PETS_SCALE)
    out = RealSet("PETS09-S2L1", scored, gt, ignore, public)
    wanted = {name: set(scored) for name in detectors}
    if all_ours and "ours" in wanted:
        wanted["ours"] = set(range(1, total + 1))
    read = run_detectors(video_frames(video, args.max_frames, "PETS09-S2L1 detection"), detectors, wanted,
                         picks(scored, 3), out)
    out.frames = [f for f in scored if f <= read]
    return out


def detect_mot17(args: argparse.Namespace, detectors: Mapping[str, Detect]) -> RealSet:
    """MOT17-02: the frames whose image is in `img1/`."""
    seq = load_sequence(args.data / MOT17_SEQ)
    if seq.gt is None:
        raise SystemExit(f"{seq.root}: no gt/gt.txt")
    gt, ignore = split_ground_truth(seq.gt, args.min_visibility)
    paths = {f: seq.image_path(f) for f in range(1, seq.info.seq_length + 1)}
    frames = [f for f, p in paths.items() if p.is_file() and (f in gt or f in ignore)][: args.max_frames]
    public = public_detections(seq.root / "det" / "det.txt") if seq.det is not None else None
    out = RealSet("MOT17-02", frames, gt, ignore, public)
    run_detectors(image_frames({f: paths[f] for f in frames}, "MOT17-02 detection"), detectors,
                  {name: set(frames) for name in detectors}, picks(frames, 1), out)
    return out


def score_detection(sets: Sequence[RealSet], names: Sequence[str]) -> dict[str, Any]:
    """mAP per dataset per detector (the public detections from det.txt where the sequence has them)."""
    results: dict[str, Any] = {}
    for s in sets:
        row: dict[str, Any] = {"frames": len(s.frames), "gt_boxes": int(sum(len(s.gt.get(f, ())) for f in s.frames))}
        for name in names:
            dets = s.public if name == "frcnn" else s.dets.get(name)
            if dets is None:
                continue
            row[name] = evaluate(dets, s.frames, s.gt, s.ignore)
            if name in s.seconds:
                row[name]["seconds"] = round(s.seconds[name], 2)
        results[s.name] = row
    return results


# --------------------------------------------------------------------------- picture
def save_picture(path: Path, sets: Sequence[RealSet], names: Sequence[str]) -> None:
    """A row per kept frame, a column per detector: its boxes (red, score >= 0.3) against the gt (green)
    and ignore regions (grey), every frame resized to the same tile width."""
    from citytrack.eval.detection import draw_predictions
    from citytrack.utils.boxes import xywh_to_xyxy
    from citytrack.utils.io import atomic_path
    from citytrack.visualize.draw import draw_label

    rows = []
    for s in sets:
        for frame in sorted(s.images):
            image = s.images[frame]
            k = PICTURE_TILE_WIDTH / image.shape[1]
            tile = cv2.resize(image, (PICTURE_TILE_WIDTH, round(image.shape[0] * k)), interpolation=cv2.INTER_AREA)
            for x1, y1, x2, y2 in xywh_to_xyxy(s.ignore.get(frame, np.zeros((0, 4))) * k).astype(int).tolist():
                cv2.rectangle(tile, (x1, y1), (x2, y2), (150, 150, 150), 1)
            preds = []
            for name in names:
                d = (s.public if name == "frcnn" else s.dets.get(name)) or {}
                d = np.asarray(d.get(frame, np.zeros((0, 5))), dtype=np.float64).reshape(-1, 5)
                preds.append(np.c_[xywh_to_xyxy(d[:, :4] * k), d[:, 4]])
            gt = xywh_to_xyxy(s.gt.get(frame, np.zeros((0, 4))) * k)
            row = draw_predictions([tile] * len(names), preds, [gt] * len(names), PICTURE_SCORE, columns=len(names))
            for c, name in enumerate(names):
                draw_label(row, f"{s.name} #{frame}: {DETECTOR_NAMES[name]}", (c * PICTURE_TILE_WIDTH + 2, 16),
                           (255, 255, 255))
            rows.append(row)
    if not rows:
        return
    with atomic_path(path, suffix=".png") as tmp:
        if not cv2.imwrite(str(tmp), np.concatenate(rows, axis=0)):
            raise SystemExit(f"{path}: could not write the picture")


# --------------------------------------------------------------------------- synthetic held-out
SYNTH_HELDOUT = {"seed": 202, "scenes": 1, "cameras": 4, "people": 16, "frames": 150, "progress": False}
"""The detector experiments' validation world (`conf/data/detection_synthetic.yaml` `val`): never trained on."""


def score_synthetic(ckpt: Path, roots: Sequence[Path] | None, device: Any, stride: int = 10) -> dict[str, dict[str, float]]:
    """Our detector's mAP on held-out synthetic AI City 2024 scenes through the training code's own validation
    (`DetectionDataModule` records, ignore rules and `DetectionEvaluator`): the "synthetic mAP must not drop"
    check. Each root is read as it is (`kind: aic24`), so a folder rendered by an older world version can be
    scored too; without roots, the seed-202 validation world under the config's `paths.data_dir`."""
    import hydra.utils
    import pytorch_lightning as pl
    from hydra import compose, initialize_config_dir

    from citytrack.data.synth import ensure_synthetic_dataset
    from citytrack.models.detector.module import load_detector
    from citytrack.utils.paths import config_dir

    model = load_detector(ckpt, map_location="cpu").float()
    with initialize_config_dir(str(config_dir()), version_base="1.3", job_name="bench_transfer"):
        cfg = compose("train", overrides=["data=detection_synthetic", "data.num_workers=0",
                                          f"data.img_size={int(model.hparams.img_size)}"])
    if not roots:
        roots = [ensure_synthetic_dataset(Path(cfg.paths.data_dir) / "synth" / "detector_val", **SYNTH_HELDOUT)]
    out = {}
    for root in roots:
        cfg.data.val = [{"kind": "aic24", "root": str(root), "stride": stride}]
        dm = hydra.utils.instantiate(cfg.data)
        with tempfile.TemporaryDirectory() as run_dir:  # the module's validation picture goes here, not into the cwd
            trainer = pl.Trainer(accelerator="gpu" if str(device).startswith("cuda") else "cpu", devices=1, logger=False,
                                 enable_checkpointing=False, enable_progress_bar=True, enable_model_summary=False,
                                 default_root_dir=run_dir)
            metrics = trainer.validate(model, datamodule=dm, verbose=False)[0]
        out[str(root)] = {k.split("/", 1)[1]: float(v) for k, v in metrics.items() if k.startswith("val/mAP")}
    return out


# --------------------------------------------------------------------------- test size, on synthetic frames
SIZE_WORLD = {"layout": "mot", "seed": 3031, "scenes": 3, "cameras": 4, "people": 40, "frames": 30,
              "width": 1920, "height": 1080, "progress": False, "workers": 1}
"""The world `--parts sizes` chooses the test input size on: the detector's domain-randomised training recipe
(`conf/data/detection_synthetic_dr.yaml`, its world overrides) with an unseen seed, on a 50 x 16 m street
(`SIZE_AREA`) so people stand up to ~60 m from a camera, as on a real street, rendered at 1920x1080."""
SIZE_AREA = [50.0, 16.0]


def size_label(size: int | Sequence[int] | str | None) -> str:
    """`416`, `416+1280` (multi-scale), `native`, or `checkpoint` (None: the checkpoint's size)."""
    if size is None or isinstance(size, str | int):
        return "checkpoint" if size is None else str(size)
    return "+".join(map(str, size))


def score_sizes(ckpt: Path, sizes: Sequence[int | Sequence[int] | str | None], frame_stride: int = 3,
                resolution: tuple[int, int] | None = None, data_dir: Path | None = None,
                **world_size: Any) -> dict[str, dict[str, float]]:
    """Our detector's mAP on the `SIZE_WORLD` frames at each test input size (`predict_images`'s `img_size`),
    scored like MOT17 (`split_ground_truth`: visibility >= 0.5, less visible people ignored): the test
    size is chosen on synthetic frames, never on the real ground truth."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from citytrack.data.synth import ensure_synthetic_dataset
    from citytrack.models.detector.module import load_detector
    from citytrack.utils.paths import config_dir

    if data_dir is None:
        with initialize_config_dir(str(config_dir()), version_base="1.3", job_name="bench_transfer"):
            data_dir = Path(compose("train").paths.data_dir)
    recipe = OmegaConf.load(config_dir() / "data" / "detection_synthetic_dr.yaml").train[0].overrides
    world = {**OmegaConf.to_container(recipe.world), "area": SIZE_AREA}
    spec = {**SIZE_WORLD, **world_size}  # world_size: scenes, cameras, frames (tests make it tiny)
    if resolution:
        spec["width"], spec["height"] = resolution
    name = "_".join(f"{k}{spec[k]}" for k in ("seed", "scenes", "cameras", "frames"))
    root = ensure_synthetic_dataset(data_dir / "synth" / f"transfer_sizes_{spec['width']}x{spec['height']}_{name}",
                                    world=world, **spec)
    model = load_detector(ckpt, map_location="cpu")
    dets: dict[str, dict[int, np.ndarray]] = {size_label(sz): {} for sz in sizes}
    gt_all: dict[int, np.ndarray] = {}
    ignore_all: dict[int, np.ndarray] = {}
    keys: list[int] = []
    for seq_dir in tqdm(sorted(p.parent for p in Path(root).rglob("seqinfo.ini")), desc="test sizes", unit="seq"):
        seq = load_sequence(seq_dir)
        gt, ignore = split_ground_truth(seq.gt, 0.5)
        for f in range(1, seq.info.seq_length + 1, frame_stride):
            key = len(keys) + 1
            frame = cv2.imread(str(seq.image_path(f)))
            if frame is None:
                raise SystemExit(f"{seq.image_path(f)}: could not read the frame")
            for sz in sizes:
                dets[size_label(sz)][key] = model.predict_frames([frame], 1, score_thresh=0.001, img_size=sz)[0]
            gt_all[key], ignore_all[key] = gt.get(f, np.zeros((0, 4))), ignore.get(f, np.zeros((0, 4)))
            keys.append(key)
    out = {}
    for sz, per_frame in dets.items():
        m = evaluate(per_frame, keys, gt_all, ignore_all)
        out[sz] = {"mAP50": float(m["mAP50"]), "mAP": float(m["mAP"])}
    return out


# --------------------------------------------------------------------------- tracking
def build_tracker(name: str, overrides: Sequence[str] = ()) -> Any:
    """`conf/tracker/<name>.yaml` composed as `python infer.py task=mot tracker=<name>` composes it."""
    import hydra.utils
    from hydra import compose, initialize_config_dir

    from citytrack.utils.paths import config_dir

    conf = config_dir()
    with initialize_config_dir(str(conf), version_base="1.3", job_name="bench_transfer"):
        cfg = compose("infer", overrides=["task=mot", f"tracker={name}", f"paths.root_dir={conf.parent}", *overrides])
    return hydra.utils.instantiate(cfg.tracker)


def track_video(
    video: Path,
    dets: Mapping[int, np.ndarray],
    extractor: Any,
    trackers: Sequence[str],
    max_frames: int | None = None,
    overrides: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, np.ndarray]:
    """Track the clip with the same `{frame: (N, 5)}` detections, each tracker with `extractor.embed`
    embeddings and motion-only; `{label: MOT result table}`. `overrides`: more Hydra overrides per tracker."""
    fps = probe_video(video).fps
    runs = {}
    for name in trackers:
        for mode in ("motion only", "with ReID"):
            tracker = build_tracker(name, [*TRACKER_OVERRIDES.get(name, []), *(overrides or {}).get(name, [])])
            tracker.reset(frame_rate=fps or None)
            runs[f"{name} {mode}"] = tracker
    rows: dict[str, list[tuple[int, np.ndarray]]] = {label: [] for label in runs}
    for frame, image in video_frames(video, max_frames, "PETS09-S2L1 tracking"):
        d = np.asarray(dets.get(frame, np.zeros((0, 5))), dtype=np.float64).reshape(-1, 5)
        emb = extractor.embed(image, d[:, :4]) if len(d) else None
        for label, tracker in runs.items():
            use = label.endswith("with ReID")
            out = tracker.update(d, frame=frame, embeddings=emb if use and emb is not None else None, image=image)
            rows[label].append((frame - 1, out))
    return {label: to_mot(r) for label, r in rows.items()}


def score_tracking(gt_table: np.ndarray, results: Mapping[str, np.ndarray], frames: int) -> dict[str, dict[str, float]]:
    """IDF1, MOTA, HOTA (MOT15 rules) of each result against the gt of the first `frames` frames."""
    from citytrack.eval.mot_metrics import evaluate_sequences

    gt = gt_table[gt_table[:, FRAME] <= frames]
    out = {}
    for label, table in results.items():
        row = evaluate_sequences({"PETS09-S2L1": gt}, {"PETS09-S2L1": table}).loc["OVERALL"]
        out[label] = {k: float(row[k]) for k in ("IDF1", "MOTA", "HOTA", "IDs", "FP", "FN") if k in row}
    return out


# --------------------------------------------------------------------------- report
def print_tables(results: Mapping[str, Any]) -> None:
    det = results.get("detection", {})
    if det:
        print("| dataset | frames | detector | mAP@.5 | mAP@[.5:.95] | recall@0.5 |")
        print("|---|---|---|---|---|---|")
        for ds, row in det.items():
            for name in DETECTORS:
                if name in row:
                    m = row[name]
                    print(f"| {ds} | {row['frames']} | {DETECTOR_NAMES[name]} | {m['mAP50']:.3f} | {m['mAP']:.3f} | "
                          f"{m['recall@0.5']:.3f} |")
    trk = results.get("tracking", {})
    if trk:
        print(f"| tracker (PETS09-S2L1, {results['tracking_frames']} frames, our detector) | IDF1 | MOTA | HOTA | IDs |")
        print("|---|---|---|---|---|")
        for label, m in trk.items():
            print(f"| {label} | {m['IDF1']:.1f} | {m['MOTA']:.1f} | {m['HOTA']:.1f} | {m['IDs']:.0f} |")
    for size, m in results.get("sizes", {}).items():
        print(f"synthetic street frames, test size {size}: mAP@.5 {m['mAP50']:.3f}, mAP@[.5:.95] {m['mAP']:.3f}")
    for root, m in results.get("synthetic", {}).items():
        print(f"synthetic held-out {root}: mAP@.5 {m.get('mAP50', float('nan')):.3f}, "
              f"mAP@[.5:.95] {m.get('mAP', float('nan')):.3f}")


def img_size_arg(text: str) -> int | list[int] | str | None:
    """`--img-size`: "native", "checkpoint" (None: the checkpoint's size), an int or "a,b" sizes."""
    if text in ("native", "checkpoint"):
        return None if text == "checkpoint" else text
    try:
        sizes = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: native, checkpoint, an int or comma-separated ints") from None
    if any(v < 32 for v in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: input sizes must be >= 32")
    return sizes[0] if len(sizes) == 1 else sizes


def tracker_overrides(items: Sequence[str], trackers: Sequence[str]) -> dict[str, list[str]]:
    """`--tracker-override` values, `[name:]key=value`, as Hydra overrides per tracker (no name: every one)."""
    out: dict[str, list[str]] = {name: [] for name in trackers}
    for item in items:
        name, sep, override = item.partition(":")
        if not sep or "=" in name:
            name, override = "", item
        if "=" not in override or (name and name not in out):
            raise SystemExit(f"--tracker-override {item!r}: expected [tracker:]key=value with tracker one of {list(out)}")
        for target in [name] if name else list(out):
            out[target].append(override)
    return out


def csv(choices: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        bad = [t for t in items if t not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"choose from {','.join(choices)}; got {text!r}")
        return items

    return parse


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m citytrack.bench transfer", description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DATA, help="the real data folder (../shared/data)")
    p.add_argument("--parts", type=csv(("detection", "tracking", "synthetic", "sizes")), default=["detection", "tracking"],
                   help="synthetic: our detector's mAP on held-out synthetic scenes (see --synth-root); "
                        "sizes: its mAP at each --size-grid test size on held-out synthetic street frames")
    p.add_argument("--size-grid", default="checkpoint,640,832,1024,1280,1536",
                   help="sizes part: test sizes separated by ',' (a '+' joins a multi-scale test: 416+1280)")
    p.add_argument("--size-resolution", default="1920x1080", help="sizes part: WxH of the synthetic frames")
    p.add_argument("--synth-root", type=Path, action="append", default=None,
                   help="synthetic part: AI City 2024 scene folders to score (default: the seed-202 validation world)")
    p.add_argument("--datasets", type=csv(("pets", "mot17")), default=["pets", "mot17"], help="detection part")
    p.add_argument("--detectors", type=csv(DETECTORS), default=list(DETECTORS), help="detection part")
    p.add_argument("--ckpt", type=Path, default=Path("checkpoints/detector_synthetic_cpu.pt"), help="our detector")
    p.add_argument("--reid-ckpt", type=Path, default=Path("checkpoints/reid_synthetic_osnet.ckpt"))
    p.add_argument("--trackers", type=csv(tuple(TRACKER_OVERRIDES)), default=list(TRACKER_OVERRIDES))
    p.add_argument("--tracker-override", action="append", default=[], metavar="[TRACKER:]KEY=VALUE",
                   help="tracking part: a Hydra override of conf/tracker/<name>.yaml for one tracker (deepsort:, "
                        "botsort:) or all, e.g. tracker.appearance_max_cover=0.5; repeatable")
    p.add_argument("--stride", type=int, default=1, help="detection part: every n-th PETS frame")
    p.add_argument("--max-frames", type=int, default=None, help="only the first N frames of each sequence")
    p.add_argument("--img-size", type=img_size_arg, default=None,
                   help="our detector's input: checkpoint (its training size, the default), native (each "
                        "frame's own size, at most 1280), an int, or sizes a,b (a multi-scale test)")
    p.add_argument("--hog-upscale", type=float, default=2.0, help="HOG's window is 64x128: upscale small people")
    p.add_argument("--min-visibility", type=float, default=0.5, help="MOT17: less visible pedestrians are ignored")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch and OpenCV threads (default: their choice)")
    p.add_argument("--json", "--out", dest="json", type=Path, default=None, help="write the results (atomically)")
    p.add_argument("--picture", type=Path, default=None, help="PNG: each detector's boxes vs the gt on a few frames")
    args = p.parse_args(argv)
    if args.stride < 1 or (args.max_frames is not None and args.max_frames < 1):
        p.error("--stride and --max-frames must be >= 1")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    if not args.data.is_dir():
        raise SystemExit(f"{args.data}: real data folder not found (run from the repository root or pass --data)")

    from citytrack.utils.device import resolve_device

    device = resolve_device(args.device)
    tracking = "tracking" in args.parts
    need_ours = tracking or ("detection" in args.parts and "ours" in args.detectors)
    detectors: dict[str, Detect] = {}
    ours = None
    if need_ours:
        from citytrack.models.detector.module import load_detector

        ours = load_detector(args.ckpt, map_location=device)
        detectors["ours"] = lambda images: ours.predict_frames(images, 8, score_thresh=0.001, img_size=args.img_size)
    detection = "detection" in args.parts
    if detection and "hog" in args.detectors:
        from citytrack.models.detector.hog import HogPersonDetector

        detectors["hog"] = HogPersonDetector(upscale=args.hog_upscale)
    names = [d for d in DETECTORS if d in args.detectors]

    t_start = time.perf_counter()
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    pets = None
    if detection or tracking:
        sets = []
        if "pets" in args.datasets or tracking:
            run = detectors if detection and "pets" in args.datasets else {"ours": detectors["ours"]}
            pets = detect_pets(args, run, all_ours=tracking)
            if detection and "pets" in args.datasets:
                sets.append(pets)
        if detection and "mot17" in args.datasets:
            sets.append(detect_mot17(args, detectors))
        if detection:
            results["detection"] = score_detection(sets, names)
            if ours is not None:
                results["detector_img_size"] = args.img_size or int(ours.hparams.img_size)
            if args.picture:
                save_picture(args.picture, sets, names)
    if tracking and pets is not None and ours is not None:
        from citytrack.models.reid.extractor import FeatureExtractor

        thresh = float(ours.hparams.score_thresh)
        dets = {f: d[d[:, 4] >= thresh] for f, d in pets.dets["ours"].items()}
        frames = max(dets, default=0)
        extractor = FeatureExtractor.from_checkpoint(args.reid_ckpt, device=device)
        t0 = time.perf_counter()
        tables = track_video(args.data / PETS_VIDEO, dets, extractor, args.trackers, frames,
                             tracker_overrides(args.tracker_override, args.trackers))
        gt = read_mot(args.data / PETS_SEQ / "gt" / "gt.txt", kind="gt")
        gt[:, X : H + 1] *= PETS_SCALE
        results["tracking"] = score_tracking(gt, tables, frames)
        results["tracking_frames"] = frames
        results["tracking_score_thresh"] = thresh
        results["tracking_seconds"] = round(time.perf_counter() - t0 + pets.seconds.get("ours", 0.0), 1)
    if "synthetic" in args.parts:
        results["synthetic"] = score_synthetic(args.ckpt, args.synth_root, device)
    if "sizes" in args.parts:
        grid = [img_size_arg(t.replace("+", ",")) for t in args.size_grid.split(",") if t]
        width, height = (int(v) for v in args.size_resolution.lower().split("x"))
        results["sizes"] = score_sizes(args.ckpt, grid, resolution=(width, height))
    results["seconds"] = round(time.perf_counter() - t_start, 1)
    print_tables(results)
    print(f"{results['seconds']:.0f} s in all")
    if args.json:
        from citytrack.utils.io import atomic_open

        with atomic_open(args.json) as fh:
            fh.write(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
