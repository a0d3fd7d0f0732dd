"""``mmbalance train``, ``evaluate``, ``predict`` and ``list``: one run, from training to predictions."""

from __future__ import annotations

import argparse
import json
from typing import Any

from mmbalance.cli.common import (
    add_data_options,
    add_tracking_options,
    config_from_args,
    make_logger,
    show_progress,
    tracking_from_args,
)


def cmd_train(args: argparse.Namespace) -> int:
    from mmbalance import config, distributed
    from mmbalance.tracking import train_tracked

    cfg, overrides = config_from_args(args)
    resolved = config.resolve(cfg, overrides)
    tracking = tracking_from_args(args, "mmbalance")
    try:  # under torchrun every process trains its shard; rank 0 writes, logs and prints
        progress, log = show_progress(args.quiet), make_logger(args.quiet)
        metrics = train_tracked(resolved, args.out, tracking, progress=progress, log=log)
        main = distributed.is_main()
    finally:
        distributed.shutdown()
    if main:
        print(format_run(metrics))
    return 0


def format_run(m: dict[str, Any]) -> str:
    t = m["test"]
    mods = ", ".join(f"{k} {v['acc']:.4f}" for k, v in t["modalities"].items())
    return (
        f"{m['method']} on {m['dataset']} (seed {m['seed']}): "
        f"best epoch {m['best_epoch']}/{m['epochs_run']}, "
        f"test acc {t['acc']:.4f}, macro-F1 {t['macro_f1']:.4f}; per modality: {mods}; "
        f"{m['train_seconds']:.1f}s"
    )


def cmd_evaluate(args: argparse.Namespace) -> int:
    from mmbalance.data.missing import parse_missing
    from mmbalance.experiment import evaluate_run

    result = evaluate_run(args.run_dir, device=args.device, missing=parse_missing(args.missing))
    print(json.dumps(result, indent=2))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from mmbalance.predict import predict_file

    summary = predict_file(args.run_dir, args.data, args.out, device=args.device)
    print(summary)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from mmbalance.catalog import catalog, format_catalog

    cat = catalog()
    print(json.dumps(cat, indent=2, default=str) if args.json else format_catalog(cat))
    return 0


def add_run_commands(sub: Any) -> None:
    """Register ``mmbalance train``, ``evaluate`` and ``predict`` on the CLI's subparsers."""
    from mmbalance.config import DEFAULTS

    train = sub.add_parser("train", help="train one run and write its run directory")
    train.add_argument(
        "--config",
        "--recipe",
        help="YAML file with config sections (dataset, strategy, model, ...), e.g. recipes/cremad/igm.yaml; "
        "later options and KEY=VALUE overrides win over it",
    )
    train.add_argument("--dataset", help=f"a registered dataset (default: {DEFAULTS['dataset']['name']})")
    train.add_argument(
        "--method",
        help=f"a registered strategy, see `mmbalance list` (default: {DEFAULTS['strategy']['name']})",
    )
    train.add_argument("--seed", type=int, help=f"(default: {DEFAULTS['train']['seed']})")
    train.add_argument("--epochs", type=int, help=f"(default: {DEFAULTS['train']['epochs']})")
    train.add_argument(
        "--device", help=f"auto, cpu, cuda, cuda:1, ... (default: {DEFAULTS['train']['device']})"
    )
    train.add_argument("--out", required=True, help="run directory (re-running resumes an unfinished run)")
    train.add_argument("--quiet", action="store_true", help="no progress bar or messages")
    add_data_options(train)
    add_tracking_options(train)
    train.add_argument(
        "overrides",
        nargs="*",
        help="KEY=VALUE config overrides, e.g. optim__lr=1e-3 data__batch_size=32 strategy__margin=0.5 "
        "(every key and its default: `mmbalance list` and docs/architecture.md)",
    )
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("evaluate", help="re-evaluate a finished run directory on its val and test splits")
    ev.add_argument("run_dir")
    ev.add_argument("--device", help="auto, cpu, cuda, ... (default: the device the run was configured with)")
    ev.add_argument(
        "--missing",
        help="MODALITY=FRACTION,...: 1.0 removes the modality from every test sample, 0.3 removes 30%% of "
        "its columns per sample (imputed with training statistics)",
    )
    ev.set_defaults(func=cmd_evaluate)

    pr = sub.add_parser("predict", help="predict the rows of a manifest with a finished run")
    pr.add_argument("run_dir")
    pr.add_argument(
        "--data", required=True, help="a CSV or Parquet manifest with the run's columns (label optional)"
    )
    pr.add_argument("--out", required=True, help="predictions CSV to write")
    pr.add_argument("--device", help="auto, cpu, cuda, ... (default: the device the run was configured with)")
    pr.set_defaults(func=cmd_predict)


def add_list_command(sub: Any) -> None:
    """Register ``mmbalance list`` on the CLI's subparsers."""
    ls = sub.add_parser("list", help="datasets, methods, encoders and heads with their hyperparameters")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
