"""PK sampling for metric learning: every batch holds P identities with K images each.

Batch-hard triplet mining needs positives and negatives inside the batch; a random
batch from thousands of identities holds almost no positive pairs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class PKBatchSampler(Sampler[list[int]]):
    """Yield batches of P*K dataset indices, K per identity (identity-wise chunks, like torchreid's
    RandomIdentitySampler). Identities with fewer than K images are sampled with replacement.

    One epoch uses every image of every identity about once; `set_epoch` (or an
    internal counter) changes the shuffle each epoch while staying reproducible per seed.
    """

    def __init__(self, pids: Sequence[int], p: int, k: int, seed: int = 0, drop_last: bool = True) -> None:
        if p < 2 or k < 2:
            raise ValueError(f"PK sampling needs P >= 2 and K >= 2 for triplet mining, got P={p}, K={k}")
        self.pids = np.asarray(pids)
        self.p, self.k, self.seed = int(p), int(k), int(seed)
        self.index_by_pid: dict[int, np.ndarray] = {}
        groups: dict[int, list[int]] = defaultdict(list)
        for i, pid in enumerate(self.pids.tolist()):
            groups[int(pid)].append(i)
        self.index_by_pid = {pid: np.asarray(ix) for pid, ix in groups.items()}
        if len(self.index_by_pid) < self.p:
            raise ValueError(
                f"PK sampling with P={p} needs at least {p} identities, the training set has {len(self.index_by_pid)}"
            )
        self.drop_last = drop_last
        self.epoch = 0
        self._length = self._count_batches()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _chunks(self, rng: np.random.Generator) -> dict[int, list[np.ndarray]]:
        chunks: dict[int, list[np.ndarray]] = {}
        for pid, ix in self.index_by_pid.items():
            ix = rng.choice(ix, size=self.k, replace=True) if len(ix) < self.k else rng.permutation(ix)
            n = len(ix) // self.k
            chunks[pid] = [ix[j * self.k : (j + 1) * self.k] for j in range(n)]
        return chunks

    def _count_batches(self) -> int:
        chunks = sum(max(len(ix) // self.k, 1) for ix in self.index_by_pid.values())
        # identities run out unevenly: stop when fewer than P identities still have chunks
        counts = sorted((max(len(ix) // self.k, 1) for ix in self.index_by_pid.values()), reverse=True)
        batches = 0
        remaining = np.asarray(counts)
        while (remaining > 0).sum() >= self.p:
            # the sampler takes from P identities at random; simulate with the fullest first (upper bound)
            top = np.argsort(-remaining, kind="stable")[: self.p]
            remaining[top] -= 1
            batches += 1
        return batches if self.drop_last else max(batches, -(-chunks // self.p))

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng(self.seed + 1000003 * self.epoch)
        self.epoch += 1
        chunks = self._chunks(rng)
        available = [pid for pid, c in chunks.items() if c]
        produced = 0
        while len(available) >= self.p and produced < self._length:
            chosen = rng.choice(len(available), size=self.p, replace=False)
            batch: list[int] = []
            for j in chosen:
                batch.extend(int(i) for i in chunks[available[j]].pop())
            available = [pid for pid in available if chunks[pid]]
            produced += 1
            yield batch
        # random draws can exhaust identities earlier than the estimate; pad with fresh chunks
        while produced < self._length:
            pids = rng.choice(list(self.index_by_pid), size=self.p, replace=False)
            batch = []
            for pid in pids:
                ix = self.index_by_pid[int(pid)]
                batch.extend(int(i) for i in rng.choice(ix, size=self.k, replace=len(ix) < self.k))
            produced += 1
            yield batch

    def __len__(self) -> int:
        return self._length
