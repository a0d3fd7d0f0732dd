"""What the loggers of :mod:`mmbalance.tracking` are given, read from a run directory: the history rows,
the flattened config and the final metrics. Pure values: nothing here opens a logger."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def read_history(path: Path) -> list[dict[str, float]]:
    """``history.csv`` as rows of floats (columns that are not numbers are left out); none if absent."""
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return [
            {k: v for k, v in ((k, _number(v)) for k, v in row.items()) if v is not None}
            for row in csv.DictReader(f)
        ]


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """A nested config as ``{"dotted.key": "value"}`` (lists and scalars as text).

    >>> flatten({"train": {"seed": 0, "device": "cpu"}, "model": {"encoders": {}}})
    {'train.seed': '0', 'train.device': 'cpu', 'model.encoders': '{}'}
    """
    out: dict[str, str] = {}
    for key, value in cfg.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = json.dumps(value) if isinstance(value, (Mapping, list, tuple)) else str(value)
    return out


def final_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of ``metrics.json`` as ``final/...`` keys named like the history's columns
    (``final/test_acc``, ``final/test_a_acc``, ``final/probe_test_a_acc``, ``final/best_epoch``)."""
    from mmbalance.trainer import flat_metrics

    found = {k: metrics[k] for k in ("best_epoch", "epochs_run", "train_seconds") if k in metrics}
    for split in ("val", "test"):
        found.update(flat_metrics(split, metrics[split]))
        for m, sub in metrics.get("probe", {}).get(split, {}).items():
            found.update({f"probe_{split}_{m}_{k}": v for k, v in sub.items()})
    return {
        f"final/{k}": float(v)
        for k, v in found.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
