"""Gradient Blending: the OGR weights, the estimate, the weighted loss and the held-out rows."""

from __future__ import annotations

import copy
from functools import partial
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from mmbalance import testing
from mmbalance.errors import ConfigError
from mmbalance.strategies.gblending import GradientBlending, ogr_weights
from mmbalance.strategies.joint import Joint
from mmbalance.testing import TinyProblem, check_strategy, params_of, run_steps, same_tensors
from mmbalance.types import Batch

# Equivalences compare steps bit for bit: no dropout, whose masks would depend on RNG use.
tiny_problem = partial(testing.tiny_problem, dropout=0.0)

FIXED = {"mode": "fixed", "weights": {"a": 0.2, "b": 0.3, "fused": 0.5}}


@pytest.mark.parametrize("kw", [{"super_epoch": 2}, {"mode": "offline", "super_epoch": 1}, FIXED])
def test_contract(kw: dict[str, Any], device: str) -> None:
    check_strategy(lambda: GradientBlending(**kw), device=device)


def test_three_modalities_get_four_weights(device: str) -> None:
    p = tiny_problem(lambda: GradientBlending(super_epoch=1), modalities=3, device=device)
    logs = run_steps(p, 2)[-1].logs
    assert set(logs) == {"gb_weight_a", "gb_weight_b", "gb_weight_c", "gb_weight_fused"}
    assert abs(sum(float(v) for v in logs.values()) - 1.0) < 1e-6
    assert all(float(v) >= 0 for v in logs.values())


def test_ogr_weights_on_hand_computed_numbers() -> None:
    train_start, heldout_start = torch.ones(3), torch.tensor([1.2, 1.1, 1.3])
    train_end, heldout_end = torch.tensor([0.5, 0.8, 0.4]), torch.tensor([0.9, 1.2, 0.8])
    # gains 0.3, -0.1 -> 0, 0.5; overfitting changes 0.2, 0.3, 0.1; raw 7.5, 0, 50
    w = ogr_weights(train_start, heldout_start, train_end, heldout_end)
    torch.testing.assert_close(w, torch.tensor([7.5, 0.0, 50.0]) / 57.5)
    worse = ogr_weights(train_start, heldout_start, train_end, heldout_start + 1)
    assert torch.equal(worse, torch.zeros(3))  # no head generalised better: no weight at all


def by_hand_weights(p: TinyProblem, epochs: int, holdout: float) -> torch.Tensor:
    """The estimate written out: per head, train a copy on its loss alone, then the OGR of the losses."""
    from mmbalance.strategies._heldout import heldout_rows

    def losses(model: torch.nn.Module) -> torch.Tensor:
        model.eval()
        with torch.no_grad():
            rows = torch.arange(len(p.dataset))
            out, y, held = model(p.dataset.get(rows)), p.dataset.labels, heldout_rows(rows, holdout)
            z = [out.unimodal_logits["a"], out.unimodal_logits["b"], out.logits]
            table = [[F.cross_entropy(zk[part], y[part]) for zk in z] for part in (~held, held)]
        model.train()
        return torch.tensor(table)

    start, ends = losses(p.model), []
    for k, name in enumerate(["a", "b", "fused"]):
        model = copy.deepcopy(p.model)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        for _ in range(epochs):
            for batch in p.batches:
                keep = ~heldout_rows(batch.index, holdout)
                out = model(batch.inputs)
                z = out.logits if name == "fused" else out.unimodal_logits[name]
                opt.zero_grad()
                F.cross_entropy(z[keep], batch.label[keep]).backward()
                opt.step()
        ends.append(losses(model)[:, k])
    end = torch.stack(ends, dim=1)
    return ogr_weights(start[0], start[1], end[0], end[1])


def test_the_estimate_matches_the_rule_and_leaves_the_model_unchanged() -> None:
    p = tiny_problem(lambda: GradientBlending(super_epoch=3, holdout=0.3))
    run_steps(p, 2)  # a trained state and optimizer momentum
    expected = by_hand_weights(p, 3, 0.3)
    state = copy.deepcopy(p.model.state_dict())
    momentum = copy.deepcopy(p.strategy.optimizer.state_dict())
    weights = p.strategy.estimate(0, p.loader)
    torch.testing.assert_close(weights, expected, rtol=1e-4, atol=1e-6)
    assert float(weights.sum()) == pytest.approx(1.0)
    assert all(torch.equal(v, state[k]) for k, v in p.model.state_dict().items())  # buffers included
    assert str(p.strategy.optimizer.state_dict()) == str(momentum)


def test_online_re_estimates_every_super_epoch_and_offline_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def estimate(self: GradientBlending, epoch: int, loader: Any) -> torch.Tensor:
        calls.append(epoch)
        return self.weights_

    monkeypatch.setattr(GradientBlending, "estimate", estimate)
    for mode, expected in (("online", [0, 3, 6]), ("offline", [0])):
        calls.clear()
        p = tiny_problem(lambda mode=mode: GradientBlending(mode=mode, super_epoch=3))
        for epoch in range(8):
            p.strategy.on_epoch_start(epoch, p.loader)
        assert calls == expected


def test_the_loss_is_the_weighted_sum_over_training_rows(device: str) -> None:
    from mmbalance.strategies._heldout import heldout_rows

    p = tiny_problem(lambda: GradientBlending(super_epoch=1, holdout=0.3), device=device)
    p.strategy.weights_ = torch.tensor([0.1, 0.6, 0.3], device=device)
    batch = p.batches[0]
    out = p.model(batch.inputs)
    keep = ~heldout_rows(batch.index, 0.3)
    z = [out.unimodal_logits["a"], out.unimodal_logits["b"], out.logits]
    ces = [F.cross_entropy(zk[keep], batch.label[keep]) for zk in z]
    expected = sum(w * ce for w, ce in zip([0.1, 0.6, 0.3], ces, strict=True))
    torch.testing.assert_close(p.strategy.loss(out, batch), expected)
    fixed = tiny_problem(lambda: GradientBlending(**FIXED), device=device)
    out = fixed.model(batch.inputs)
    z = [out.unimodal_logits["a"], out.unimodal_logits["b"], out.logits]
    expected = sum(w * F.cross_entropy(zk, batch.label) for w, zk in zip([0.2, 0.3, 0.5], z, strict=True))
    torch.testing.assert_close(fixed.strategy.loss(out, batch), expected)  # fixed: every row trains


def test_the_fused_loss_alone_is_joint_training(device: str) -> None:
    only_fused = {"mode": "fixed", "weights": {"a": 0.0, "b": 0.0, "fused": 1.0}}
    gb = tiny_problem(lambda: GradientBlending(**only_fused), device=device)
    joint = tiny_problem(lambda: Joint(head="multitask"), device=device)
    run_steps(gb, 4)
    run_steps(joint, 4)
    assert same_tensors(params_of(gb.model), params_of(joint.model))


def test_held_out_labels_never_reach_a_gradient(device: str) -> None:
    from mmbalance.strategies._heldout import heldout_rows

    a = tiny_problem(lambda: GradientBlending(super_epoch=1, holdout=0.4), device=device)
    b = tiny_problem(lambda: GradientBlending(super_epoch=1, holdout=0.4), device=device)
    batch = a.batches[0]
    held = heldout_rows(batch.index, 0.4)
    assert held.any()
    flipped = Batch(batch.inputs, torch.where(held, (batch.label + 1) % 3, batch.label), batch.index)
    a.strategy.training_step(batch, 1)
    b.strategy.training_step(flipped, 1)
    assert same_tensors(params_of(a.model), params_of(b.model))


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"mode": "both"}, "mode='both'"),
        ({"super_epoch": 0}, "super_epoch=0"),
        ({"holdout": 0.0}, "holdout=0.0"),
        ({"weights": {"a": 1.0, "b": 1.0, "fused": 1.0}}, "exactly when mode=fixed"),
        ({"mode": "fixed", "weights": {"a": 1.0, "b": 1.0}}, "one weight per head"),
        ({"mode": "fixed", "weights": {"a": -1.0, "b": 1.0, "fused": 1.0}}, "weight of a=-1.0"),
        ({"mode": "fixed", "weights": {"a": 0.0, "b": 0.0, "fused": 0.0}}, "positive sum"),
    ],
)
def test_bad_values_give_one_line(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as err:
        tiny_problem(lambda: GradientBlending(**kwargs))
    assert "\n" not in str(err.value)


def test_an_unsupported_head_or_one_modality_is_refused() -> None:
    s = GradientBlending()
    with pytest.raises(ConfigError, match="needs >= 2 modalities"):
        s.validate(["a"])
    s.head = "concat"
    with pytest.raises(ConfigError, match="head='concat'"):
        s.validate(["a", "b"])
