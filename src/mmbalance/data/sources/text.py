"""Text cells tokenised into word ids with a vocabulary fitted on the training rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from mmbalance.data.sources.base import Source
from mmbalance.errors import ConfigError
from mmbalance.text import WordTokenizer


class TextSource(Source):
    """A text cell per row as ``int64[max_length]`` word ids (:class:`mmbalance.text.WordTokenizer`: 0 pads,
    1 is a word unseen in training). The vocabulary keeps the ``max_vocab`` most frequent words seen at
    least ``min_count`` times in the training rows. An empty cell (or one with no word) is absent."""

    kind = "text"
    options: ClassVar[dict[str, Any]] = {"max_length": 64, "min_count": 1, "max_vocab": 20000}

    def __init__(self, name: str, table: Any, spec: dict[str, Any]) -> None:
        super().__init__(name, table, spec)
        for key in ("max_length", "min_count", "max_vocab"):
            v = self.opts[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"modality {name!r} {key}={v!r}; expected a positive integer")
        self.tokenizer = WordTokenizer()

    def check(self) -> None:
        self.cells(self.column)

    def _text(self, row: int) -> str:
        v = self.cells(self.column)[row]
        return "" if v is None else str(v)

    def fit(self, rows: Sequence[int]) -> None:
        texts = [self._text(i) for i in rows]
        self.tokenizer.fit(texts, min_count=self.opts["min_count"], max_size=self.opts["max_vocab"])

    def state(self) -> dict[str, Any]:
        return self.tokenizer.state_dict()

    def load_state(self, state: dict[str, Any]) -> None:
        self.tokenizer = WordTokenizer.from_state(state)

    @property
    def shape(self) -> tuple[int, ...]:
        return (int(self.opts["max_length"]),)

    def fill(self) -> Tensor:
        return torch.zeros(self.shape, dtype=torch.long)

    def read(
        self, row: int, train: bool = False, generator: torch.Generator | None = None
    ) -> tuple[Tensor, bool]:
        ids, mask = self.tokenizer.encode([self._text(row)], int(self.opts["max_length"]))
        return ids[0], bool(mask.any())

    def default_encoder(self) -> dict[str, Any]:
        return {"name": "text", "vocab_size": self.tokenizer.vocab_size}
