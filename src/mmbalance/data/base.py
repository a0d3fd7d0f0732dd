"""The in-memory dataset and stratified splits.

Every dataset of this library answers the same protocol (see docs/data.md): ``len``, ``dataset[i]`` (a
:class:`~mmbalance.types.Sample`), ``labels`` (every row's class index, for splits), ``modalities``,
``input_shape(m)``, ``default_encoders``, ``num_classes``/``class_names``, ``fit(train_rows)`` (fit the
preprocessing on the training rows only), ``preprocessing()``/``load_preprocessing(state)`` (that fitted
state as plain data, saved in the run directory) and ``with_missing(spec, seed)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mmbalance.errors import ConfigError, check_range
from mmbalance.types import Batch, Sample


@dataclass
class MultimodalDataset:
    """An in-memory multimodal dataset: one tensor per modality, aligned row by row.

    ``default_encoders`` maps each modality to the encoder config a run uses when the user gives none
    (``{"name": "mlp"}``); ``standardize`` lists the modalities whose features are standardised with
    statistics of the training split (:meth:`standardize_`). ``info`` is free text for ``mmbalance list``
    and reports (source, licence, caveats).
    """

    name: str
    inputs: dict[str, Tensor]
    labels: Tensor
    num_classes: int
    default_encoders: dict[str, dict[str, Any]]
    standardize: tuple[str, ...] = ()
    class_names: list[str] | None = None
    info: str = ""
    stats_: dict[str, tuple[Tensor, Tensor]] = field(default_factory=dict)
    means_: dict[str, Tensor] = field(default_factory=dict)
    present: dict[str, Tensor] = field(default_factory=dict)
    """Per modality, which rows have it (bool ``[N]``); a modality not listed is present in every row."""

    def __post_init__(self) -> None:
        n = int(self.labels.shape[0])
        for m, x in self.inputs.items():
            if int(x.shape[0]) != n:
                raise ConfigError(f"modality {m!r} has {x.shape[0]} rows; expected {n} (one per label)")
        for m in self.standardize:
            if m not in self.inputs:
                raise ConfigError(f"standardize names modality {m!r}; expected one of {sorted(self.inputs)}")

    @property
    def modalities(self) -> list[str]:
        return list(self.inputs)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def input_shape(self, modality: str) -> tuple[int, ...]:
        return tuple(self.inputs[modality].shape[1:])

    def get(self, index: Tensor) -> dict[str, Tensor]:
        """The rows ``index`` of every modality (a batch, not a single sample)."""
        return {m: x[index] for m, x in self.inputs.items()}

    def __getitem__(self, i: int) -> Sample:
        present = {m: bool(p[i]) for m, p in self.present.items()}
        return Sample({m: x[i] for m, x in self.inputs.items()}, int(self.labels[i]), int(i), present)

    def __getitems__(self, rows: Sequence[int]) -> Batch:
        """Rows ``rows`` as one batch, in one indexing operation per modality (the DataLoader's fast path)."""
        index = torch.as_tensor(rows, dtype=torch.long, device=self.labels.device)
        present = {m: p[index] for m, p in self.present.items()}
        partial = {m: p for m, p in present.items() if not bool(p.all())}
        return Batch(self.get(index), self.labels[index], index, partial or None)

    needs_epoch = False

    def split(self) -> dict[str, Tensor] | None:
        """A split the data defines itself (``None``: the run draws a stratified one from its seed)."""
        return None

    def train_view(self, seed: int) -> MultimodalDataset:
        """The dataset the training split is read from (in memory: the same, no augmentation)."""
        return self

    def fit(self, train_index: Tensor, others: dict[str, Tensor] | None = None) -> None:
        """Standardise the listed modalities in place with the mean and std of the training rows; keep the
        training mean of every other feature-vector modality (the value a missing feature is imputed with)."""
        for m, x in self.inputs.items():
            if m not in self.standardize and x.dim() in (2, 4) and x.is_floating_point():
                self.means_[m] = x[train_index].mean(0)  # vectors, images: the imputed value of a missing one
        for m in self.standardize:
            x = self.inputs[m]
            mean = x[train_index].mean(0)
            std = x[train_index].std(0).clamp_min(1e-6)
            self._apply(m, mean, std)

    def standardize_(self, train_index: Tensor) -> None:
        self.fit(train_index)

    def _apply(self, m: str, mean: Tensor, std: Tensor) -> None:
        x = self.inputs[m]
        self.inputs[m] = (x - mean.to(x)) / std.to(x)
        self.stats_[m] = (mean, std)

    def preprocessing(self) -> dict[str, Any]:
        """The fitted standardisation as plain data (lists), for the run directory."""
        return {
            "standardize": {m: {"mean": a.tolist(), "std": b.tolist()} for m, (a, b) in self.stats_.items()},
            "means": {m: v.tolist() for m, v in self.means_.items()},
        }

    def load_preprocessing(self, state: dict[str, Any]) -> None:
        """Apply a saved :meth:`preprocessing` instead of fitting (evaluation and prediction)."""
        for m, st in state.get("standardize", {}).items():
            self._apply(m, torch.tensor(st["mean"]), torch.tensor(st["std"]))
        self.means_ = {m: torch.tensor(v) for m, v in state.get("means", {}).items()}

    def with_missing(self, spec: dict[str, float], seed: int) -> MultimodalDataset:
        """A copy in which modality ``m`` is absent in every row (``spec[m] == 1``: its input is the training
        mean input, the zero vector once standardised, an empty sequence for sequences) or, for a feature
        vector,
        has a fraction ``spec[m]`` of its features missing at random in each row, imputed with the training
        mean (0 once standardised; the raw training mean is used for a modality that is not standardised).
        The random choice is a pure function of ``seed``."""
        from mmbalance.data.missing import drop_features

        inputs, present = dict(self.inputs), dict(self.present)
        for m, frac in spec.items():
            x = inputs[m]
            if frac >= 1.0:  # the training mean input (0 once standardised; zeros for sequences: all masked)
                fill = self.means_[m].to(x) if m in self.means_ else torch.zeros_like(x[0])
                inputs[m] = fill.expand_as(x).clone()
                present[m] = torch.zeros(len(self), dtype=torch.bool, device=x.device)
                continue
            if x.dim() != 2:
                raise ConfigError(
                    f"missing {m}={frac:g}: a fraction of features can go missing only from a feature "
                    "vector; "
                    f"{m!r} has shape {tuple(x.shape[1:])} (use {m}=1.0 to drop the whole modality)"
                )
            fill = self.means_[m].to(x) if m in self.means_ else torch.zeros_like(x[0])
            inputs[m] = drop_features(x, frac, fill, seed)
        return replace(
            self, inputs=inputs, present=present, stats_=dict(self.stats_), means_=dict(self.means_)
        )


def stratified_split(
    labels: Tensor, ratios: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0
) -> dict[str, Tensor]:
    """Split row indices into train/val/test, stratified by class, reproducibly from ``seed``.

    >>> s = stratified_split(torch.arange(10).repeat(10), (0.6, 0.2, 0.2), seed=0)
    >>> [len(s[k]) for k in ("train", "val", "test")]
    [60, 20, 20]
    """
    if len(ratios) != 3:
        raise ConfigError(f"split ratios={list(ratios)} must have 3 entries (train, val, test)")
    for name, r in zip(("train", "val", "test"), ratios, strict=True):
        check_range(f"split ratio {name}", r, 0.0, 1.0)
    if abs(sum(ratios) - 1.0) > 1e-6:
        raise ConfigError(f"split ratios={list(ratios)} sum to {sum(ratios):g}; expected 1")
    rng = np.random.default_rng(seed)
    y = labels.cpu().numpy()
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for c in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == c))
        n_train = round(ratios[0] * len(rows))
        n_val = round(ratios[1] * len(rows))
        parts["train"].append(rows[:n_train])
        parts["val"].append(rows[n_train : n_train + n_val])
        parts["test"].append(rows[n_train + n_val :])
    return {k: torch.from_numpy(np.sort(np.concatenate(v))).long() for k, v in parts.items()}
