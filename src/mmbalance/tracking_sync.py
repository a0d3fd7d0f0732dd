"""Mirroring one run directory to the loggers of :mod:`mmbalance.tracking`: what is new since the last
sync (per ``RUN/tracking.json``) and the values the loggers are given (flattened config, final metrics)."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mmbalance.tracking import Tracking

STATE = "tracking.json"  # per logger: the epochs logged, whether the final metrics were, MLflow's run id


def _warn(message: str) -> None:
    print(f"mmbalance: warning: {message}", file=sys.stderr)


class RunTracker:
    """Mirrors one run directory to the loggers of ``tracking``; :meth:`sync` copies what is new."""

    def __init__(self, out: Path, tracking: Tracking, warn: Callable[[str], None] = _warn) -> None:
        self.out, self.tracking, self.warn = Path(out), tracking, warn
        self.backends: dict[str, Any] = {}
        self.failed: set[str] = set()

    def sync(self) -> None:
        """Log every history row and, once ``metrics.json`` exists, the final metrics, that no earlier sync
        of this run directory logged; a logger that raises is warned about once and skipped from then on."""
        if not self.tracking.loggers or not (self.out / "config.yaml").exists():
            return
        state = _read_state(self.out)
        for name in self.tracking.loggers:
            if name in self.failed:
                continue
            try:
                state[name] = self._sync_one(name, dict(state.get(name, {})))
            except Exception as exc:
                self.failed.add(name)
                reason = " ".join(str(exc).split())[:200]
                self.warn(
                    f"{name} logging of {self.out} failed ({type(exc).__name__}: {reason}); the run goes on"
                )
            _write_state(self.out, state)

    def _sync_one(self, name: str, done: dict[str, Any]) -> dict[str, Any]:
        rows = read_history(self.out / "history.csv")
        metrics = self.out / "metrics.json"
        final = metrics.exists() and not done.get("final")
        if name not in self.backends:
            if len(rows) <= done.get("epochs", 0) and not final:
                return done  # nothing new (a reused run mirrored before): the store is not even opened
            from mmbalance.tracking_backends import open_backend

            self.backends[name], done = open_backend(name, self.out, self.tracking, done)
            final = metrics.exists() and not done.get("final")
        backend = self.backends[name]
        if len(rows) > done.get("epochs", 0):
            backend.log_epochs(rows[done.get("epochs", 0) :])
            done["epochs"] = len(rows)
        if final:
            backend.log_final(json.loads(metrics.read_text()))
            done["final"] = True
        backend.flush()
        return done

    def close(self) -> None:
        """Close every logger opened (a failing close is warned about, never raised)."""
        for name, backend in self.backends.items():
            try:
                backend.close()
            except Exception as exc:
                self.warn(f"closing the {name} logger of {self.out} failed ({type(exc).__name__}: {exc})")
        self.backends.clear()


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


def _read_state(out: Path) -> dict[str, Any]:
    path = out / STATE
    return json.loads(path.read_text()) if path.exists() else {}  # type: ignore[no-any-return]


def _write_state(out: Path, state: Mapping[str, Any]) -> None:
    tmp = out / f".{STATE}.tmp"
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(out / STATE)


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
