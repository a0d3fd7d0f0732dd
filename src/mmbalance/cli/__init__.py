"""The ``mmbalance`` command: ``train``, ``evaluate``, ``predict``, ``landscape``, ``list``, ``compare``,
``sweep``, ``plot``, ``pretrain``, ``prepare``, ``tune``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from mmbalance.errors import MMBalanceError
from mmbalance.plugins import load_plugins

__all__ = ["build_parser", "main"]


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
    # the command modules import the library they stand on only when a parser is built
    from mmbalance.cli import compare, landscape, prepare, pretrain, run, tune

    run.add_run_commands(sub)
    landscape.add_landscape_command(sub)
    run.add_list_command(sub)
    compare.add_compare_commands(sub)
    pretrain.add_pretrain_command(sub)
    prepare.add_prepare_command(sub)
    tune.add_tune_command(sub)
    return parser


MULTI_PROCESS = ("train",)  # the commands torchrun may start several processes of


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
    if args.command not in MULTI_PROCESS and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        print(
            f"mmbalance: error: {args.command} under torchrun (WORLD_SIZE={os.environ['WORLD_SIZE']}); "
            f"expected one of {', '.join(MULTI_PROCESS)} (compare, sweep and tune run several runs at once "
            "with --jobs)",
            file=sys.stderr,
        )
        return 2
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
