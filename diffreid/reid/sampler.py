"""The PK identity sampler: batches of P identities × K images each.

Batch-hard triplet losses need several images of each identity in a batch, which
uniform sampling almost never gives. Each epoch every identity's images are shuffled
and cut into groups of K (an identity with fewer than K images is drawn with
replacement); groups of P random identities then form the batches until fewer than P
identities have groups left (as torchreid's RandomIdentitySampler does).

Everything is drawn from (seed, epoch), so a resumed run replays the same epochs, and
each item carries its own augmentation seed (see `TrainImages`), so augmentations do
not depend on worker count or timing. With several processes each rank takes its share
of every batch's identities (P must divide among ranks), so every rank's batch holds
whole identities for its triplet loss and the ranks together make the global batch.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterator, Sequence

import numpy as np

from diffreid.errors import DiffreidError


class PKBatchSampler:
    """Yields, per batch, this rank's list of (dataset index, augmentation seed)."""

    def __init__(self, labels: Sequence[int], p: int, k: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        if p < 2 or k < 1:
            raise DiffreidError(f"PK sampling needs P >= 2 identities and K >= 1 images, got P={p}, K={k}")
        if p % world_size:
            raise DiffreidError(f"P={p} identities per batch cannot be split evenly over {world_size} processes; "
                                f"make batch_p a multiple of {world_size}")
        self.by_label: dict[int, list[int]] = defaultdict(list)
        for index, label in enumerate(labels):
            self.by_label[int(label)].append(index)
        if len(self.by_label) < p:
            raise DiffreidError(f"the training set has {len(self.by_label)} identities, fewer than P={p} per batch; "
                                f"lower batch_p")
        self.p, self.k, self.seed, self.rank, self.world_size = p, k, seed, rank, world_size
        self.epoch = 0
        self._cache: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def global_batches(self) -> list[list[int]]:
        """This epoch's batches for all ranks together, identity groups in rank order."""
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]
        rng = np.random.default_rng([self.seed, self.epoch])
        groups: dict[int, list[np.ndarray]] = {}
        for label in sorted(self.by_label):
            indices = np.asarray(self.by_label[label])
            indices = rng.choice(indices, self.k, replace=True) if len(indices) < self.k else rng.permutation(indices)
            groups[label] = [indices[i:i + self.k] for i in range(0, len(indices) - self.k + 1, self.k)]
        batches = []
        available = sorted(groups)
        while len(available) >= self.p:
            chosen = rng.choice(available, self.p, replace=False)
            batches.append([int(i) for label in chosen for i in groups[label].pop()])
            available = [label for label in available if groups[label]]
        self._cache = (self.epoch, batches)
        return batches

    def __len__(self) -> int:
        return len(self.global_batches())

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        share = self.p // self.world_size * self.k
        for number, batch in enumerate(self.global_batches()):
            seeds = np.random.SeedSequence([self.seed, self.epoch, number]).generate_state(len(batch), np.uint64)
            mine = slice(self.rank * share, (self.rank + 1) * share)
            yield [(index, int(s) >> 1) for index, s in zip(batch[mine], seeds[mine])]
