"""Tabular columns: numeric ones standardised, categorical ones one-hot, every missing value imputed.

Output per row (``float32[D]``), in column order: for a numeric column its standardised value (a missing
value imputed with the training mean, i.e. 0) and a missing indicator (1 when imputed); for a categorical
column one slot per training category plus one for a category unseen in training or missing. Everything
fitted (means, standard deviations, category lists) comes from the training rows only.

A column is categorical when declared (``categorical: [...]``) or when most of its values are not
numbers; a column whose values are mostly numbers but has a non-number is an error naming the row (an
empty cell is a missing value, never an error), as is an infinite value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from mmbalance.data.missing import feature_mask
from mmbalance.data.sources.base import Source
from mmbalance.errors import ConfigError, DataError


def canonical(value: Any) -> str:
    """A category or label as text, the same however the table stored it: strings stripped, integral
    numbers without a decimal part (``1``, ``1.0`` and ``" 1 "`` are all ``"1"``).

    >>> canonical(1.0), canonical(" 1 "), canonical(2.5), canonical("F")
    ('1', '1', '2.5', 'F')
    """
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    number = as_number(text)
    if number is not None and math.isfinite(number) and number.is_integer() and "." in text:
        return str(int(number))
    return text


def as_number(value: Any) -> float | None:
    """A cell as a float (``None`` if it is not a number)."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


class ColumnsSource(Source):
    kind = "columns"
    options: ClassVar[dict[str, Any]] = {"categorical": [], "numeric": []}

    def __init__(self, name: str, table: Any, spec: dict[str, Any]) -> None:
        super().__init__(name, table, spec)
        self.columns: list[str] = list(spec["columns"])
        for key in ("categorical", "numeric"):
            extra = [c for c in self.opts[key] if c not in self.columns]
            if extra:
                raise ConfigError(f"modality {name!r}: {key} names {extra}, which are not among its columns")
        self.categorical = [c for c in self.columns if self._is_categorical(c)]
        self.numeric = [c for c in self.columns if c not in self.categorical]
        self.mean_: dict[str, float] = {}
        self.std_: dict[str, float] = {}
        self.categories_: dict[str, list[str]] = {}

    def _is_categorical(self, column: str) -> bool:
        if column in self.opts["categorical"]:
            return True
        if column in self.opts["numeric"]:
            return False
        values = [v for v in self.cells(column) if v is not None]
        numbers = sum(as_number(v) is not None for v in values)
        return numbers * 2 < len(values)

    def check(self) -> None:
        for c in self.numeric:
            for i, v in enumerate(self.cells(c)):
                if v is None:
                    continue
                x = as_number(v)
                if x is None or not math.isfinite(x):
                    raise DataError(
                        f"{self.table.where(i, c)}: {v!r} is not a finite number; expected a number or "
                        f"an empty cell (declare the column categorical to read it as categories)"
                    )

    def fit(self, rows: Sequence[int]) -> None:
        for c in self.numeric:
            cells = self.cells(c)
            xs = [as_number(cells[i]) for i in rows if cells[i] is not None]
            mean = sum(xs) / len(xs) if xs else 0.0  # type: ignore[arg-type]
            var = sum((x - mean) ** 2 for x in xs) / max(len(xs) - 1, 1)  # type: ignore[operator]
            self.mean_[c], self.std_[c] = mean, math.sqrt(var) if var > 1e-12 else 1.0
        for c in self.categorical:
            cells = self.cells(c)
            self.categories_[c] = sorted({canonical(cells[i]) for i in rows if cells[i] is not None})

    def state(self) -> dict[str, Any]:
        return {"numeric": self.numeric, "mean": self.mean_, "std": self.std_, "categories": self.categories_}

    def load_state(self, state: dict[str, Any]) -> None:
        self.numeric = list(state["numeric"])
        self.categorical = [c for c in self.columns if c not in self.numeric]
        self.mean_, self.std_ = dict(state["mean"]), dict(state["std"])
        self.categories_ = {c: list(v) for c, v in state["categories"].items()}

    @property
    def shape(self) -> tuple[int, ...]:
        return (2 * len(self.numeric) + sum(len(self.categories_[c]) + 1 for c in self.categorical),)

    def _encode(self, row: int, missing: set[str]) -> tuple[Tensor, bool]:
        out: list[float] = []
        present = False
        for c in self.columns:
            v = None if c in missing else self.cells(c)[row]
            present |= v is not None
            if c in self.mean_:
                x = as_number(v) if v is not None else None
                if v is not None and (x is None or not math.isfinite(x)):
                    raise DataError(
                        f"{self.table.where(row, c)}: {v!r} is not a finite number; expected a number or an "
                        "empty cell"
                    )
                out += [0.0, 1.0] if x is None else [(x - self.mean_[c]) / self.std_[c], 0.0]
            else:
                cats = self.categories_[c]
                hot = [0.0] * (len(cats) + 1)
                key = None if v is None else canonical(v)
                hot[cats.index(key) if key in cats else len(cats)] = 1.0
                out += hot
        return torch.tensor(out, dtype=torch.float32), present

    def read(
        self, row: int, train: bool = False, generator: torch.Generator | None = None
    ) -> tuple[Tensor, bool]:
        return self._encode(row, set())

    def drop(self, row: int, frac: float, seed: int) -> tuple[Tensor, bool]:
        """Row ``row`` with ``round(frac·columns)`` of its columns missing, drawn from ``(seed, row)``."""
        mask = feature_mask(1, len(self.columns), frac, seed * 1_000_003 + row)[0]
        return self._encode(row, {c for c, m in zip(self.columns, mask.tolist(), strict=True) if m})

    def default_encoder(self) -> dict[str, Any]:
        return {"name": "mlp"}

    def fill(self) -> Tensor:
        """Every column missing: the imputed values with their indicators set."""
        return self._encode(0, set(self.columns))[0]
