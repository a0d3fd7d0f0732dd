"""The two loggers of :mod:`mmbalance.tracking`: TensorBoard event files in the run directory and one MLflow
run per run directory. Each takes history rows and the final metrics, both as the run directory holds them;
``open_backend`` also returns what the run directory's ``tracking.json`` should say the logger has (its
counts start again when the logger's earlier output is gone: a removed ``tensorboard/`` folder, another
MLflow store, a deleted MLflow run)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mmbalance.tracking.options import Tracking
from mmbalance.tracking.values import final_metrics, flatten

MLFLOW_BATCH = {"params": 100, "metrics": 1000}  # MLflow's limits per log_batch call
RUN_DIR_TAG = "mmbalance.run_dir"


def open_backend(
    name: str, out: Path, tracking: Tracking, done: Mapping[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """The logger ``name`` for run directory ``out`` and its updated ``tracking.json`` entry."""
    if name == "tensorboard":
        return TensorBoardLog.open(out, done)
    return MLflowLog.open(out, tracking, done)


def _config(out: Path) -> dict[str, Any]:
    from mmbalance import config as config_mod

    return config_mod.load_file(out / "config.yaml")


class TensorBoardLog:
    """Scalars and the config in ``RUN/tensorboard/``; a resumed run adds an event file with the new steps."""

    def __init__(self, folder: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(folder))

    @classmethod
    def open(cls, out: Path, done: Mapping[str, Any]) -> tuple[TensorBoardLog, dict[str, Any]]:
        folder = out / "tensorboard"
        state = dict(done) if folder.is_dir() else {}
        log = cls(folder)
        if not state.get("config"):
            from mmbalance import config as config_mod

            text = config_mod.dump(_config(out))
            log.writer.add_text("config", "    " + text.replace("\n", "\n    "), 0)  # markdown code block
            state["config"] = True
        return log, state

    def log_epochs(self, rows: Sequence[Mapping[str, float]]) -> None:
        for row in rows:
            for key, value in row.items():
                if key != "epoch":
                    self.writer.add_scalar(key, value, int(row["epoch"]))

    def log_final(self, metrics: Mapping[str, Any]) -> None:
        for key, value in final_metrics(metrics).items():
            self.writer.add_scalar(key, value, int(metrics["best_epoch"]))

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def mlflow_client(tracking: Tracking) -> Any:
    """An ``MlflowClient`` on the tracking URI (its store's INFO lines silenced). MLflow 3 refuses a
    ``file:`` store unless ``MLFLOW_ALLOW_FILE_STORE`` is set; naming one in ``--mlflow-uri`` sets it."""
    from mlflow.tracking import MlflowClient

    uri = tracking.uri()
    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return MlflowClient(tracking_uri=uri)


def mlflow_experiment(tracking: Tracking) -> tuple[Any, str]:
    """The client and the id of experiment ``tracking.experiment``, created if absent (another process
    creating it at the same moment is fine)."""
    client = mlflow_client(tracking)
    found = client.get_experiment_by_name(tracking.experiment)
    if found is None:
        try:
            return client, client.create_experiment(tracking.experiment)
        except Exception:
            found = client.get_experiment_by_name(tracking.experiment)
            if found is None:
                raise
    return client, found.experiment_id


class MLflowLog:
    """One MLflow run per run directory: params once, metrics per epoch and at the end."""

    def __init__(self, client: Any, run_id: str) -> None:
        self.client, self.run_id, self.finished = client, run_id, False

    @classmethod
    def open(cls, out: Path, tracking: Tracking, done: Mapping[str, Any]) -> tuple[MLflowLog, dict[str, Any]]:
        client, experiment_id = mlflow_experiment(tracking)
        run_id = done.get("run_id") if done.get("uri") == tracking.uri() else None
        if run_id is not None and _run_exists(client, run_id):
            log = cls(client, run_id)
            log.finished = bool(done.get("final"))
            if not log.finished:
                client.update_run(run_id, status="RUNNING")
            return log, dict(done)
        root = Path(tracking.root) if tracking.root else None
        name = str(out.resolve().relative_to(root.resolve())) if root and _under(out, root) else out.name
        run = client.create_run(experiment_id, run_name=name, tags={RUN_DIR_TAG: str(out.resolve())})
        log = cls(client, run.info.run_id)
        from mlflow.entities import Param

        params = [Param(k, v[:6000]) for k, v in flatten(_config(out)).items()]
        for i in range(0, len(params), MLFLOW_BATCH["params"]):
            client.log_batch(log.run_id, params=params[i : i + MLFLOW_BATCH["params"]])
        return log, {"run_id": log.run_id, "uri": tracking.uri()}

    def _metrics(self, values: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for k, v in values.items()]
        for i in range(0, len(metrics), MLFLOW_BATCH["metrics"]):
            self.client.log_batch(self.run_id, metrics=metrics[i : i + MLFLOW_BATCH["metrics"]])

    def log_epochs(self, rows: Sequence[Mapping[str, float]]) -> None:
        for row in rows:
            self._metrics({k: v for k, v in row.items() if k != "epoch"}, int(row["epoch"]))

    def log_final(self, metrics: Mapping[str, Any]) -> None:
        self._metrics(final_metrics(metrics), int(metrics["best_epoch"]))
        self.client.set_terminated(self.run_id, "FINISHED")
        self.finished = True

    def flush(self) -> None:
        """MLflow writes each batch at once."""

    def close(self) -> None:
        """A run that stopped before its end is marked ``KILLED``; resuming it sets it running again."""
        if not self.finished:
            self.client.set_terminated(self.run_id, "KILLED")


def _run_exists(client: Any, run_id: str) -> bool:
    try:
        return client.get_run(run_id).info.lifecycle_stage == "active"
    except Exception:
        return False


def _under(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())
