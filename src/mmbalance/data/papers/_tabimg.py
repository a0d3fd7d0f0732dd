"""What the GAAL image–tabular datasets (DVM, SUN Attribute, CelebA) share: index tables that name the
native file's own lines, finding the native files, and the image + attribute-columns dataset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mmbalance.data.manifest import ManifestDataset
from mmbalance.data.table import Table
from mmbalance.errors import ConfigError, DataError

IMAGE, SPLIT = "image_file", "split"  # the columns a builder adds beside the dataset's own


class IndexTable(Table):
    """A :class:`Table` built from a native index file whose row ``i`` sits at ``first + i`` in the file
    (``unit`` ``"line"`` for text files, ``"entry"`` for MATLAB cell arrays): errors name that place."""

    def __init__(
        self, columns: Mapping[str, Sequence[Any]], source: Path, root: Path, first: int, unit: str = "line"
    ) -> None:
        super().__init__(columns, str(source), root, csv_lines=False)
        self.first, self.unit = first, unit

    def where(self, row: int, column: str | None = None) -> str:
        return f"{self.source} {self.unit} {row + self.first}" + (f", column {column!r}" if column else "")


def require_root(dataset: str, root: str | Path | None) -> Path:
    """``root`` as an existing folder; a one-line ConfigError when it is not given or not a folder."""
    if root is None:
        raise ConfigError(
            f"dataset {dataset} needs root, the folder the dataset was unpacked in: "
            f"dataset__root=PATH (see docs/datasets/{dataset}.md)"
        )
    path = Path(root).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"dataset {dataset}: root={str(root)!r} is not a folder; expected the unpacked dataset"
        )
    return path


def find(root: Path, candidates: Sequence[str], what: str) -> Path:
    """The first of ``candidates`` (paths under ``root``) that exists; a DataError naming them all if none."""
    for c in candidates:
        if (root / c).exists():
            return root / c
    looked = " or ".join(str(root / c) for c in candidates)
    raise DataError(f"{what} not found: expected {looked}")


def attribute_dataset(
    table: Table,
    attributes: Sequence[str],
    label: str,
    image: Mapping[str, Any],
) -> ManifestDataset:
    """Images (column :data:`IMAGE`) and binary attributes (cells ``"0"``/``"1"``): ``label`` is the class,
    the other attributes are the tabular modality, each a two-valued categorical field (one-hot over the
    training values plus the columns source's slot for an unseen value, which stays 0). ``image`` holds
    the image source's options (size, normalize, augment)."""
    if label not in attributes:
        raise ConfigError(
            f"label={label!r} is not one of the dataset's attributes; expected one of {', '.join(attributes)}"
        )
    features = [a for a in attributes if a != label]
    modalities = {
        "image": {"kind": "image", "column": IMAGE, "channels": 3, **image},
        "tabular": {"kind": "columns", "columns": features, "categorical": features},
    }
    return ManifestDataset(table, modalities, label=label, split_column=SPLIT, id_column=IMAGE)


def write_jpg(path: Path, rgb: tuple[int, int, int], size: int = 8) -> None:
    """A small solid-colour JPEG (fixtures: the colour carries the class, and survives compression)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), rgb).save(path, quality=95)
