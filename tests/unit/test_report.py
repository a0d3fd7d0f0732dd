"""Figures from synthetic history and summary rows, and the self-contained HTML report."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from mmbalance import plots, report
from mmbalance.compare import summarize

PNG = b"\x89PNG\r\n\x1a\n"


def history(n: int = 4, conflict: bool = True, mods: tuple[str, ...] = ("a", "b")) -> list[dict[str, float]]:
    rows = []
    for e in range(n):
        row = {"epoch": float(e), "train_loss": 1.0 / (e + 1), "val_acc": 0.5 + 0.1 * e}
        row.update({f"val_{m}_acc": 0.4 + 0.05 * e for m in mods})
        if conflict and e % 2 == 0:  # logged every other epoch: the other rows miss the columns
            row.update({"grad_cosine": 0.2 - 0.1 * e, "grad_cosine_fused_a": 0.5, "projection_rate": 0.3})
        rows.append(row)
    return rows


def summary_rows() -> list[dict]:
    rows = [
        {
            "dataset": "syn",
            "method": "joint",
            "seed": 0,
            "test_acc": 0.8,
            "test_a_acc": 0.7,
            "test_b_acc": 0.4,
        },
        {
            "dataset": "syn",
            "method": "joint",
            "seed": 1,
            "test_acc": 0.9,
            "test_a_acc": 0.8,
            "test_b_acc": 0.5,
        },
        {"dataset": "syn", "method": "unimodal-a", "seed": 0, "test_acc": 0.7, "test_a_acc": 0.7},
    ]
    for r in rows:
        r.update(test_macro_f1=r["test_acc"], test_map=0.9, train_seconds=1.5)
    return rows


def test_curves_figure_draws_fused_and_modality_lines() -> None:
    fig = plots.curves_figure({"joint": history(), "unimodal-a": history(conflict=False, mods=("a",))})
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["joint (fused)", "joint: a", "joint: b", "unimodal-a (fused)"]
    assert fig.axes[0].get_lines()[1].get_linestyle() == "--"


def test_figures_tolerate_missing_columns_and_empty_input() -> None:
    sparse = [{"epoch": 0.0}, {"epoch": 1.0, "val_acc": 0.6}, {"val_b_acc": 0.3}]
    for fig in (
        plots.curves_figure({"x": sparse}),
        plots.curves_figure({}),
        plots.conflict_figure({"x": sparse}),
        plots.bars_figure([]),
        plots.run_figure(sparse),
        plots.run_figure([]),
    ):
        assert plots.to_data_uri(fig).startswith("data:image/png;base64,")


def test_conflict_figure_plots_grad_cosine_or_says_none() -> None:
    fig = plots.conflict_figure({"joint": history(), "unimodal-a": history(conflict=False)})
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()][:2] == ["joint: cos", "joint: cos_fused_a"]
    xs = ax.get_lines()[0].get_xdata()
    assert list(xs) == [0.0, 2.0]  # only the epochs that logged it
    none = plots.conflict_figure({"joint": history(conflict=False)})
    assert "no method logged grad_cosine" in none.axes[0].get_title()


def test_bars_figure_has_fused_and_per_modality_bars() -> None:
    summary = summarize(summary_rows())
    fig = plots.bars_figure(summary)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["joint", "unimodal-a"]
    heights = sorted(round(p.get_height(), 6) for p in ax.patches)
    assert heights == sorted([85.0, 70.0, 75.0, 70.0, 45.0])  # fused x2, a x2, b x1 (unimodal-a lacks b)


@pytest.mark.parametrize("values", [[0, 0.25, 0.5], [1e-4, 1e-3, 1e-2], ["sum", "concat"]])
def test_sensitivity_figure(values: list) -> None:
    fig = plots.sensitivity_figure(values, [80.0] * len(values), [1.0] * len(values), "p")
    assert fig.axes[0].get_xlabel() == "p"
    assert len(fig.axes[0].get_xticks()) == len(values)


def test_run_figure_adds_a_diagnostics_panel_when_logged() -> None:
    assert len(plots.run_figure(history(conflict=False)).axes) == 2
    fig = plots.run_figure(history(), title="run")
    assert len(fig.axes) == 3
    assert {line.get_label() for line in fig.axes[2].get_lines()} >= {"grad_cosine", "projection_rate"}


def test_save_helpers(tmp_path: Path) -> None:
    fig = plots.run_figure(history())
    assert plots.save_png(fig, tmp_path / "f.png").read_bytes().startswith(PNG)
    svg = plots.to_svg(fig)
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")


def test_read_history_skips_empty_cells_and_mean_history_averages(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    path.write_text("epoch,val_acc,grad_cosine\n0.0,0.5,0.1\n1.0,0.7,\n")
    rows = report.read_history(path)
    assert rows == [{"epoch": 0.0, "val_acc": 0.5, "grad_cosine": 0.1}, {"epoch": 1.0, "val_acc": 0.7}]
    mean = report.mean_history([rows, [{"epoch": 0.0, "val_acc": 0.7}]])
    assert mean == [{"epoch": 0.0, "val_acc": 0.6, "grad_cosine": 0.1}, {"epoch": 1.0, "val_acc": 0.7}]


def test_write_report_is_self_contained_and_escaped(
    tmp_path: Path, check_html: Callable[[str, Iterable[str]], None]
) -> None:
    rows = summary_rows()
    rows[2]["method"] = "uni<b>&"
    for r in rows:
        run = tmp_path / "runs" / r["dataset"] / r["method"] / f"seed{r['seed']}"
        run.mkdir(parents=True)
        hist = history(conflict=r["method"] == "joint")
        with (run / "history.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for h in hist for k in h)))
            writer.writeheader()
            writer.writerows(hist)
    path = report.write_report(tmp_path, rows, summarize(rows))
    assert path == tmp_path / "report.html"
    text = path.read_text()
    check_html(text, ["joint", "uni&lt;b&gt;&amp;"])
    assert "uni<b>" not in text
    assert text.count("<img") == 3 and "<h2>syn</h2>" in text
    assert "85.00" in text and "± 7.07" in text  # joint: mean ± std over its two seeds, in %


def test_report_without_histories_still_renders(
    tmp_path: Path, check_html: Callable[[str, Iterable[str]], None]
) -> None:
    rows = summary_rows()
    check_html(report.render(tmp_path, rows, summarize(rows)), ["joint", "unimodal-a"])


def probe_rows() -> list[dict]:
    rows = summary_rows()
    for r, probe in zip(rows, (0.95, 0.85, 0.9), strict=True):
        r["test_a_probe_acc"] = probe
    rows[0]["test_b_probe_acc"] = 0.6
    return rows


def test_summary_table_shows_the_probe_beside_each_head_accuracy() -> None:
    html = report.summary_table(summarize(probe_rows()))
    heads = [h.split("</th>")[0] for h in html.split("<th>")[1:]]
    assert heads[5:-1] == ["a acc %", "a probe %", "b acc %", "b probe %"]
    joint = html.split("<tr>")[2]
    assert "90.00" in joint and "± 7.07" in joint  # a probe: mean and std of 0.95 and 0.85, in %
    assert report.summary_table(summarize(summary_rows())).count("probe") == 0  # runs without probes


def test_bars_figure_draws_a_hatched_probe_bar_beside_each_modality() -> None:
    ax = plots.bars_figure(summarize(probe_rows())).axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["fused", "a", "a probe", "b", "b probe"]
    probe_bars = [p for p in ax.patches if p.get_hatch()]
    assert sorted(round(p.get_height(), 6) for p in probe_bars) == [60.0, 90.0, 90.0]
    bars = [c.patches for c in ax.containers if hasattr(c, "patches")]  # one BarContainer per label
    a_bar, a_probe = bars[1][0], bars[2][0]
    assert a_bar.get_facecolor()[:3] == a_probe.get_facecolor()[:3]  # one colour per modality
