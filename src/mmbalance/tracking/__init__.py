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

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mmbalance import distributed
from mmbalance.errors import ConfigError
from mmbalance.tracking.backends import mlflow_experiment
from mmbalance.tracking.options import LOGGERS, Tracking, parse_tracking, require
from mmbalance.tracking.sync import RunTracker
from mmbalance.tracking.values import final_metrics, flatten, read_history

__all__ = [
    "LOGGERS",
    "RunTracker",
    "Tracking",
    "final_metrics",
    "flatten",
    "parse_tracking",
    "prepare",
    "read_history",
    "require",
    "train_tracked",
]


def prepare(tracking: Tracking) -> None:
    """Open each logger's store once before runs start (MLflow: create its tables and the experiment), so a
    bad ``--mlflow-uri`` fails in one line up front and parallel runs do not race to create them."""
    if "mlflow" in tracking.loggers:
        try:
            mlflow_experiment(tracking)
        except Exception as exc:
            reason = " ".join(str(exc).split())[:200]
            raise ConfigError(f"--mlflow-uri {tracking.uri()!r} cannot be used ({reason})") from exc


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

    if tracking is None or not tracking.loggers or distributed.launched_rank() != 0:  # rank 0 logs
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
