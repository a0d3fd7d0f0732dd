"""The one batch path: ``torch.utils.data.DataLoader`` over any dataset of this library, yielding
:class:`Batch` objects.

A dataset is map-style: ``dataset[i]`` is a :class:`~mmbalance.types.Sample`. One that can read many rows at
once (the in-memory datasets) also defines ``__getitems__(rows) -> Batch``; the DataLoader then fetches a
batch in one indexing operation instead of per sample, and :func:`collate` passes it through. Either way
the strategies see the same :class:`Batch`.

The order of an epoch is a pure function of ``(seed, epoch)`` (:class:`SeededBatchSampler`), whatever the
number of workers, so a resumed run sees the same batches; ``rank``/``world_size`` shard it for
multi-process training.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Sampler

from mmbalance.errors import ConfigError, DataError
from mmbalance.types import Batch, Sample


class SeededBatchSampler(Sampler[list[int]]):
    """Batches of dataset rows from ``index``: shuffled by ``(seed, epoch)`` when ``shuffle``, padded to
    equal shards and sharded by ``rank`` when ``world_size > 1`` (``batch_size`` is then one rank's share
    of a global batch: ``rows[rank::world_size]``, so the ranks' ``k``-th batches together hold the rows of
    one process's ``k``-th batch); the last short batch is dropped when ``drop_last``. With
    ``with_epoch`` each item is ``(row, epoch)`` (for datasets whose augmentation depends on the epoch:
    worker processes hold their own copy of the dataset and never see the epoch)."""

    def __init__(
        self,
        index: Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        with_epoch: bool = False,
    ) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size={batch_size} must be a positive integer")
        self.index, self.batch_size = index.cpu(), batch_size
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.rank, self.world_size, self.with_epoch = rank, world_size, with_epoch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def rows(self) -> Tensor:
        """This rank's rows of the current epoch, in order."""
        rows = self.index
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            rows = rows[torch.randperm(len(rows), generator=g)]
        if self.world_size > 1:
            rows = self._shardable(rows)
        return rows[self.rank :: self.world_size]

    def _shardable(self, rows: Tensor) -> Tensor:
        """``rows`` made to split into equal shards. With ``drop_last``: the rows of the full global
        batches (``batch_size · world_size`` rows each), exactly those one process would train on, so
        shard ``k`` of every rank together is global batch ``k``. Otherwise padded with the epoch's first
        rows (at most ``world_size - 1`` repeats), so every rank steps alike."""
        if self.drop_last:
            step = self.batch_size * self.world_size
            return rows[: len(rows) // step * step]
        if len(rows) % self.world_size:
            rows = torch.cat([rows, rows[: self.world_size - len(rows) % self.world_size]])
        return rows

    def __len__(self) -> int:
        n = len(self.rows())
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[list[Any]]:
        rows: list[Any] = self.rows().tolist()
        if self.with_epoch:  # a dataset that augments draws from (row, epoch): workers never see set_epoch
            rows = [(r, self.epoch) for r in rows]
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            if self.drop_last and len(batch) < self.batch_size:
                break
            yield batch


def collate(items: Batch | Sequence[Sample]) -> Batch:
    """Stack samples into a :class:`Batch` (a batch a dataset read at once passes through unchanged).

    The presence masks are kept only for modalities that some sample lacks, so a complete batch carries
    ``present=None`` and costs nothing extra.
    """
    if isinstance(items, Batch):
        return items
    if not items:
        raise ConfigError("cannot collate an empty list of samples")
    mods = list(items[0].inputs)
    inputs = {m: torch.stack([s.inputs[m] for s in items]) for m in mods}
    label = torch.tensor([s.label for s in items], dtype=torch.long)
    index = torch.tensor([s.index for s in items], dtype=torch.long)
    present = {m: torch.tensor([s.present.get(m, True) for s in items]) for m in mods}
    partial = {m: p for m, p in present.items() if not bool(p.all())}
    return Batch(inputs, label, index, partial or None)


class BatchLoader:
    """Yields :class:`Batch` objects over ``index`` rows of a dataset, through a ``DataLoader``.

    ``num_workers > 0`` reads samples in worker processes (kept alive across epochs); ``pin_memory`` pins
    batches for fast copies to a GPU. :meth:`set_epoch` selects the epoch's order.
    """

    def __init__(
        self,
        dataset: Any,
        index: Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 0:
            raise ConfigError(f"num_workers={num_workers!r} is invalid; expected an integer >= 0")
        self.dataset = dataset
        with_epoch = bool(getattr(dataset, "needs_epoch", False))
        self.sampler = SeededBatchSampler(
            index, batch_size, shuffle, seed, drop_last, rank, world_size, with_epoch
        )
        self.loader = DataLoader(
            dataset,
            batch_sampler=self.sampler,
            collate_fn=collate,
            num_workers=num_workers,
            pin_memory=pin_memory,
            persistent_workers=num_workers > 0,
            # the workers' base seed comes from this generator, never from the global RNG: training draws
            # (dropout) are the same whatever the number of workers, and after a resume
            generator=torch.Generator().manual_seed(seed),
        )

    @property
    def index(self) -> Tensor:
        return self.sampler.index

    @property
    def batch_size(self) -> int:
        return self.sampler.batch_size

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[Batch]:
        try:
            yield from self.loader
        except DataError as exc:  # raised in a worker: keep the one line that names the place
            raise DataError(str(exc).strip().splitlines()[-1].split("DataError: ", 1)[-1]) from None
