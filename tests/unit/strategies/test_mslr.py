"""MSLR: per-modality learning rates on the named param groups, the dynamic rule, joint as a special case."""

from __future__ import annotations

import copy
from functools import partial
from typing import Any

import pytest
import torch

from mmbalance import testing
from mmbalance.errors import ConfigError
from mmbalance.experiment import parameter_groups
from mmbalance.strategies.joint import Joint
from mmbalance.strategies.mslr import MSLR, dynamic_ratio
from mmbalance.testing import TinyProblem, check_strategy, params_of, run_steps, same_tensors

# Equivalences compare steps bit for bit: no dropout, whose masks would depend on RNG use.
tiny_problem = partial(testing.tiny_problem, dropout=0.0)


def lrs(p: TinyProblem) -> dict[str, float]:
    return {g["name"]: g["lr"] for g in p.strategy.optimizer.param_groups}


@pytest.mark.parametrize(
    "kw", [{}, {"lr_scales": {"a": 0.9, "b": 1.1}, "dynamic": False}, {"head": "concat"}]
)
def test_contract(kw: dict[str, Any], device: str) -> None:
    check_strategy(lambda: MSLR(**kw), device=device)


def test_three_modalities_get_their_own_rates(device: str) -> None:
    p = tiny_problem(lambda: MSLR(lr_scales={"a": 2.0, "c": 0.5}), modalities=3, device=device)
    assert lrs(p) == pytest.approx({"a": 0.1, "b": 0.05, "c": 0.025})
    logs = run_steps(p, 2)[-1].logs
    assert {k: float(v) for k, v in logs.items()} == {
        "mslr_scale_a": 2.0,
        "mslr_scale_b": 1.0,
        "mslr_scale_c": 0.5,
    }


def test_unit_scales_are_joint_training_bit_for_bit(device: str) -> None:
    mslr = tiny_problem(lambda: MSLR(dynamic=False), device=device)
    joint = tiny_problem(lambda: Joint(head="sum"), device=device)
    run_steps(mslr, 4)
    run_steps(joint, 4)
    assert same_tensors(params_of(mslr.model), params_of(joint.model))


def test_a_scale_is_a_learning_rate_not_a_gradient_factor() -> None:
    """Under weight decay ``lr·c·(g + λθ)`` differs from ``lr·(c·g + λθ)``; MSLR does the former."""
    p = tiny_problem(lambda: MSLR(lr_scales={"a": 3.0, "b": 1.0}, dynamic=False))
    model = p.model
    p.strategy.optimizer = torch.optim.SGD(parameter_groups(model), lr=0.1, weight_decay=0.5)
    p.strategy.on_epoch_start(0, p.loader)
    theta = params_of(model)
    batch = p.batches[0]
    p.strategy.training_step(batch, 0)
    reference = copy.deepcopy(model)
    for q, t in zip(reference.parameters(), theta, strict=True):
        q.data.copy_(t)
    torch.nn.functional.cross_entropy(reference(batch.inputs).logits, batch.label).backward()
    a_ids = {id(q) for q in reference.modality_parameters("a")}
    for q, t, new in zip(reference.parameters(), theta, model.parameters(), strict=True):
        lr = 0.1 * (3.0 if id(q) in a_ids else 1.0)
        torch.testing.assert_close(new, t - lr * (q.grad + 0.5 * t))


def test_scales_survive_optimizer_re_creation_resume_and_the_scheduler() -> None:
    p = tiny_problem(lambda: MSLR(lr_scales={"a": 0.5, "b": 2.0}, dynamic=False))
    s = p.strategy
    assert lrs(p) == pytest.approx({"a": 0.025, "b": 0.1})
    s.on_epoch_start(1, p.loader)  # re-applying changes nothing
    assert lrs(p) == pytest.approx({"a": 0.025, "b": 0.1})
    s.optimizer = s.make_optimizer()  # a fresh optimizer at the base rate
    s.on_epoch_start(2, p.loader)
    assert lrs(p) == pytest.approx({"a": 0.025, "b": 0.1})
    saved = copy.deepcopy(s.optimizer.state_dict())
    resumed = tiny_problem(lambda: MSLR(lr_scales={"a": 0.5, "b": 2.0}, dynamic=False))
    resumed.strategy.load_state_dict(s.state_dict())
    resumed.strategy.optimizer.load_state_dict(saved)
    resumed.strategy.on_epoch_start(3, resumed.loader)
    assert lrs(resumed) == pytest.approx({"a": 0.025, "b": 0.1})
    sched = torch.optim.lr_scheduler.StepLR(s.optimizer, step_size=1, gamma=0.1)
    s.training_step(p.batches[0], 3)
    sched.step()
    s.ratio_ = {"a": 4.0, "b": 1.0}  # what the dynamic rule would set at an epoch end
    s.on_epoch_start(4, p.loader)
    assert lrs(p) == pytest.approx({"a": 0.05 * 0.1 * 2.0, "b": 0.05 * 0.1 * 2.0})


def test_the_dynamic_ratio_follows_validation_accuracy_over_a_sliding_window() -> None:
    p = tiny_problem(lambda: MSLR(window=3))
    accs = [(0.5, 0.2), (0.6, 0.2), (0.7, 0.2), (0.9, 0.1), (0.3, 0.0)]
    ratios = []
    for t, (a, b) in enumerate(accs):
        p.strategy.on_epoch_end(t, {"val_a_acc": a, "val_b_acc": b})
        ratios.append(dict(p.strategy.ratio_))
    assert ratios[2] == {"a": 1.0, "b": 1.0}  # the first window epochs only fill the memory
    assert ratios[3] == pytest.approx({"a": 0.9 / 0.6, "b": 0.1 / 0.2})
    assert ratios[4] == pytest.approx({"a": 0.3 / ((0.6 + 0.7 + 0.9) / 3), "b": 1e-6})  # recomputed, floored
    assert lrs(p) == pytest.approx({"a": 0.05 * 0.3 / (2.2 / 3), "b": 0.05 * 1e-6})
    assert dynamic_ratio([0.0, 0.0], 0.5) == 1.0


def test_an_optimizer_without_named_groups_is_refused() -> None:
    p = tiny_problem(lambda: MSLR())
    p.strategy.optimizer = torch.optim.SGD(p.model.parameters(), lr=0.1)
    with pytest.raises(ConfigError, match="one optimizer param group named per modality") as err:
        p.strategy.on_epoch_start(0, p.loader)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"lr_scales": {"z": 1.0}}, "lr_scales="),
        ({"lr_scales": {"a": 0.0}}, "lr scale of a=0.0"),
        ({"dynamic": "yes"}, "dynamic='yes'"),
        ({"window": 0}, "window=0"),
        ({"head": "shared"}, "head='shared'"),
    ],
)
def test_bad_values_give_one_line(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as err:
        tiny_problem(lambda: MSLR(**kwargs))
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="mslr needs >= 2 modalities"):
        MSLR().validate(["a"])
