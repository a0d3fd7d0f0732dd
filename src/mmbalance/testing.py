"""Tools to test a strategy: a tiny problem and the contract every registered strategy must satisfy.

A user who writes a strategy can run ``check_strategy(lambda: MyStrategy(...))`` the same way the
library's own suite does (``tests/unit/strategies/test_contract.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from mmbalance.data import BatchLoader, MultimodalDataset, build_dataset
from mmbalance.experiment import parameter_groups
from mmbalance.models import MultimodalModel, build_model
from mmbalance.strategies import Strategy
from mmbalance.types import Batch, StepResult


@dataclass
class TinyProblem:
    dataset: MultimodalDataset
    loader: BatchLoader
    model: MultimodalModel
    strategy: Strategy

    @property
    def batches(self) -> list[Batch]:
        return list(self.loader)


def tiny_problem(
    make_strategy: Callable[[], Strategy],
    seed: int = 0,
    modalities: int = 2,
    device: str = "cpu",
    lr: float = 0.05,
) -> TinyProblem:
    """Synthetic data with ``modalities`` modalities, small MLP encoders, set up for ``make_strategy()``.

    The optimizer is SGD (momentum 0.9) over the named per-modality parameter groups a run uses
    (:func:`mmbalance.experiment.parameter_groups`).
    """
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
    model = build_model(
        {m: {"name": "mlp", "hidden": (8,), "dropout": 0.0} for m in mods},
        {m: ds.input_shape(m) for m in mods},
        ds.num_classes,
        strategy.head_config(),
        feature_dim=8,
    ).to(device)

    def make_opt() -> torch.optim.Optimizer:
        return torch.optim.SGD(parameter_groups(model), lr=lr, momentum=0.9)

    strategy.setup(model, make_opt(), make_opt)
    ds.inputs = {m: x.to(device) for m, x in ds.inputs.items()}
    ds.labels = ds.labels.to(device)
    loader = BatchLoader(ds, torch.arange(len(ds), device=device), batch_size=16, shuffle=False)
    return TinyProblem(ds, loader, model, strategy)


def run_steps(p: TinyProblem, steps: int = 2, epoch: int = 0) -> list[StepResult]:
    """``on_epoch_start`` then ``steps`` training steps (cycling over the tiny loader)."""
    p.model.train()
    p.strategy.on_epoch_start(epoch, p.loader)
    batches = p.batches
    return [p.strategy.training_step(batches[i % len(batches)], epoch) for i in range(steps)]


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
    run_steps(a, 3)
    run_steps(b, 3)
    assert same_tensors(params_of(a.model), params_of(b.model)), "not deterministic"


def _check_state_round_trip(make_strategy: Callable[[], Strategy], device: str) -> None:
    """Save model, optimizer and strategy state after 2 steps; a fresh copy then steps identically."""
    a = tiny_problem(make_strategy, device=device)
    run_steps(a, 2)
    saved: dict[str, Any] = {
        "model": copy.deepcopy(a.model.state_dict()),
        "opt": copy.deepcopy(a.strategy.optimizer.state_dict()),
        "strategy": copy.deepcopy(a.strategy.state_dict()),
    }
    b = tiny_problem(make_strategy, seed=1, device=device)
    b.model.load_state_dict(saved["model"])
    b.strategy.load_state_dict(saved["strategy"])
    b.strategy.optimizer.load_state_dict(saved["opt"])
    batch = a.batches[2 % len(a.batches)]
    torch.manual_seed(7)
    a.strategy.training_step(batch, 0)
    torch.manual_seed(7)
    b.strategy.training_step(batch, 0)
    same = same_tensors(params_of(a.model), params_of(b.model))
    assert same, "state_dict round trip changed the next step"
