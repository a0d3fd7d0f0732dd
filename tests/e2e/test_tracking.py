"""``--logger tensorboard|mlflow``: each run mirrored to TensorBoard event files and MLflow runs, read back
with the packages' own readers; resume and reuse log no step twice; a failing or missing logger: one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from mmbalance import config
from mmbalance.cli import main
from mmbalance.tracking import Tracking, train_tracked
from mmbalance.tracking.values import read_history

pytest.importorskip("tensorboard")
pytest.importorskip("mlflow")

TINY = ["dataset__n_samples=120", "data__batch_size=16", "model__feature_dim=8", "train__device=cpu"]


def train(out: Path, *extra: str, epochs: int = 2) -> int:
    args = ["train", "--dataset", "synthetic", "--epochs", str(epochs), "--out", str(out), "--quiet"]
    return main([*args, *extra, *TINY])


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag of the event files in ``folder``: its ``(step, value)`` points in order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.fixture
def mlflow_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for it to read a file: store
    return f"file:{tmp_path / 'mlruns'}"


def mlflow_runs(uri: str, experiment: str = "mmbalance") -> tuple[Any, list[Any]]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    return client, client.search_runs([found.experiment_id])


def test_tensorboard_scalars_are_the_history(tmp_path: Path) -> None:
    assert train(tmp_path / "run", "--logger", "tensorboard") == 0
    history = read_history(tmp_path / "run" / "history.csv")
    found = scalars(tmp_path / "run" / "tensorboard")
    assert len(history) == 2 and {"val_acc", "train_loss"} <= set(found)
    for key in history[0]:
        if key != "epoch":
            expected = [(int(row["epoch"]), row[key]) for row in history]
            assert [s for s, _ in found[key]] == [s for s, _ in expected]
            assert [v for _, v in found[key]] == pytest.approx([v for _, v in expected], rel=1e-6)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert found["final/test_acc"] == [(metrics["best_epoch"], pytest.approx(metrics["test"]["acc"]))]


def test_mlflow_run_has_the_config_history_and_final_metrics(tmp_path: Path, mlflow_uri: str) -> None:
    out = tmp_path / "run"
    assert train(out, "--logger", "mlflow", "--mlflow-uri", mlflow_uri) == 0
    client, runs = mlflow_runs(mlflow_uri)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    run = runs[0]
    saved = config.load_file(out / "config.yaml")
    assert run.data.params["train.seed"] == "0" and run.data.params["train.epochs"] == "2"
    assert run.data.params["strategy.name"] == saved["strategy"]["name"]
    assert run.data.tags["mmbalance.run_dir"] == str(out.resolve())
    history = read_history(out / "history.csv")
    points = client.get_metric_history(run.info.run_id, "val_acc")
    assert sorted((p.step, p.value) for p in points) == [(int(r["epoch"]), r["val_acc"]) for r in history]
    metrics = json.loads((out / "metrics.json").read_text())
    assert run.data.metrics["final/test_acc"] == metrics["test"]["acc"]


def test_a_resumed_run_logs_each_epoch_once(tmp_path: Path, mlflow_uri: str) -> None:
    out = tmp_path / "run"
    cfg = config.resolve({}, ["dataset__name=synthetic", "train__epochs=3", *TINY])
    tracking = Tracking(("tensorboard", "mlflow"), mlflow_uri)

    def stop_after_two(_: Any, state: Any) -> None:
        if state.epoch == 2:
            raise KeyboardInterrupt  # as a Ctrl-C after the second epoch's checkpoint

    with pytest.raises(KeyboardInterrupt):
        train_tracked(cfg, out, tracking, on_epoch=stop_after_two)
    assert (out / "last.pt").exists() and not (out / "metrics.json").exists()
    _, runs = mlflow_runs(mlflow_uri)
    assert [r.info.status for r in runs] == ["KILLED"]
    train_tracked(cfg, out, tracking)
    train_tracked(cfg, out, tracking)  # finished: reused, nothing logged again
    assert [s for s, _ in scalars(out / "tensorboard")["val_acc"]] == [0, 1, 2]
    client, runs = mlflow_runs(mlflow_uri)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert sorted(p.step for p in client.get_metric_history(runs[0].info.run_id, "val_acc")) == [0, 1, 2]
    assert len(client.get_metric_history(runs[0].info.run_id, "final/test_acc")) == 1


def test_a_finished_run_reused_with_a_logger_is_mirrored_once(tmp_path: Path, mlflow_uri: str) -> None:
    out = tmp_path / "run"
    assert train(out) == 0 and not (out / "tracking.json").exists()
    for _ in range(2):
        assert train(out, "--logger", "mlflow", "--mlflow-uri", mlflow_uri) == 0
    client, runs = mlflow_runs(mlflow_uri)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert sorted(p.step for p in client.get_metric_history(runs[0].info.run_id, "val_acc")) == [0, 1]


def test_a_failing_logger_warns_once_and_keeps_the_run(
    tmp_path: Path, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mmbalance.tracking import backends

    def broken(*_: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(backends.MLflowLog, "log_epochs", broken)
    assert train(tmp_path / "run", "--logger", "tensorboard,mlflow", "--mlflow-uri", mlflow_uri) == 0
    assert (tmp_path / "run" / "metrics.json").exists()
    assert len(scalars(tmp_path / "run" / "tensorboard")["val_acc"]) == 2  # the other logger went on
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "mlflow logging" in warnings[0] and "disk full" in warnings[0]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--logger", "wandb"], "--logger 'wandb' is unknown"),
        (["--mlflow-uri", "file:/x"], "without --logger mlflow"),
        (["--logger", "tensorboard"], "pip install 'mmbalance[track]'"),
    ],
)
def test_logger_errors_are_one_line_before_anything_is_written(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    expected: str,
) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if the package were not installed
    assert train(tmp_path / "run", *extra) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_compare_with_jobs_gives_one_mlflow_run_per_run_directory(tmp_path: Path, mlflow_uri: str) -> None:
    out = tmp_path / "report"
    args = [
        "compare",
        "--datasets",
        "synthetic",
        "--methods",
        "unimodal,joint",
        "--seeds",
        "1",
        "--epochs",
        "1",
    ]
    args += ["--out", str(out), "--quiet", "--jobs", "2", "--logger", "mlflow", "--mlflow-uri", mlflow_uri]
    assert main([*args, *TINY]) == 0
    _, runs = mlflow_runs(mlflow_uri, experiment="report")
    names = sorted(r.info.run_name for r in runs)
    assert names == [f"runs/synthetic/{label}/seed0" for label in ("joint", "unimodal-a", "unimodal-b")]
    assert all(r.info.status == "FINISHED" and "final/test_acc" in r.data.metrics for r in runs)
