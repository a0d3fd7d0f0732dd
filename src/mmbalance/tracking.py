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

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmbalance import distributed
from mmbalance.errors import ConfigError

LOGGERS = {"tensorboard": "tensorboard", "mlflow": "mlflow"}  # logger -> the module it needs


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
    from mmbalance.tracking_sync import RunTracker

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
