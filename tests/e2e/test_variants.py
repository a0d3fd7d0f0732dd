"""``compare`` with method variants (``igm[sam_mode=off]``), end to end on tiny synthetic runs."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
import yaml

from mmbalance.cli import main

pytest.importorskip("matplotlib")

TINY = ["dataset__n_samples=120", "data__batch_size=16", "model__feature_dim=8", "train__device=cpu"]
SHARED = ["strategy__temperature=0.2", "strategy__stage_epochs=1"]  # every method of the compare is IGM
LABELS = ["igm", "igm[sam_mode=off,temperature=0]", "igm[ temperature=0 ]"]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def strategy_of(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())["strategy"]


def compare(out: Path, methods: str, *extra: str) -> int:
    args = ["compare", "--datasets", "synthetic", "--methods", methods, "--seeds", "1", "--epochs", "2"]
    return main([*args, "--out", str(out), *extra, *TINY])


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("variants") / "report"
    assert compare(out, ",".join(LABELS), "--quiet", *SHARED) == 0
    return out


def test_each_variant_is_a_row_labelled_as_written(
    variants: Path, check_html: Callable[[str, Iterable[str]], None]
) -> None:
    assert [r["method"] for r in read_csv(variants / "results.csv")] == LABELS
    assert [r["method"] for r in read_csv(variants / "summary.csv")] == LABELS
    md = (variants / "summary.md").read_text().splitlines()
    for label in LABELS:
        assert sum(line.startswith(f"| synthetic | {label} |") for line in md) == 1
    check_html((variants / "report.html").read_text(), LABELS)


def test_each_variant_has_its_own_run_directory_with_its_options_on_top(variants: Path) -> None:
    from mmbalance.report import load_histories

    runs = sorted(p.name for p in (variants / "runs" / "synthetic").iterdir())
    assert len(runs) == 3 and "igm" in runs and "igm+sam_mode=off+temperature=0" in runs
    base = strategy_of(variants / "runs" / "synthetic" / "igm" / "seed0")
    assert (base["name"], base["temperature"], base["sam_mode"], base["stage_epochs"]) == (
        "igm",
        0.2,
        "paper",
        1,
    )
    both = strategy_of(variants / "runs" / "synthetic" / "igm+sam_mode=off+temperature=0" / "seed0")
    assert (both["temperature"], both["sam_mode"], both["stage_epochs"]) == (0, "off", 1)
    (spaced,) = [r for r in runs if r.startswith("igm+temperature=0+")]  # another spelling, a hashed name
    assert strategy_of(variants / "runs" / "synthetic" / spaced / "seed0")["temperature"] == 0
    hists = load_histories(variants, read_csv(variants / "results.csv"))["synthetic"]
    assert list(hists) == LABELS and all(len(h) == 2 for h in hists.values())  # the report's curves


def test_rerun_reuses_every_variant(variants: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert compare(variants, ",".join(LABELS), *SHARED) == 0
    err = capsys.readouterr().err
    assert err.count("done, reused") == 3 and ": training" not in err


@pytest.mark.parametrize(
    ("methods", "fragment"),
    [
        (
            "joint,igm[temperatur=0]",
            "method 'igm[temperatur=0]': unknown parameter of method 'igm': 'temperatur'",
        ),
        ("joint,nope[x=1]", "unknown method 'nope'"),
        ("joint,igm[sam_mode=off", "has an unclosed '['"),
        ("joint,igm[sam_mode=bogus]", "sam_mode='bogus'"),
    ],
)
def test_a_bad_variant_is_one_line_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], methods: str, fragment: str
) -> None:
    out = tmp_path / "o"
    assert compare(out, methods) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mmbalance: error:") and fragment in lines[0]
    assert not out.exists()
