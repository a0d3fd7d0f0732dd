"""Step time and peak step memory of strategies in float32 and under bfloat16 autocast.

    python -m benchmarks.precision [--methods joint,gaal] [--steps N] [--device cpu]

Uses the model and batches of :mod:`benchmarks.step_time`; a bf16 step runs under
:func:`mmbalance.precision.autocast`, as the trainer runs it with ``train.precision=bf16``. The methods'
steps are interleaved within a precision; the precisions run one after the other. Prints, per method,
the median step milliseconds and the peak step memory in each precision, and bf16's ratios.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from typing import Any

import torch

from benchmarks.step_time import _sync, setups, step_peak
from mmbalance.precision import autocast
from mmbalance.strategies import Strategy

PRECISIONS = ("fp32", "bf16")


def median_ms(
    runs: dict[str, tuple[Strategy, Any]], precision: str, steps: int, warmup: int
) -> dict[str, float]:
    """Median step milliseconds of each strategy in ``precision``; the strategies' steps are interleaved."""
    device = next(iter(runs.values()))[0].model.head_parameters()[0].device
    batches = {m: list(loader) for m, (_, loader) in runs.items()}
    times: dict[str, list[float]] = {m: [] for m in runs}
    for i in range(warmup + steps):
        for method, (strategy, _) in runs.items():
            batch = copy.copy(batches[method][i % len(batches[method])])
            _sync(device)
            start = time.perf_counter()
            with autocast(device, precision):
                strategy.training_step(batch, 0)
            _sync(device)
            if i >= warmup:
                times[method].append(time.perf_counter() - start)
    return {m: statistics.median(t) * 1000 for m, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--methods", default="joint,gaal")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    device, methods = torch.device(args.device), args.methods.split(",")
    ms, mib = {}, {}
    for p in PRECISIONS:  # one precision after the other: interleaving them slowed float32 on the CPU
        runs = {m: r for m, r in setups(device, args.batch_size).items() if m in methods}
        ms[p] = median_ms(runs, p, args.steps, args.warmup)
        with autocast(device, p):
            mib[p] = {m: step_peak(s, list(ld)[:2], device) / 2**20 for m, (s, ld) in runs.items()}
    row = "{:<10} {:>8} {:>8} {:>6} {:>9} {:>9} {:>6}"
    print(row.format("method", "fp32 ms", "bf16 ms", "ratio", "fp32 MiB", "bf16 MiB", "ratio"))
    for m in methods:
        t, b = (ms["fp32"][m], ms["bf16"][m]), (mib["fp32"][m], mib["bf16"][m])
        print(row.format(m, *(f"{v:.2f}" for v in (t[0], t[1], t[1] / t[0], b[0], b[1], b[1] / b[0]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
