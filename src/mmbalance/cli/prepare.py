"""``mmbalance prepare``: the command line of the papers' offline preprocessing (:mod:`mmbalance.prepare`)."""

from __future__ import annotations

import argparse
from typing import Any

from mmbalance.cli.common import make_logger
from mmbalance.prepare import prepare


def cmd_prepare(args: argparse.Namespace) -> int:
    prepare(args.dataset, args.root, force=args.force, log=make_logger(args.quiet))
    return 0


def add_prepare_command(sub: Any) -> None:
    """Register ``mmbalance prepare`` on the CLI's subparsers."""
    p = sub.add_parser("prepare", help="preprocess a paper dataset on disk once (frames, spectrograms, ...)")
    p.add_argument("dataset", help="a dataset with a prepare step, e.g. cremad")
    p.add_argument("--root", required=True, help="the folder the dataset was unpacked in")
    p.add_argument("--force", action="store_true", help="redo every item, also those already prepared")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_prepare)
