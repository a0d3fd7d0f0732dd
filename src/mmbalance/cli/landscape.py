"""``mmbalance landscape``: loss landscape and sharpness of a finished run directory."""

from __future__ import annotations

import argparse
import json
from typing import Any

from mmbalance.cli.common import make_logger


def cmd_landscape(args: argparse.Namespace) -> int:
    from mmbalance.analysis.landscape_run import landscape_run
    from mmbalance.analysis.sharpness import SharpnessSettings

    settings = SharpnessSettings(samples=args.samples, seed=args.seed, rho=args.rho)
    log = make_logger(args.quiet)
    result = landscape_run(args.run_dir, args.out, args.points, args.span, settings, args.device, log)
    print(json.dumps(result, indent=2))
    return 0


def add_landscape_command(sub: Any) -> None:
    """Register ``mmbalance landscape`` on the CLI's subparsers."""
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
