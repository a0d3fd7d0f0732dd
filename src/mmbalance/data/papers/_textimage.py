"""What Twitter2015 and Sarcasm share: IGM's caption cleaning, a table whose rows remember the index file
and line they came from, the train-carved validation split, and the text + image manifest they become."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmbalance.data.base import stratified_split
from mmbalance.data.manifest import ManifestDataset
from mmbalance.data.table import Table
from mmbalance.errors import ConfigError, DataError, check_range

_DROPPED = re.compile(r"[,.'!?\"()*#:;~]")
_SPACES = re.compile(r"\s{2,}")
_LATIN_WORD = re.compile(r"\b[A-Za-z]+\b")


def clean_caption(text: str, max_words: int) -> str:
    """IGM's caption cleaning: lower case, ``,.'!?"()*#:;~`` removed, ``-`` and ``/`` made spaces,
    ``<person>`` read as "person", runs of whitespace collapsed, then the first ``max_words`` words.

    >>> clean_caption("Great -- just GREAT!! <person> said: 'no/yes'", 5)
    'great just great person said'
    """
    text = _DROPPED.sub("", text.lower()).replace("-", " ").replace("/", " ").replace("<person>", "person")
    return " ".join(_SPACES.sub(" ", text).strip().split(" ")[:max_words])


def latin_words(text: str) -> str:
    """The ``[A-Za-z]+`` words of ``text`` joined by spaces (IGM's Twitter filter: ``$T$`` becomes "T").

    >>> latin_words("RT @who: $T$ is great #win")
    'RT who T is great win'
    """
    return " ".join(_LATIN_WORD.findall(text))


@dataclass(frozen=True)
class Row:
    """One sample as its index file gives it: split, text, image path, label, where it was read, and a
    ``key`` unique in its file (the row's id is ``<file stem>:<key>``)."""

    split: str
    text: str
    image: Path
    label: str
    file: Path
    line: int
    key: int


class IndexTable(Table):
    """A table built from index files (TSV, JSON): :meth:`where` names the file and line a row came from and
    the field's native name (``names`` maps the table's columns to them)."""

    def __init__(self, rows: Sequence[Row], root: Path, names: Mapping[str, str]) -> None:
        columns = {
            "id": [f"{r.file.stem}:{r.key}" for r in rows],
            "text": [r.text for r in rows],
            "image": [str(r.image) for r in rows],
            "label": [r.label for r in rows],
            "split": [r.split for r in rows],
        }
        super().__init__(columns, source=f"the index files under {root}", root=root, csv_lines=False)
        self.places = [(r.file, r.line) for r in rows]
        self.names = dict(names)

    def where(self, row: int, column: str | None = None) -> str:
        file, line = self.places[row]
        field = self.names.get(column or "", column)
        return f"{file} line {line}" + (f", field {field!r}" if field else "")


def carve_val(rows: list[Row], fraction: float, seed: int) -> list[Row]:
    """The training rows with a seeded, class-stratified ``fraction`` of them relabelled ``val``."""
    check_range("val_fraction", fraction, 0.0, 1.0)
    train = [r for r in rows if r.split == "train"]
    names = sorted({r.label for r in train})
    labels = torch.tensor([names.index(r.label) for r in train])
    val = set(stratified_split(labels, (1.0 - fraction, fraction, 0.0), seed=seed)["val"].tolist())
    out, k = [], 0
    for r in rows:
        if r.split == "train":
            r = Row("val", r.text, r.image, r.label, r.file, r.line, r.key) if k in val else r
            k += 1
        out.append(r)
    return out


def require_root(name: str, root: str | None, max_words: int) -> Path:
    """``root`` as an absolute directory, or a one-line error saying what it should be (``max_words`` is
    checked too: a positive integer)."""
    if isinstance(max_words, bool) or not isinstance(max_words, int) or max_words < 1:
        raise ConfigError(f"dataset {name} max_words={max_words!r}; expected a positive integer")
    if root is None:
        raise ConfigError(
            f"dataset {name} needs root: the folder the dataset was unpacked in (dataset__root=PATH)"
        )
    path = Path(root).expanduser()
    if not path.is_dir():
        raise ConfigError(f"dataset {name} root={root!r} is not a directory; expected the dataset's folder")
    return path.resolve()


def check_images(rows: Sequence[Row], field: str) -> None:
    """Every row's image exists, or a one-line error naming the index file, line and field."""
    for r in rows:
        if not r.image.is_file():
            raise DataError(f"{r.file} line {r.line}, field {field!r}: image {r.image} does not exist")


def text_image_dataset(
    rows: Sequence[Row],
    root: Path,
    names: Mapping[str, str],
    max_length: int,
    image_size: int,
    bert: str | None,
) -> ManifestDataset:
    """The rows as a text + image manifest: ``text`` (``int64[max_length]`` word ids, or with ``bert`` a
    local Hugging Face folder, ``int64[2, max_length]`` for ``hf_text``) then ``image`` (``float32[3,
    image_size, image_size]``, ImageNet-normalised), label column ``label``, split column ``split``."""
    spec: dict[str, Any] = {
        "text": {"kind": "text", "column": "text", "max_length": max_length, "tokenizer": bert},
        "image": {"kind": "image", "column": "image", "size": image_size, "channels": 3},
    }
    return ManifestDataset(IndexTable(rows, root, names), spec, "label", "split", "id")


def solid_jpg(path: Path, colour: tuple[int, int, int], size: int = 12, seed: int = 0) -> None:
    """A small JPEG of ``colour`` with a little noise (fixtures)."""
    from PIL import Image

    noise = np.random.default_rng(seed).integers(-12, 13, (size, size, 3))
    pixels = np.clip(np.array(colour)[None, None] + noise, 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, quality=90)
