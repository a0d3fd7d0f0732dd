"""The loop: hook reachability, validation-only selection, determinism and exact resume."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
import torch

from mmbalance import config
from mmbalance.experiment import train_run
from mmbalance.strategies import Strategy
from mmbalance.strategies.joint import Joint
from mmbalance.testing import params_of, same_tensors
from mmbalance.trainer import Trainer, TrainState

TINY = [
    "dataset__name=synthetic",
    "dataset__n_samples=120",
    "data__batch_size=16",
    "model__feature_dim=8",
    "model__encoders__a__name=mlp",
    "model__encoders__a__hidden=[8]",
    "model__encoders__b__name=mlp",
    "model__encoders__b__hidden=[8]",
    "train__epochs=3",
]


def tiny_cfg(*extra: str) -> dict[str, Any]:
    return config.resolve({}, [*TINY, "train__device=cpu", *extra])


class Recorder(Joint):
    """Joint training that records which hooks the trainer reached."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def setup(self, model: Any, optimizer: Any, make_optimizer: Any) -> None:
        self.calls.append("setup")
        super().setup(model, optimizer, make_optimizer)

    def on_epoch_start(self, epoch: int, train_loader: Any) -> None:
        self.calls.append("on_epoch_start")

    def training_step(self, batch: Any, epoch: int) -> Any:
        self.calls.append("training_step")
        return super().training_step(batch, epoch)

    def on_epoch_end(self, epoch: int, metrics: Any) -> None:
        assert "val_acc" in metrics and "train_loss" in metrics
        self.calls.append("on_epoch_end")

    def predict(self, out: Any) -> torch.Tensor:
        self.calls.append("predict")
        return super().predict(out)


def test_every_hook_is_reached() -> None:
    from mmbalance.experiment import build, loaders, make_trainer

    cfg = tiny_cfg("train__epochs=2")
    s = build(cfg)
    rec = Recorder()
    ld = loaders(s)
    s.strategy = rec
    trainer = make_trainer(s, 2)
    state = trainer.fit(ld["train"], ld["val"])
    assert state.epoch == 2 and len(state.history) == 2
    for hook in ("setup", "on_epoch_start", "training_step", "on_epoch_end", "predict"):
        assert hook in rec.calls, hook
    assert rec.calls.index("setup") < rec.calls.index("on_epoch_start") < rec.calls.index("training_step")


def test_best_epoch_is_chosen_on_validation() -> None:
    trainer = Trainer.__new__(Trainer)
    trainer.state = TrainState()
    trainer.model = torch.nn.Linear(1, 1)
    trainer.strategy = Joint()
    for score in (0.5, 0.7, 0.7, 0.6):
        trainer._record({"x": 1.0}, score, 1.0)
    assert trainer.state.best_epoch == 1 and trainer.state.best_score == 0.7
    assert trainer.state.stale_epochs == 2


def test_a_nan_selection_score_never_becomes_the_best_epoch() -> None:
    trainer = Trainer.__new__(Trainer)
    trainer.state = TrainState()
    trainer.model = torch.nn.Linear(1, 1)
    trainer.strategy = Joint()
    for score in (0.5, float("nan"), 0.4, float("nan")):
        trainer._record({"x": 1.0}, score, 1.0)
    assert trainer.state.best_epoch == 0 and trainer.state.best_score == 0.5
    assert trainer.state.stale_epochs == 3 and trainer.state.epoch == 4


def test_a_selection_metric_undefined_on_validation_is_a_one_line_error() -> None:
    from mmbalance.data import BatchLoader
    from mmbalance.errors import ConfigError
    from mmbalance.experiment import build, loaders, make_trainer

    s = build(tiny_cfg())
    val = s.split["val"]
    one_class = BatchLoader(s.dataset, val[s.dataset.labels[val] == 0], 16)  # AUROC needs two classes
    trainer = make_trainer(s, 3, select_metric="auroc")
    with pytest.raises(ConfigError, match=r"select_metric='auroc' is nan on the validation split") as err:
        trainer.fit(loaders(s)["train"], one_class)
    assert "\n" not in str(err.value) and trainer.state.epoch == 0


def test_same_seed_same_metrics_and_run_directory(tmp_path: Path) -> None:
    a = train_run(tiny_cfg(), tmp_path / "a")
    b = train_run(tiny_cfg(), tmp_path / "b")
    c = train_run(tiny_cfg("train__seed=1"), tmp_path / "c")
    strip = lambda m: {k: v for k, v in m.items() if k != "train_seconds"}  # noqa: E731
    assert strip(a) == strip(b) and strip(a) != strip(c)
    for name in ("config.yaml", "split.json", "history.csv", "best.pt", "metrics.json"):
        assert (tmp_path / "a" / name).exists(), name
    assert not (tmp_path / "a" / "last.pt").exists()


LEARNS = ("optim__lr=0.01", "scheduler__name=cosine", "train__epochs=5")
"""A problem the tiny model learns (validation accuracy rises from chance), with dropout and a scheduler."""
IGM_STAGES = ("strategy__name=igm", "strategy__stage_epochs=2", "strategy__head_hidden=[8]", "optim__lr=0.03")


class Killed(Exception):
    pass


def without_timings(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if "seconds" not in k} for row in rows]


def learns(state: TrainState) -> bool:
    return state.best_epoch > 0 and state.history[state.best_epoch]["val_acc"] > state.history[0]["val_acc"]


def test_killed_run_resumes_to_the_same_run_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = train_run(tiny_cfg(*LEARNS), tmp_path / "full")
    assert full["best_epoch"] > 0
    original = Strategy.on_epoch_end

    def die_in_epoch_three(self: Strategy, epoch: int, metrics: Any) -> None:
        if epoch == 3:  # after validation, before the epoch is recorded: last.pt holds epochs 0-2
            raise Killed
        original(self, epoch, metrics)

    monkeypatch.setattr(Strategy, "on_epoch_end", die_in_epoch_three)
    with pytest.raises(Killed):
        train_run(tiny_cfg(*LEARNS), tmp_path / "killed")
    assert torch.load(tmp_path / "killed" / "last.pt", weights_only=True)["state"]["epoch"] == 3
    monkeypatch.setattr(Strategy, "on_epoch_end", original)
    resumed = train_run(tiny_cfg(*LEARNS), tmp_path / "killed")
    assert {**resumed, "train_seconds": 0} == {**full, "train_seconds": 0}
    with (tmp_path / "full" / "history.csv").open() as a, (tmp_path / "killed" / "history.csv").open() as b:
        assert without_timings(list(csv.DictReader(a))) == without_timings(list(csv.DictReader(b)))
    best = [torch.load(tmp_path / r / "best.pt", weights_only=True)["model"] for r in ("full", "killed")]
    assert best[0].keys() == best[1].keys() and all(torch.equal(v, best[1][k]) for k, v in best[0].items())


@pytest.mark.parametrize("method", [(), IGM_STAGES], ids=["joint", "igm-stages"])
def test_resumed_trainer_ends_bit_identical_to_an_uninterrupted_one(method: tuple[str, ...]) -> None:
    from mmbalance.experiment import build, loaders, make_trainer

    def fit(trainer: Trainer, ld: dict[str, Any]) -> TrainState:
        return trainer.fit(ld["train"], ld["val"])

    s = build(tiny_cfg(*LEARNS, *method))
    full = make_trainer(s)
    expected = fit(full, loaders(s))
    assert learns(expected)
    saved = io.BytesIO()

    def kill_after_epoch_two(trainer: Trainer, state: TrainState) -> None:
        if state.epoch == 3:
            torch.save(trainer.checkpoint(), saved)
            raise Killed

    s = build(tiny_cfg(*LEARNS, *method))
    with pytest.raises(Killed):
        fit(make_trainer(s, on_epoch=kill_after_epoch_two), loaders(s))
    saved.seek(0)
    s = build(tiny_cfg(*LEARNS, *method))  # a fresh process would build everything again
    resumed = make_trainer(s)
    resumed.restore(torch.load(saved, weights_only=True))
    state = fit(resumed, loaders(s))
    assert same_tensors(params_of(resumed.model), params_of(full.model))
    assert without_timings(state.history) == without_timings(expected.history)
    assert state.best_epoch == expected.best_epoch
    assert state.best_model is not None and expected.best_model is not None
    assert all(torch.equal(v, state.best_model[k]) for k, v in expected.best_model.items())


def test_resume_refuses_another_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmbalance.errors import ConfigError

    def die_in_second_epoch(self: Strategy, epoch: int, metrics: Any) -> None:
        if epoch == 1:
            raise RuntimeError

    monkeypatch.setattr(Strategy, "on_epoch_end", die_in_second_epoch)
    with pytest.raises(RuntimeError):
        train_run(tiny_cfg(), tmp_path / "r")
    monkeypatch.undo()
    with pytest.raises(ConfigError, match="another config"):
        train_run(tiny_cfg("optim__lr=0.01"), tmp_path / "r")


def test_patience_stops_early() -> None:
    from mmbalance.experiment import build, loaders, make_trainer

    cfg = tiny_cfg("optim__lr=0")
    s = build(cfg)
    ld = loaders(s)
    trainer = make_trainer(s, 10, patience=2)
    state = trainer.fit(ld["train"], ld["val"])
    assert state.epoch == 3 and state.best_epoch == 0


def test_metrics_probe_fits_the_best_model_on_the_whole_training_split(tmp_path: Path) -> None:
    import json

    from mmbalance.data import BatchLoader
    from mmbalance.experiment import build, loaders
    from mmbalance.probe import linear_probe

    metrics = train_run(tiny_cfg(), tmp_path / "run")
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=False)
    s = build(best["config"], json.loads((tmp_path / "run" / "split.json").read_text()))
    s.model.load_state_dict(best["model"])
    ld = loaders(s)
    train = BatchLoader(
        s.dataset, s.split["train"], s.config["data"]["eval_batch_size"]
    )  # in order, all rows
    expected = linear_probe(s.model, train, {"val": ld["val"], "test": ld["test"]}, s.device)
    assert metrics["probe"] == expected
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["probe"] == expected
