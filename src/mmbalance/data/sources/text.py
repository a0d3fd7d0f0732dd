"""Text cells tokenised into word ids with a vocabulary fitted on the training rows, or by the tokenizer of a
local Hugging Face model (``tokenizer: DIR``) for the ``hf_text`` encoder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from mmbalance.data.sources.base import Source
from mmbalance.errors import ConfigError
from mmbalance.text import WordTokenizer, hf_encode_with, hf_tokenizer, words


class TextSource(Source):
    """A text cell per row as ``int64[max_length]`` word ids (:class:`mmbalance.text.WordTokenizer`: 0 pads,
    1 is a word unseen in training). The vocabulary keeps the ``max_vocab`` most frequent words seen at
    least ``min_count`` times in the training rows. An empty cell (or one with no word) is absent.

    With ``tokenizer: DIR`` (a folder saved by a Hugging Face ``save_pretrained``, never downloaded) a row
    is instead ``int64[2, max_length]``: the tokens' input ids and attention mask as
    :func:`mmbalance.text.hf_encode` gives them, what the ``hf_text`` encoder reads (its default encoder,
    with ``path: DIR``); nothing is fitted and ``min_count``/``max_vocab`` play no part."""

    kind = "text"
    options: ClassVar[dict[str, Any]] = {
        "max_length": 64,
        "min_count": 1,
        "max_vocab": 20000,
        "tokenizer": None,
    }

    def __init__(self, name: str, table: Any, spec: dict[str, Any]) -> None:
        super().__init__(name, table, spec)
        for key in ("max_length", "min_count", "max_vocab"):
            v = self.opts[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"modality {name!r} {key}={v!r}; expected a positive integer")
        self.tokenizer = WordTokenizer()
        self.hf_path: str | None = None
        self._hf: Any = None
        if self.opts["tokenizer"] is not None:
            self.hf_path = str(Path(str(self.opts["tokenizer"])).expanduser())
            self._hf = hf_tokenizer(self.hf_path, f"modality {name!r} tokenizer")  # a bad folder fails now

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers reload the tokenizer from its folder
        return {**self.__dict__, "_hf": None}

    def check(self) -> None:
        self.cells(self.column)

    def _text(self, row: int) -> str:
        v = self.cells(self.column)[row]
        return "" if v is None else str(v)

    def fit(self, rows: Sequence[int]) -> None:
        if self.hf_path is None:
            texts = [self._text(i) for i in rows]
            self.tokenizer.fit(texts, min_count=self.opts["min_count"], max_size=self.opts["max_vocab"])

    def state(self) -> dict[str, Any]:
        return {"tokenizer": self.hf_path} if self.hf_path else self.tokenizer.state_dict()

    def load_state(self, state: dict[str, Any]) -> None:
        if self.hf_path is None:
            self.tokenizer = WordTokenizer.from_state(state)

    @property
    def shape(self) -> tuple[int, ...]:
        length = int(self.opts["max_length"])
        return (2, length) if self.hf_path else (length,)

    def fill(self) -> Tensor:
        return torch.zeros(self.shape, dtype=torch.long)

    def read(
        self, row: int, train: bool = False, generator: torch.Generator | None = None
    ) -> tuple[Tensor, bool]:
        text, length = self._text(row), int(self.opts["max_length"])
        if self.hf_path is None:
            ids, mask = self.tokenizer.encode([text], length)
            return ids[0], bool(mask.any())
        if not words(text):
            return self.fill(), False
        if self._hf is None:
            self._hf = hf_tokenizer(self.hf_path, f"modality {self.name!r} tokenizer")
        return hf_encode_with(self._hf, [text], length)[0], True

    def default_encoder(self) -> dict[str, Any]:
        if self.hf_path:
            return {"name": "hf_text", "path": self.hf_path}
        return {"name": "text", "vocab_size": self.tokenizer.vocab_size}
