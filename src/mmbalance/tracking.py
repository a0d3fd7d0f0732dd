"""Optional experiment tracking: a run's config, per-epoch history and final metrics mirrored to TensorBoard
and/or MLflow (``--logger tensorboard,mlflow``; the ``track`` extra installs both).

The run directory stays the source of truth: a logger only copies what ``config.yaml``, ``history.csv``
and ``metrics.json`` hold, after they are written. What each logger has copied is kept in the run
directory's ``tracking.json`` (the epochs logged, whether the final metrics were, MLflow's run id), so a
resumed run logs only the epochs recorded since, and a finished run reused with a logger it was not
trained with is mirrored once, whole. A logger that fails is reported in one line and left off for the
rest of that run; training and the run directory never depend on it.

* TensorBoard: event files under ``RUN/tensorboard/`` — every numeric history column as a scalar at
  ``step = epoch``, the config as text, the final metrics as ``final/...`` scalars.
* MLflow: one MLflow run per run directory in experiment :attr:`Tracking.experiment`, its params the
  flattened config (``train.seed``, ``model.encoders.a.name``, ...), each history column a metric at
  ``step = epoch``, the final metrics as ``final/...``, and the run directory's path as the tag
  ``mmbalance.run_dir``. The store is ``--mlflow-uri`` if given, else ``mlruns/mlflow.db`` (SQLite) under
  the current directory.
"""

from __future__ import annotations

import csv
import importlib
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmbalance.errors import ConfigError

LOGGERS = {"tensorboard": "tensorboard", "mlflow": "mlflow"}  # logger -> the module it needs
STATE = "tracking.json"


@dataclass(frozen=True)
class Tracking:
    """Which loggers mirror each run (none: tracking is off), and where MLflow writes."""

    loggers: tuple[str, ...] = ()
    mlflow_uri: str | None = None
    experiment: str = "mmbalance"
    root: str | None = None  # MLflow run names are run directories relative to it (else their last part)

    def uri(self) -> str:
        """The MLflow tracking URI: ``--mlflow-uri``, else SQLite in ``./mlruns/mlflow.db``."""
        if self.mlflow_uri:
            return self.mlflow_uri
        folder = Path("mlruns").resolve()
        folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{folder / 'mlflow.db'}"


def parse_tracking(
    text: str | None, mlflow_uri: str | None = None, experiment: str = "mmbalance", root: str | None = None
) -> Tracking:
    """``--logger`` (a comma list of ``tensorboard``, ``mlflow``) and ``--mlflow-uri`` as :class:`Tracking`;
    an unknown logger, a URI without ``mlflow``, or a logger whose package is missing is one line."""
    names = tuple(dict.fromkeys(t.strip() for t in (text or "").split(",") if t.strip()))
    for name in names:
        if name not in LOGGERS:
            raise ConfigError(f"--logger {name!r} is unknown; expected tensorboard, mlflow or both: 'a,b'")
        require(name)
    if mlflow_uri and "mlflow" not in names:
        raise ConfigError(f"--mlflow-uri {mlflow_uri!r} given without --logger mlflow")
    return Tracking(names, mlflow_uri, experiment, root)


def require(name: str) -> None:
    """Import the package of logger ``name``, or raise one line naming the ``track`` extra."""
    try:
        importlib.import_module(LOGGERS[name])
    except ImportError as exc:
        raise ConfigError(
            f"--logger {name} needs the {LOGGERS[name]} package ({exc}); pip install 'mmbalance[track]'"
        ) from exc


def prepare(tracking: Tracking) -> None:
    """Open each logger's store once before runs start (MLflow: create its tables and the experiment), so a
    bad ``--mlflow-uri`` fails in one line up front and parallel runs do not race to create them."""
    if "mlflow" in tracking.loggers:
        from mmbalance.tracking_backends import mlflow_experiment

        try:
            mlflow_experiment(tracking)
        except Exception as exc:
            reason = " ".join(str(exc).split())[:200]
            raise ConfigError(f"--mlflow-uri {tracking.uri()!r} cannot be used ({reason})") from exc


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


def train_tracked(
    cfg: Mapping[str, Any],
    out: str | Path,
    tracking: Tracking | None = None,
    on_epoch: Callable[[Any, Any], None] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """:func:`mmbalance.experiment.train_run` with each epoch and the end of the run mirrored to the
    loggers of ``tracking`` (also when the run is a finished one, reused); ``options`` go to ``train_run``."""
    from mmbalance.experiment import train_run

    if tracking is None or not tracking.loggers:
        return train_run(cfg, out, on_epoch=on_epoch, **options)
    tracker = RunTracker(Path(out), tracking)

    def epoch_done(trainer: Any, state: Any) -> None:
        tracker.sync()
        if on_epoch is not None:
            on_epoch(trainer, state)

    try:
        metrics = train_run(cfg, out, on_epoch=epoch_done, **options)
        tracker.sync()
        return metrics
    finally:
        tracker.close()


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
