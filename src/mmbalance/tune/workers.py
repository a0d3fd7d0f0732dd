"""``mmbalance tune --jobs N``: N worker processes on one study, as N commands on one storage would be
(:mod:`mmbalance.tune.study`), started and awaited by one command. Worker ``k`` samples with seed
``sampler_seed + k`` (so the workers propose different values), trains on ``devices[k % len(devices)]``
when ``--devices`` is given, and uses its share of the CPUs (:func:`mmbalance.parallel.threads_per_job`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from mmbalance.errors import MMBalanceError
from mmbalance.parallel import run_parallel, status
from mmbalance.tune.study import TuneSpec, open_study, run_study


def on_device(spec: TuneSpec, device: str | None) -> TuneSpec:
    """``spec`` with every trial on ``device`` (unchanged when ``None``; the study ignores the device)."""
    return spec if device is None else dataclasses.replace(spec, base=(*spec.base, f"train__device={device}"))


def tune_worker(
    spec: TuneSpec, storage: str, name: str, sampler_seed: int, tracking: Any, quiet: bool, device: str | None
) -> int:
    """One worker process: join the study and run trials until the study has its budget."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = open_study(on_device(spec, device), storage, name, sampler_seed)
    run_study(study, on_device(spec, device), (lambda _: None) if quiet else status, False, tracking)
    return 0


def run_workers(
    spec: TuneSpec,
    storage: str,
    name: str,
    sampler_seed: int,
    options: Any,
    quiet: bool,
    log: Callable[[str], None],
) -> None:
    """Run ``options.jobs`` workers (a :class:`mmbalance.run_many.RunOptions`) on the study and wait for
    them; a worker that fails is one line, and the command then stops with one line."""
    failed: list[str] = []

    def done(k: int, ok: bool, value: Any, device: str | None) -> None:
        if not ok:
            failed.append(f"worker {k}: {value}")
            log(f"tune worker {k} failed on {device or 'its device'}: {value}")

    calls: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]] = [
        (tune_worker, (spec, storage, name, sampler_seed + k, options.tracking, quiet))
        for k in range(options.jobs)
    ]
    log(f"{options.jobs} workers on study {name!r}")
    run_parallel(calls, options.jobs, options.devices, done, options.plugins)
    if failed:
        raise MMBalanceError(f"{len(failed)} of {options.jobs} tune workers failed ({failed[0]})")
