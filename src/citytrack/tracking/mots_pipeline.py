"""Multi-object tracking and segmentation of one image sequence: segment, embed, associate.

`MotsPipeline.run(sequence)` reads frames in batches, runs the segmenter on each batch (the
SpatialEmbedding network, or the sequence's own ground-truth masks for association ablations:
`segmenter=gt`), embeds every instance with the PointTrack head when the tracker uses
appearance, and feeds the association frame by frame. It returns the KITTI MOTS records and
the seconds spent per stage, so `infer.py task=mots` and `python -m citytrack.bench mots`
time exactly the same code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm import tqdm

from citytrack.data.formats.kitti_mots import IGNORE_CLASS, MotsRecord, decode_masks
from citytrack.data.mots_sequences import MotsSequence
from citytrack.models.spatial_embedding.cluster import InstanceMasks
from citytrack.utils.device import resolve_device


class FrameSegmenter(Protocol):
    def reset(self, sequence: MotsSequence) -> None: ...

    def __call__(self, images: torch.Tensor, indices: Sequence[int]) -> list[InstanceMasks]: ...


class InstanceEmbedder(Protocol):
    def __call__(self, image: np.ndarray, masks: np.ndarray, classes: np.ndarray) -> np.ndarray: ...


class MaskTracker(Protocol):
    uses_embeddings: bool

    def update(
        self, frame: int, masks: np.ndarray, classes: np.ndarray, embeddings: np.ndarray | None = None
    ) -> list[MotsRecord]: ...


class CheckpointSegmenter:
    """A trained `SpatialEmbeddingModule` (`checkpoints/*.pt` or a Lightning .ckpt) run batched on the device."""

    def __init__(self, ckpt: str | Path, device: str = "auto", **cluster: Any) -> None:
        from citytrack.models.spatial_embedding.module import load_spatial_embedding

        self.device = resolve_device(device)
        self.module = load_spatial_embedding(ckpt, map_location=self.device, **cluster)

    def reset(self, sequence: MotsSequence) -> None:
        """Nothing per sequence: the network does not know the sequence."""

    def __call__(self, images: torch.Tensor, indices: Sequence[int]) -> list[InstanceMasks]:
        return self.module.segment(images)


class CheckpointEmbedder:
    """A trained `PointTrackModule` (Lightning .ckpt): one 32-d embedding per instance mask of a frame."""

    def __init__(self, ckpt: str | Path, device: str = "auto") -> None:
        from citytrack.models.pointtrack.module import load_pointtrack

        self.device = resolve_device(device)
        self.module = load_pointtrack(ckpt, map_location=self.device)

    def __call__(self, image: np.ndarray, masks: np.ndarray, classes: np.ndarray) -> np.ndarray:
        return self.module.embed(image, masks, classes).numpy()


class GroundTruthSegmenter:
    """Oracle: the sequence's ground-truth masks (score 1, ignore regions left out), so the
    association can be measured apart from the segmenter."""

    def __init__(self, classes: Sequence[int] | None = None) -> None:
        self.classes = None if classes is None else {int(c) for c in classes}
        self.sequence: MotsSequence | None = None

    def reset(self, sequence: MotsSequence) -> None:
        if not sequence.labelled:
            raise FileNotFoundError(f"segmenter=gt needs ground truth, sequence {sequence.name} has none")
        self.sequence = sequence

    def __call__(self, images: torch.Tensor, indices: Sequence[int]) -> list[InstanceMasks]:
        assert self.sequence is not None, "reset(sequence) first"
        out = []
        h, w = images.shape[-2:]
        for i in indices:
            records = [
                r for r in self.sequence.frame_records(i)
                if r.class_id != IGNORE_CLASS and (self.classes is None or r.class_id in self.classes)
            ]
            masks = decode_masks(records, where=str(self.sequence.labels)) if records else np.zeros((0, h, w), bool)
            out.append(
                InstanceMasks(
                    masks=torch.from_numpy(np.ascontiguousarray(masks, dtype=bool)),
                    classes=torch.tensor([r.class_id for r in records], dtype=torch.long),
                    scores=torch.ones(len(records)),
                )
            )
        return out


@dataclass
class MotsRun:
    """One sequence's result: records in frame order and seconds per stage."""

    sequence: str
    records: list[MotsRecord]
    frames: int
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        total = sum(self.seconds.values())
        return self.frames / total if total > 0 else float("nan")


FrameCallback = Callable[[int, np.ndarray, list[MotsRecord]], None]


class MotsPipeline:
    """Segmenter, optional instance embedder and a fresh tracker per sequence.

    `tracker` is a factory (Hydra `_partial_`) so each sequence starts with no tracks.
    `embedder` is only called when the tracker `uses_embeddings`.
    """

    def __init__(
        self,
        segmenter: FrameSegmenter,
        tracker: Callable[[], MaskTracker],
        embedder: InstanceEmbedder | None = None,
        batch_size: int = 4,
        progress: bool = True,
    ) -> None:
        self.segmenter, self.tracker_factory, self.embedder = segmenter, tracker, embedder
        self.batch_size, self.progress = max(1, int(batch_size)), progress

    def _batches(self, sequence: MotsSequence) -> Iterator[tuple[list[int], list[np.ndarray]]]:
        for start in range(0, len(sequence), self.batch_size):
            idx = list(range(start, min(start + self.batch_size, len(sequence))))
            yield idx, [sequence.image(i) for i in idx]

    def run(self, sequence: MotsSequence, on_frame: FrameCallback | None = None) -> MotsRun:
        """Track `sequence`; `on_frame(frame, image, records)` sees each frame's result (video, PNGs)."""
        tracker = self.tracker_factory()
        uses_embeddings = bool(getattr(tracker, "uses_embeddings", False))
        if uses_embeddings and self.embedder is None:
            raise ValueError("the tracker associates by appearance but the pipeline has no instance embedder")
        self.segmenter.reset(sequence)
        seconds = dict.fromkeys(("read", "segment", "embed", "track"), 0.0)

        @contextmanager
        def stage(name: str) -> Iterator[None]:
            t0 = time.perf_counter()
            yield
            seconds[name] += time.perf_counter() - t0

        records: list[MotsRecord] = []
        bar = tqdm(total=len(sequence), desc=f"MOTS {sequence.name}", unit="frame", disable=not self.progress)
        batches = self._batches(sequence)
        while True:
            with stage("read"):
                item = next(batches, None)
                if item is None:
                    break
                idx, images = item
                sizes = {im.shape for im in images}
                if len(sizes) != 1:
                    raise ValueError(f"sequence {sequence.name}: frames change size within a batch ({sorted(sizes)})")
                batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
            with stage("segment"):
                instances = self.segmenter(batch, idx)
            for i, image, inst in zip(idx, images, instances, strict=True):
                masks = inst.masks.cpu().numpy().astype(bool, copy=False)
                classes = inst.classes.cpu().numpy()
                embeddings = None
                if uses_embeddings and len(masks):
                    with stage("embed"):
                        embeddings = np.asarray(self.embedder(image, masks, classes))  # type: ignore[misc]
                with stage("track"):
                    frame_records = tracker.update(sequence.frames[i], masks, classes, embeddings)
                records += frame_records
                if on_frame is not None:
                    on_frame(sequence.frames[i], image, frame_records)
            bar.update(len(idx))
        bar.close()
        return MotsRun(sequence.name, records, len(sequence), seconds)
