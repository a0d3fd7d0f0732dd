"""Figures of runs, comparisons and sweeps (the ``mmbalance plot`` command is in :mod:`mmbalance.report`).

Every figure function takes data (history rows, summary rows, numbers) and returns a matplotlib
``Figure``. matplotlib (the ``report`` extra) is imported inside the functions, so ``import mmbalance``
never needs it; the Agg backend is selected unless pyplot is already in use.
"""

from __future__ import annotations

import base64
import io
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mmbalance.results_table import modality_columns

History = Sequence[Mapping[str, float]]
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
BAR_COLORS = ("#2c3e50", "#5dade2", "#f5b041", "#58d68d", "#af7ac5", "#ec7063")
DASHES = ("--", ":", "-.", (0, (5, 1, 1, 1)))
_MOD_ACC = re.compile(r"^val_(.+)_acc$")


def _blank(width: float, height: float) -> Any:
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _figure(ncols: int = 1, width: float = 6.4, height: float = 4.0) -> tuple[Any, Any]:
    fig = _blank(width, height)
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def modalities(rows: History) -> list[str]:
    """Modalities with a ``val_<m>_acc`` column, in first-seen order; none for a one-modality run."""
    found = list(dict.fromkeys(m.group(1) for r in rows for k in r if (m := _MOD_ACC.match(k))))
    return found if len(found) > 1 else []  # one modality: its accuracy is the fused one


def diagnostic_columns(rows: History, prefixes: Sequence[str] = ("grad_cosine",)) -> list[str]:
    """Columns starting with one of ``prefixes`` (or ending in ``_rate``), in first-seen order."""
    keys = (k for r in rows for k in r)
    return list(dict.fromkeys(k for k in keys if k.startswith(tuple(prefixes)) or k.endswith("_rate")))


def _series(rows: History, key: str) -> tuple[list[float], list[float]]:
    pts = [(r.get("epoch", float(i)), r[key]) for i, r in enumerate(rows) if key in r]
    return [p[0] for p in pts], [p[1] for p in pts]


def _plot(ax: Any, rows: History, key: str, **kw: Any) -> bool:
    xs, ys = _series(rows, key)
    if xs:
        ax.plot(xs, ys, marker="o" if len(xs) == 1 else None, **kw)
    return bool(xs)


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#777")


def curves_figure(histories: Mapping[str, History], title: str = "validation accuracy") -> Any:
    """Per-epoch val accuracy: fused (solid) and per modality (dashed styles), one colour per method."""
    fig, (ax,) = _figure()
    drawn = False
    for i, (label, rows) in enumerate(histories.items()):
        color = COLORS[i % len(COLORS)]
        drawn |= _plot(ax, rows, "val_acc", color=color, lw=2, label=f"{label} (fused)")
        for j, m in enumerate(modalities(rows)):
            ls = DASHES[j % len(DASHES)]
            drawn |= _plot(ax, rows, f"val_{m}_acc", color=color, ls=ls, lw=1.3, label=f"{label}: {m}")
    _finish(ax, fig, title, "val accuracy", drawn)
    return fig


def conflict_figure(histories: Mapping[str, History]) -> Any:
    """``grad_cosine*`` columns over epochs, one colour per method, with the zero line."""
    fig, (ax,) = _figure()
    drawn = False
    for i, (label, rows) in enumerate(histories.items()):
        for j, key in enumerate(diagnostic_columns(rows, ("grad_cosine",))):
            if key.startswith("grad_cosine"):
                ls = "-" if key == "grad_cosine" else DASHES[j % len(DASHES)]
                name = key.replace("grad_cosine", "cos", 1)
                drawn |= _plot(ax, rows, key, color=COLORS[i % len(COLORS)], ls=ls, label=f"{label}: {name}")
    if drawn:
        ax.axhline(0.0, color="#444", lw=0.8)
    title = "gradient conflict (cosine)" if drawn else "gradient conflict: no method logged grad_cosine"
    _finish(ax, fig, title, "cosine", drawn)
    return fig


def _finish(ax: Any, fig: Any, title: str, ylabel: str, drawn: bool) -> None:
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if drawn and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best", ncol=2 if len(ax.get_lines()) > 6 else 1)
    elif not drawn:
        _empty(ax, "no data")


def bars_figure(summary: Sequence[Mapping[str, Any]], title: str = "test accuracy") -> Any:
    """Fused test accuracy (mean ± std over seeds) per method, with per-modality accuracy bars beside:
    the head's (``<m>``) and, where summarised, the linear probe's (``<m> probe``, same colour, hatched)."""
    fig, (ax,) = _figure(width=max(6.4, 1.3 * len(summary) + 2))
    bars, color = [("fused", "test_acc", 0, False)], 0
    for header, key in modality_columns(summary):
        probe = header.endswith(" probe %")
        color += not probe
        bars.append((header.removesuffix(" %").removesuffix(" acc"), key, color, probe))
    width = 0.8 / len(bars)
    for j, (name, key, c, probe) in enumerate(bars):
        xs = [i + (j - (len(bars) - 1) / 2) * width for i, e in enumerate(summary) if f"{key}_mean" in e]
        es = [e for e in summary if f"{key}_mean" in e]
        means = [100 * float(e[f"{key}_mean"]) for e in es]
        stds = [100 * float(e.get(f"{key}_std") or 0.0) for e in es]
        ax.bar(
            xs,
            means,
            width,
            yerr=stds,
            capsize=3,
            label=name,
            color=BAR_COLORS[c % len(BAR_COLORS)],
            alpha=1.0 if key == "test_acc" else 0.85,
            hatch="//" if probe else None,
            edgecolor="white" if probe else None,
        )
    ax.set_xticks(range(len(summary)), [str(e["method"]) for e in summary], rotation=20, ha="right")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=11)
    ax.grid(axis="y", alpha=0.3)
    if summary:
        ax.legend(fontsize=8)
    else:
        _empty(ax, "no data")
    return fig


def sensitivity_figure(
    values: Sequence[Any], means: Sequence[float], stds: Sequence[float], param: str, ylabel: str = "test acc"
) -> Any:
    """Metric vs hyperparameter value with std error bars (categorical axis for non-numeric values)."""
    fig, (ax,) = _figure()
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    xs = list(values) if numeric else list(range(len(values)))
    ls = "-" if numeric else "none"
    ax.errorbar(xs, means, yerr=stds, marker="o", capsize=4, lw=1.8, ls=ls, color=COLORS[0])
    if numeric and min(xs, default=0) > 0 and max(xs) >= 20 * min(xs):
        ax.set_xscale("log")
        ax.minorticks_off()
    if len(xs) <= 12:
        ax.set_xticks(xs, [f"{v:g}" if numeric else str(v) for v in values])
    ax.set_xlabel(param)
    ax.set_ylabel(ylabel)
    ax.set_title(f"sensitivity to {param}", fontsize=11)
    ax.grid(alpha=0.3)
    return fig


def heatmap_figure(
    matrix: Sequence[Sequence[float]],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    row_param: str,
    col_param: str,
    title: str = "",
) -> Any:
    """A value per (row, column) cell of a two-parameter grid, coloured and written in the cell."""
    width, height = max(5.0, 1.1 * len(col_labels) + 3), max(3.6, 0.7 * len(row_labels) + 2)
    fig, (ax,) = _figure(width=width, height=height)
    image = ax.imshow(matrix, cmap="viridis", aspect="auto")
    fig.colorbar(image, ax=ax)
    low, high = image.get_clim()
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            light = high > low and (value - low) / (high - low) < 0.6  # white text on the dark colours
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", color="white" if light else "black")
    ax.set_xticks(range(len(col_labels)), [str(c) for c in col_labels])
    ax.set_yticks(range(len(row_labels)), [str(r) for r in row_labels])
    ax.set_xlabel(col_param)
    ax.set_ylabel(row_param)
    ax.set_title(title or f"{row_param} x {col_param}", fontsize=11)
    return fig


def run_figure(history: History, title: str = "") -> Any:
    """One run: train loss, val accuracy (fused and per modality), and diagnostics if logged."""
    diags = diagnostic_columns(history)
    fig, axes = _figure(3 if diags else 2, width=13 if diags else 9, height=3.6)
    _finish(axes[0], fig, "train loss", "loss", _plot(axes[0], history, "train_loss", color=COLORS[0]))
    drawn = _plot(axes[1], history, "val_acc", color=COLORS[0], lw=2, label="fused")
    for j, m in enumerate(modalities(history)):
        drawn |= _plot(axes[1], history, f"val_{m}_acc", color=COLORS[j + 1], ls="--", label=m)
    _finish(axes[1], fig, "val accuracy", "accuracy", drawn)
    if diags:
        for j, key in enumerate(diags):
            _plot(axes[2], history, key, color=COLORS[j % len(COLORS)], label=key)
        axes[2].axhline(0.0, color="#444", lw=0.8)
        _finish(axes[2], fig, "diagnostics", "value", True)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def save_png(fig: Any, path: str | Path, dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG file and return its path."""
    fig.savefig(path, format="png", dpi=dpi)
    return Path(path)


def to_svg(fig: Any) -> str:
    """``fig`` as an inline ``<svg>`` element (no XML prolog or doctype)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    text = buf.getvalue()
    return text[text.index("<svg") :]


def to_data_uri(fig: Any, dpi: int = 110) -> str:
    """``fig`` as a base64 PNG ``data:`` URI for an ``<img src=...>``."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _label(row: Mapping[str, Any], key: str) -> str:
    value = row.get(key)
    return "" if value is None else str(value)


def spectra_figure(rows: Sequence[Mapping[str, Any]], title: str = "") -> Any:
    """Projector spectra (rows of ``spectra.csv``, as written or as read back): one column per layer
    (and modality), the statistic's eigenvalues on a log axis on top (at most 12 decades below the largest;
    zeros fall off) and the shrink factors below (log axis when they span more than a factor of 10),
    against the eigenvalue's rank; one line per stage (or epoch), darker for later ones."""
    lines: dict[tuple[str, str], dict[str, list[tuple[float, float]]]] = {}
    for row in rows:
        panel = (_label(row, "modality"), _label(row, "layer"))
        stage = _label(row, "stage")
        key = f"stage {stage}" if stage else f"epoch {_label(row, 'epoch')}"
        point = (float(row["eigenvalue"]), float(row["shrink"]))
        lines.setdefault(panel, {}).setdefault(key, []).append(point)
    fig = _blank(max(4.0, 3.4 * len(lines)), 5.6)
    axes = fig.subplots(2, max(1, len(lines)), squeeze=False)
    for col, ((modality, layer), series) in enumerate(lines.items()):
        _spectrum_panels(axes[0][col], axes[1][col], series)
        axes[0][col].set_title(f"{modality}: {layer}" if modality else layer, fontsize=9)
    if not lines:
        _empty(axes[0][0], "no spectra")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def _spectrum_panels(top: Any, bottom: Any, series: Mapping[str, Sequence[tuple[float, float]]]) -> None:
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    for j, (key, points) in enumerate(series.items()):
        color = cmap(0.85 * (1 - j / max(1, len(series) - 1)))
        ranks = range(1, len(points) + 1)
        top.plot(ranks, [p[0] for p in points], color=color, lw=1.2, label=key)
        bottom.plot(ranks, [p[1] for p in points], color=color, lw=1.2, label=key)
    positive = [p[0] for points in series.values() for p in points if p[0] > 0]
    shrink = [p[1] for points in series.values() for p in points if p[1] > 0]
    top.set_yscale("log")
    if positive:
        top.set_ylim(bottom=max(1e-12 * max(positive), 0.5 * min(positive)))
    if shrink and max(shrink) > 10 * min(shrink):
        bottom.set_yscale("log")
    for ax, ylabel in ((top, "eigenvalue"), (bottom, "shrink factor")):
        ax.grid(alpha=0.3)
        ax.set_ylabel(ylabel, fontsize=8)
    bottom.set_xlabel("rank", fontsize=8)
    if len(series) <= 8:
        bottom.legend(fontsize=7)


RECORD_FIGURES = {"spectra": spectra_figure}
"""Figures of strategy records (:meth:`mmbalance.strategies.Strategy.records`) by table name: the run
directory gets ``<name>.png`` beside ``<name>.csv``."""
