"""``mmbalance sweep``: the command line of sweeps (:mod:`mmbalance.sweep`, :mod:`mmbalance.sweep_grid`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mmbalance import sweep_grid
from mmbalance.cli.common import (
    add_data_options,
    add_parallel_options,
    add_tracking_options,
    data_overrides,
    make_logger,
    run_options,
    show_progress,
)
from mmbalance.compare import base_overrides, recipe_method_options, run_all, summarize
from mmbalance.errors import ConfigError
from mmbalance.experiment import write_csv
from mmbalance.sweep import parse_params, plan_grid, sweep_rows, sweep_table, write_sweep_figure


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run the grid x seeds, then write ``results.csv``, ``sweep.csv`` and the figure and print the table."""
    if args.seeds < 1 or args.epochs < 1:
        raise ConfigError(f"--seeds={args.seeds} and --epochs={args.epochs} must be positive integers")
    params = parse_params(args.param)
    data = data_overrides(args)
    base, base_datasets = base_overrides(args.config)
    options = recipe_method_options(args.config)
    method = args.method or next(iter(options), None) or "joint"
    dataset = "manifest" if data else args.dataset or next(iter(base_datasets), "mfeat")
    shared = [*base, *options.get(method, []), *data, *args.overrides]
    specs = plan_grid(dataset, method, params, args.seeds, shared)
    root = Path(args.out)
    options, log = run_options(args), make_logger(args.quiet)
    results = run_all(specs, root, args.epochs, log, show_progress(args.quiet), options=options)
    write_csv(root / "results.csv", [sweep_grid.run_row(r, method) for r in results])
    if len(params) == 1:
        key, grid = params[0]
        rows = sweep_rows(key, grid, summarize(results))
        figure, table = "sweep.png", sweep_table(rows)
    else:
        rows = sweep_grid.grid_rows(params, summarize(results))
        figure, table = "heatmap.png", sweep_grid.grid_table(params, rows)
    write_csv(root / "sweep.csv", rows)
    try:
        if len(params) == 1:
            write_sweep_figure(root / figure, params[0][0], rows)
        elif len(params) == 2:
            sweep_grid.write_heatmap(root / figure, params, rows)
    except ImportError as exc:  # matplotlib is an optional extra
        if not args.quiet:
            print(f"mmbalance: {figure} skipped ({exc}); pip install 'mmbalance[report]'", file=sys.stderr)
    print(table)
    return 0


def add_sweep_command(sub: Any) -> None:
    """Register ``mmbalance sweep`` on the CLI's subparsers."""
    sw = sub.add_parser("sweep", help="hyperparameters over a grid x seeds (resumable), with a plot")
    sw.add_argument("--dataset", help="a registered dataset (default: the --config file's, else mfeat)")
    sw.add_argument(
        "--method",
        help="a registered strategy, see `mmbalance list` (default: the --config file's, else joint)",
    )
    sw.add_argument(
        "--config",
        "--recipe",
        help="a config file (e.g. recipes/dvm/gaal.yaml) every run starts from; --param values win over it",
    )
    sw.add_argument(
        "--param",
        required=True,
        action="append",
        help="KEY=V1,V2,..., e.g. strategy__margin=0,0.25,0.5; repeat it to sweep the grid of several",
    )
    sw.add_argument("--seeds", type=int, default=3, help="number of seeds (0..N-1)")
    sw.add_argument("--epochs", type=int, default=30)
    sw.add_argument("--out", required=True, help="sweep directory")
    sw.add_argument("--quiet", action="store_true")
    sw.add_argument("overrides", nargs="*", help="KEY=VALUE applied to every run")
    add_parallel_options(sw)
    add_tracking_options(sw)
    add_data_options(sw)
    sw.set_defaults(func=cmd_sweep)
