"""``mmbalance tune``: search config values with Optuna, one ordinary training run per trial.

Layout of the tune directory: ``study.db`` (the SQLite study, unless ``--storage`` names another Optuna
storage, which lets processes on several machines work on one study), ``trials/<number>/`` (a standard run
directory per trial, trained with the sampled values as overrides: see :mod:`mmbalance.tune.study`), and at
the end ``best.yaml`` (the full config of the best trial, a file ``mmbalance train --config`` accepts) and
``trials.csv`` (one row per trial: number, state, value, the sampled values, epochs run, seconds, note).

The package: :mod:`mmbalance.tune.space` (the ``--space`` grammar), :mod:`mmbalance.tune.study` (the study,
the objective, the worker loop) and :mod:`mmbalance.tune.workers` (``--jobs`` workers on one study); this
module makes the spec of a command line and writes the results.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmbalance import config as config_mod
from mmbalance.errors import ConfigError
from mmbalance.tune.space import parse_space
from mmbalance.tune.study import TuneSpec

RESERVED = {
    "dataset__name": "--dataset",
    "strategy__name": "--method",
    "train__epochs": "--epochs",
    "train__seed": "--seed",
    "train__select_metric": "--metric",
}


def make_spec(args: argparse.Namespace) -> TuneSpec:
    """The spec of the command line, after checking it: the config with each end and each choice of every
    searched key (the others at their first value) resolves and builds (dataset, strategy, model), so a
    bad key or value fails with one line before any trial runs or anything is written."""
    from mmbalance.experiment import check_runs

    if args.trials < 1 or args.epochs < 1:
        raise ConfigError(f"--trials={args.trials} and --epochs={args.epochs} must be positive integers")
    space = parse_space(args.space, RESERVED)
    base = [f"dataset__name={args.dataset}", f"strategy__name={args.method}", f"train__epochs={args.epochs}"]
    base += [f"train__seed={args.seed}", f"train__select_metric={args.metric}"]
    base += [f"train__device={args.device}"] if args.device else []
    spec = TuneSpec((*base, *args.overrides), space, args.metric, args.trials, Path(args.out))
    first = {d.key: d.values[0] for d in space}
    examples = {json.dumps({**first, d.key: v}): {**first, d.key: v} for d in space for v in d.values}
    check_runs([spec.config(values) for values in examples.values()])
    return spec


def trial_rows(trials: Sequence[Any], spec: TuneSpec) -> list[dict[str, Any]]:
    """One row per trial, in trial order: number, state, value, each searched key, epochs, seconds, note."""
    rows = []
    for t in sorted(trials, key=lambda t: t.number):
        row: dict[str, Any] = {"number": t.number, "state": t.state.name, "value": t.value}
        row.update({d.key: t.params.get(d.key) for d in spec.space})
        seconds = t.duration.total_seconds() if t.duration is not None else None
        row.update(epochs=len(t.intermediate_values), seconds=seconds, note=t.user_attrs.get("error", ""))
        rows.append(row)
    return rows


def write_results(study: Any, spec: TuneSpec) -> tuple[str, bool]:
    """Write ``trials.csv`` and, once a trial is complete, ``best.yaml``, both from one snapshot of the
    study and each replaced whole (workers that finish together never mix their files); return the summary
    and whether there is a best trial. Re-running the command rewrites both from the whole study."""
    from optuna.trial import TrialState

    from mmbalance.experiment import write_csv
    from mmbalance.tune.study import counts, describe

    trials = study.get_trials(deepcopy=False)
    write_csv(_part(spec.root / "trials.csv"), trial_rows(trials, spec))
    _part(spec.root / "trials.csv").replace(spec.root / "trials.csv")
    n = {s: sum(t.state == s for t in trials) for s in TrialState}
    running, complete = n[TrialState.RUNNING], [t for t in trials if t.state == TrialState.COMPLETE]
    done = sum(counts(t) for t in trials) - running
    lines = [
        f"study {study.study_name!r}: {done} of {spec.trials} trials done ({len(complete)} complete, "
        f"{n[TrialState.PRUNED]} pruned, {n[TrialState.FAIL]} failed), {running} running elsewhere"
    ]
    if not complete:
        return "\n".join([*lines, "no trial is complete, so there is no best.yaml"]), False
    best = max(complete, key=lambda t: (t.value, -t.number))  # ties: the earliest trial
    path = spec.root / "best.yaml"
    note = f"# mmbalance tune, study {study.study_name!r}, best of {done}: {describe(best, spec.metric)}\n"
    _part(path).write_text(note + config_mod.dump(best.user_attrs["config"]))
    _part(path).replace(path)
    lines += [
        f"best: {describe(best, spec.metric)}",
        f"wrote {path} (train it: mmbalance train --config {path} --out RUN) and {spec.root / 'trials.csv'}",
    ]
    return "\n".join(lines), True


def _part(path: Path) -> Path:
    """This process's temporary file beside ``path``."""
    return path.with_name(f".{path.name}.{os.getpid()}")
