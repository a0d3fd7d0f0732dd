"""What ``--logger`` and ``--mlflow-uri`` ask for: the :class:`Tracking` of a command, parsed and checked
(an unknown logger, or one whose package is missing, is one line). The bottom of :mod:`mmbalance.tracking`:
it imports nothing else of the package."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

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
