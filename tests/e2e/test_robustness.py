"""Findings of a review, pinned: evaluate for every method, exact resume for every method (also after
early stopping), protected run directories, divergence. One-line CLI errors: tests/e2e/test_cli.py."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from mmbalance import config
from mmbalance.cli import main
from mmbalance.errors import TrainingDiverged
from mmbalance.experiment import train_run
from mmbalance.strategies import STRATEGIES, Strategy, list_strategies
from mmbalance.strategies.joint import Joint
from mmbalance.types import ModelOutput

TINY = [
    "dataset__name=synthetic",
    "dataset__n_samples=120",
    "data__batch_size=16",
    "model__feature_dim=8",
    "train__device=cpu",
]
REQUIRED = {"unimodal": ["strategy__modality=a"], "igm": ["strategy__stage_epochs=1"]}


def cfg_for(method: str, *extra: str) -> dict[str, Any]:
    return config.resolve({}, [*TINY, f"strategy__name={method}", *REQUIRED.get(method, []), *extra])


def history(run: Path) -> list[dict[str, str]]:
    with (run / "history.csv").open() as f:
        return [{k: v for k, v in r.items() if "seconds" not in k} for r in csv.DictReader(f)]


@pytest.mark.parametrize("method", list_strategies())
def test_evaluate_reproduces_the_test_metrics(
    method: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    metrics = train_run(cfg_for(method, "train__epochs=2"), tmp_path / "r")
    assert main(["evaluate", str(tmp_path / "r")]) == 0
    assert json.loads(capsys.readouterr().out)["test"] == metrics["test"]


class Killed(Exception):
    pass


def kill_at(monkeypatch: pytest.MonkeyPatch, epoch: int) -> None:
    """Make the run die right after ``epoch``'s checkpoint was written."""
    from mmbalance import experiment

    original = experiment._on_epoch

    def on_epoch(out: Path, trainer: Any, state: Any) -> None:
        original(out, trainer, state)
        if state.epoch == epoch + 1:
            raise Killed

    monkeypatch.setattr(experiment, "_on_epoch", on_epoch)


@pytest.mark.parametrize("method", list_strategies())
def test_resume_reproduces_history_and_metrics(
    method: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = train_run(cfg_for(method, "train__epochs=3"), tmp_path / "full")
    kill_at(monkeypatch, 1)
    with pytest.raises(Killed):
        train_run(cfg_for(method, "train__epochs=3"), tmp_path / "killed")
    monkeypatch.undo()
    resumed = train_run(cfg_for(method, "train__epochs=3"), tmp_path / "killed")
    assert resumed["test"] == full["test"] and resumed["best_epoch"] == full["best_epoch"]
    assert history(tmp_path / "killed") == history(tmp_path / "full")


def test_resume_after_early_stopping_trains_no_extra_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = cfg_for("joint", "train__epochs=8", "train__patience=1", "optim__lr=0")
    full = train_run(cfg, tmp_path / "full")
    stop = full["epochs_run"]
    assert stop < 8  # lr 0: validation stops improving, patience ends the run
    kill_at(monkeypatch, stop - 1)  # dies right after the stopping epoch's checkpoint
    with pytest.raises(Killed):
        train_run(cfg, tmp_path / "killed")
    monkeypatch.undo()
    assert train_run(cfg, tmp_path / "killed")["epochs_run"] == stop


def test_best_checkpoint_holds_the_strategy_state_of_the_best_epoch(tmp_path: Path) -> None:
    train_run(cfg_for("mla", "train__epochs=3", "optim__lr=0"), tmp_path / "r")  # best epoch 0
    best = torch.load(tmp_path / "r" / "best.pt", weights_only=True)
    steps_per_epoch = 120 * 6 // 10 // 16  # 72 training rows, batches of 16, last one dropped
    assert (
        best["strategy"]["batch_"] == steps_per_epoch and best["strategy"]["updates_"] == 2 * steps_per_epoch
    )
    assert "class_names" in best
    prep = json.loads(
        (tmp_path / "r" / "preprocessing.json").read_text()
    )  # the train-split fit, as plain data
    assert set(prep["standardize"]) == {"a", "b"} and len(prep["standardize"]["a"]["mean"]) > 0


def test_a_finished_run_directory_is_reused_or_protected(tmp_path: Path) -> None:
    from mmbalance.errors import ConfigError

    first = train_run(cfg_for("joint", "train__epochs=1"), tmp_path / "r")
    assert train_run(cfg_for("joint", "train__epochs=1"), tmp_path / "r") == first
    with pytest.raises(ConfigError, match="another config"):
        train_run(cfg_for("joint", "train__epochs=1", "optim__lr=0.1"), tmp_path / "r")


def test_divergence_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TrainingDiverged, match=r"optim__lr=1e\+12"):
        train_run(cfg_for("joint", "train__epochs=2", "optim__name=sgd", "optim__lr=1e12"), tmp_path / "r")


class NaNFromEpochTwo(Joint):
    """Joint training whose fused validation scores are NaN from epoch 2 on; its training loss is finite."""

    def on_epoch_start(self, epoch: int, train_loader: Any) -> None:
        self._epoch = epoch

    def predict(self, out: ModelOutput) -> torch.Tensor:
        logits = super().predict(out)
        return logits * float("nan") if self._epoch >= 2 else logits


@pytest.fixture
def nan_method(monkeypatch: pytest.MonkeyPatch) -> str:
    """Registers ``NaNFromEpochTwo`` for one test (the registration is removed afterwards)."""
    monkeypatch.setitem(STRATEGIES._items, "nan_from_epoch_2", NaNFromEpochTwo)
    return "nan_from_epoch_2"


def test_nan_validation_outputs_stop_the_run_and_keep_the_last_good_checkpoint(
    nan_method: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = tmp_path / "r"
    with pytest.raises(TrainingDiverged, match="diverged in epoch 2: the validation outputs became NaN"):
        train_run(cfg_for(nan_method, "train__epochs=4"), run)
    last = torch.load(run / "last.pt", weights_only=True)
    assert (
        last["state"]["epoch"] == 2
        and len(last["state"]["history"]) == 2
        and last["state"]["best_epoch"] >= 0
    )
    assert len(history(run)) == 2 and not (run / "best.pt").exists() and not (run / "metrics.json").exists()
    kept = (run / "last.pt").read_bytes()
    # The same command from the CLI resumes from the kept checkpoint, diverges again: one line, exit 2.
    args = ["train", "--out", str(run), "--quiet", *TINY, f"strategy__name={nan_method}", "train__epochs=4"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmbalance: error: training diverged in epoch 2") and err.count("\n") == 1
    assert "checkpoint of epoch 1 is kept" in err
    assert (run / "last.pt").read_bytes() == kept


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_without_a_gpu_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert (
        main(["train", "--dataset", "synthetic", "--out", str(tmp_path), "--device", "cuda", "--quiet"]) == 2
    )
    assert "sees no CUDA device" in capsys.readouterr().err


def test_every_strategy_state_survives_a_checkpoint_round_trip() -> None:
    """Learned state is plain tensors and numbers: torch.save / torch.load keep it equal."""
    import io

    from mmbalance.strategies import build_strategy
    from mmbalance.testing import run_steps, tiny_problem

    for name in list_strategies():
        kwargs = {"modality": "a"} if name == "unimodal" else {}
        p = tiny_problem(lambda name=name, kwargs=kwargs: build_strategy(name, **kwargs))
        run_steps(p, 2)
        state = p.strategy.state_dict()
        buffer = io.BytesIO()
        torch.save(state, buffer)
        buffer.seek(0)
        assert isinstance(p.strategy, Strategy)
        assert str(torch.load(buffer, weights_only=True)) == str(state), name
