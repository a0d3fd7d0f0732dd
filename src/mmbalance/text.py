"""Text to token-id tensors: a built-in word tokeniser and the tokenizer of a local Hugging Face model.

The formats are what the text encoders read (:mod:`mmbalance.models.text`), one tensor per batch:

- ``text``: ids ``LongTensor[B, L]``, 0 = padding (at the end only), 1 = unknown word;
- ``hf_text``: ``LongTensor[B, 2, L]``, ``[:, 0]`` the tokenizer's input ids, ``[:, 1]`` its attention mask.

This module imports nothing above the errors; ``transformers`` (the optional ``text`` extra) is imported
only when a Hugging Face tokenizer or model is loaded.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import torch
from torch import Tensor

from mmbalance.errors import ConfigError, MMBalanceError

PAD, UNK = 0, 1
T = TypeVar("T")
_WORD = re.compile(r"[^\W_]+")  # a run of unicode letters and digits


def words(text: str) -> list[str]:
    """The lower-cased runs of unicode letters and digits of ``text``; everything else separates.

    >>> words("Café au-lait, x2_FAST!")
    ['café', 'au', 'lait', 'x2', 'fast']
    """
    return _WORD.findall(text.lower())


def _texts(texts: Iterable[str], what: str) -> list[str]:
    if isinstance(texts, str):
        raise ConfigError(f"{what} got the string {texts[:30]!r}; expected a sequence of texts")
    out = list(texts)
    for t in out:
        if not isinstance(t, str):
            raise ConfigError(f"{what} got {t!r}; expected every text to be a str")
    return out


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name}={value!r} is invalid; expected an integer >= {low}")


class WordTokenizer:
    """Maps texts to ``[B, L]`` word ids with a vocabulary fitted on training texts.

    Ids: 0 = padding, 1 = unknown word, then the fitted words from 2 on. ``fit`` orders the words by
    decreasing count, ties in code-point order, so the same texts always give the same ids. The fitted
    state is plain data (``state_dict()``, ``from_state``) to save beside a run's config and replay.

    >>> tok = WordTokenizer().fit(["the cat sat", "the dog"])
    >>> tok.state_dict()
    {'tokens': ['the', 'cat', 'dog', 'sat']}
    >>> ids, mask = tok.encode(["The dog sat!", "a cat"], max_length=4)
    >>> ids.tolist(), mask.tolist()
    ([[2, 4, 5, 0], [1, 3, 0, 0]], [[True, True, True, False], [True, True, False, False]])
    """

    def __init__(self) -> None:
        self.tokens_: list[str] | None = None
        self.index_: dict[str, int] = {}

    @property
    def vocab_size(self) -> int:
        """Number of ids: the fitted words plus padding and unknown (the ``text`` encoder's option)."""
        return len(self._fitted()) + 2

    def fit(self, texts: Iterable[str], min_count: int = 1, max_size: int | None = None) -> WordTokenizer:
        """Keep the words seen at least ``min_count`` times, the ``max_size`` most frequent (``None``: all;
        the two reserved ids are not counted). Replaces any earlier vocabulary; returns ``self``."""
        _check_int("min_count", min_count, 1)
        if max_size is not None:
            _check_int("max_size", max_size, 0)
        counts = Counter(w for t in _texts(texts, "WordTokenizer.fit") for w in words(t))
        kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return self._set(kept[:max_size])

    def encode(self, texts: Iterable[str], max_length: int) -> tuple[Tensor, Tensor]:
        """``(ids, mask)``: ``ids`` a ``LongTensor[B, max_length]`` of each text's first ``max_length`` words
        (unknown words are 1) followed by padding 0; ``mask`` a ``BoolTensor``, ``ids != 0``."""
        _check_int("max_length", max_length, 1)
        index, rows = self.index_, []
        self._fitted()
        for t in _texts(texts, "WordTokenizer.encode"):
            row = [index.get(w, UNK) for w in words(t)[:max_length]]
            rows.append(row + [PAD] * (max_length - len(row)))
        ids = torch.tensor(rows, dtype=torch.long).reshape(len(rows), max_length)
        return ids, ids != PAD

    def state_dict(self) -> dict[str, list[str]]:
        """``{"tokens": [...]}``: the words of ids 2, 3, ... in order (plain data, YAML and JSON safe)."""
        return {"tokens": list(self._fitted())}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> WordTokenizer:
        """The tokeniser whose ``state_dict()`` is ``state``; a value no fit could give is one-line error."""
        tokens = state.get("tokens") if isinstance(state, Mapping) else None
        if not isinstance(tokens, list):
            raise ConfigError(f"tokeniser state {state!r:.60}; expected a mapping with a list of 'tokens'")
        for t in tokens:
            if not isinstance(t, str) or words(t) != [t]:
                raise ConfigError(f"tokeniser state holds {t!r}; expected lower-case runs of letters, digits")
        if len(set(tokens)) != len(tokens):
            raise ConfigError("tokeniser state repeats a word; expected each word once")
        return cls()._set(tokens)

    def _set(self, tokens: Sequence[str]) -> WordTokenizer:
        self.tokens_ = list(tokens)
        self.index_ = {w: i + 2 for i, w in enumerate(self.tokens_)}
        return self

    def _fitted(self) -> list[str]:
        if self.tokens_ is None:
            raise ConfigError("WordTokenizer is not fitted; call fit(texts) or WordTokenizer.from_state(...)")
        return self.tokens_


def import_transformers(what: str) -> ModuleType:
    """The ``transformers`` module, or a one-line error saying ``what`` needs it and how to install it."""
    try:
        import transformers
    except ImportError as exc:
        raise MMBalanceError(
            f"{what} needs the transformers package ({exc}); pip install 'mmbalance[text]'"
        ) from exc
    return transformers


def from_local_dir(load: Callable[..., T], path: object, what: str, kind: str) -> T:
    """``load(path, local_files_only=True)``: a Hugging Face ``from_pretrained`` that never downloads. A
    ``path`` that is no directory, or holds no ``kind`` that ``load`` can read, is a one-line error."""
    if not isinstance(path, (str, Path)) or not Path(path).is_dir():
        raise ConfigError(
            f"{what} path={path!r} is not a directory; expected a local folder saved by a Hugging Face "
            "save_pretrained (nothing is downloaded)"
        )
    try:
        return load(str(path), local_files_only=True)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{what} path={str(path)!r} holds no {kind}: {first}") from exc


def hf_tokenizer(path: str | Path, what: str = "hf_encode") -> Any:
    """The tokenizer saved in the local directory ``path`` (never downloaded), set to pad at the end (position
    0 is then the first token, which cls pooling reads); one-line errors as :func:`from_local_dir`."""
    transformers = import_transformers(what)
    tokenizer = from_local_dir(transformers.AutoTokenizer.from_pretrained, path, what, "tokenizer")
    tokenizer.padding_side = "right"
    return tokenizer


def hf_encode_with(tokenizer: Any, texts: Iterable[str], max_length: int) -> Tensor:
    """Texts tokenised by ``tokenizer`` (from :func:`hf_tokenizer`) in the ``hf_text`` format:
    ``LongTensor[B, 2, max_length]`` with input ids at ``[:, 0]`` and the attention mask at ``[:, 1]``
    (truncated, then padded at the end to ``max_length``)."""
    _check_int("max_length", max_length, 1)
    enc = tokenizer(
        _texts(texts, "hf_encode"),
        padding="max_length",
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    return torch.stack([enc["input_ids"], enc["attention_mask"]], dim=1).long()


def hf_encode(texts: Iterable[str], path: str | Path, max_length: int) -> Tensor:
    """Texts tokenised by the tokenizer saved in the local directory ``path``, in the ``hf_text`` format:
    ``LongTensor[B, 2, max_length]`` with input ids at ``[:, 0]`` and the attention mask at ``[:, 1]``
    (truncated, then padded at the end to ``max_length``, whatever side the tokenizer pads by default)."""
    _check_int("max_length", max_length, 1)
    return hf_encode_with(hf_tokenizer(path), texts, max_length)
