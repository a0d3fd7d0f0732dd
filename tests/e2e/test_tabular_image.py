"""The tabular-image baselines end to end on tiny synthetic data: DAFT with test-time missing tabular data."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from mmbalance.cli import main

TINY = ["dataset__n_samples=120", "data__batch_size=16", "model__feature_dim=8", "train__device=cpu"]


def test_daft_reads_the_tabular_input_and_is_evaluated_without_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "daft"
    args = ["train", "--dataset", "synthetic", "--method", "daft", "--epochs", "2", "--out", str(run)]
    assert main([*args, "--quiet", *TINY]) == 0
    capsys.readouterr()
    metrics = json.loads((run / "metrics.json").read_text())
    assert list(metrics["test"]["modalities"]) == ["a"]
    assert yaml.safe_load((run / "config.yaml").read_text())["resolved"]["inputs"] == ["a", "b"]
    assert main(["evaluate", str(run), "--missing", "b=1.0"]) == 0
    without = json.loads(capsys.readouterr().out)["test"]
    assert without["acc"] != metrics["test"]["acc"]  # the imputed tabular input changes the predictions


def test_compare_evaluates_daft_with_missing_tabular_data(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    args = ["compare", "--datasets", "synthetic", "--methods", "daft", "--seeds", "1", "--epochs", "1"]
    assert main([*args, "--out", str(out), "--quiet", "--missing", "b=1.0", *TINY]) == 0
    with (out / "results.csv").open(newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["test_missing:b=1_acc"] != ""
