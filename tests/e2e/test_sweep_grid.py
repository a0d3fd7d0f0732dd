"""``sweep`` over a two-parameter grid, end to end on tiny synthetic runs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from mmbalance.cli import main

pytest.importorskip("matplotlib")

TINY = ["dataset__n_samples=120", "data__batch_size=16", "model__feature_dim=8", "train__device=cpu"]
PNG = b"\x89PNG\r\n\x1a\n"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def strategy_of(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())["strategy"]


GRID = ["--param", "strategy__ratios__a=0.1,0.5", "--param", "strategy__margin=0,0.5"]


def sweep(out: Path, *extra: str) -> int:
    args = ["sweep", "--dataset", "synthetic", "--method", "gaal", *GRID, "--seeds", "2", "--epochs", "2"]
    return main([*args, "--out", str(out), *extra, *TINY])


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("grid") / "sweep"
    assert sweep(out, "--quiet") == 0
    return out


def test_a_two_parameter_sweep_runs_the_grid_times_the_seeds(grid: Path) -> None:
    cells = [(a, m) for a in ("0.1", "0.5") for m in ("0", "0.5")]
    dirs = sorted(grid.glob("runs/synthetic/gaal/*/seed*/metrics.json"))
    assert len(dirs) == 4 * 2
    run = grid / "runs" / "synthetic" / "gaal" / "strategy__ratios__a=0.1,strategy__margin=0.5" / "seed1"
    cell = strategy_of(run)
    assert (cell["name"], cell["ratios"], cell["margin"]) == ("gaal", {"a": 0.1}, 0.5)
    results = read_csv(grid / "results.csv")
    assert [(r["strategy__ratios__a"], r["strategy__margin"], r["seed"]) for r in results] == [
        (a, m, s) for a, m in cells for s in ("0", "1")
    ]
    assert {r["method"] for r in results} == {"gaal"}
    summary = read_csv(grid / "sweep.csv")
    assert [(r["strategy__ratios__a"], r["strategy__margin"], r["seeds"]) for r in summary] == [
        (a, m, "2") for a, m in cells
    ]
    assert {"test_acc_mean", "test_acc_std", "test_a_acc_mean", "test_b_acc_std"} <= set(summary[0])
    assert (grid / "heatmap.png").read_bytes().startswith(PNG)


def test_a_rerun_of_the_grid_reuses_every_run(grid: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = read_csv(grid / "sweep.csv")
    assert sweep(grid) == 0
    captured = capsys.readouterr()
    assert captured.err.count("done, reused") == 8 and ": training" not in captured.err
    assert read_csv(grid / "sweep.csv") == before
    assert "| strategy__ratios__a | strategy__margin | seeds | test acc % |" in captured.out


def test_a_grid_cell_of_another_config_stops_the_sweep_before_it_runs(
    grid: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sweep(grid, "optim__lr=0.01") == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "holds a run with another config" in line
    assert "gaal/strategy__ratios__a=0.1,strategy__margin=0/seed0 " in line  # the grid's first run


def test_a_swept_key_given_twice_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["sweep", "--dataset", "synthetic", "--param", "optim__lr=0.1", "--param", "optim__lr=0.2"]
    assert main([*args, "--out", str(tmp_path / "o"), *TINY]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "--param optim__lr is given 2 times" in line and not (tmp_path / "o").exists()
