"""``mmbalance compare``, ``sweep`` and ``plot`` end to end on tiny synthetic runs."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from mmbalance.cli import main

pytest.importorskip("matplotlib")

TINY = ["dataset__n_samples=120", "data__batch_size=16", "model__feature_dim=8", "train__device=cpu"]
LABELS = ["unimodal-a", "unimodal-b", "joint"]
PNG = b"\x89PNG\r\n\x1a\n"


def compare(out: Path, *extra: str) -> int:
    args = ["compare", "--datasets", "synthetic", "--methods", "unimodal,joint", "--seeds", "1"]
    return main([*args, "--epochs", "2", "--out", str(out), *extra, *TINY])


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def mtimes(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.glob("runs/*/*/*/metrics.json"))
    }


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cmp") / "report"
    assert compare(out, "--quiet") == 0
    return out


@pytest.fixture
def copy(finished: Path, tmp_path: Path) -> Path:
    """A private copy of the finished report (copytree keeps the mtimes)."""
    return Path(shutil.copytree(finished, tmp_path / "report"))


def test_compare_writes_every_output(
    finished: Path, check_html: Callable[[str, Iterable[str]], None]
) -> None:
    results = read_csv(finished / "results.csv")
    assert [r["method"] for r in results] == LABELS  # unimodal expands to one row per modality
    assert {r["dataset"] for r in results} == {"synthetic"} and {r["seed"] for r in results} == {"0"}
    assert results[0]["test_a_acc"] and not results[0]["test_b_acc"]
    assert results[2]["test_a_acc"] and results[2]["test_b_acc"]
    assert results[0]["test_a_probe_acc"] and not results[0]["test_b_probe_acc"]
    assert results[2]["test_a_probe_acc"] and results[2]["test_b_probe_acc"]
    summary = read_csv(finished / "summary.csv")
    assert [r["method"] for r in summary] == LABELS and all(
        0 <= float(r["test_acc_mean"]) <= 1 for r in summary
    )
    assert [bool(r["test_a_probe_acc_mean"]) for r in summary] == [True, False, True]
    md = (finished / "summary.md").read_text()
    assert "| a acc % | a probe % | b acc % | b probe % |" in md
    for label in LABELS:
        assert sum(line.startswith(f"| synthetic | {label} |") for line in md.splitlines()) == 1
    html = (finished / "report.html").read_text()
    check_html(html, [*LABELS, "<th>a probe %</th>", "<th>b probe %</th>"])
    assert "data:image/png;base64," in html
    for label in LABELS:
        run = finished / "runs" / "synthetic" / label / "seed0"
        assert {"config.yaml", "split.json", "history.csv", "metrics.json", "best.pt"} <= {
            p.name for p in run.iterdir()
        }


def test_rerun_skips_finished_runs(copy: Path, finished: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = mtimes(copy)
    assert len(before) == 3
    assert compare(copy) == 0
    err = capsys.readouterr().err
    assert err.count("done, reused") == 3 and "training" not in err
    assert mtimes(copy) == before
    assert read_csv(copy / "results.csv") == read_csv(finished / "results.csv")


def test_killed_compare_resumes_only_the_missing_run(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = read_csv(copy / "results.csv")
    lost = copy / "runs" / "synthetic" / "unimodal-b" / "seed0" / "metrics.json"
    lost.unlink()
    before = mtimes(copy)
    assert compare(copy) == 0
    err = capsys.readouterr().err
    assert err.count("done, reused") == 2
    assert [line for line in err.splitlines() if line.endswith(": training")] == [
        "[2/3] synthetic unimodal-b seed 0: training"
    ]
    assert lost.exists() and {k: v for k, v in mtimes(copy).items() if k in before} == before
    again = read_csv(copy / "results.csv")
    for row in (*results, *again):
        row.pop("train_seconds")
    assert again == results  # same config and seed: same metrics


def test_sweep_writes_csv_and_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sweep"
    args = ["sweep", "--dataset", "synthetic", "--method", "joint", "--param", "optim__lr=0.001,0.01"]
    assert main([*args, "--seeds", "1", "--epochs", "2", "--out", str(out), "--quiet", *TINY]) == 0
    rows = read_csv(out / "sweep.csv")
    assert [(r["param"], r["value"], r["seeds"]) for r in rows] == [
        ("optim__lr", "0.001", "1"),
        ("optim__lr", "0.01", "1"),
    ]
    assert {
        "test_acc_mean",
        "test_acc_std",
        "test_macro_f1_mean",
        "test_a_acc_mean",
        "test_b_acc_std",
    } <= set(rows[0])
    assert (out / "sweep.png").read_bytes().startswith(PNG)
    assert (out / "runs" / "synthetic" / "joint" / "optim__lr=0.01" / "seed0" / "metrics.json").exists()
    assert "| optim__lr | seeds | test acc % |" in capsys.readouterr().out


def test_plot_writes_a_png(finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = finished / "runs" / "synthetic" / "joint" / "seed0"
    target = tmp_path / "new" / "c.png"
    assert main(["plot", str(run), "--out", str(target)]) == 0
    assert capsys.readouterr().out.strip() == str(target)
    assert target.read_bytes().startswith(PNG)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["compare", "--datasets", "synthetic", "--methods", "joint,nope"], "unknown method 'nope'"),
        (["sweep", "--dataset", "synthetic", "--param", "strategy__nope=1,2"], "'nope'"),
        (["sweep", "--dataset", "synthetic", "--param", "nosection__x=1"], "'nosection'"),
        (["sweep", "--dataset", "synthetic", "--param", "optim__lr"], "expected KEY=V1,V2"),
        (["sweep", "--dataset", "synthetic", "--param", "train__seed=1,2"], "use --seeds"),
    ],
)
def test_user_errors_are_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], fragment: str
) -> None:
    out = tmp_path / "o"
    assert main([*args, "--seeds", "1", "--epochs", "1", "--out", str(out), *TINY]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and lines[0].startswith("mmbalance: error:")
    assert not (out / "runs").exists()


def test_plot_of_a_non_run_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plot", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "has no history.csv" in lines[0]


def test_summary_of_rows_read_back_from_csv_skips_empty_cells() -> None:
    from mmbalance.compare import summarize

    rows = [
        {"dataset": "d", "method": "unimodal-a", "test_acc": "0.5", "test_a_acc": "0.5", "test_b_acc": ""},
        {"dataset": "d", "method": "unimodal-a", "test_acc": "0.7", "test_a_acc": "0.7", "test_b_acc": ""},
    ]
    (entry,) = summarize(rows)
    assert entry["test_acc_mean"] == pytest.approx(0.6) and "test_b_acc_mean" not in entry


def test_results_md_keeps_the_reading_around_the_generated_block(copy: Path) -> None:
    from mmbalance.results_doc import BEGIN, END

    doc = copy / "RESULTS.md"
    doc.write_text(f"# Results\n\n{BEGIN}\nold\n{END}\n\nOur reading.\n")
    assert compare(copy, "--quiet", "--results-md", str(doc)) == 0
    text = doc.read_text()
    assert text.startswith("# Results") and text.rstrip().endswith("Our reading.") and "old" not in text
    assert "Command: `mmbalance compare --datasets synthetic" in text and "Machine: " in text
    assert "| synthetic | joint |" in text


def metrics_json(probe: bool) -> dict:
    split = {"acc": 0.9, "macro_f1": 0.8, "map": 0.7, "auroc": 0.6}
    m = {"best_epoch": 1, "epochs_run": 2, "train_seconds": 1.0}
    for name in ("val", "test"):
        m[name] = {**split, "modalities": {"a": {**split, "acc": 0.3}, "b": {**split, "acc": 0.2}}}
    if probe:
        per_mod = {"a": {"acc": 0.85, "macro_f1": 0.8}, "b": {"acc": 0.6, "macro_f1": 0.5}}
        m["probe"] = {"val": per_mod, "test": per_mod}
    return m


def test_result_row_adds_the_probe_beside_each_head_accuracy() -> None:
    from mmbalance.compare import RunSpec, result_row

    spec = RunSpec("d", "joint", (), 0)
    row = result_row(spec, metrics_json(probe=True))
    mods = [k for k in row if k.startswith(("test_a_", "test_b_"))]
    assert mods == ["test_a_acc", "test_a_probe_acc", "test_b_acc", "test_b_probe_acc"]
    assert (row["test_a_acc"], row["test_a_probe_acc"], row["test_b_probe_acc"]) == (0.3, 0.85, 0.6)
    old = result_row(spec, metrics_json(probe=False))  # a run directory written before probes existed
    assert not any("probe" in k for k in old) and old["test_a_acc"] == 0.3


def test_summary_and_tables_carry_the_probe_columns() -> None:
    from mmbalance.compare import markdown_table, summarize
    from mmbalance.sweep import sweep_table

    rows = [
        {"dataset": "d", "method": "joint", "test_acc": 0.8, "test_b_acc": 0.2, "test_b_probe_acc": 0.6},
        {"dataset": "d", "method": "joint", "test_acc": 0.9, "test_b_acc": 0.4, "test_b_probe_acc": 0.8},
    ]
    for r in rows:
        r.update(test_a_acc=0.5, test_a_probe_acc=0.9)
    (entry,) = summarize(rows)
    assert entry["test_b_probe_acc_mean"] == pytest.approx(0.7)
    assert entry["test_b_probe_acc_std"] == pytest.approx(0.1414213, abs=1e-6)
    head, _, line = markdown_table([entry]).splitlines()
    assert head.endswith("| MAP % | a acc % | a probe % | b acc % | b probe % | train s |")
    assert line.startswith("| d | joint | 2 | 85.00 ± 7.07 |")
    assert "| 50.00 ± 0.00 | 90.00 ± 0.00 | 30.00 ± 14.14 | 70.00 ± 14.14 |" in line
    sweep = sweep_table([{"param": "p", "value": "1", **entry}]).splitlines()[0]
    assert sweep.endswith("| b acc % | b probe % | a acc % | a probe % |")  # first-seen order


def test_tables_without_probes_keep_their_columns() -> None:
    from mmbalance.compare import markdown_table, summarize

    rows = [{"dataset": "d", "method": "joint", "test_acc": 0.8, "test_a_acc": 0.5, "test_b_acc": 0.2}]
    head = markdown_table(summarize(rows)).splitlines()[0]
    assert (
        head == "| dataset | method | seeds | test acc % | macro-F1 % | MAP % | a acc % | b acc % | train s |"
    )


def test_compare_missing_adds_a_column_per_setting_and_caches_it(
    copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = mtimes(copy)
    assert (
        compare(copy, "--quiet", "--missing", "a=1.0,b=1.0") == 0
    )  # finished runs: evaluated, not retrained
    table = capsys.readouterr().out
    assert "missing:a=1 acc %" in table and "missing:b=1 acc %" in table
    rows = {r["method"]: r for r in read_csv(copy / "results.csv")}
    assert rows["joint"]["test_missing:a=1_acc"] and rows["joint"]["test_missing:b=1_acc"]
    assert rows["unimodal-a"]["test_missing:a=1_acc"] == ""  # its only modality: nothing left to evaluate
    assert mtimes(copy) == before
    joint = copy / "runs" / "synthetic" / "joint" / "seed0"
    cached = json.loads((joint / "missing.json").read_text())
    assert set(cached) == {"a=1", "b=1"}
    assert main(["evaluate", str(joint), "--missing", "a=1"]) == 0
    assert json.loads(capsys.readouterr().out)["test"] == cached["a=1"]  # the same as evaluate --missing
