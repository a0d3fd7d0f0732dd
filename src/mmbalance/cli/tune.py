"""``mmbalance tune``: the command line of the Optuna search (:mod:`mmbalance.tune`)."""

from __future__ import annotations

import argparse
from typing import Any

from mmbalance.cli.common import (
    add_parallel_options,
    add_tracking_options,
    make_logger,
    run_options,
    show_progress,
)
from mmbalance.errors import ConfigError
from mmbalance.tune import make_spec, write_results
from mmbalance.tune.space import GRAMMAR
from mmbalance.tune.study import open_study, run_study
from mmbalance.tune.workers import on_device, run_workers


def cmd_tune(args: argparse.Namespace) -> int:
    """Check the space, open or join the study, run trials until the budget is done, write the results."""
    try:
        import optuna
    except ImportError as exc:
        raise ConfigError(f"mmbalance tune needs Optuna ({exc}); pip install 'mmbalance[tune]'") from exc
    spec = make_spec(args)
    options, log = run_options(args), make_logger(args.quiet)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # one line per trial comes from run_study instead
    spec.root.mkdir(parents=True, exist_ok=True)
    storage = args.storage or f"sqlite:///{(spec.root / 'study.db').resolve()}"
    name = args.study or spec.root.resolve().name
    seed = args.seed if args.sampler_seed is None else args.sampler_seed
    study = open_study(spec, storage, name, seed)
    if options.jobs > 1:
        run_workers(spec, storage, name, seed, options, args.quiet, log)
    else:
        device = options.devices[0] if options.devices else None
        run_study(study, on_device(spec, device), log, show_progress(args.quiet), options.tracking)
    summary, found = write_results(study, spec)
    print(summary)
    return 0 if found else 1


def add_tune_command(sub: Any) -> None:
    """Register ``mmbalance tune`` on the CLI's subparsers."""
    from mmbalance.config import SELECT_METRICS

    tu = sub.add_parser(
        "tune", help="search config values with Optuna (resumable, several workers per study)"
    )
    tu.add_argument("--dataset", default="mfeat")
    tu.add_argument("--method", default="joint", help="a registered strategy (see `mmbalance list`)")
    tu.add_argument("--space", action="append", default=[], required=True, help=f"repeatable: {GRAMMAR}")
    tu.add_argument("--trials", type=int, default=20, help="trials the study runs in all (default: 20)")
    tu.add_argument("--epochs", type=int, default=30, help="epochs per trial (default: 30)")
    tu.add_argument("--out", required=True, help="tune directory (re-running continues the study)")
    tu.add_argument("--storage", help="an Optuna storage URL (default: sqlite:///OUT/study.db)")
    tu.add_argument("--study", help="study name in the storage (default: the name of --out)")
    tu.add_argument("--seed", type=int, default=0, help="training seed of every trial (default: 0)")
    tu.add_argument(
        "--sampler-seed", type=int, help="seed of the TPE sampler (default: --seed; give each worker its own)"
    )
    tu.add_argument("--metric", default="acc", choices=SELECT_METRICS, help="validation metric to maximise")
    tu.add_argument("--device", help="auto, cpu, cuda, cuda:1, ... for every trial (default: auto)")
    tu.add_argument("--quiet", action="store_true")
    tu.add_argument("overrides", nargs="*", help="KEY=VALUE applied to every trial")
    add_parallel_options(tu)
    add_tracking_options(tu)
    tu.set_defaults(func=cmd_tune)
