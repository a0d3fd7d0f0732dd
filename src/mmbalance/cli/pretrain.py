"""``mmbalance pretrain``: the command line of the pre-training stage."""

from __future__ import annotations

import argparse
from typing import Any

from mmbalance.cli.common import add_data_options, config_from_args, make_logger


def cmd_pretrain(args: argparse.Namespace) -> int:
    from mmbalance.pretrain.stage import pretrain_run

    if not args.method:
        args.method = "mmcl"
    cfg, overrides = config_from_args(args)
    history = pretrain_run(cfg, args.out, overrides, log=make_logger(args.quiet))
    last = history[-1] if history else {}
    print(
        f"pretrained {len(history)} epochs into {args.out}: "
        f"final train loss {last.get('train_loss', 0):.4f}, "
        f"val loss {last.get('val_loss', 0):.4f}; start a run from it with model__init_from={args.out}"
    )
    return 0


def add_pretrain_command(sub: Any) -> None:
    """Register ``mmbalance pretrain`` on the CLI's subparsers."""
    p = sub.add_parser(
        "pretrain",
        help="pre-train encoders without labels (mmcl) into a run directory that train can start from",
    )
    p.add_argument(
        "--config", help="YAML file with config sections; `strategy` names the pre-training method"
    )
    p.add_argument("--dataset", help="a registered dataset")
    p.add_argument("--method", help="a pre-training method (default: mmcl)")
    p.add_argument("--seed", type=int, help="seeds the split, as for train: use the seed of the runs to come")
    p.add_argument("--epochs", type=int, help="pre-training epochs (train.epochs)")
    p.add_argument("--device", help="auto, cpu, cuda, ...")
    p.add_argument("--out", required=True, help="run directory to write (pretrained.pt, history.csv, ...)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch messages")
    add_data_options(p)
    p.add_argument(
        "overrides",
        nargs="*",
        help="KEY=VALUE overrides, e.g. strategy__temperature=0.1 strategy__corruption=0.3 "
        "data__batch_size=256",
    )
    p.set_defaults(func=cmd_pretrain)
