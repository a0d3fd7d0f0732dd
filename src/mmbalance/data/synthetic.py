"""A generated dataset whose per-modality signal strength is the knob that creates modality imbalance."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mmbalance.data.base import MultimodalDataset
from mmbalance.data.registry import DATASETS
from mmbalance.errors import ConfigError, check_range


@DATASETS.register("synthetic")
def synthetic(
    n_samples: int = 600,
    num_classes: int = 4,
    modalities: Sequence[str] = ("a", "b"),
    dims: Sequence[int] = (16, 16),
    signal: Sequence[float] = (1.0, 0.4),
    noise: float = 1.0,
    data_seed: int = 0,
) -> MultimodalDataset:
    """Gaussian class clusters, one feature vector per modality.

    Row ``i`` of modality ``m`` is ``signal[m] * mu_m[y_i] + noise * eps`` with a fixed random unit-norm
    prototype ``mu_m[c]`` per class scaled to ``sqrt(dim)``. A larger ``signal`` makes a modality easier, so
    ``signal=(1.0, 0.2)`` gives a dominant and a weak modality. ``data_seed`` fixes the data; the run seed
    fixes splits and training.

    >>> ds = synthetic(n_samples=40, num_classes=2)
    >>> ds.modalities, ds.input_shape("a"), len(ds)
    (['a', 'b'], (16,), 40)
    """
    modalities, dims, signal = list(modalities), list(dims), list(signal)
    if not (len(modalities) == len(dims) == len(signal)) or not modalities:
        raise ConfigError(
            f"modalities={modalities}, dims={dims}, signal={signal} must be non-empty and of equal length"
        )
    if n_samples < 2 * num_classes or num_classes < 2:
        raise ConfigError(
            f"n_samples={n_samples}, num_classes={num_classes}: need >=2 classes, >=2 rows each"
        )
    check_range("noise", noise, 0.0)
    g = torch.Generator().manual_seed(data_seed)
    labels = torch.arange(n_samples) % num_classes
    labels = labels[torch.randperm(n_samples, generator=g)]
    inputs = {}
    for m, d, s in zip(modalities, dims, signal, strict=True):
        mu = torch.randn(num_classes, d, generator=g)
        mu = mu / mu.norm(dim=1, keepdim=True) * d**0.5
        inputs[m] = s * mu[labels] + noise * torch.randn(n_samples, d, generator=g)
    return MultimodalDataset(
        name="synthetic",
        inputs=inputs,
        labels=labels,
        num_classes=num_classes,
        default_encoders={m: {"name": "mlp"} for m in modalities},
        standardize=tuple(modalities),
        info="Generated Gaussian clusters; per-modality signal strength sets the imbalance.",
    )
