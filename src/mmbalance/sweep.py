"""``mmbalance sweep``: one hyperparameter over a grid of values x seeds, resumable, summarised.

Layout of the sweep directory: ``runs/<dataset>/<method>/<param>=<value>/seed<k>/`` (standard run
directories, trained with :func:`mmbalance.compare.run_all`: every grid value is built and checked before the
first run, and a finished run is reused only when its config is identical), ``sweep.csv`` (one row
per value: mean and std over seeds) and ``sweep.png`` (the sensitivity figure).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmbalance import config as config_mod
from mmbalance.compare import RunSpec, mean_pm, modality_columns, run_all, split_list, summarize, write_csv
from mmbalance.errors import ConfigError

RESERVED = {"train__seed": "--seeds", "train__epochs": "--epochs"}


@dataclass(frozen=True)
class SweepSpec(RunSpec):
    """A run of the sweep; ``label`` is ``<param>=<value>``; the directory names dataset and method too."""

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


def plan_sweep(
    dataset: str, method: str, key: str, grid: Sequence[str], seeds: int, overrides: Sequence[str]
) -> list[SweepSpec]:
    """List the runs, after checking that every grid value gives a valid config (:func:`run_all` then builds
    each one before the first run starts)."""
    base = (f"dataset__name={dataset}", f"strategy__name={method}", *overrides)
    specs = []
    for value in grid:
        over = (*base, f"{key}={value}")
        config_mod.resolve({}, over)
        specs += [SweepSpec(dataset, f"{key}={value}", over, seed, method) for seed in range(seeds)]
    return specs


def sweep_rows(key: str, grid: Sequence[str], summary: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per grid value: test accuracy, macro-F1 and per-modality accuracy, mean and std."""
    by_label = {e["method"]: e for e in summary}
    out = []
    for value in grid:
        e = by_label[f"{key}={value}"]
        row: dict[str, Any] = {"param": key, "value": value, "seeds": e["seeds"]}
        for k, v in e.items():
            if k.startswith("test_") and (k.endswith(("_acc_mean", "_acc_std")) or "macro_f1" in k):
                row[k] = v
        out.append(row)
    return out


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


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run the grid x seeds, then write ``sweep.csv`` and ``sweep.png`` and print the table."""
    from mmbalance.cli import data_overrides, make_logger, show_progress

    if args.seeds < 1 or args.epochs < 1:
        raise ConfigError(f"--seeds={args.seeds} and --epochs={args.epochs} must be positive integers")
    key, grid = parse_param(args.param)
    data = data_overrides(args)
    dataset = "manifest" if data else args.dataset
    specs = plan_sweep(dataset, args.method, key, grid, args.seeds, [*data, *args.overrides])
    root = Path(args.out)
    results = run_all(specs, root, args.epochs, make_logger(args.quiet), show_progress(args.quiet))
    rows = sweep_rows(key, grid, summarize(results))
    write_csv(root / "sweep.csv", rows)
    try:
        write_sweep_figure(root / "sweep.png", key, rows)
    except ImportError as exc:  # matplotlib is an optional extra
        if not args.quiet:
            print(f"mmbalance: sweep.png skipped ({exc}); pip install 'mmbalance[report]'", file=sys.stderr)
    print(sweep_table(rows))
    return 0


def add_sweep_command(sub: Any) -> None:
    """Register ``mmbalance sweep`` on the CLI's subparsers."""
    sw = sub.add_parser("sweep", help="one hyperparameter over a grid x seeds (resumable), with a plot")
    sw.add_argument("--dataset", default="mfeat")
    sw.add_argument("--method", default="joint", help="a registered strategy (see `mmbalance list`)")
    sw.add_argument("--param", required=True, help="KEY=V1,V2,..., e.g. strategy__margin=0,0.25,0.5")
    sw.add_argument("--seeds", type=int, default=3, help="number of seeds (0..N-1)")
    sw.add_argument("--epochs", type=int, default=30)
    sw.add_argument("--out", required=True, help="sweep directory")
    sw.add_argument("--quiet", action="store_true")
    sw.add_argument("overrides", nargs="*", help="KEY=VALUE applied to every run")
    from mmbalance.cli import add_data_options

    add_data_options(sw)
    sw.set_defaults(func=cmd_sweep)
