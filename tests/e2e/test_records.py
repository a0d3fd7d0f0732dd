"""Strategy records in the run directory: IGM's and MLA's ``spectra.csv`` (and ``spectra.png``), the same
after a kill and a resume; any strategy's tables; bad record names and IGM's ``gm_modalities`` errors are
one line."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from mmbalance import config
from mmbalance.cli import main
from mmbalance.errors import ConfigError
from mmbalance.experiment import train_run
from mmbalance.strategies.joint import Joint

TINY = [
    "dataset__name=synthetic",
    "dataset__n_samples=120",
    "data__batch_size=16",
    "model__feature_dim=8",
    "train__device=cpu",
    "train__epochs=3",
]
METHODS = {"igm": ["strategy__stage_epochs=1"], "mla": []}


def cfg_for(method: str) -> dict[str, Any]:
    return config.resolve({}, [*TINY, f"strategy__name={method}", *METHODS[method]])


def read(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


class Killed(Exception):
    pass


@pytest.mark.parametrize("method", list(METHODS))
def test_spectra_are_written_and_survive_kill_and_resume(
    method: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train_run(cfg_for(method), tmp_path / "full")
    rows = read(tmp_path / "full" / "spectra.csv")
    assert list(rows[0]) == [
        "method", "stage", "epoch", "modality", "layer", "source", "index", "eigenvalue", "shrink"
    ]  # fmt: skip
    epochs = {r["stage"] or r["epoch"] for r in rows}
    assert {r["method"] for r in rows} == {method} and epochs == (
        {"1", "2"} if method == "igm" else {"0", "1", "2"}
    )
    assert (tmp_path / "full" / "spectra.png").stat().st_size > 0

    from mmbalance import experiment

    original = experiment._on_epoch

    def dies_after_epoch_one(out: Path, trainer: Any, state: Any) -> None:
        original(out, trainer, state)
        if state.epoch == 2:  # last.pt holds epochs 0 and 1
            raise Killed

    monkeypatch.setattr(experiment, "_on_epoch", dies_after_epoch_one)
    with pytest.raises(Killed):
        train_run(cfg_for(method), tmp_path / "killed")
    assert not (tmp_path / "killed" / "spectra.csv").exists()
    monkeypatch.undo()
    train_run(cfg_for(method), tmp_path / "killed")
    assert read(tmp_path / "killed" / "spectra.csv") == rows


class Tables(Joint):
    def records(self) -> dict[str, list[dict[str, Any]]]:
        return {"notes": [{"epoch": 0, "value": 1.5}, {"epoch": 1, "note": "x"}], "empty": []}


class Clobbers(Joint):
    def records(self) -> dict[str, list[dict[str, Any]]]:
        return {"history": [{"epoch": 0}]}


def test_any_strategy_can_write_tables(tmp_path: Path) -> None:
    from mmbalance.experiment import write_records

    assert write_records(tmp_path, Joint()) == []
    assert write_records(tmp_path, Tables()) == [tmp_path / "notes.csv"]  # no figure for "notes"
    assert read(tmp_path / "notes.csv") == [
        {"epoch": "0", "value": "1.5", "note": ""},
        {"epoch": "1", "value": "", "note": "x"},
    ]
    with pytest.raises(ConfigError, match="strategy record 'history'; expected an identifier other than"):
        write_records(tmp_path, Clobbers())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.csv"]


def test_unknown_gm_modalities_are_one_line_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r"
    args = ["train", "--dataset", "synthetic", "--method", "igm", "--out", str(out), "--quiet"]
    assert main([*args, *TINY[1:], "strategy__gm_modalities=[a,c]"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "gm_modalities names 'c'; expected modalities of the model: a, b" in err[0]
    assert not out.exists()
