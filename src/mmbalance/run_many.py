"""The runs of a comparison or sweep, trained one at a time or ``jobs`` at once (:mod:`mmbalance.parallel`),
each mirrored to the loggers of ``--logger`` (:mod:`mmbalance.tracking`).

A finished run (its ``metrics.json`` exists) is reused in this process; the others train in worker
processes when ``jobs > 1``. One status line per run: ``[k/n] <dataset> <label> seed <s>: ...``. With several
jobs, a run that fails is one line naming its run directory, the others go on, and the command then stops
with one line; every finished run stays in its directory and a re-run reuses it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmbalance.errors import MMBalanceError
from mmbalance.parallel import device_of, run_parallel
from mmbalance.tracking import Tracking, train_tracked


@dataclass(frozen=True)
class RunOptions:
    """How the runs of a command are trained: ``jobs`` at once, on ``devices`` (round-robin; empty: the
    device each config names), mirrored to ``tracking``, with the ``--plugin`` modules in every worker."""

    jobs: int = 1
    devices: tuple[str, ...] = ()
    tracking: Tracking | None = None
    plugins: tuple[str, ...] = ()


def on_device(cfg: Mapping[str, Any], device: str | None) -> dict[str, Any]:
    """``cfg`` with ``train.device`` set to ``device`` (unchanged when ``None``)."""
    cfg = copy.deepcopy(dict(cfg))
    if device is not None:
        cfg["train"]["device"] = device
    return cfg


def train_one(
    cfg: Mapping[str, Any], out: str, tracking: Tracking | None, device: str | None
) -> dict[str, Any]:
    """Train (or reuse) one run in a worker process; its metrics."""
    return train_tracked(on_device(cfg, device), out, tracking)


def train_specs(
    specs: Sequence[Any],
    root: Path,
    configs: Sequence[Mapping[str, Any]],
    log: Callable[[str], None],
    progress: bool,
    options: RunOptions,
) -> list[dict[str, Any]]:
    """The metrics of every run ``specs[i]`` (config ``configs[i]``, directory ``specs[i].directory(root)``),
    in plan order."""
    outs = [spec.directory(root) for spec in specs]
    names = [f"{s.dataset} {s.label} seed {s.seed}" for s in specs]
    n, tracking = len(specs), options.tracking
    if options.jobs == 1:
        results = []
        for i, (cfg, out) in enumerate(zip(configs, outs, strict=True)):
            state = "done, reused" if (out / "metrics.json").exists() else "training"
            log(f"[{i + 1}/{n}] {names[i]}: {state}")
            device = device_of(i, options.devices)
            results.append(train_tracked(on_device(cfg, device), out, tracking, progress=progress))
        return results
    found: dict[int, dict[str, Any]] = {}
    for i, out in enumerate(outs):
        if (out / "metrics.json").exists():
            found[i] = train_tracked(configs[i], out, tracking)  # read back (and mirrored if not yet)
            log(f"[{len(found)}/{n}] {names[i]}: done, reused")
    todo = [i for i in range(n) if i not in found]
    failed: list[int] = []

    def done(k: int, ok: bool, value: Any, device: str | None) -> None:
        i = todo[k]
        where = device or configs[i]["train"]["device"]
        if ok:
            found[i] = value
        else:
            failed.append(i)
        head = f"[{len(found) + len(failed)}/{n}] {names[i]}"
        if ok:
            log(f"{head}: trained on {where}, test acc {value['test']['acc']:.4f}")
        else:
            log(f"{head}: failed on {where} ({value}); run directory {outs[i]}")

    if todo:
        log(f"training {len(todo)} run(s), {options.jobs} at a time")
        calls = [(train_one, (configs[i], str(outs[i]), tracking)) for i in todo]
        run_parallel(calls, options.jobs, options.devices, done, options.plugins)
    if failed:
        shown = ", ".join(str(outs[i]) for i in failed[:3]) + (", ..." if len(failed) > 3 else "")
        raise MMBalanceError(
            f"{len(failed)} of {n} runs failed ({shown}); the finished runs are kept and reused on a re-run"
        )
    return [found[i] for i in range(n)]
