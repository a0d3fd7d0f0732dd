"""A frozen backbone is in no parameter group: every strategy trains the rest and leaves it untouched."""

from __future__ import annotations

import pytest
import torch

from mmbalance.models import build_model, parameter_groups
from mmbalance.strategies import build_strategy, list_strategies
from mmbalance.testing import params_of, run_steps, same_tensors, tiny_problem


def frozen_problem(method: str):  # type: ignore[no-untyped-def]
    kwargs = {"modality": "a"} if method == "unimodal" else {}
    p = tiny_problem(lambda: build_strategy(method, **kwargs), dropout=0.0)
    for q in p.model.encoders["a"].net[1].parameters():  # the first Linear of encoder a: a frozen trunk
        q.requires_grad_(False)
    make = lambda: torch.optim.AdamW(parameter_groups(p.model), lr=0.05, weight_decay=0.1)  # noqa: E731
    p.strategy.setup(p.model, make(), make)
    return p


def test_frozen_parameters_are_in_no_group() -> None:
    model = build_model({"a": {"name": "mlp"}}, {"a": (4,)}, 3, {"name": "concat"}, 8)
    frozen = list(model.encoders["a"].net[1].parameters())
    for q in frozen:
        q.requires_grad_(False)
    grouped = {id(q) for g in parameter_groups(model) for q in g["params"]}
    assert grouped and not grouped & {id(q) for q in frozen}


@pytest.mark.parametrize("method", list_strategies())
def test_every_strategy_trains_around_a_frozen_trunk(method: str) -> None:
    p = frozen_problem(method)
    trunk = params_of(p.model.encoders["a"].net[1])
    before = params_of(p.model)
    run_steps(p, 3)
    assert same_tensors(trunk, params_of(p.model.encoders["a"].net[1]))
    assert not same_tensors(before, params_of(p.model))
