"""Your own data: a manifest (CSV, Parquet, DataFrame) whose columns name files, texts and values.

Registered as the dataset ``manifest``: ``dataset: {name: manifest, path: train.csv, label: diagnosis,
modalities: {...}}`` or ``mmbalance train --data train.csv --modalities ... --label diagnosis``. Samples are
read lazily, one row at a time, by one :class:`~mmbalance.data.sources.Source` per modality; everything
fitted on the training rows (statistics, categories, vocabulary, class names) is plain data
(:meth:`ManifestDataset.preprocessing`) that the run directory keeps, so evaluation and prediction replay
exactly the same preprocessing. See docs/data.md.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mmbalance.data.registry import DATASETS
from mmbalance.data.sources import SOURCES, Source
from mmbalance.data.sources.columns import as_number, canonical
from mmbalance.data.spec import normalise_modalities
from mmbalance.data.table import Table, read_table
from mmbalance.errors import ConfigError, DataError
from mmbalance.types import Sample

SPLITS = ("train", "val", "test")


def class_order(values: Sequence[str]) -> list[str]:
    """Class names sorted numerically when every name is a number, else as text.

    >>> class_order(["10", "9", "1"]), class_order(["no", "yes"])
    (['1', '9', '10'], ['no', 'yes'])
    """
    if all(as_number(v) is not None for v in values):
        return sorted(values, key=lambda v: float(v))
    return sorted(values)


class ManifestDataset:
    """Map-style dataset over a :class:`Table`: ``dataset[i]`` reads row ``i`` of every modality.

    ``label`` names the label column; without ``classes`` (training) the class names are the label values
    of the training rows, fixed by :meth:`fit`; with ``classes`` (a saved run) a label outside them is an
    error, and ``label_required=False`` allows a manifest without labels (prediction: label ``-1``).
    """

    name = "manifest"
    standardize: tuple[str, ...] = ()

    def __init__(
        self,
        table: Table,
        modalities: Mapping[str, Any] | str,
        label: str = "label",
        split_column: str | None = None,
        id_column: str | None = None,
        classes: Sequence[str] | None = None,
        label_required: bool = True,
        strict: bool = True,
    ) -> None:
        self.table, self.label_column, self.split_column = table, label, split_column
        self.spec = normalise_modalities(modalities)
        self.sources: dict[str, Source] = {m: SOURCES[s["kind"]](m, table, s) for m, s in self.spec.items()}
        if strict:  # prediction checks row by row instead, so one bad row does not stop the others
            for s in self.sources.values():
                s.check()
        self.id_column = id_column
        self._fingerprint: str | None = None
        self.ids = self._ids(id_column)
        self.label_required = label_required
        self._raw = self._raw_labels(label_required)
        self.class_names: list[str] | None = None
        self.labels = torch.full((len(table),), -1, dtype=torch.long)
        if classes is not None:
            self._set_classes(list(classes))
        elif self._raw is not None:  # provisional classes (all rows) so that splits can stratify
            self.labels = self._index(class_order(sorted({v for v in self._raw if v is not None})))
        self.missing: dict[str, float] = {}
        self.missing_seed = 0
        self.augment_seed: int | None = None

    # -- labels, ids, splits ------------------------------------------------------------------------
    def _raw_labels(self, required: bool) -> list[str | None] | None:
        if self.label_column not in self.table.columns and not required:
            return None
        cells = self.table.column(self.label_column, "label column")
        if required:
            for i, v in enumerate(cells):
                if v is None:
                    raise DataError(
                        f"{self.table.where(i, self.label_column)}: empty label; expected a class"
                    )
        return [None if v is None else canonical(v) for v in cells]

    def _index(self, names: list[str]) -> Tensor:
        pos = {c: i for i, c in enumerate(names)}
        return torch.tensor([-1 if v is None else pos[v] for v in self._raw or []], dtype=torch.long)

    def _set_classes(self, names: list[str]) -> None:
        if self._raw is not None:
            for i, v in enumerate(self._raw):
                if v is not None and v not in names:
                    if not self.label_required:  # prediction: a label it cannot use is no label
                        self._raw[i] = None
                        continue
                    raise DataError(
                        f"{self.table.where(i, self.label_column)}: label {v!r} is not one of the training "
                        f"classes {names}"
                    )
            self.labels = self._index(names)
        self.class_names = names

    def _ids(self, column: str | None) -> list[Any]:
        if column is None:
            return list(range(len(self.table)))
        cells, seen = self.table.column(column, "id column"), {}
        for i, v in enumerate(cells):
            if v is None:
                raise DataError(f"{self.table.where(i, column)}: empty id; expected a unique id per row")
            if v in seen:
                raise DataError(
                    f"{self.table.where(i, column)}: id {v!r} repeats {self.table.where(seen[v])}; "
                    "expected unique ids"
                )
            seen[v] = i
        return cells

    def split(self) -> dict[str, Tensor] | None:
        """The train/val/test rows of ``split_column`` (``None`` when the manifest has none)."""
        if self.split_column is None:
            return None
        parts: dict[str, list[int]] = {k: [] for k in SPLITS}
        for i, v in enumerate(self.table.column(self.split_column, "split column")):
            if v not in parts:
                raise DataError(
                    f"{self.table.where(i, self.split_column)}: {v!r}; expected one of train, val, test"
                )
            parts[v].append(i)
        for k, rows in parts.items():
            if not rows:
                raise DataError(f"{self.table.source}: column {self.split_column!r} has no {k!r} row")
        return {k: torch.tensor(v, dtype=torch.long) for k, v in parts.items()}

    # -- preprocessing ------------------------------------------------------------------------------
    def fit(self, train_index: Tensor, others: Mapping[str, Tensor] | None = None) -> None:
        """Fit every source and the class names on the training rows; a class of ``others`` (val, test)
        that no training row has is an error."""
        rows = train_index.tolist()
        raw = self._raw or []
        names = class_order(sorted({raw[i] for i in rows if raw[i] is not None}))
        for part, idx in (others or {}).items():
            for i in idx.tolist():
                if raw[i] is not None and raw[i] not in names:
                    raise DataError(
                        f"{self.table.where(i, self.label_column)}: class {raw[i]!r} is in the {part} "
                        "split but in no training row; expected every class in train"
                    )
        self._set_classes(names)
        for s in self.sources.values():
            s.fit(rows)

    def preprocessing(self) -> dict[str, Any]:
        return {
            "classes": self.class_names,
            "sources": {m: s.state() for m, s in self.sources.items()},
            "fingerprint": self.fingerprint(),
        }

    def fingerprint(self) -> str:
        """A hash of the table's columns and cells: a run's split and fit belong to exactly these rows
        (computed once; the table does not change)."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            for name, cells in self.table.columns.items():
                h.update(json.dumps([name, [None if v is None else str(v) for v in cells]]).encode())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def load_preprocessing(self, state: Mapping[str, Any]) -> None:
        saved = state.get("fingerprint")
        if saved is not None and saved != self.fingerprint():
            raise DataError(
                f"{self.table.source} has changed since the run was trained on it (its rows no longer match "
                "the run's split and preprocessing); train a new run on it"
            )
        self._set_classes(list(state["classes"]))
        for m, s in self.sources.items():
            s.load_state(state["sources"][m])

    # -- the dataset protocol -----------------------------------------------------------------------
    @property
    def modalities(self) -> list[str]:
        return list(self.sources)

    @property
    def num_classes(self) -> int:
        if self.class_names is None:
            raise ConfigError("the manifest's classes are not fixed yet; call fit() or load_preprocessing()")
        return len(self.class_names)

    @property
    def default_encoders(self) -> dict[str, dict[str, Any]]:
        return {m: s.default_encoder() for m, s in self.sources.items()}

    def augments(self, modality: str) -> bool:
        """Whether the training view augments ``modality`` (its inputs then differ from epoch to epoch)."""
        return bool(self.sources[modality].opts.get("augment", False))

    def input_shape(self, modality: str) -> tuple[int, ...]:
        return tuple(self.sources[modality].shape)

    def __len__(self) -> int:
        return len(self.table)

    @property
    def needs_epoch(self) -> bool:
        """A training view that augments draws from ``(seed, epoch, row)``: the sampler passes the epoch."""
        return self.augment_seed is not None

    def __getitem__(self, key: int | tuple[int, int]) -> Sample:
        row, epoch = key if isinstance(key, tuple) else (key, 0)
        g = None
        if self.augment_seed is not None:
            g = torch.Generator().manual_seed((self.augment_seed * 1_000_003 + epoch) * 1_000_003 + row)
        inputs, present = {}, {}
        for m, s in self.sources.items():
            frac = self.missing.get(m, 0.0)
            if frac >= 1.0:
                inputs[m], present[m] = s.fill(), False
            elif frac > 0.0:
                inputs[m], present[m] = s.drop(row, frac, self.missing_seed)
            else:
                inputs[m], present[m] = s.read(row, train=g is not None, generator=g)
        return Sample(inputs, int(self.labels[row]), int(row), present)

    def train_view(self, seed: int) -> ManifestDataset:
        """The same rows with training augmentation, drawn from ``(seed, epoch, row)``."""
        view = copy.copy(self)
        view.augment_seed = seed
        return view

    def with_missing(self, spec: dict[str, float], seed: int) -> ManifestDataset:
        """A copy in which each modality of ``spec`` is absent (1.0) or loses that fraction of its columns."""
        for m, frac in spec.items():
            if frac < 1.0:
                self.sources[m].drop(0, frac, seed)  # a source that cannot drop a fraction says so now
        view = copy.copy(self)
        view.missing, view.missing_seed = dict(spec), seed
        return view

    def rows_for(self, table: Table, label_required: bool = False, strict: bool = True) -> ManifestDataset:
        """The same sources and fitted preprocessing over another table (prediction, evaluation on new
        rows); ``strict=False`` leaves bad cells to be found row by row. The id column carries over when
        the new table has it."""
        new = ManifestDataset(
            table,
            self.spec,
            self.label_column,
            None,
            self.id_column if self.id_column in table.columns else None,
            classes=self.class_names,
            label_required=label_required,
            strict=strict,
        )
        new.load_preprocessing({k: v for k, v in self.preprocessing().items() if k != "fingerprint"})
        return new


@DATASETS.register("manifest")
def manifest(
    path: str | None = None,
    modalities: Any = None,
    label: str = "label",
    split_column: str | None = None,
    id_column: str | None = None,
    root: str | None = None,
) -> ManifestDataset:
    """Your own data: a CSV or Parquet manifest at ``path`` (paths in it relative to its folder) with the
    ``modalities`` of ``--modalities`` (see :mod:`mmbalance.data.spec`), the ``label`` column, and optionally
    a ``split_column`` (train/val/test) and an ``id_column`` (unique ids). ``root``: the folder relative file
    paths resolve against (default: the manifest's folder)."""
    if path is None or modalities is None:
        raise ConfigError(
            "dataset manifest needs path and modalities, e.g. --data train.csv "
            "--modalities image=image:photo --label diagnosis"
        )
    table = read_table(path)
    if root is not None:
        table.root = Path(root).expanduser()
    return ManifestDataset(table, modalities, str(label), split_column, id_column)
