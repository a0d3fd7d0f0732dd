"""The Optuna side of ``mmbalance tune``: the study (created or joined, in any Optuna RDB storage), the
objective (one ordinary run per trial in ``trials/<number>/``) and the loop that runs trials until the study
has its budget.

The objective is the validation metric of the trial's best epoch; the test split plays no part in the
search. Each epoch's validation metric is reported to the pruner (``MedianPruner``): a trial below the
median of earlier trials at the same epoch stops there and is recorded as pruned. A trial counts toward
the budget while running, and once complete, pruned, or failed because its training diverged (the sampled
values did that); a trial that was interrupted or crashed does not count, so re-running the command
continues the study until the budget is done, and several processes may work on one study at once.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmbalance import config as config_mod
from mmbalance.errors import ConfigError, TrainingDiverged
from mmbalance.tune.space import Dimension

PRUNER_WARMUP_TRIALS = 5  # trials that run to the end before any is pruned
HEARTBEAT_SECONDS = 60  # a trial whose process stopped beating for 3 intervals is marked failed


class BudgetReached(Exception):
    """Raised by a trial that found ``--trials`` trials ahead of it (another process took the last one)."""


@dataclass(frozen=True)
class TuneSpec:
    """What every trial of a study shares: the base config, the space, the objective and the budget."""

    base: tuple[str, ...]  # KEY=VALUE overrides of every trial, before the sampled values
    space: tuple[Dimension, ...]
    metric: str
    trials: int
    root: Path

    def config(self, values: dict[str, Any]) -> dict[str, Any]:
        """The resolved config of a trial with these sampled values (key: value)."""
        return config_mod.resolve({}, [*self.base, *(d.override(values[d.key]) for d in self.space)])

    def fingerprint(self) -> dict[str, Any]:
        """What workers of one study must agree on: base config (device aside), space and metric."""
        base = config_mod.resolve({}, self.base)
        base["train"].pop("device")
        return {"base": config_mod.plain(base), "space": [str(d) for d in self.space], "metric": self.metric}


def counts(trial: Any) -> bool:
    """Whether a trial counts toward ``--trials``: running, complete, pruned, or diverged."""
    from optuna.trial import TrialState

    done = trial.state in (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)
    return done or bool(trial.user_attrs.get("diverged"))


def objective(spec: TuneSpec, progress: bool = False, tracking: Any = None) -> Callable[[Any], float]:
    """The function Optuna calls per trial: train ``trials/<number>/`` (mirrored to the loggers of
    ``tracking``, a :class:`mmbalance.tracking.Tracking`) and return its validation metric."""
    import optuna

    def run(trial: optuna.Trial) -> float:
        ahead = [t for t in trial.study.get_trials(deepcopy=False) if t.number < trial.number and counts(t)]
        if len(ahead) >= spec.trials:
            trial.set_user_attr("error", f"not run: {spec.trials} trials were already running or done")
            raise BudgetReached()  # the callback of run_study then stops this process
        cfg = spec.config({d.key: d.suggest(trial) for d in spec.space})

        def report(_: Any, state: Any) -> None:
            score = state.history[-1][f"val_{spec.metric}"]
            trial.report(score, state.epoch - 1)
            if trial.should_prune():
                raise optuna.TrialPruned(f"val {spec.metric} {score:.4f} after epoch {state.epoch - 1}")

        from mmbalance.tracking import train_tracked

        out = spec.root / "trials" / str(trial.number)
        try:
            metrics = train_tracked(cfg, out, tracking, on_epoch=report, progress=progress)
        except TrainingDiverged as exc:
            trial.set_user_attr("diverged", True)
            trial.set_user_attr("error", str(exc))
            raise
        full = config_mod.load_file(out / "config.yaml")
        trial.set_user_attr("config", {k: v for k, v in full.items() if k != config_mod.DERIVED})
        return float(metrics["val"][spec.metric])

    return run


def open_study(spec: TuneSpec, storage: str, name: str, sampler_seed: int | None, pruner: Any = None) -> Any:
    """Create the study or join the one of that name (refused if it was created with other settings)."""
    import optuna

    from mmbalance.experiment import config_diff

    study = optuna.create_study(
        storage=make_storage(storage),
        study_name=name,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=sampler_seed),
        pruner=pruner or optuna.pruners.MedianPruner(n_startup_trials=PRUNER_WARMUP_TRIALS),
        load_if_exists=True,
    )
    mine, theirs = spec.fingerprint(), study.user_attrs.get("mmbalance")
    if theirs is None:
        study.set_user_attr("mmbalance", mine)
    elif diff := config_diff(theirs, mine):
        raise ConfigError(
            f"study {name!r} was created with other settings (differs in {', '.join(diff[:4])}); "
            "use the same settings to join it, or another --study"
        )
    return study


def make_storage(url: str, attempts: int = 3) -> Any:
    """An Optuna RDB storage with heartbeats (a trial of a killed process is marked failed after three
    missed beats); SQLite waits up to a minute for a lock held by another process. An error of the database is
    retried (workers that start together race to create the tables); any other failure is one line."""
    import optuna
    from sqlalchemy.exc import DBAPIError

    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url, engine, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=3 * HEARTBEAT_SECONDS
                )
        except Exception as exc:  # a bad URL, a missing driver, a server that is not there
            if attempt + 1 < attempts and DBAPIError in (type(exc).__mro__ + type(exc.__cause__).__mro__):
                time.sleep(0.5 * (attempt + 1))
                continue
            raise _storage_error(url, exc) from exc
    raise AssertionError("unreachable")


def _storage_error(url: str, exc: Exception) -> ConfigError:
    from sqlalchemy.engine import make_url

    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except Exception:
        shown = url.split("@")[-1]
    reason = " ".join(str(exc).split())[:200]
    return ConfigError(
        f"--storage {shown!r} cannot be opened ({type(exc).__name__}: {reason}); expected an Optuna storage "
        "URL such as sqlite:///study.db or postgresql+psycopg://user@host/db, with its driver installed"
    )


def run_study(
    study: Any, spec: TuneSpec, log: Callable[[str], None], progress: bool = False, tracking: Any = None
) -> None:
    """Run trials in this process until ``spec.trials`` trials of the study count (see :func:`counts`)."""

    def budget_left() -> bool:
        return sum(counts(t) for t in study.get_trials(deepcopy=False)) < spec.trials

    def after(study: Any, trial: Any) -> None:
        log(describe(trial, spec.metric))
        if not budget_left():
            study.stop()

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    if budget_left():
        study.optimize(
            objective(spec, progress, tracking),
            catch=(TrainingDiverged, BudgetReached),
            callbacks=[after],
            gc_after_trial=True,
        )


def describe(trial: Any, metric: str) -> str:
    """One line about a finished trial: its state, value or reason, and its parameters."""
    params = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items()
    )
    state = trial.state.name.lower()
    if trial.intermediate_values and trial.state.name == "PRUNED":
        epoch = max(trial.intermediate_values)
        state += f" after epoch {epoch}, val {metric} {trial.intermediate_values[epoch]:.4f}"
    elif trial.value is not None:
        state += f", val {metric} {trial.value:.4f}"
    elif "error" in trial.user_attrs:
        state += f": {trial.user_attrs['error']}"
    return f"trial {trial.number} {state}" + (f" ({params})" if params else "")
