"""``mmbalance sweep``: hyperparameters over a grid of values x seeds, resumable, summarised.

One ``--param KEY=V1,V2,...`` sweeps one hyperparameter; several ``--param`` sweep their full grid (the
product of the values, the first parameter varying slowest). Layout of the sweep directory:
``runs/<dataset>/<method>/<cell>/seed<k>/``, ``<cell>`` being ``<p1>=<v1>`` or ``<p1>=<v1>,<p2>=<v2>,...``
(standard run directories, trained with :func:`mmbalance.compare.run_all`: every grid cell is built and
checked before the first run, and a finished run is reused only when its config is identical),
``results.csv`` (one row per run), ``sweep.csv`` (one row per cell: mean and std over seeds) and the figure:
``sweep.png`` (accuracy against the value) for one parameter, ``heatmap.png`` (:mod:`mmbalance.sweep_grid`)
for two.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmbalance import config as config_mod
from mmbalance.compare import RunSpec, mean_pm, split_list
from mmbalance.errors import ConfigError
from mmbalance.results_table import modality_columns

RESERVED = {"train__seed": "--seeds", "train__epochs": "--epochs"}
Params = Sequence[tuple[str, Sequence[str]]]  # (key, its values' texts) per swept parameter


@dataclass(frozen=True)
class SweepSpec(RunSpec):
    """A run of the sweep; ``label`` is its grid cell, ``<p1>=<v1>[,<p2>=<v2>...]``; the directory names
    dataset and method too."""

    method: str = ""

    def directory(self, root: Path) -> Path:
        return root / "runs" / self.dataset / self.method / self.label / f"seed{self.seed}"


def parse_param(text: str) -> tuple[str, list[str]]:
    """``KEY=v1,v2,...`` into the key and the values' texts (duplicates dropped, order kept).

    >>> parse_param("strategy__margin=0, 0.5,0.5")
    ('strategy__margin', ['0', '0.5'])
    """
    key, sep, values = text.partition("=")
    key = key.strip()
    grid = list(dict.fromkeys(split_list(values)))
    if not sep or not key or not grid:
        raise ConfigError(f"--param {text!r} is invalid; expected KEY=V1,V2,... e.g. strategy__margin=0,0.5")
    if key in RESERVED:
        raise ConfigError(f"--param {key} cannot be swept; use {RESERVED[key]} instead")
    bad = [v for v in grid if "/" in v]
    if bad:
        raise ConfigError(f"--param value {bad[0]!r} contains '/'; expected a number or a plain word")
    return key, grid


def parse_params(texts: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Each ``--param`` through :func:`parse_param`; a key given twice is an error."""
    params = [parse_param(t) for t in texts]
    keys = [k for k, _ in params]
    for key in keys:
        if keys.count(key) > 1:
            raise ConfigError(f"--param {key} is given {keys.count(key)} times; expected each key once")
    return params


def grid_cells(params: Params) -> list[tuple[str, ...]]:
    """The grid's cells as ``KEY=VALUE`` overrides, the first parameter varying slowest.

    >>> grid_cells([("a", ["1", "2"]), ("b", ["x"])])
    [('a=1', 'b=x'), ('a=2', 'b=x')]
    """
    return list(itertools.product(*[[f"{key}={v}" for v in grid] for key, grid in params]))


def plan_grid(
    dataset: str, method: str, params: Params, seeds: int, overrides: Sequence[str]
) -> list[SweepSpec]:
    """List the runs of every grid cell x seed, after checking that every cell gives a valid config
    (:func:`run_all` then builds each one before the first run starts). A cell's label is its overrides
    joined by ``,``; with one parameter, ``<param>=<value>``."""
    base = (f"dataset__name={dataset}", f"strategy__name={method}", *overrides)
    specs = []
    for cell in grid_cells(params):
        over = (*base, *cell)
        config_mod.resolve({}, over)
        specs += [SweepSpec(dataset, ",".join(cell), over, seed, method) for seed in range(seeds)]
    return specs


def sweep_rows(key: str, grid: Sequence[str], summary: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per grid value: test accuracy, macro-F1 and per-modality accuracy, mean and std."""
    by_label = {e["method"]: e for e in summary}
    out = []
    for value in grid:
        e = by_label[f"{key}={value}"]
        out.append({"param": key, "value": value, "seeds": e["seeds"], **metric_items(e)})
    return out


def metric_items(entry: dict[str, Any]) -> dict[str, Any]:
    """The summary entry's test accuracy, macro-F1 and per-modality accuracy (mean and std) of a sweep row."""
    return {
        k: v
        for k, v in entry.items()
        if k.startswith("test_") and (k.endswith(("_acc_mean", "_acc_std")) or "macro_f1" in k)
    }


def sweep_table(rows: Sequence[dict[str, Any]]) -> str:
    """A markdown table of :func:`sweep_rows`."""
    columns = modality_columns(rows)
    head = [rows[0]["param"] if rows else "value", "seeds", "test acc %", "macro-F1 %"]
    head += [header for header, _ in columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [str(r["value"]), str(r["seeds"]), mean_pm(r, "test_acc"), mean_pm(r, "test_macro_f1")]
        cells += [mean_pm(r, key) for _, key in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_sweep_figure(path: Path, key: str, rows: Sequence[dict[str, Any]]) -> Path:
    """``sweep.png``: fused test accuracy (%) against the parsed grid values."""
    from mmbalance.plots import save_png, sensitivity_figure

    values = [config_mod.parse_value(r["value"]) for r in rows]
    means = [100 * r["test_acc_mean"] for r in rows]
    stds = [100 * r["test_acc_std"] for r in rows]
    return save_png(sensitivity_figure(values, means, stds, key, "test accuracy (%)"), path)
