"""``mmbalance compare --methods joint,logreg``: the logistic regression gets a row beside the deep runs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from mmbalance.cli import main

TINY = ["dataset__n_samples=120", "data__batch_size=16", "model__feature_dim=8", "train__device=cpu"]


def compare(out: Path, methods: str = "joint,logreg") -> int:
    args = ["compare", "--datasets", "synthetic", "--methods", methods, "--seeds", "2", "--epochs", "1"]
    return main([*args, "--out", str(out), "--quiet", *TINY])


def test_logreg_makes_a_row_on_the_deep_runs_splits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    assert compare(out) == 0
    table = capsys.readouterr().out
    row = next(line for line in table.splitlines() if "| logreg |" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:3] == ["synthetic", "logreg", "2"] and "±" in cells[3]  # test acc, mean ± std
    assert cells[6:8] == ["–", "–"]  # no per-modality accuracy (a, b)
    with (out / "results.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["method"], r["seed"]) for r in rows] == [
        ("joint", "0"),
        ("joint", "1"),
        ("logreg", "0"),
        ("logreg", "1"),
    ]
    logreg = [r for r in rows if r["method"] == "logreg"]
    assert all(r["test_acc"] and r["config_hash"] and not r.get("test_a_acc") for r in logreg)
    splits = {
        (method, seed): json.loads((out / f"runs/synthetic/{method}/seed{seed}/split.json").read_text())
        for method in ("joint", "logreg")
        for seed in (0, 1)
    }
    assert splits["joint", 0] == splits["logreg", 0] and splits["joint", 1] == splits["logreg", 1]
    assert splits["logreg", 0] != splits["logreg", 1]  # one split per seed
    stamp = (out / "runs/synthetic/logreg/seed0/metrics.json").stat().st_mtime_ns
    assert compare(out, "logreg") == 0  # a finished logreg run is reused
    assert (out / "runs/synthetic/logreg/seed0/metrics.json").stat().st_mtime_ns == stamp
