"""Which mixtures each process draws in an epoch, and how many loader workers read them."""

from __future__ import annotations

import os
from collections.abc import Iterator

from torch.utils.data import Dataset, Sampler

from pixelplayer.data.dataset import MixDataset


def default_workers() -> int:
    """DataLoader workers when train.workers is not set: min(4, cores - 1)."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))


class EpochShard(Sampler):
    """This process's share of one epoch's mixtures, as (epoch, item) pairs.

    Rank r of W takes items r, r + W, ...: local batch k of every rank together is exactly the
    global batch k of a single process (items kB .. kB + B - 1). The epoch travels with each
    index because DataLoader workers hold their own copy of the dataset: setting the epoch on
    the main process's copy would never reach persistent workers.
    """

    def __init__(self, length: int, rank: int = 0, world: int = 1):
        self.rank, self.world = rank, world
        self.count = length // world  # the same on every rank, or DDP steps fall out of step
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for i in range(self.count):
            yield self.epoch, self.rank + i * self.world


class EpochItems(Dataset):
    """A MixDataset indexed by (epoch, item): the mixture that item draws in that epoch."""

    def __init__(self, data: MixDataset):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, i = key
        self.data.set_epoch(epoch)
        return self.data[i]
