"""A source reads one modality of one manifest row. Every kind follows :class:`Source`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from mmbalance.data.table import Table
from mmbalance.errors import ConfigError, DataError


class Source:
    """One modality of a manifest: reads row ``i`` as a tensor of a fixed shape.

    Lifecycle: built on a table with its options (unknown options are one-line errors), :meth:`check`
    validates every row's cells up front (a missing column, a path that does not exist, a non-number in a
    numeric column are found when the manifest is read, not in epoch 7), then either :meth:`fit` on the
    training rows or :meth:`load_state` of a saved fit. :meth:`read` gives ``(tensor, present)``; an
    absent value (empty cell, all columns empty) gives the :meth:`fill` tensor and ``False``.
    ``train=True`` turns on the source's augmentation, drawn from ``generator``.
    """

    kind: ClassVar[str] = ""
    options: ClassVar[dict[str, Any]] = {}

    def __init__(self, name: str, table: Table, spec: dict[str, Any]) -> None:
        self.name, self.table = name, table
        self.column: str = str(spec.get("column", ""))
        known = {"kind", "column", "columns", *self.options}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ConfigError(
                f"modality {name!r} ({self.kind}): unknown option(s) {unknown}; expected some of "
                f"{sorted(self.options)}"
            )
        self.opts = {**self.options, **{k: v for k, v in spec.items() if k in self.options}}

    # -- to implement -------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise :class:`DataError` naming file, row and column for the first bad cell."""

    def fit(self, rows: Sequence[int]) -> None:
        """Fit what is learned from data on the training rows ``rows``."""

    def state(self) -> dict[str, Any]:
        """The fitted state as plain data (lists, numbers, strings)."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Take a saved :meth:`state` instead of fitting."""

    @property
    def shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def read(
        self, row: int, train: bool = False, generator: torch.Generator | None = None
    ) -> tuple[Tensor, bool]:
        raise NotImplementedError

    def default_encoder(self) -> dict[str, Any]:
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------------
    def fill(self) -> Tensor:
        return torch.zeros(self.shape)

    def drop(self, row: int, frac: float, seed: int) -> tuple[Tensor, bool]:
        """Row ``row`` with a fraction ``frac`` of its columns missing (only column-wise sources)."""
        raise ConfigError(
            f"missing {self.name}={frac:g}: only a columns modality can lose a fraction of its values; "
            f"use {self.name}=1.0 to drop the whole modality"
        )

    def cells(self, column: str) -> list[Any]:
        return self.table.column(column, f"column {column!r} (modality {self.name!r})")

    def file_of(self, row: int, column: str) -> Any:
        """The path in a file cell (``None`` for an empty cell)."""
        value = self.cells(column)[row]
        return None if value is None else self.table.path(value)

    def check_files(self, column: str) -> None:
        """Every non-empty cell of ``column`` names an existing file."""
        for i, value in enumerate(self.cells(column)):
            if value is not None and not self.table.path(value).is_file():
                raise DataError(
                    f"{self.table.where(i, column)}: file {self.table.path(value)} does not exist"
                )

    def unreadable(self, row: int, column: str, exc: BaseException) -> DataError:
        reason = " ".join(str(exc).split())[:160]
        path = self.file_of(row, column)
        return DataError(f"{self.table.where(row, column)}: cannot read {path} as {self.kind} ({reason})")
