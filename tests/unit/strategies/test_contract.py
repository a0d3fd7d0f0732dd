"""The contract every registered strategy satisfies (sklearn's ``check_estimator`` idea)."""

from __future__ import annotations

import pytest

from mmbalance.strategies import STRATEGIES, build_strategy, list_strategies
from mmbalance.testing import check_strategy, run_steps, tiny_problem

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
