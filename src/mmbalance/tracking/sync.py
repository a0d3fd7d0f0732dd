"""Mirroring one run directory to the loggers of :mod:`mmbalance.tracking`: what is new since the last
sync (per ``RUN/tracking.json``), handed to the loggers of :mod:`mmbalance.tracking.backends`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mmbalance.tracking.backends import open_backend
from mmbalance.tracking.options import Tracking
from mmbalance.tracking.values import read_history

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


def _read_state(out: Path) -> dict[str, Any]:
    path = out / STATE
    return json.loads(path.read_text()) if path.exists() else {}  # type: ignore[no-any-return]


def _write_state(out: Path, state: Mapping[str, Any]) -> None:
    tmp = out / f".{STATE}.tmp"
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(out / STATE)
