"""The dataset interface, stratified splits and a batch loader that yields :class:`Batch` objects."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mmbalance.errors import ConfigError, check_range
from mmbalance.types import Batch


@dataclass
class MultimodalDataset:
    """An in-memory multimodal dataset: one tensor per modality, aligned row by row.

    ``default_encoders`` maps each modality to the encoder config a run uses when the user gives none
    (``{"name": "mlp"}``); ``standardize`` lists the modalities whose features are standardised with
    statistics of the training split (:meth:`standardize_`). ``info`` is free text for ``mmbalance list``
    and reports (source, licence, caveats).
    """

    name: str
    inputs: dict[str, Tensor]
    labels: Tensor
    num_classes: int
    default_encoders: dict[str, dict[str, Any]]
    standardize: tuple[str, ...] = ()
    class_names: list[str] | None = None
    info: str = ""
    stats_: dict[str, tuple[Tensor, Tensor]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = int(self.labels.shape[0])
        for m, x in self.inputs.items():
            if int(x.shape[0]) != n:
                raise ConfigError(f"modality {m!r} has {x.shape[0]} rows; expected {n} (one per label)")
        for m in self.standardize:
            if m not in self.inputs:
                raise ConfigError(f"standardize names modality {m!r}; expected one of {sorted(self.inputs)}")

    @property
    def modalities(self) -> list[str]:
        return list(self.inputs)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def input_shape(self, modality: str) -> tuple[int, ...]:
        return tuple(self.inputs[modality].shape[1:])

    def get(self, index: Tensor) -> dict[str, Tensor]:
        """The rows ``index`` of every modality (a batch, not a single sample)."""
        return {m: x[index] for m, x in self.inputs.items()}

    def standardize_(self, train_index: Tensor) -> None:
        """Standardise the listed modalities in place with the mean and std of the training rows."""
        for m in self.standardize:
            x = self.inputs[m]
            mean = x[train_index].mean(0, keepdim=True)
            std = x[train_index].std(0, keepdim=True).clamp_min(1e-6)
            self.inputs[m] = (x - mean) / std
            self.stats_[m] = (mean.squeeze(0), std.squeeze(0))


def stratified_split(
    labels: Tensor, ratios: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0
) -> dict[str, Tensor]:
    """Split row indices into train/val/test, stratified by class, reproducibly from ``seed``.

    >>> s = stratified_split(torch.arange(10).repeat(10), (0.6, 0.2, 0.2), seed=0)
    >>> [len(s[k]) for k in ("train", "val", "test")]
    [60, 20, 20]
    """
    if len(ratios) != 3:
        raise ConfigError(f"split ratios={list(ratios)} must have 3 entries (train, val, test)")
    for name, r in zip(("train", "val", "test"), ratios, strict=True):
        check_range(f"split ratio {name}", r, 0.0, 1.0)
    if abs(sum(ratios) - 1.0) > 1e-6:
        raise ConfigError(f"split ratios={list(ratios)} sum to {sum(ratios):g}; expected 1")
    rng = np.random.default_rng(seed)
    y = labels.cpu().numpy()
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for c in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == c))
        n_train = round(ratios[0] * len(rows))
        n_val = round(ratios[1] * len(rows))
        parts["train"].append(rows[:n_train])
        parts["val"].append(rows[n_train : n_train + n_val])
        parts["test"].append(rows[n_train + n_val :])
    return {k: torch.from_numpy(np.sort(np.concatenate(v))).long() for k, v in parts.items()}


class BatchLoader:
    """Yields :class:`Batch` objects over ``index`` rows of a dataset.

    Shuffling is a pure function of ``(seed, epoch)`` (call :meth:`set_epoch`), so a resumed run sees the
    same batches. ``rank``/``world_size`` shard each epoch's permutation for multi-process training.
    """

    def __init__(
        self,
        dataset: MultimodalDataset,
        index: Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size={batch_size} must be a positive integer")
        self.dataset, self.index, self.batch_size = dataset, index, batch_size
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _rows(self) -> Tensor:
        rows = self.index
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            rows = rows[torch.randperm(len(rows), generator=g)]
        if self.world_size > 1 and len(rows) % self.world_size:  # equal shards: every rank steps alike
            pad = self.world_size - len(rows) % self.world_size
            rows = torch.cat([rows, rows[:pad]])
        return rows[self.rank :: self.world_size]

    def __len__(self) -> int:
        n = len(self._rows())
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        rows = self._rows()
        for start in range(0, len(rows), self.batch_size):
            idx = rows[start : start + self.batch_size]
            if self.drop_last and len(idx) < self.batch_size:
                break
            yield Batch(self.dataset.get(idx), self.dataset.labels[idx], idx)
