"""``mmbalance compare`` and ``mmbalance plot``: the command line of comparisons (:mod:`mmbalance.compare`)
and of a run's curves; ``sweep`` (:mod:`mmbalance.cli.sweep`) registers beside them."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmbalance import plots
from mmbalance.cli.common import (
    add_data_options,
    add_parallel_options,
    add_tracking_options,
    data_overrides,
    make_logger,
    run_options,
    show_progress,
)
from mmbalance.cli.sweep import add_sweep_command
from mmbalance.compare import (
    add_sharpness,
    base_overrides,
    markdown_table,
    plan,
    recipe_method_options,
    run_all,
    sharpness_note,
    split_list,
    summarize,
)
from mmbalance.data.missing import parse_missing
from mmbalance.errors import ConfigError, MMBalanceError
from mmbalance.experiment import write_csv
from mmbalance.report import read_history
from mmbalance.variants import split_top


def cmd_compare(args: argparse.Namespace) -> int:
    """Run every (dataset, method, seed), write the results, summary and report and print the table."""
    if args.seeds < 1 or args.epochs < 1:
        raise ConfigError(f"--seeds={args.seeds} and --epochs={args.epochs} must be positive integers")
    started = time.perf_counter()
    root = Path(args.out)
    data = data_overrides(args)
    base, base_datasets = base_overrides(args.config)
    overrides = [*base, *data, *args.overrides, *([f"train__device={args.device}"] if args.device else [])]
    datasets = ["manifest"] if data else split_list(args.datasets or ",".join(base_datasets) or "mfeat")
    specs = plan(
        datasets, split_top(args.methods), range(args.seeds), overrides, recipe_method_options(args.config)
    )
    missing = [parse_missing(part) for part in split_list(args.missing or "")]
    options, log = run_options(args), make_logger(args.quiet)
    rows = run_all(specs, root, args.epochs, log, show_progress(args.quiet), missing, options)
    if args.sharpness:
        add_sharpness(specs, rows, root, args.device, make_logger(args.quiet))
    root.mkdir(parents=True, exist_ok=True)
    summary = summarize(rows)
    write_csv(root / "results.csv", rows)
    write_csv(root / "summary.csv", summary)
    table = markdown_table(summary)
    (root / "summary.md").write_text(
        f"# mmbalance compare\n\n{args.seeds} seed(s), {args.epochs} epochs; fused test metrics and "
        "per-modality "
        f"test accuracy, mean ± std over seeds.{sharpness_note() if args.sharpness else ''}\n\n{table}\n"
    )
    _write_report(root, rows, summary, args.quiet)
    if args.results_md:
        from mmbalance import results_doc

        argv = [
            "compare",
            "--datasets",
            ",".join(datasets),
            "--methods",
            args.methods,
            "--seeds",
            str(args.seeds),
            "--epochs",
            str(args.epochs),
            "--out",
            args.out,
            "--results-md",
            args.results_md,
            *(["--device", args.device] if args.device else []),
            *(["--config", args.config] if args.config else []),
            *(["--missing", args.missing] if args.missing else []),
            *(["--sharpness"] if args.sharpness else []),
            *args.overrides,
        ]
        block = results_doc.generated_block(argv, table, time.perf_counter() - started)
        results_doc.update(Path(args.results_md), block)
    print(table)
    return 0


def _write_report(
    root: Path, rows: Sequence[dict[str, Any]], summary: Sequence[dict[str, Any]], quiet: bool
) -> None:
    try:
        from mmbalance.report import write_report

        path = write_report(root, rows, summary)
    except ImportError as exc:  # matplotlib is an optional extra, imported when the figures are drawn
        if not quiet:
            print(f"mmbalance: report.html skipped ({exc}); pip install 'mmbalance[report]'", file=sys.stderr)
        return
    if not quiet:
        print(f"report: {path}", file=sys.stderr)


def add_compare_commands(sub: Any) -> None:
    """Register ``mmbalance compare``, ``sweep`` and ``plot`` on the CLI's subparsers."""
    cmp = sub.add_parser("compare", help="run datasets x methods x seeds and summarise (resumable)")
    cmp.add_argument(
        "--datasets",
        help="comma-separated, e.g. mfeat,avdigits,htad (default: the --config file's, else mfeat)",
    )
    cmp.add_argument(
        "--config",
        "--recipe",
        help="a config file (e.g. recipes/cremad/igm.yaml) whose settings every run shares; its strategy "
        "options apply to that method and its variants only, and --epochs still sets the budget",
    )
    cmp.add_argument(
        "--methods",
        default="unimodal,joint",
        help="comma-separated registered methods, or variants with their own options and a row each: "
        "'igm,igm[sam_mode=off,temperature=0]'; logreg: a logistic regression on the raw features",
    )
    cmp.add_argument("--seeds", type=int, default=3, help="number of seeds (0..N-1)")
    cmp.add_argument("--epochs", type=int, default=30)
    cmp.add_argument("--out", required=True, help="report directory")
    cmp.add_argument("--device", help="auto, cpu, cuda, cuda:1, ... for every run (default: auto)")
    cmp.add_argument("--quiet", action="store_true")
    cmp.add_argument(
        "--results-md", help="also write the table, command, machine and date into this markdown file"
    )
    cmp.add_argument(
        "--missing",
        help="test-time missing-modality settings, each a column: 'tabular=1.0,image=1.0' is two settings "
        "(each modality absent in turn); 'tabular=0.3' removes 30%% of tabular columns per sample",
    )
    cmp.add_argument(
        "--sharpness",
        action="store_true",
        help="also measure each run's λ_max and ρ-sharpness (kept in RUN/landscape/sharpness.json)",
    )
    cmp.add_argument("overrides", nargs="*", help="KEY=VALUE applied to every run")
    add_parallel_options(cmp)
    add_tracking_options(cmp)
    add_data_options(cmp)
    cmp.set_defaults(func=cmd_compare)

    add_sweep_command(sub)
    add_plot_command(sub)


def cmd_plot(args: argparse.Namespace) -> int:
    """``mmbalance plot RUN_DIR``: the run's curves as a PNG (default ``RUN_DIR/curves.png``)."""
    run_dir = Path(args.run_dir)
    hist = run_dir / "history.csv"
    if not hist.is_file():
        raise ConfigError(f"{run_dir} has no history.csv; expected a run directory of `mmbalance train`")
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise MMBalanceError(f"plot needs matplotlib ({exc}); pip install 'mmbalance[report]'") from exc
    out = Path(args.out) if args.out else run_dir / "curves.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    print(plots.save_png(plots.run_figure(read_history(hist), title=str(run_dir)), out))
    return 0


def add_plot_command(sub: Any) -> None:
    """Register ``mmbalance plot`` on the CLI's subparsers."""
    p = sub.add_parser("plot", help="plot one run directory's training curves as a PNG")
    p.add_argument("run_dir")
    p.add_argument("--out", help="PNG file (default RUN_DIR/curves.png)")
    p.set_defaults(func=cmd_plot)
