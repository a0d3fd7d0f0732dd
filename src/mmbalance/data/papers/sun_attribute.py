"""SUN Attribute (Patterson & Hays, CVPR 2012) as GAAL's image–tabular task: the scene image and 101 binary
attributes predict the 102nd, ``open area``.

Native layout under ``root`` (``SUNAttributeDB.tar.gz`` and ``SUNAttributeDB_Images.tar.gz`` unpacked)::

    SUNAttributeDB/images.mat                       cell array ``images``: 14,340 paths under images/
    SUNAttributeDB/attributes.mat                   cell array ``attributes``: the 102 attribute names
    SUNAttributeDB/attributeLabels_continuous.mat   ``labels_cv``: 14,340 x 102 votes (0, 1/3, 2/3, 1)
    images/a/abbey/sun_aaaaomzmvlqmrwjv.jpg ...

An attribute is 1 when its vote fraction is at least ``threshold`` (GAAL's CSV is pre-binarised, by a rule
it does not publish). SUN Attribute has no official split: train/val/test are a stratified draw of
``split`` ratios from ``split_seed``. See docs/datasets/sun_attribute.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmbalance.data.base import stratified_split
from mmbalance.data.manifest import ManifestDataset
from mmbalance.data.papers._tabimg import IMAGE, SPLIT, IndexTable, attribute_dataset, find, require_root
from mmbalance.data.papers._tabimg import write_jpg as _write_jpg
from mmbalance.data.registry import DATASETS
from mmbalance.errors import ConfigError, DataError

DB = "SUNAttributeDB"
FILES = {
    "images": "images.mat",
    "attributes": "attributes.mat",
    "labels_cv": "attributeLabels_continuous.mat",
}


def load_variable(path: Path, name: str) -> np.ndarray:
    """The variable ``name`` of the MATLAB file ``path``; a DataError if it cannot be read or lacks it."""
    from scipy.io import loadmat

    try:
        data = loadmat(str(path))
    except (OSError, ValueError, TypeError, NotImplementedError) as exc:
        raise DataError(f"{path} is not a readable MATLAB file ({type(exc).__name__}: {exc})") from exc
    if name not in data:
        found = [k for k in data if not k.startswith("__")]
        raise DataError(f"{path} has no variable {name!r}; expected it beside {found}")
    return data[name]


def cell_strings(path: Path, cells: np.ndarray) -> list[str]:
    """A MATLAB cell array of strings as a list (backslashes as ``/``); names the first entry that is not
    a non-empty string."""
    out = []
    for i, c in enumerate(np.asarray(cells, dtype=object).reshape(-1)):
        flat = np.asarray(c).reshape(-1)
        if flat.size != 1 or not isinstance(flat[0], str) or not flat[0].strip():
            raise DataError(f"{path} entry {i + 1}: {c!r}; expected a non-empty string")
        out.append(flat[0].strip().replace("\\", "/"))
    return out


def read_database(root: Path) -> tuple[list[str], list[str], np.ndarray, Path]:
    """Image paths, attribute names and the vote matrix, checked against each other."""
    db = find(root, [DB, "."], "SUN Attribute database folder")
    paths = {k: find(db, [f], f"SUN Attribute {f}") for k, f in FILES.items()}
    images = cell_strings(paths["images"], load_variable(paths["images"], "images"))
    names = cell_strings(paths["attributes"], load_variable(paths["attributes"], "attributes"))
    votes = np.asarray(load_variable(paths["labels_cv"], "labels_cv"), dtype=np.float64)
    if votes.shape != (len(images), len(names)):
        raise DataError(
            f"{paths['labels_cv']}: labels_cv is {votes.shape[0]} x {votes.shape[1]}; expected "
            f"{len(images)} x {len(names)} (images.mat entries x attributes.mat names)"
        )
    seen: dict[str, int] = {}
    for i, p in enumerate(images):
        if p in seen:
            raise DataError(f"{paths['images']} entry {i + 1}: {p!r} repeats entry {seen[p] + 1}")
        seen[p] = i
    bad = np.argwhere(~((votes >= 0) & (votes <= 1)))
    if len(bad):
        i, j = bad[0]
        raise DataError(
            f"{paths['labels_cv']} row {i + 1} ({images[i]}), column {names[j]!r}: {float(votes[i, j])!r}; "
            "expected a vote fraction in [0, 1]"
        )
    return images, names, votes, paths["images"]


@DATASETS.register("sun_attribute")
def sun_attribute(
    root: str | None = None,
    label: str = "open area",
    threshold: float = 0.5,
    split: Sequence[float] = (0.7, 0.1, 0.2),
    split_seed: int = 2022,
    image_size: int = 225,
    augment: bool = True,
) -> ManifestDataset:
    """SUN Attribute under ``root``: ``image`` (``float32[3, image_size, image_size]``, ImageNet-normalised
    as GAAL does) and ``tabular`` (the 101 other attributes one-hot, ``float32[303]``), the class ``label``
    (``0``/``1``: votes >= ``threshold``), split by a stratified draw of ``split`` from ``split_seed``."""
    if not (isinstance(threshold, (int, float)) and 0.0 < threshold <= 1.0 and math.isfinite(threshold)):
        raise ConfigError(
            f"dataset sun_attribute threshold={threshold!r}; expected a vote fraction in (0, 1]"
        )
    base = require_root("sun_attribute", root)
    images, names, votes, index = read_database(base)
    if label not in names:
        raise ConfigError(f"label={label!r} is not one of the dataset's attributes; expected one of {names}")
    binary = (votes >= threshold - 1e-9).astype(int)  # a rounding margin: 2/3 passes a threshold of 2/3
    labels = torch.from_numpy(binary[:, names.index(label)]).long()
    parts = stratified_split(labels, list(split), split_seed)
    which = [""] * len(images)
    for part, rows in parts.items():
        for i in rows.tolist():
            which[i] = part
    columns: dict[str, Any] = {IMAGE: images, SPLIT: which}
    for j, name in enumerate(names):
        columns[name] = [str(v) for v in binary[:, j].tolist()]
    table = IndexTable(columns, index, base / "images", first=1, unit="entry")
    image = {"size": image_size, "normalize": "imagenet", "augment": augment}
    return attribute_dataset(table, names, label, image)


FIXTURE_ATTRIBUTES = ["natural light", "open area", "far-away horizon", "enclosed area"]


def write_fixture(root: str | Path, n: int = 30, attributes: int = 102) -> Path:
    """A tiny SUN Attribute in the native layout: ``n`` scenes (solid 8x8 JPEGs, green when ``open area``
    gets at least half the votes, grey otherwise) under ``images/<letter>/<category>/``, ``attributes`` names
    (four real ones, then placeholders), votes in {0, 1/3, 2/3, 1} with ``far-away horizon`` equal to
    ``open area`` and ``enclosed area`` its complement. Returns ``root``."""
    from scipy.io import savemat

    root = Path(root)
    names = FIXTURE_ATTRIBUTES + [f"attribute {k}" for k in range(len(FIXTURE_ATTRIBUTES), attributes)]
    paths, votes = np.empty((n, 1), dtype=object), np.zeros((n, attributes))
    for i in range(n):
        category = ("beach", "abbey", "field", "bedroom")[i % 4]
        paths[i, 0] = f"{category[0]}/{category}/sun_{i:04d}.jpg"
        opened = (0.0, 1 / 3, 2 / 3, 1.0)[i % 4]
        votes[i] = [(i * 7 + k) % 4 / 3 for k in range(attributes)]
        votes[i, 1:4] = [opened, opened, 1.0 - opened]
        _write_jpg(root / "images" / paths[i, 0], (40, 200, 40) if opened > 0.5 else (128, 128, 128))
    db = root / DB
    db.mkdir(parents=True, exist_ok=True)
    cells = np.empty((attributes, 1), dtype=object)
    cells[:, 0] = names
    savemat(str(db / FILES["images"]), {"images": paths})
    savemat(str(db / FILES["attributes"]), {"attributes": cells})
    savemat(str(db / FILES["labels_cv"]), {"labels_cv": votes})
    return root
