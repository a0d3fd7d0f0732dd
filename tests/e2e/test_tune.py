"""``mmbalance tune`` end to end on tiny synthetic runs: results, resume, pruning, errors, and several worker
processes on one study (SQLite, and PostgreSQL where its server binaries are installed)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from mmbalance.cli import build_parser, main

optuna = pytest.importorskip("optuna")

from mmbalance.tune import make_spec  # noqa: E402 - needs optuna only when it runs, but the tests need it
from mmbalance.tune.study import BudgetReached, objective, open_study, run_study  # noqa: E402

TINY = ["dataset__n_samples=120", "data__batch_size=16", "model__feature_dim=8", "train__device=cpu"]
SPACE = ["--space", "optim__lr=loguniform(1e-3,1e-2)", "--space", "strategy__head=choice(sum,concat)"]


def tune_args(out: Path, trials: int, epochs: int = 2, space: list[str] = SPACE) -> list[str]:
    return ["tune", "--dataset", "synthetic", *space, "--trials", str(trials), "--epochs", str(epochs)]


def tune(out: Path, trials: int, *extra: str, epochs: int = 2, space: list[str] = SPACE) -> int:
    return main([*tune_args(out, trials, epochs, space), "--out", str(out), "--quiet", *extra, *TINY])


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def one_line_error(capsys: pytest.CaptureFixture[str], fragment: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
    return err[0]


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tune") / "study"
    assert tune(out, 3) == 0
    return out


@pytest.fixture
def copy(tuned: Path, tmp_path: Path) -> Path:
    """A private copy of the finished tune directory (copytree keeps the mtimes)."""
    return Path(shutil.copytree(tuned, tmp_path / "study"))


def test_tune_writes_one_run_per_trial_trials_csv_and_best_yaml(tuned: Path) -> None:
    rows = read_csv(tuned / "trials.csv")
    assert [r["number"] for r in rows] == ["0", "1", "2"] and {r["state"] for r in rows} == {"COMPLETE"}
    assert list(rows[0])[:5] == ["number", "state", "value", "optim__lr", "strategy__head"]
    for r in rows:
        assert 1e-3 <= float(r["optim__lr"]) <= 1e-2 and r["strategy__head"] in ("sum", "concat")
        assert r["epochs"] == "2" and r["note"] == ""
    assert sorted(p.name for p in (tuned / "trials").iterdir()) == ["0", "1", "2"]
    best = max(rows, key=lambda r: float(r["value"]))
    text = (tuned / "best.yaml").read_text()
    assert text.startswith(f"# mmbalance tune, study 'study', best of 3: trial {best['number']} complete")
    cfg = yaml.safe_load(text)
    assert (
        cfg["optim"]["lr"] == float(best["optim__lr"]) and cfg["strategy"]["head"] == best["strategy__head"]
    )
    assert cfg["train"]["epochs"] == 2 and cfg["dataset"]["n_samples"] == 120


def test_objective_is_the_best_epochs_validation_metric(tuned: Path) -> None:
    for r in read_csv(tuned / "trials.csv"):
        run = tuned / "trials" / r["number"]
        metrics = json.loads((run / "metrics.json").read_text())
        history = [float(h["val_acc"]) for h in read_csv(run / "history.csv")]
        assert float(r["value"]) == metrics["val"]["acc"] == max(history)


def test_best_yaml_is_a_config_that_trains_the_best_trial_again(
    tuned: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    best = max(read_csv(tuned / "trials.csv"), key=lambda r: float(r["value"]))
    assert (
        main(["train", "--config", str(tuned / "best.yaml"), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    )
    again = json.loads((tmp_path / "run" / "metrics.json").read_text())
    trial = tuned / "trials" / best["number"]
    assert again == {
        **json.loads((trial / "metrics.json").read_text()),
        "train_seconds": again["train_seconds"],
    }
    assert (tmp_path / "run" / "config.yaml").read_text() == (trial / "config.yaml").read_text()


def test_rerun_continues_the_study_to_the_budget_and_no_further(copy: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in copy.glob("trials/*/metrics.json")}
    assert tune(copy, 4) == 0
    rows = read_csv(copy / "trials.csv")
    assert [r["number"] for r in rows] == ["0", "1", "2", "3"] and {r["state"] for r in rows} == {"COMPLETE"}
    assert {p: p.stat().st_mtime_ns for p in before} == before  # the finished trials were not trained again
    assert tune(copy, 4) == 0 and len(read_csv(copy / "trials.csv")) == 4


def test_joining_a_study_with_other_settings_is_refused(
    copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert tune(copy, 4, epochs=1) == 2
    one_line_error(capsys, "study 'study' was created with other settings (differs in base.train.epochs)")
    assert len(read_csv(copy / "trials.csv")) == 3


@pytest.mark.parametrize(
    ("space", "fragment"),
    [
        ("strategy__nope=uniform(0,1)", "unknown parameter of method 'joint': 'nope'"),
        ("nope__lr=uniform(0,1)", "unknown config section 'nope'"),
        ("optim__lr=uniform(0,1", "--space 'optim__lr=uniform(0,1': not of the form KEY=KIND(ARGS)"),
        ("data__batch_size=int(0,8)", "data.batch_size=0 is invalid; expected a positive integer"),
        (
            "strategy__head=choice(sum,nope)",
            "method 'joint' does not support head='nope'; expected one of: concat",
        ),
        ("train__epochs=int(1,3)", "--space train__epochs cannot be searched; set it with --epochs"),
    ],
)
def test_a_bad_space_fails_with_one_line_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], space: str, fragment: str
) -> None:
    assert tune(tmp_path / "t", 2, space=["--space", space]) == 2
    one_line_error(capsys, fragment)
    assert not (tmp_path / "t").exists()


def test_a_storage_that_cannot_be_opened_is_one_line_without_its_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql+psycopg://me:secret@127.0.0.1:1/db"  # nothing listens on port 1
    assert tune(tmp_path / "t", 1, "--storage", url) == 2
    line = one_line_error(capsys, "--storage 'postgresql+psycopg://me:***@127.0.0.1:1/db' cannot be opened")
    assert "secret" not in line


def test_diverged_trials_count_toward_the_budget_and_leave_no_best(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tune(tmp_path / "t", 2, space=["--space", "optim__lr=loguniform(1e20,1e30)"], epochs=1) == 1
    rows = read_csv(tmp_path / "t" / "trials.csv")
    assert [r["state"] for r in rows] == ["FAIL", "FAIL"]
    assert all(r["note"].startswith("training diverged in epoch 0") for r in rows)
    assert not (tmp_path / "t" / "best.yaml").exists()
    assert "no trial is complete, so there is no best.yaml" in capsys.readouterr().out


def spec_of(out: Path, trials: int, epochs: int = 2) -> Any:
    return make_spec(build_parser().parse_args([*tune_args(out, trials, epochs), "--out", str(out), *TINY]))


def test_a_pruned_trial_is_recorded_as_pruned_and_its_run_stops_there(tmp_path: Path) -> None:
    spec = spec_of(tmp_path / "t", 1, epochs=3)
    never_enough = optuna.pruners.ThresholdPruner(lower=1.5)  # accuracy never reaches it: prune at once
    study = open_study(spec, f"sqlite:///{tmp_path / 'p.db'}", "p", 0, pruner=never_enough)
    lines: list[str] = []
    run_study(study, spec, lines.append)
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.PRUNED and list(trial.intermediate_values) == [0]
    run = tmp_path / "t" / "trials" / "0"
    history = read_csv(run / "history.csv")
    assert len(history) == 1 and float(history[0]["val_acc"]) == trial.intermediate_values[0]
    assert (run / "last.pt").exists() and not (run / "metrics.json").exists()
    assert lines == [
        f"trial 0 pruned after epoch 0, val acc {trial.intermediate_values[0]:.4f} "
        + ("(optim__lr={:.4g}, strategy__head={})".format(*trial.params.values()))
    ]


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_trial_behind_the_budget_does_not_run(tmp_path: Path) -> None:
    spec = spec_of(tmp_path / "t", 1)
    study = open_study(spec, f"sqlite:///{tmp_path / 'b.db'}", "b", 0)
    study.ask()  # trial 0: another worker's, still running; it takes the whole budget
    run_study(study, spec, print)
    assert len(study.trials) == 1  # nothing started while the budget was taken
    mine = study.ask()  # a worker that asked before it could see trial 0
    with pytest.raises(BudgetReached):
        objective(spec)(mine)
    assert mine.params == {} and not (tmp_path / "t" / "trials").exists()
    assert mine.user_attrs["error"] == "not run: 1 trials were already running or done"
