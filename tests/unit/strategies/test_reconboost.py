"""ReconBoost: stage schedule, the reconcilement loss on known values, what each phase trains, the
memory-consolidation gradient, and inference over the trained learners."""

from __future__ import annotations

from functools import partial

import pytest
import torch
import torch.nn.functional as F

from mmbalance import testing
from mmbalance.errors import ConfigError
from mmbalance.strategies.reconboost import ReconBoost, reconcile_loss
from mmbalance.testing import check_strategy, params_of, run_steps, same_tensors

# Equivalences compare steps bit for bit: no dropout, whose masks would depend on RNG use.
tiny_problem = partial(testing.tiny_problem, dropout=0.0)


def test_contract(device: str) -> None:
    check_strategy(lambda: ReconBoost(), device=device)


def test_three_modalities_cycle_in_dataset_order(device: str) -> None:
    p = tiny_problem(lambda: ReconBoost(epochs_per_stage=1, correct_epochs=1), modalities=3, device=device)
    seen = []
    for epoch in range(8):
        run_steps(p, 1, epoch=epoch)
        stage, phase = p.strategy.position(epoch)
        seen.append((stage, phase, p.strategy.trained(stage)))
    assert [s[:2] for s in seen] == [(0, 1), (0, 2), (1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2)]
    assert seen[0][2] == ["a"] and seen[2][2] == ["a", "b"] and seen[4][2] == seen[6][2] == ["a", "b", "c"]


def test_reconcile_loss_equals_the_released_class_mean_form() -> None:
    g = torch.Generator().manual_seed(0)
    logits, others = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    label = torch.randint(0, 4, (5,), generator=g)
    target = F.one_hot(label, 4).float()
    logp, q = logits.log_softmax(1), others.softmax(1)
    released = (-5.0 * (target * logp).mean(-1) + 1.0 * (target * q * logp).mean(-1)).mean()
    torch.testing.assert_close(reconcile_loss(logits, others, label, 5.0, 1.0), released)
    # a sample the others already get right weighs less than one they miss
    confident = torch.full((1, 4), -9.0)
    confident[0, label[0]] = 9.0
    missed = -confident
    one = (logits[:1], label[:1])
    assert reconcile_loss(one[0], confident, one[1], 5.0, 1.0) < reconcile_loss(
        one[0], missed, one[1], 5.0, 1.0
    )


def state_of(module: torch.nn.Module) -> list[torch.Tensor]:
    """Parameters and buffers (BatchNorm statistics included), copied."""
    return [t.detach().clone() for t in [*module.parameters(), *module.buffers()]]


def test_phase_one_trains_only_the_active_encoder_and_the_shared_classifier() -> None:
    p = tiny_problem(lambda: ReconBoost(epochs_per_stage=1, correct_epochs=1))
    frozen, active = state_of(p.model.encoders["a"]), state_of(p.model.encoders["b"])
    head, beta = state_of(p.model.head.classifier), p.model.head.boost_rate.detach().clone()
    run_steps(p, 2, epoch=2)  # stage 1, phase 1: b learns against a
    assert same_tensors(frozen, state_of(p.model.encoders["a"]))
    assert all(q.grad is None for q in p.model.encoders["a"].parameters())
    assert not same_tensors(active, state_of(p.model.encoders["b"]))
    assert not same_tensors(head, state_of(p.model.head.classifier))
    assert torch.equal(p.model.head.boost_rate.detach(), beta) and p.model.head.boost_rate.grad is None


def test_phase_one_step_matches_the_formula_and_leaves_the_frozen_learner_untouched() -> None:
    p = tiny_problem(lambda: ReconBoost(epochs_per_stage=1, correct_epochs=1, alpha=0.0))
    p.strategy.on_epoch_start(2, p.loader)  # stage 1, phase 1: b learns, a is the ensemble
    batch = p.batches[0]
    frozen = state_of(p.model.encoders["a"])
    p.model.eval()
    with torch.no_grad():
        ensemble = p.model.head.boost_rate * p.model.head.unimodal(
            "a", p.model.encoders["a"](batch.inputs["a"])
        )
    p.model.train()
    expected = reconcile_loss(
        p.model.head.unimodal("b", p.model.encoders["b"](batch.inputs["b"])), ensemble, batch.label, 5.0, 1.0
    )
    result = p.strategy.training_step(batch, 2)
    torch.testing.assert_close(result.loss, expected.detach())
    assert same_tensors(frozen, state_of(p.model.encoders["a"]))  # eval mode: BN statistics stay too
    assert p.model.head.boost_rate.grad is None  # β learns only in phase 2


def test_without_reweighting_phase_one_is_unimodal_training() -> None:
    a = tiny_problem(lambda: ReconBoost(weight1=3.0, weight2=0.0, alpha=0.0))  # w₁ = C: plain CE
    b = tiny_problem(lambda: ReconBoost())
    run_steps(a, 3)
    for batch in b.batches[:3]:
        b.strategy.optimizer.zero_grad(set_to_none=True)
        logits = b.model.head.unimodal("a", b.model.encoders["a"](batch.inputs["a"]))
        F.cross_entropy(logits, batch.label).backward()
        b.strategy.optimizer.step()
    for x, y in zip(params_of(a.model), params_of(b.model), strict=True):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-7)


def test_phase_two_is_joint_training_of_the_scaled_ensemble() -> None:
    a = tiny_problem(lambda: ReconBoost(epochs_per_stage=1, correct_epochs=1))
    b = tiny_problem(lambda: ReconBoost(epochs_per_stage=1, correct_epochs=1))
    run_steps(a, 2, epoch=1)  # stage 0 phase 2: only a is trained so far
    b.strategy.on_epoch_start(1, b.loader)
    for batch in b.batches[:2]:
        b.strategy.optimizer.zero_grad(set_to_none=True)
        z = b.model.head.boost_rate * b.model.head.unimodal("a", b.model.encoders["a"](batch.inputs["a"]))
        F.cross_entropy(z, batch.label).backward()
        b.strategy.optimizer.step()
    assert same_tensors(params_of(a.model), params_of(b.model))
    assert a.model.head.boost_rate.grad is not None  # β is trained here


def test_memory_consolidation_has_a_gradient() -> None:
    with_ga = tiny_problem(lambda: ReconBoost(epochs_per_stage=1, correct_epochs=1, alpha=0.5))
    without = tiny_problem(lambda: ReconBoost(epochs_per_stage=1, correct_epochs=1, alpha=0.0))
    for p in (with_ga, without):
        run_steps(p, 1, epoch=2)
    assert not same_tensors(params_of(with_ga.model), params_of(without.model))


def test_optimizer_is_recreated_at_phase_changes_only() -> None:
    p = tiny_problem(lambda: ReconBoost(epochs_per_stage=2, correct_epochs=1))
    optimizers = []
    for epoch in range(5):
        p.strategy.on_epoch_start(epoch, p.loader)
        optimizers.append(p.strategy.optimizer)
    assert optimizers[0] is optimizers[1] and optimizers[1] is not optimizers[2]
    assert optimizers[2] is not optimizers[3] and optimizers[3] is optimizers[4]
    kept = tiny_problem(lambda: ReconBoost(epochs_per_stage=1, correct_epochs=1, reset_optimizer=False))
    first = kept.strategy.optimizer
    kept.strategy.on_epoch_start(1, kept.loader)
    assert kept.strategy.optimizer is first


def test_predict_uses_the_learners_trained_so_far() -> None:
    p = tiny_problem(lambda: ReconBoost(epochs_per_stage=1, correct_epochs=1))
    out = p.model(p.batches[0].inputs)
    beta = p.model.head.boost_rate
    p.strategy.on_epoch_start(0, p.loader)
    torch.testing.assert_close(p.strategy.predict(out), beta * out.unimodal_logits["a"])
    p.strategy.on_epoch_start(2, p.loader)
    torch.testing.assert_close(p.strategy.predict(out), out.logits)  # every learner: the head's β·Σ f_m


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"head": "shared"}, "head='shared'"),
        ({"epochs_per_stage": 0}, "epochs_per_stage=0"),
        ({"weight2": -1.0}, "weight2=-1.0"),
        ({"reset_optimizer": 1}, "reset_optimizer=1"),
        ({"head_hidden": [256, "x"]}, "head_hidden="),
    ],
)
def test_bad_values_give_one_line_errors(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as err:
        ReconBoost(**kwargs).validate(["a", "b"])
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="takes at least 2 modalities"):
        ReconBoost().validate(["a"])
