"""The ``mmbalance`` command: ``train``, ``evaluate``, ``predict``, ``landscape``, ``list``, ``compare``,
``sweep``, ``plot``, ``pretrain``, ``prepare``, ``tune``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from mmbalance.errors import MMBalanceError
from mmbalance.plugins import load_plugins


def show_progress(quiet: bool) -> bool:
    """A progress bar only on an interactive terminal, never under CI or ``--quiet``."""
    return not quiet and sys.stderr.isatty() and not os.environ.get("CI")


def make_logger(quiet: bool) -> Callable[[str], None]:
    """Status lines go to stderr (stdout carries the results), or nowhere with ``--quiet``."""
    return (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr))


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """``--data/--modalities/--label/--split-column/--id-column``: train on your own manifest."""
    g = parser.add_argument_group("your own data (a manifest; see docs/data.md)")
    g.add_argument("--data", metavar="MANIFEST", help="a CSV or Parquet file, one row per sample")
    g.add_argument(
        "--modalities",
        help="NAME=KIND:COLUMN,... with KIND image, audio, text, features (a .npy path) or "
        "columns:C1,C2,...; e.g. 'image=image:photo,tabular=columns:age,sex,text=text:notes'",
    )
    g.add_argument("--label", help="the label column (default: label)")
    g.add_argument("--split-column", help="a column of train/val/test (default: a stratified split by seed)")
    g.add_argument("--id-column", help="a column of unique row ids (checked; written with predictions)")


def data_overrides(args: argparse.Namespace) -> list[str]:
    """The ``dataset__...`` overrides of the data options (none without ``--data``)."""
    from pathlib import Path

    from mmbalance.errors import ConfigError

    given = {k: getattr(args, k, None) for k in ("modalities", "label", "split_column", "id_column")}
    if not getattr(args, "data", None):
        named = [f"--{k.replace('_', '-')}" for k, v in given.items() if v]
        if named:
            raise ConfigError(f"{', '.join(named)} given without --data; expected --data MANIFEST with them")
        return []
    if not given["modalities"]:
        raise ConfigError(
            "--data needs --modalities, e.g. --modalities image=image:photo,tabular=columns:age,bp"
        )
    from mmbalance.data.spec import parse_modalities

    out = ["dataset__name=manifest", f"dataset__path={Path(args.data).expanduser().resolve()}"]
    # the mapping form (JSON is YAML), so that dataset__modalities__NAME__OPTION=... overrides can follow
    given["modalities"] = json.dumps(parse_modalities(given["modalities"]))
    return out + [f"dataset__{k}={v}" for k, v in given.items() if v]


def _config_from_args(args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    from mmbalance import config

    cfg: dict[str, Any] = config.load_file(args.config) if args.config else {}
    overrides = []
    if args.dataset:
        overrides.append(f"dataset__name={args.dataset}")
    if args.method:
        overrides.append(f"strategy__name={args.method}")
    overrides += data_overrides(args)
    for key, value in (
        ("train__seed", args.seed),
        ("train__epochs", args.epochs),
        ("train__device", args.device),
    ):
        if value is not None:
            overrides.append(f"{key}={value}")
    return cfg, overrides + list(args.overrides)


def cmd_train(args: argparse.Namespace) -> int:
    from mmbalance import config
    from mmbalance.experiment import train_run

    cfg, overrides = _config_from_args(args)
    resolved = config.resolve(cfg, overrides)
    metrics = train_run(resolved, args.out, progress=show_progress(args.quiet), log=make_logger(args.quiet))
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


def cmd_landscape(args: argparse.Namespace) -> int:
    from mmbalance.analysis.landscape_run import landscape_run
    from mmbalance.analysis.sharpness import SharpnessSettings

    settings = SharpnessSettings(samples=args.samples, seed=args.seed, rho=args.rho)
    log = make_logger(args.quiet)
    result = landscape_run(args.run_dir, args.out, args.points, args.span, settings, args.device, log)
    print(json.dumps(result, indent=2))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from mmbalance.catalog import catalog, format_catalog

    cat = catalog()
    print(json.dumps(cat, indent=2, default=str) if args.json else format_catalog(cat))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmbalance", description=__doc__)
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE (a dotted module name or a .py file) first, so the components it registers "
        "exist; repeatable; MMBALANCE_PLUGINS=mod1,mod2 does the same for every run",
    )
    sub = parser.add_subparsers(dest="command", required=True)

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

    _add_landscape(sub)

    ls = sub.add_parser("list", help="datasets, methods, encoders and heads with their hyperparameters")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    from mmbalance.compare import add_compare_commands

    add_compare_commands(sub)
    from mmbalance.pretrain.command import add_pretrain_command

    add_pretrain_command(sub)
    from mmbalance.prepare import add_prepare_command

    add_prepare_command(sub)

    from mmbalance.tune import add_tune_command

    add_tune_command(sub)
    return parser


def _add_landscape(sub: Any) -> None:
    from mmbalance.analysis.sharpness import SharpnessSettings

    d = SharpnessSettings()
    la = sub.add_parser(
        "landscape", help="loss landscape (1-D, 2-D) and sharpness of a finished run directory's best.pt"
    )
    la.add_argument("run_dir")
    la.add_argument("--out", help="output folder (default RUN_DIR/landscape)")
    la.add_argument("--points", type=int, default=21, help="grid points per axis, odd (default: 21)")
    la.add_argument("--span", type=float, default=1.0, help="the grid covers [-span, span] (default: 1.0)")
    la.add_argument(
        "--samples", type=int, default=d.samples, help=f"training rows used (default: {d.samples})"
    )
    la.add_argument(
        "--seed", type=int, default=d.seed, help="seeds rows, directions, iterations (default: 0)"
    )
    la.add_argument("--rho", type=float, default=d.rho, help=f"absolute L2 radius (default: {d.rho})")
    la.add_argument("--device", help="auto, cpu, cuda, ... (default: the device the run was configured with)")
    la.add_argument("--quiet", action="store_true", help="no progress messages")
    la.set_defaults(func=cmd_landscape)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # KEY=VALUE overrides may stand between options (`--method gaal strategy__ratio=0.3 --epochs 5`).
    stray = [e for e in extra if e.startswith("-") or "=" not in e]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra and not hasattr(args, "overrides"):
        print(
            f"mmbalance: error: {args.command} takes no KEY=VALUE overrides (got {' '.join(extra)}); "
            f"see `mmbalance {args.command} --help`",
            file=sys.stderr,
        )
        return 2
    if extra:
        args.overrides = [*args.overrides, *extra]
    try:
        load_plugins(args.plugin)  # MMBALANCE_PLUGINS, then each --plugin
        return int(args.func(args))
    except MMBalanceError as exc:
        print(f"mmbalance: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mmbalance: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
