"""Sarcasm (Cai et al., ACL 2019: multimodal sarcasm detection on tweets): tweet text + image, 2 classes.

Layout under ``root``, as IGM reads it::

    annotations/train_data.json  valid_data.json  test_data.json   # annotation_dir; or train.json ...
    images/<id>.jpg                                                # image_dir

Each annotation file is a JSON list of records ``{"image": ..., "text": ..., "label": 0 | 1}``; ``image`` is
a file name or a path whose last part names the file in ``image_dir`` (IGM keeps only that part); a record
with ``image_id`` instead (MMSD 2.0's files) names ``<image_id>.jpg``. Label 1 is sarcastic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mmbalance.data.manifest import ManifestDataset
from mmbalance.data.papers._jsonlines import json_records
from mmbalance.data.papers._textimage import (
    Row,
    carve_val,
    check_images,
    clean_caption,
    require_root,
    solid_jpg,
    text_image_dataset,
)
from mmbalance.data.registry import DATASETS
from mmbalance.errors import DataError

FILES = {
    "train": ("train_data.json", "train.json"),
    "val": ("valid_data.json", "valid.json"),
    "test": ("test_data.json", "test.json"),
}
NAMES = {"text": "text", "image": "image", "label": "label"}


def _image_name(path: Path, line: int, record: dict[str, Any]) -> str:
    if "image" in record:
        name = str(record["image"]).replace("\\", "/").split("/")[-1].strip()
    else:
        name = f"{str(record['image_id']).strip()}.jpg" if str(record["image_id"]).strip() else ""
    if not name:
        raise DataError(f"{path} line {line}, field 'image' is empty; expected an image file name")
    return name


def read_annotations(path: Path, split: str, images: Path, max_words: int) -> list[Row]:
    """The records of one annotation file; a malformed record is a one-line error with file and line."""
    rows = []
    for k, (line, record) in enumerate(json_records(path)):
        if not isinstance(record, dict):
            raise DataError(f"{path} line {line}: {json.dumps(record)[:40]}; expected a record {{...}}")
        lacking = [k for k in ("text", "label") if k not in record]
        lacking += [] if "image" in record or "image_id" in record else ["image"]
        if lacking:
            raise DataError(f"{path} line {line}: the record lacks {lacking}; expected image, text and label")
        label = str(record["label"]).strip()
        if label not in ("0", "1"):
            raise DataError(f"{path} line {line}, field 'label': {record['label']!r}; expected 0 or 1")
        text = clean_caption(str(record["text"] or ""), max_words)
        rows.append(Row(split, text, images / _image_name(path, line, record), label, path, line, k))
    if not rows:
        raise DataError(f"{path} holds no record; expected a JSON list with one record per sample")
    return rows


def _find(folder: Path, split: str) -> Path | None:
    return next((folder / n for n in FILES[split] if (folder / n).is_file()), None)


@DATASETS.register("sarcasm")
def sarcasm(
    root: str | None = None,
    annotation_dir: str = "annotations",
    image_dir: str = "images",
    max_words: int = 50,
    max_length: int = 80,
    image_size: int = 224,
    bert: str | None = None,
    val_fraction: float = 0.1,
    split_seed: int = 0,
) -> ManifestDataset:
    """Sarcasm from its JSON annotations under ``root``: modalities ``text`` then ``image``, labels 0/1
    (1 sarcastic), the release's train/valid/test split (19,816 / 2,410 / 2,409) as train/val/test.

    Text: IGM's cleaning (lower-cased, punctuation dropped, the first ``max_words`` words), then
    ``max_length`` word ids for the ``text`` encoder, or with ``bert`` (a local Hugging Face folder such as
    bert-base-uncased) ``max_length`` tokens for ``hf_text``. Image: ``image_size`` square,
    ImageNet-normalised. Without a valid file (IGM ships train and test only) a seeded (``split_seed``),
    class-stratified ``val_fraction`` of the training rows is the validation split. Every record and image
    is checked before training."""
    base = require_root("sarcasm", root, max_words)
    folder, images = base / annotation_dir, base / image_dir
    rows: list[Row] = []
    for split, names in FILES.items():
        path = _find(folder, split)
        if path is None and split != "val":
            raise DataError(
                f"sarcasm: {folder} has neither {' nor '.join(names)}; expected the {split} split"
            )
        if path is not None:
            rows += read_annotations(path, split, images, max_words)
    if _find(folder, "val") is None:
        rows = carve_val(rows, val_fraction, split_seed)
    check_images(rows, "image")
    return text_image_dataset(rows, base, NAMES, max_length, image_size, bert)


WORDS = {"0": "sunny calm nice day", "1": "oh great yet another monday"}
COLOURS = {"0": (40, 90, 220), "1": (230, 160, 20)}


def write_fixture(root: str | Path, n: int = 12, valid: bool = True) -> Path:
    """A tiny Sarcasm in IGM's layout: ``n`` training records, ``n // 2`` valid (unless ``valid=False``) and
    test records; labels alternate 0, 1, and both modalities encode the label (class words in the text, a
    class colour in the image). Returns ``root``."""
    root = Path(root)
    parts = {"train": n, "val": n // 2, "test": n // 2} if valid else {"train": n, "test": n // 2}
    k = 0
    for split, count in parts.items():
        records = []
        for i in range(count):
            label = str(i % 2)
            image = f"{682716753374351360 + k}.jpg"
            text = f"{WORDS[label].capitalize()}!! <user> #tag{k}"
            records.append({"image": f"/data/Sarcasm/images/{image}", "text": text, "label": int(label)})
            solid_jpg(root / "images" / image, COLOURS[label], seed=k)
            k += 1
        body = ",\n".join("  " + json.dumps(r) for r in records)
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / FILES[split][0]).write_text(f"[\n{body}\n]\n", encoding="utf-8")
    return root
