"""Tools to test a strategy: a tiny problem and the contract every registered strategy must satisfy.

A user who writes a strategy can run ``check_strategy(lambda: MyStrategy(...))`` the same way the
library's own suite does (``tests/unit/strategies/test_contract.py``). The tiny problem is set up as a
real run is: encoders with dropout, an optimizer with the library's per-modality named parameter groups
and a learning-rate scheduler stepped between epochs (following the strategy's optimizer if it replaces
it, as the trainer does).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler

from mmbalance.data import BatchLoader, MultimodalDataset, build_dataset
from mmbalance.models import MultimodalModel, build_model, parameter_groups
from mmbalance.strategies import Strategy
from mmbalance.trainer import evaluate, flat_metrics, follow_optimizer, make_scheduler
from mmbalance.types import Batch, StepResult

SCHEDULE: dict[str, Any] = {"name": "step", "step_size": 1, "gamma": 0.5}
"""The tiny problem's scheduler: the rate halves after every epoch."""
EPOCHS = 10  # the run's epoch budget: the schedule's horizon and the strategy's ``epochs``


@dataclass
class TinyProblem:
    dataset: MultimodalDataset
    loader: BatchLoader
    model: MultimodalModel
    strategy: Strategy
    scheduler: LRScheduler | None = None

    @property
    def batches(self) -> list[Batch]:
        return list(self.loader)


def tiny_problem(
    make_strategy: Callable[[], Strategy],
    seed: int = 0,
    modalities: int = 2,
    device: str = "cpu",
    lr: float = 0.05,
    dropout: float = 0.2,
) -> TinyProblem:
    """Synthetic data with ``modalities`` modalities, small MLP encoders (with ``dropout``), set up for
    ``make_strategy()`` with SGD over :func:`~mmbalance.models.parameter_groups` and a ``SCHEDULE``."""
    torch.manual_seed(seed)
    names = [chr(ord("a") + i) for i in range(modalities)]
    ds = build_dataset(
        "synthetic",
        n_samples=48,
        num_classes=3,
        modalities=names,
        dims=[6] * modalities,
        signal=[1.0 - 0.3 * i for i in range(modalities)],
    )
    strategy = make_strategy()
    mods = strategy.modalities(ds.modalities)
    encoder = {"name": "mlp", "hidden": (8,), "dropout": dropout}
    model = build_model(
        {m: _with_options(encoder, strategy.encoder_options(m, ds.modalities)) for m in mods},
        {m: ds.input_shape(m) for m in ds.modalities},
        ds.num_classes,
        strategy.head_config(),
        feature_dim=8,
    ).to(device)

    def make_opt() -> torch.optim.Optimizer:
        return torch.optim.SGD(parameter_groups(model), lr=lr, momentum=0.9)

    optimizer = make_opt()
    scheduler = make_scheduler(SCHEDULE, optimizer, EPOCHS)
    strategy.epochs = EPOCHS  # as the trainer does: the run's epoch budget, before setup
    strategy.setup(model, optimizer, make_opt)
    ds.inputs = {m: x.to(device) for m, x in ds.inputs.items()}
    ds.labels = ds.labels.to(device)
    loader = BatchLoader(ds, torch.arange(len(ds), device=device), batch_size=16, shuffle=False)
    return TinyProblem(ds, loader, model, strategy, scheduler)


def _with_options(encoder: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """The strategy's encoder options merged into ``encoder``, or replacing it when they name another
    encoder (as :func:`mmbalance.experiment.encoder_configs` does)."""
    return {**encoder, **options} if options.get("name", encoder["name"]) == encoder["name"] else options


def run_steps(p: TinyProblem, steps: int = 2, epoch: int = 0) -> list[StepResult]:
    """``on_epoch_start`` then ``steps`` training steps (cycling over the tiny loader)."""
    p.model.train()
    p.strategy.on_epoch_start(epoch, p.loader)
    batches = p.batches
    return [p.strategy.training_step(batches[i % len(batches)], epoch) for i in range(steps)]


def run_epochs(p: TinyProblem, epochs: int, start: int = 0) -> None:
    """Epochs ``start, start+1, ...`` over the whole tiny loader as the trainer runs them: ``on_epoch_start``,
    the scheduler following the strategy's optimizer, the steps, a scheduler step, and ``on_epoch_end`` with
    the ``val_*`` metrics (of the training rows). The torch RNG is seeded before each hook and step, so
    dropout draws depend only on the epoch and the step."""
    for epoch in range(start, start + epochs):
        p.model.train()
        torch.manual_seed(1000 * epoch)
        p.strategy.on_epoch_start(epoch, p.loader)
        p.scheduler = follow_optimizer(p.scheduler, p.strategy, SCHEDULE, EPOCHS)
        for i, batch in enumerate(p.batches):
            torch.manual_seed(1000 * epoch + i + 1)
            p.strategy.training_step(batch, epoch)
        if p.scheduler is not None:
            p.scheduler.step()
        val = evaluate(p.model, p.strategy, p.loader, p.dataset.labels.device)
        p.strategy.on_epoch_end(epoch, {"epoch": float(epoch), **flat_metrics("val", val)})


def params_of(model: torch.nn.Module) -> list[torch.Tensor]:
    return [q.detach().clone() for q in model.parameters()]


def same_tensors(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    """Bit-identical, element by element."""
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def check_strategy(make_strategy: Callable[[], Strategy], device: str = "cpu") -> None:
    """Assert the strategy contract; raises ``AssertionError`` naming the broken property."""
    p = tiny_problem(make_strategy, device=device)
    before_hp = copy.deepcopy(p.strategy.hyperparameters())
    before = params_of(p.model)
    results = run_steps(p)
    for r in results:
        assert r.loss.ndim == 0 and torch.isfinite(r.loss), f"loss {r.loss} is not a finite scalar"
        assert not r.loss.requires_grad, "StepResult.loss must be detached"
        for k, v in r.logs.items():
            assert v.ndim == 0 and torch.isfinite(v) and not v.requires_grad, f"log {k}={v} invalid"
    assert not same_tensors(before, params_of(p.model)), "no parameter changed"
    assert p.strategy.hyperparameters() == before_hp, "the strategy changed its constructor arguments"
    with torch.no_grad():
        out = p.model(p.batches[0].inputs)
        pred = p.strategy.predict(out)
    assert pred.shape == (p.batches[0].size, p.dataset.num_classes), f"predict shape {tuple(pred.shape)}"
    assert torch.isfinite(pred).all(), "predict returned non-finite scores"
    _check_determinism(make_strategy, device)
    _check_state_round_trip(make_strategy, device)


def _check_determinism(make_strategy: Callable[[], Strategy], device: str) -> None:
    a, b = tiny_problem(make_strategy, device=device), tiny_problem(make_strategy, device=device)
    run_epochs(a, 2)
    run_epochs(b, 2)
    assert same_tensors(params_of(a.model), params_of(b.model)), "not deterministic"


def _check_state_round_trip(make_strategy: Callable[[], Strategy], device: str) -> None:
    """Save model, optimizer, scheduler and strategy state after an epoch; a fresh copy then trains the
    next epoch identically (and with the same learning rates)."""
    a = tiny_problem(make_strategy, device=device)
    run_epochs(a, 1)
    assert a.scheduler is not None
    saved: dict[str, Any] = {
        "model": copy.deepcopy(a.model.state_dict()),
        "opt": copy.deepcopy(a.strategy.optimizer.state_dict()),
        "scheduler": copy.deepcopy(a.scheduler.state_dict()),
        "strategy": copy.deepcopy(a.strategy.state_dict()),
    }
    b = tiny_problem(make_strategy, seed=1, device=device)
    assert b.scheduler is not None
    b.model.load_state_dict(saved["model"])
    b.strategy.load_state_dict(saved["strategy"])
    b.strategy.optimizer.load_state_dict(saved["opt"])
    b.scheduler.load_state_dict(saved["scheduler"])
    run_epochs(a, 1, start=1)
    run_epochs(b, 1, start=1)
    rates = [[g["lr"] for g in p.strategy.optimizer.param_groups] for p in (a, b)]
    assert rates[0] == rates[1], f"state_dict round trip changed the learning rates: {rates}"
    same = same_tensors(params_of(a.model), params_of(b.model))
    assert same, "state_dict round trip changed the next epoch"
