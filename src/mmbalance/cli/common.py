"""What the commands share: status lines and progress on stderr, the options of your own data, and the
config and ``KEY=VALUE`` overrides a command line stands for."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


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

    # values quoted as JSON strings (JSON is YAML): a path or a column name is never read as YAML syntax
    out = [
        "dataset__name=manifest",
        f"dataset__path={json.dumps(str(Path(args.data).expanduser().resolve()))}",
    ]
    # the mapping form (JSON is YAML), so that dataset__modalities__NAME__OPTION=... overrides can follow
    given["modalities"] = json.dumps(parse_modalities(given["modalities"]))
    quoted = {k: v if k == "modalities" else json.dumps(str(v)) for k, v in given.items() if v}
    return out + [f"dataset__{k}={v}" for k, v in quoted.items()]


def config_from_args(args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    """The ``--config`` file's sections and the overrides of the options (``--dataset``, ``--method``,
    the data options, ``--seed``, ``--epochs``, ``--device``) followed by the ``KEY=VALUE`` ones."""
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


def add_tracking_options(parser: argparse.ArgumentParser) -> None:
    """``--logger`` and ``--mlflow-uri``: mirror each run to TensorBoard and/or MLflow (docs/tracking.md)."""
    g = parser.add_argument_group("experiment tracking (the 'track' extra; docs/tracking.md)")
    g.add_argument(
        "--logger",
        help="mirror each run's config, history and final metrics: tensorboard (RUN/tensorboard/), mlflow, "
        "or both: tensorboard,mlflow",
    )
    g.add_argument(
        "--mlflow-uri",
        help="MLflow tracking URI (default: sqlite in ./mlruns/mlflow.db); needs --logger mlflow",
    )


def tracking_from_args(args: argparse.Namespace, experiment: str, root: str | None = None) -> Any:
    """The :class:`mmbalance.tracking.Tracking` of the options, its stores opened once (a bad value or a
    missing package is one line before any run starts)."""
    from mmbalance.tracking import parse_tracking, prepare

    tracking = parse_tracking(args.logger, args.mlflow_uri, experiment, root)
    prepare(tracking)
    return tracking


def add_parallel_options(parser: argparse.ArgumentParser) -> None:
    """``--jobs`` and ``--devices``: several runs at once, each in a process of its own."""
    parser.add_argument(
        "--jobs", type=int, default=1, help="runs trained at once, each in its own process (default: 1)"
    )
    parser.add_argument(
        "--devices",
        help="cpu or cuda:N, comma-separated: the runs' devices, round-robin over the jobs, e.g. "
        "cuda:0,cuda:1 (default: --device, else the config's)",
    )


def run_options(args: argparse.Namespace) -> Any:
    """The :class:`mmbalance.run_many.RunOptions` of ``--jobs``, ``--devices``, ``--logger`` and
    ``--plugin``; each bad value is one line before any run starts."""
    from mmbalance.errors import ConfigError
    from mmbalance.parallel import check_jobs, parse_devices
    from mmbalance.run_many import RunOptions

    check_jobs(args.jobs)
    devices = parse_devices(args.devices)
    if devices and getattr(args, "device", None):
        raise ConfigError(f"--device {args.device} and --devices {args.devices} given; expected one of them")
    root = Path(args.out)
    tracking = tracking_from_args(args, root.resolve().name, str(root))
    return RunOptions(args.jobs, tuple(devices), tracking, tuple(getattr(args, "plugin", ())))
