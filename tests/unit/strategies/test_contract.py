"""The contract every registered strategy satisfies (sklearn's ``check_estimator`` idea)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import torch

from mmbalance.strategies import STRATEGIES, build_strategy, list_strategies
from mmbalance.strategies.joint import Joint
from mmbalance.testing import check_strategy, run_steps, tiny_problem
from mmbalance.types import Batch, ModelOutput

# Required arguments for the tiny two-modality problem ("a", "b").
KWARGS = {"unimodal": {"modality": "a"}}


@pytest.mark.parametrize("name", list_strategies())
def test_contract(name: str, device: str) -> None:
    check_strategy(lambda: build_strategy(name, **KWARGS.get(name, {})), device=device)


@pytest.mark.parametrize("name", list_strategies())
def test_rebuilt_from_its_hyperparameters(name: str) -> None:
    s = build_strategy(name, **KWARGS.get(name, {}))
    again = build_strategy(name, **s.hyperparameters())
    assert again.hyperparameters() == s.hyperparameters()
    assert set(s.hyperparameters()) == set(STRATEGIES.params(name))


@pytest.mark.parametrize("name", list_strategies())
def test_defaults_are_stored_unchanged(name: str) -> None:
    params = STRATEGIES.params(name)
    s = build_strategy(name, **KWARGS.get(name, {}))
    for k, default in params.items():
        assert s.hyperparameters()[k] == KWARGS.get(name, {}).get(k, default)


def test_joint_head_choice_changes_the_model() -> None:
    heads = {
        h: type(tiny_problem(lambda h=h: build_strategy("joint", head=h)).model.head).__name__
        for h in ("concat", "sum", "shared")
    }
    assert heads == {"concat": "ConcatHead", "sum": "SumHead", "shared": "SharedHead"}


def test_unimodal_trains_only_its_modality() -> None:
    p = tiny_problem(lambda: build_strategy("unimodal", modality="b"))
    assert p.model.modalities == ["b"]
    run_steps(p, 2)
    out = p.model(p.batches[0].inputs)
    assert set(out.unimodal_logits) == {"b"}


class ForgetsItsEpochEndState(Joint):
    """Weights its loss by the last validation accuracy but leaves that weight out of its state (a bug)."""

    def setup(self, model: Any, optimizer: Any, make_optimizer: Any) -> None:
        super().setup(model, optimizer, make_optimizer)
        self.weight_ = 1.0

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.weight_ = 2.0 + metrics["val_acc"]

    def loss(self, out: ModelOutput, batch: Batch) -> Any:
        return super().loss(out, batch) * self.weight_

    def state_dict(self) -> dict[str, Any]:
        return {}


def test_the_contract_catches_state_learned_between_epochs_and_not_saved() -> None:
    with pytest.raises(AssertionError, match="round trip changed the next epoch"):
        check_strategy(ForgetsItsEpochEndState)


def test_the_tiny_problem_is_set_up_like_a_real_run() -> None:
    p = tiny_problem(lambda: build_strategy("joint"))
    assert [g["name"] for g in p.strategy.optimizer.param_groups] == ["a", "b", "shared"]  # concat head
    assert p.scheduler is not None and p.scheduler.optimizer is p.strategy.optimizer
    assert any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in p.model.modules())
