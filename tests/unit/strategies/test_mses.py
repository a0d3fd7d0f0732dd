"""MSES: smoothed held-out losses, stopping after the patience, frozen and restored branches."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from mmbalance import testing
from mmbalance.errors import ConfigError
from mmbalance.strategies._heldout import heldout_rows
from mmbalance.strategies.mses import MSES
from mmbalance.testing import TinyProblem, check_strategy, params_of, run_steps, same_tensors

# Equivalences compare steps bit for bit: no dropout, whose masks would depend on RNG use.
tiny_problem = partial(testing.tiny_problem, dropout=0.0)


@pytest.mark.parametrize("kw", [{}, {"head": "sum", "aux_weight": 0.0}, {"restore": "none"}])
def test_contract(kw: dict[str, Any], device: str) -> None:
    check_strategy(lambda: MSES(**kw), device=device)


def test_three_modalities(device: str) -> None:
    p = tiny_problem(lambda: MSES(), modalities=3, device=device)
    before = params_of(p.model)
    logs = run_steps(p, 2)[-1].logs
    assert not same_tensors(before, params_of(p.model))
    assert {k: float(v) for k, v in logs.items()} == {
        "mses_active_a": 1.0,
        "mses_active_b": 1.0,
        "mses_active_c": 1.0,
    }


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``scripted(p, losses)``: train ``len(losses)`` epochs; the held-out losses measured after epoch ``t``
    (at the start of epoch ``t + 1``) are ``losses[t]``, one per modality."""

    def run(p: TinyProblem, losses: Sequence[Sequence[float]], steps: int = 2) -> None:
        rows = iter(losses)
        fake = lambda *args, **kw: {"heldout": torch.tensor([*next(rows), 0.0])}  # noqa: E731
        monkeypatch.setattr("mmbalance.strategies.mses.head_losses", fake)
        for t in range(len(losses)):
            run_steps(p, steps, epoch=t)
        p.strategy.on_epoch_start(len(losses), p.loader)

    return run


def test_stopping_follows_the_smoothed_loss_and_the_patience(scripted: Callable[..., None]) -> None:
    p = tiny_problem(lambda: MSES(patience=2))
    a = [1.0, 0.9, 0.95, 0.97, 0.99, 1.0]  # smoothed 1.0, 0.96, 0.92, 0.958, 0.978, 0.994
    scripted(p, [(x, 1.0 - 0.1 * t) for t, x in enumerate(a)])
    s = p.strategy
    assert s.best_epoch_ == {"a": 2, "b": 5} and s.best_loss_["a"] == pytest.approx(0.6 * 0.9 + 0.4 * 0.95)
    assert s.stopped_ == {"a": True, "b": False}  # epoch 5 - best 2 > patience 2
    assert s.smoothed_["a"] == pytest.approx(0.6 * 0.99 + 0.4 * 1.0)


def test_a_stopped_branch_never_moves_again_momentum_and_weight_decay_included(
    scripted: Callable[..., None],
) -> None:
    for make in (
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01),
        lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
    ):
        p = tiny_problem(lambda: MSES(patience=0, restore="none"))
        p.strategy.optimizer = make(p.model.parameters())
        scripted(p, [(1.0, 1.0), (2.0, 0.5)])  # a stops after epoch 1; momentum has built up
        assert p.strategy.stopped_ == {"a": True, "b": False}
        branch = [p.model.encoders["a"], p.model.head.branches["a"]]
        frozen = [copy.deepcopy(m.state_dict()) for m in branch]  # parameters and BN statistics
        running = params_of(p.model.encoders["b"])
        logs = [p.strategy.training_step(batch, 2) for batch in p.batches]  # epoch 2, already started
        for module, then in zip(branch, frozen, strict=True):
            assert all(torch.equal(v, then[k]) for k, v in module.state_dict().items())
            assert all(q.grad is None and not q.requires_grad for q in module.parameters())
        assert not same_tensors(running, params_of(p.model.encoders["b"]))
        assert float(logs[-1].logs["mses_active_a"]) == 0.0 and float(logs[-1].logs["mses_active_b"]) == 1.0


def test_stopping_restores_the_branch_at_its_best_epoch_only() -> None:
    p = tiny_problem(lambda: MSES(patience=1))
    run_steps(p, 2)
    p.strategy.monitor(0, {"heldout": torch.tensor([1.0, 1.0, 0.0])})  # a's best: the state after epoch 0
    best = copy.deepcopy(p.model.encoders["a"].state_dict()), params_of(p.model.head.branches["a"])
    for t, row in enumerate([(2.0, 0.9), (2.0, 0.8)], start=1):
        p.model.train()
        for batch in p.batches:
            p.strategy.training_step(batch, t)
        b_before_stop = params_of(p.model.encoders["b"])
        p.strategy.monitor(t, {"heldout": torch.tensor([*row, 0.0])})
    assert p.strategy.stopped_ == {"a": True, "b": False}
    assert all(torch.equal(v, best[0][k]) for k, v in p.model.encoders["a"].state_dict().items())
    assert same_tensors(best[1], params_of(p.model.head.branches["a"]))
    assert same_tensors(b_before_stop, params_of(p.model.encoders["b"]))  # b is not rolled back


def test_the_loss_is_multitask_over_training_rows_and_ignores_held_out_labels(device: str) -> None:
    p = tiny_problem(lambda: MSES(holdout=0.3, aux_weight=0.5), device=device)
    batch = p.batches[0]
    out = p.model(batch.inputs)
    keep = ~heldout_rows(batch.index, 0.3)
    y = batch.label[keep]
    uni = sum(F.cross_entropy(z[keep], y) for z in out.unimodal_logits.values())
    torch.testing.assert_close(p.strategy.loss(out, batch), F.cross_entropy(out.logits[keep], y) + 0.5 * uni)
    other = tiny_problem(lambda: MSES(holdout=0.3, aux_weight=0.5), device=device)
    flipped = copy.copy(batch)
    object.__setattr__(flipped, "label", torch.where(~keep, (batch.label + 1) % 3, batch.label))
    p.strategy.training_step(batch, 0)
    other.strategy.training_step(flipped, 0)
    assert same_tensors(params_of(p.model), params_of(other.model))


def test_with_every_branch_stopped_a_sum_model_no_longer_changes(scripted: Callable[..., None]) -> None:
    p = tiny_problem(lambda: MSES(patience=0, head="sum", aux_weight=0.0))
    scripted(p, [(1.0, 1.0), (2.0, 2.0)])
    assert all(p.strategy.stopped_.values())
    before = params_of(p.model)
    result = p.strategy.training_step(p.batches[0], 2)
    assert torch.isfinite(result.loss) and same_tensors(before, params_of(p.model))


def test_resuming_freezes_the_stopped_branch_again(scripted: Callable[..., None]) -> None:
    p = tiny_problem(lambda: MSES(patience=0))
    scripted(p, [(1.0, 1.0), (2.0, 0.5)])
    fresh = tiny_problem(lambda: MSES(patience=0), seed=1)
    fresh.model.load_state_dict(p.model.state_dict())
    fresh.strategy.load_state_dict(copy.deepcopy(p.strategy.state_dict()))
    assert fresh.strategy.stopped_ == {"a": True, "b": False}
    assert not any(q.requires_grad for q in fresh.model.modality_parameters("a"))
    assert all(q.requires_grad for q in fresh.model.modality_parameters("b"))


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"patience": -1}, "patience=-1"),
        ({"patience": 2.5}, "patience=2.5"),
        ({"smoothing": 1.5}, "smoothing=1.5"),
        ({"holdout": 0.0}, "holdout=0.0"),
        ({"aux_weight": -1.0}, "aux_weight=-1.0"),
        ({"restore": "all"}, "restore='all'"),
        ({"head": "concat"}, "head='concat'"),
    ],
)
def test_bad_values_give_one_line(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as err:
        tiny_problem(lambda: MSES(**kwargs))
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="mses needs >= 2 modalities"):
        MSES().validate(["a"])
