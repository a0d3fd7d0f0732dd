"""``logreg``: a logistic regression on the raw input features, the reference row of ``mmbalance compare``.

Every modality's input, as the dataset gives it after its preprocessing (fitted on the training rows; a
missing modality is its imputed value), is flattened and the modalities are concatenated in the
dataset's order. The rows and splits are those a deep run of the same config and seed uses
(:func:`mmbalance.experiment.build`). For each ``C`` of :data:`C_GRID` a :func:`mmbalance.probe.fit_probe`
(L2 multinomial logistic regression, features standardised with training-split statistics) is fitted
on the training split; the ``C`` with the best validation accuracy is kept (ties: the first in the grid,
in :data:`C_GRID` the strongest penalty) and the test split is scored once, with that fit alone.

A run directory holds ``config.yaml`` (the data settings, the seed and the grid), ``split.json`` (the
rows of each split, as a trained run's) and ``metrics.json`` in the shape of a trained run's (no
per-modality metrics, no epochs); a finished directory is reused when its data settings, seed and grid
are the same, and another config there is refused.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mmbalance import config as config_mod
from mmbalance.data import BatchLoader
from mmbalance.errors import ConfigError
from mmbalance.metrics import accuracy, classification_metrics
from mmbalance.probe import LinearProbe, fit_probe

LOGREG = "logreg"
"""The method name ``compare --methods`` accepts."""
C_GRID: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)
"""Inverse L2 penalty strengths tried; the validation split chooses one."""


def raw_features(dataset: Any, rows: Tensor, batch_size: int = 512) -> tuple[Tensor, Tensor]:
    """``([N, D] float64 features, [N] labels)`` of ``rows``: each modality's input flattened, the modalities
    concatenated in the dataset's order (no augmentation; rows in the order given)."""
    xs, ys = [], []
    for batch in BatchLoader(dataset, rows, batch_size):
        parts = [batch.inputs[m].flatten(1).to("cpu", torch.float64) for m in dataset.modalities]
        xs.append(torch.cat(parts, dim=1))
        ys.append(batch.label.cpu())
    return torch.cat(xs), torch.cat(ys)


def select_c(
    train: tuple[Tensor, Tensor], val: tuple[Tensor, Tensor], num_classes: int, grid: Sequence[float] = C_GRID
) -> tuple[float, LinearProbe, dict[float, float]]:
    """Fit one probe per ``C`` of ``grid`` on ``train``; return the ``C`` with the highest accuracy on
    ``val`` (ties: the earliest in ``grid``), its probe, and every ``C``'s validation accuracy."""
    if not grid:
        raise ConfigError("logreg needs at least one C to try; got an empty grid")
    fits = {c: fit_probe(*train, num_classes, c=c) for c in grid}
    val_acc = {c: accuracy(probe.scores(val[0]), val[1]) for c, probe in fits.items()}
    best = max(grid, key=lambda c: (val_acc[c], -list(grid).index(c)))
    return best, fits[best], val_acc


def fit_logreg(setup: Any, grid: Sequence[float] = C_GRID) -> dict[str, Any]:
    """The metrics of a logistic regression on a built setup's raw features (``metrics.json``'s shape)."""
    data = {k: raw_features(setup.dataset, rows) for k, rows in setup.split.items()}
    start = time.perf_counter()
    c, probe, val_acc = select_c(data["train"], data["val"], setup.dataset.num_classes, grid)
    seconds = time.perf_counter() - start

    def scored(split: str) -> dict[str, Any]:
        x, y = data[split]
        return {**classification_metrics(probe.scores(x).float(), y), "modalities": {}}

    return {
        "val": scored("val"),
        "test": scored("test"),
        "best_epoch": None,
        "epochs_run": 0,
        "train_seconds": seconds,
        "logreg": {
            "c": c,
            "val_acc": {str(k): v for k, v in val_acc.items()},
            "features": int(data["train"][0].shape[1]),
        },
    }


def saved_config(cfg: Mapping[str, Any], grid: Sequence[float]) -> dict[str, Any]:
    """What a logreg run directory's ``config.yaml`` holds: the data settings, the seed and the grid."""
    same = {
        "dataset": dict(cfg["dataset"]),
        "data": {"split": list(cfg["data"]["split"])},
        "method": {"name": LOGREG, "c_grid": [float(c) for c in grid]},
    }
    digest = hashlib.sha256(json.dumps(same, sort_keys=True).encode()).hexdigest()[:12]
    return {
        **same,
        "train": {"seed": cfg["train"]["seed"], "epochs": cfg["train"]["epochs"]},
        config_mod.DERIVED: {"config_hash": digest},
    }


def check_logreg_dir(out: Path, cfg: Mapping[str, Any], grid: Sequence[float] = C_GRID) -> None:
    """Refuse a directory whose ``config.yaml`` is not a logreg run on these data, seed and grid."""
    if not (out / "config.yaml").exists():
        return
    import yaml

    saved, want = yaml.safe_load((out / "config.yaml").read_text()) or {}, saved_config(cfg, grid)
    same_seed = (saved.get("train") or {}).get("seed") == want["train"]["seed"]
    if saved.get(config_mod.DERIVED) != want[config_mod.DERIVED] or not same_seed:
        raise ConfigError(
            f"{out} holds a run with another config than logreg on these data, seed and C grid; "
            "use a new --out directory or remove that one"
        )


def logreg_run(cfg: Mapping[str, Any], out: str | Path, grid: Sequence[float] = C_GRID) -> dict[str, Any]:
    """Fit and score one (config, seed) into ``out``, or read back a finished run of the same settings."""
    from mmbalance.experiment import build

    out = Path(out)
    check_logreg_dir(out, cfg, grid)
    if (out / "metrics.json").exists():
        return json.loads((out / "metrics.json").read_text())  # type: ignore[no-any-return]
    setup = build(cfg)
    metrics = fit_logreg(setup, grid)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(config_mod.dump(saved_config(cfg, grid)))
    (out / "split.json").write_text(json.dumps({k: v.tolist() for k, v in setup.split.items()}))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics
