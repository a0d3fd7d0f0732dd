"""``report.html`` of ``mmbalance compare`` (one self-contained page); ``mmbalance plot`` reads history here.

Per dataset: the summary table (mean ± std over seeds), validation curves averaged over seeds per epoch,
the gradient-conflict diagnostic and test-accuracy bars. Nothing is fetched from the network.
"""

from __future__ import annotations

import csv
import re
import statistics
import time
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from mmbalance import plots
from mmbalance.compare import sharpness_columns, sharpness_note
from mmbalance.results_table import modality_columns
from mmbalance.variants import run_dir_name

CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;background:#f6f7f9;
margin:0}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:36px 0 10px;border-bottom:2px solid #dde3ea}
.meta{color:#667;margin:0 0 16px}nav a{margin-right:12px;color:#1f5fa8}
.note{background:#eef4fb;border-left:4px solid #1f77b4;padding:10px 14px;border-radius:4px;font-size:14px}
table{border-collapse:collapse;background:#fff;font-size:14px;box-shadow:0 1px 2px #0001;margin:8px 0}
th,td{padding:6px 12px;border-bottom:1px solid #e6e9ee;text-align:right;white-space:nowrap}
th{background:#f0f2f5;font-weight:600}td:first-child,th:first-child{text-align:left}
tbody tr:nth-child(even){background:#fafbfc}tr:hover{background:#f1f6fd}
.sd{color:#889;font-size:12px}.best{font-weight:700}
.figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:14px;margin-top:14px}
figure{margin:0;background:#fff;padding:8px;border-radius:6px;box-shadow:0 1px 2px #0001}
figure img{width:100%;height:auto}figcaption{font-size:13px;color:#556;padding:4px 6px}
footer{margin-top:40px;color:#889;font-size:13px}code{background:#eef0f3;padding:0 4px;border-radius:3px}
"""

NOTE = (
    "Numbers are percentages on the test split, mean ± std over seeds; the best fused accuracy per dataset "
    "is in bold. <b>Per-modality accuracy</b> (<code>&lt;m&gt; acc</code>) scores each modality's own "
    "logits (its encoder through the head alone, which each fusion head defines its own way); the "
    "<b>probe</b> (<code>&lt;m&gt; probe</code>) scores a logistic regression fitted on the frozen "
    "features of m's encoder on the training split, the same measure for every method. A wide gap "
    "between modalities, or a modality far below its <code>unimodal-*</code> baseline, is the imbalance "
    "these methods target; a head accuracy far below the probe means the encoder learned features the "
    "head does not use. The <b>conflict cosine</b> (<code>cos</code>, "
    "<code>grad_cosine</code> in <code>history.csv</code>) is the cosine between the head gradients of "
    "two modalities' losses, averaged over pairs (<code>cos_fused_&lt;m&gt;</code>: modality m's against "
    "the fused loss's); below 0 they pull the shared head in opposite directions. Curves average the "
    "seeds per epoch."
)


def read_history(path: str | Path) -> list[dict[str, float]]:
    """Rows of a ``history.csv`` as floats; empty or non-numeric cells are left out of their row."""
    rows = []
    with Path(path).open(newline="") as f:
        for raw in csv.DictReader(f):
            row = {}
            for k, v in raw.items():
                try:
                    row[k] = float(v)
                except (TypeError, ValueError):
                    continue
            rows.append(row)
    return rows


def mean_history(histories: Sequence[plots.History]) -> list[dict[str, float]]:
    """Average several runs' history rows per epoch (each key over the runs that logged it)."""
    by_epoch: dict[float, dict[str, list[float]]] = {}
    for rows in histories:
        for i, row in enumerate(rows):
            slot = by_epoch.setdefault(row.get("epoch", float(i)), {})
            for k, v in row.items():
                slot.setdefault(k, []).append(float(v))
    return [{k: statistics.fmean(v) for k, v in by_epoch[ep].items()} for ep in sorted(by_epoch)]


def load_histories(root: Path, rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, list[dict]]]:
    """``{dataset: {method: seed-averaged history rows}}`` from ``root/runs/<ds>/<dir>/seed<k>/``, ``<dir>``
    the method label's run directory name."""
    runs: dict[tuple[str, str], list[list[dict[str, float]]]] = {}
    for r in rows:
        run = root / "runs" / str(r["dataset"]) / run_dir_name(str(r["method"])) / f"seed{r['seed']}"
        path = run / "history.csv"
        hist = runs.setdefault((str(r["dataset"]), str(r["method"])), [])
        if path.is_file():
            hist.append(read_history(path))
    out: dict[str, dict[str, list[dict]]] = {}
    for (ds, method), hs in runs.items():
        out.setdefault(ds, {})[method] = mean_history(hs)
    return out


def _cell(entry: Mapping[str, Any], key: str, scale: float = 100.0, digits: int = 2) -> str:
    mean = entry.get(f"{key}_mean")
    if mean in (None, ""):
        return "–"
    text = f"{float(mean) * scale:.{digits}f}"
    if int(entry.get("seeds", 1)) > 1:
        text += f'<span class="sd"> ± {float(entry.get(f"{key}_std") or 0) * scale:.{digits}f}</span>'
    return text


def summary_table(entries: Sequence[Mapping[str, Any]]) -> str:
    """An HTML table of one dataset's summary rows."""
    columns, sharp = modality_columns(entries), sharpness_columns(entries)
    head = ["method", "seeds", "test acc %", "macro-F1 %", "MAP %", *[h for h, _ in columns + sharp]]
    head.append("train s")
    accs = [float(e["test_acc_mean"]) if e.get("test_acc_mean") not in (None, "") else None for e in entries]
    best = max((a for a in accs if a is not None), default=None)
    body = []
    for e, acc in zip(entries, accs, strict=True):
        top = acc is not None and acc == best
        cells = [
            escape(str(e["method"])),
            escape(str(e.get("seeds", ""))),
            f'<span class="best">{_cell(e, "test_acc")}</span>' if top else _cell(e, "test_acc"),
            _cell(e, "test_macro_f1"),
            _cell(e, "test_map"),
            *[_cell(e, key) for _, key in columns],
            *[_cell(e, key, 1.0, 3) for _, key in sharp],
            _cell(e, "train_seconds", 1.0, 1),
        ]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    thead = "".join(f"<th>{escape(h)}</th>" for h in head)
    return f"<table><thead><tr>{thead}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure_html(fig: Any, alt: str, caption: str) -> str:
    src = plots.to_data_uri(fig)
    return f'<figure><img src="{src}" alt="{escape(alt)}"><figcaption>{caption}</figcaption></figure>'


def _anchor(name: str) -> str:
    return "ds-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)


def dataset_section(dataset: str, entries: Sequence[Mapping[str, Any]], hists: Mapping[str, Any]) -> str:
    """One dataset's heading, table and figures."""
    ds = escape(dataset)
    figs = [
        _figure_html(
            plots.curves_figure(hists, f"{dataset}: validation accuracy"),
            f"{dataset} validation curves",
            "Validation accuracy per epoch: fused (solid) and per modality (dashed), seed mean.",
        ),
        _figure_html(
            plots.conflict_figure(hists),
            f"{dataset} gradient conflict",
            "Gradient-conflict cosine per epoch (below 0: conflicting modalities).",
        ),
        _figure_html(
            plots.bars_figure(entries, f"{dataset}: test accuracy"),
            f"{dataset} test accuracy bars",
            "Test accuracy, fused and per modality, mean ± std over seeds.",
        ),
    ]
    return (
        f'<section id="{_anchor(dataset)}"><h2>{ds}</h2>{summary_table(entries)}'
        f'<div class="figs">{"".join(figs)}</div></section>'
    )


def render(root: Path, rows: Sequence[Mapping[str, Any]], summary: Sequence[Mapping[str, Any]]) -> str:
    """The report page as a string."""
    hists = load_histories(root, rows)
    datasets = list(dict.fromkeys(str(e["dataset"]) for e in summary))
    methods = list(dict.fromkeys(str(e["method"]) for e in summary))
    seeds = sorted({str(r["seed"]) for r in rows})
    meta = (
        f"{len(rows)} runs · {len(datasets)} dataset(s) · methods: {', '.join(methods)} · "
        f"seeds: {', '.join(seeds)} · generated {time.strftime('%Y-%m-%d %H:%M')}"
    )
    nav = " ".join(f'<a href="#{_anchor(d)}">{escape(d)}</a>' for d in datasets)
    sections = [
        dataset_section(d, [e for e in summary if str(e["dataset"]) == d], hists.get(d, {})) for d in datasets
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>mmbalance compare</title><style>{CSS}</style></head><body><main>"
        f'<h1>mmbalance compare</h1><p class="meta">{escape(meta)}</p><nav>{nav}</nav>'
        f'<p class="note">{NOTE}{escape(sharpness_note()) if sharpness_columns(summary) else ""}</p>'
        f"{''.join(sections)}"
        "<footer>Files beside this page: <code>results.csv</code> (one row per run), "
        "<code>summary.csv</code>, <code>summary.md</code>, and the run directories under "
        "<code>runs/</code>.</footer>"
        "</main></body></html>\n"
    )


def write_report(root: Path, rows: Sequence[Mapping[str, Any]], summary: Sequence[Mapping[str, Any]]) -> Path:
    """Write ``root/report.html`` and return its path."""
    path = Path(root) / "report.html"
    path.write_text(render(Path(root), rows, summary), encoding="utf-8")
    return path
