"""Twitter2015 (multimodal aspect sentiment, TomBERT's release): tweet text + image, 3 classes.

Layout under ``root`` (TomBERT's ``absa_data/twitter2015`` and ``twitter2015_images`` folders)::

    train.tsv  dev.tsv  test.tsv       # in tsv_dir (default: root itself)
    twitter2015_images/<ImageID>       # image_dir

Each TSV has a header row naming at least ``Label``, ``ImageID`` and ``String`` (TomBERT writes ``index
#1 Label #2 ImageID #3 String #3 String``: the ``#N`` prefixes are ignored, and a second ``String``, the
aspect target, is not used, as in IGM). Labels 0 (negative), 1 (neutral), 2 (positive).
"""

from __future__ import annotations

import re
from pathlib import Path

from mmbalance.data.manifest import ManifestDataset
from mmbalance.data.papers._textimage import (
    Row,
    carve_val,
    check_images,
    clean_caption,
    latin_words,
    require_root,
    solid_jpg,
    text_image_dataset,
)
from mmbalance.data.registry import DATASETS
from mmbalance.errors import DataError

FILES = {"train": "train.tsv", "val": "dev.tsv", "test": "test.tsv"}
LABELS = ("0", "1", "2")
NAMES = {"text": "String", "image": "ImageID", "label": "Label"}


def _header(path: Path, cells: list[str]) -> dict[str, int]:
    names = [re.sub(r"^#\d+\s*", "", c).strip() for c in cells]
    missing = [n for n in ("Label", "ImageID", "String") if n not in names]
    if missing:
        raise DataError(
            f"{path} line 1: header {cells} lacks {missing}; expected columns Label, ImageID and String"
        )
    return {n: names.index(n) for n in ("Label", "ImageID", "String")}


def read_tsv(path: Path, split: str, images: Path, max_words: int) -> list[Row]:
    """The rows of one TomBERT TSV; a malformed line is a one-line error naming the file and line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a readable UTF-8 TSV file ({type(exc).__name__}: {exc})") from exc
    if not lines:
        raise DataError(f"{path} is empty; expected a header row and one row per sample")
    header = lines[0].split("\t")
    col, rows = _header(path, header), []
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) != len(header):
            raise DataError(
                f"{path} line {n} has {len(cells)} tab-separated cells; expected {len(header)}, as the header"
            )
        label, image, text = (cells[col[k]].strip() for k in ("Label", "ImageID", "String"))
        if label not in LABELS:
            raise DataError(f"{path} line {n}, field 'Label': {label!r}; expected 0, 1 or 2")
        if not image:
            raise DataError(f"{path} line {n}, field 'ImageID' is empty; expected an image file name")
        text = clean_caption(latin_words(text), max_words)
        rows.append(Row(split, text, images / image, label, path, n, n))
    if not rows:
        raise DataError(f"{path} has no rows; expected one row per sample after the header")
    return rows


@DATASETS.register("twitter2015")
def twitter2015(
    root: str | None = None,
    tsv_dir: str = ".",
    image_dir: str = "twitter2015_images",
    max_words: int = 50,
    max_length: int = 80,
    image_size: int = 224,
    bert: str | None = None,
    val_fraction: float = 0.1,
    split_seed: int = 0,
) -> ManifestDataset:
    """Twitter2015 from TomBERT's TSVs under ``root``: modalities ``text`` then ``image``, labels 0/1/2,
    the release's train/dev/test split (3,179 / 1,122 / 1,037) as train/val/test.

    Text: IGM's cleaning (the ``[A-Za-z]+`` words, lower-cased, punctuation dropped, the first
    ``max_words`` words), then ``max_length`` word ids for the ``text`` encoder, or with ``bert`` (a local
    Hugging Face folder such as bert-base-uncased) ``max_length`` tokens for ``hf_text``. Image:
    ``image_size`` square, ImageNet-normalised. Without ``dev.tsv`` a seeded (``split_seed``), class-
    stratified ``val_fraction`` of the training rows is the validation split. Every line and image is
    checked before training."""
    base = require_root("twitter2015", root, max_words)
    tsvs, images = base / tsv_dir, base / image_dir
    rows: list[Row] = []
    for split, name in FILES.items():
        path = tsvs / name
        if split == "val" and not path.is_file():
            continue
        if not path.is_file():
            raise DataError(f"twitter2015: {path} does not exist; expected TomBERT's {name} in {tsvs}")
        rows += read_tsv(path, split, images, max_words)
    if not (tsvs / FILES["val"]).is_file():
        rows = carve_val(rows, val_fraction, split_seed)
    check_images(rows, "ImageID")
    return text_image_dataset(rows, base, NAMES, max_length, image_size, bert)


WORDS = {"0": "awful sad terrible", "1": "okay plain usual", "2": "great happy lovely"}
COLOURS = {"0": (200, 30, 30), "1": (128, 128, 128), "2": (30, 200, 30)}


def write_fixture(root: str | Path, n: int = 12, dev: bool = True) -> Path:
    """A tiny Twitter2015 in TomBERT's layout: ``n`` training rows, ``n // 2`` dev (unless ``dev=False``)
    and test rows; labels cycle 0, 1, 2, and both modalities encode the label (class words in the text,
    a class colour in the image). Returns ``root``."""
    root = Path(root)
    parts = {"train": n, "val": n // 2, "test": n // 2} if dev else {"train": n, "test": n // 2}
    k = 0
    for split, count in parts.items():
        lines = ["index\t#1 Label\t#2 ImageID\t#3 String\t#3 String"]
        for i in range(count):
            label, image = LABELS[i % 3], f"{1000 + k}.jpg"
            text = f"RT @user{k}: $T$ is {WORDS[label]} tonight #{split}"
            lines.append(f"{i}\t{label}\t{image}\t{text}\tTarget {k}")
            solid_jpg(root / "twitter2015_images" / image, COLOURS[label], seed=k)
            k += 1
        (root / FILES[split]).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root
