"""The outputs of a sweep over several parameters (``mmbalance sweep --param A=... --param B=...``).

``sweep.csv`` has one row per grid cell: a column per parameter holding the cell's value, the number of
seeds, then test accuracy, macro-F1 and per-modality accuracy (mean and std over seeds); ``results.csv``
one row per run with the same parameter columns. With two parameters, ``heatmap.png`` shows the mean
fused test accuracy of every cell (first parameter down, second across).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mmbalance.compare import mean_pm
from mmbalance.results_table import modality_columns
from mmbalance.sweep import Params, grid_cells, metric_items


def cell_values(label: str) -> dict[str, str]:
    """``{key: value}`` of a cell label ``k1=v1,k2=v2`` (values hold no ``,``: :func:`sweep.parse_param`).

    >>> cell_values("strategy__margin=0.5,optim__lr=1e-3")
    {'strategy__margin': '0.5', 'optim__lr': '1e-3'}
    """
    return {k: v for k, _, v in (part.partition("=") for part in label.split(","))}


def run_row(row: Mapping[str, Any], method: str) -> dict[str, Any]:
    """A ``results.csv`` row of a sweep: dataset, the swept method, one column per parameter, then the rest of
    the run's :func:`mmbalance.compare.result_row` (whose ``method`` is the cell label)."""
    rest = {k: v for k, v in row.items() if k not in ("dataset", "method")}
    return {"dataset": row["dataset"], "method": method, **cell_values(str(row["method"])), **rest}


def grid_rows(params: Params, summary: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per grid cell, in grid order (:func:`mmbalance.sweep.grid_cells`)."""
    by_label = {e["method"]: e for e in summary}
    out = []
    for cell in grid_cells(params):
        label = ",".join(cell)
        e = by_label[label]
        out.append({**cell_values(label), "seeds": e["seeds"], **metric_items(dict(e))})
    return out


def grid_table(params: Params, rows: Sequence[Mapping[str, Any]]) -> str:
    """A markdown table of :func:`grid_rows`: a column per parameter, then the metrics."""
    keys = [k for k, _ in params]
    columns = modality_columns(rows)
    head = [*keys, "seeds", "test acc %", "macro-F1 %", *[header for header, _ in columns]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [str(r[k]) for k in keys] + [str(r["seeds"]), mean_pm(r, "test_acc")]
        cells += [mean_pm(r, "test_macro_f1"), *[mean_pm(r, key) for _, key in columns]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_heatmap(path: Path, params: Params, rows: Sequence[Mapping[str, Any]]) -> Path:
    """``heatmap.png``: mean fused test accuracy (%) over seeds, the first parameter's values as rows and the
    second's as columns."""
    from mmbalance.plots import heatmap_figure, save_png

    (k1, v1), (k2, v2) = params
    acc = {(r[k1], r[k2]): 100 * float(r["test_acc_mean"]) for r in rows}
    matrix = [[acc[(a, b)] for b in v2] for a in v1]
    seeds = max((int(r["seeds"]) for r in rows), default=0)
    title = f"test accuracy (%), mean over {seeds} seed(s)"
    return save_png(heatmap_figure(matrix, list(v1), list(v2), k1, k2, title), path)
