"""PMR: prototypes, the rebalancing coefficients, the objective on known values, and joint equivalence."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F

from mmbalance import testing
from mmbalance.errors import ConfigError
from mmbalance.strategies import build_strategy
from mmbalance.strategies.pmr import PMR, class_means, rebalance_coefficients
from mmbalance.testing import check_strategy, params_of, run_steps, same_tensors

# Equivalences compare steps bit for bit: no dropout, whose masks would depend on RNG use.
tiny_problem = partial(testing.tiny_problem, dropout=0.0)


def test_contract(device: str) -> None:
    check_strategy(lambda: PMR(), device=device)


def test_three_modalities(device: str) -> None:
    p = tiny_problem(lambda: PMR(head="sum"), modalities=3, device=device)
    logs = run_steps(p, 3)
    assert set(p.strategy.prototypes_) == {"a", "b", "c"}
    assert all(torch.isfinite(r.loss) for r in logs)
    assert {"pmr_coef_a", "pmr_coef_b", "pmr_coef_c"} <= set(logs[0].logs)


def test_two_modality_coefficients_follow_the_imbalance_ratio() -> None:
    for s_a, s_v in [(30.0, 20.0), (20.0, 30.0), (10.0, 40.0), (25.0, 25.0)]:
        rho = s_a / s_v
        coef = rebalance_coefficients(torch.tensor([s_a, s_v])).tolist()
        expected = [min(max(1 / rho - 1, 0.0), 1.0), min(max(rho - 1, 0.0), 1.0)]
        assert coef == pytest.approx(expected)
        assert min(coef) == 0.0  # the dominant modality (or both, when balanced) gets no PCE term


def test_class_means_are_the_per_class_averages() -> None:
    g = torch.Generator().manual_seed(0)
    f, y = torch.randn(20, 3, generator=g), torch.randint(0, 4, (20,), generator=g)
    y[y == 3] = 0  # class 3 is absent: it keeps the fallback row
    fallback = torch.full((4, 3), 7.0)
    means = class_means(f, y, 4, fallback)
    for k in range(3):
        torch.testing.assert_close(means[k], f[y == k].mean(0))
    assert torch.equal(means[3], fallback[3])


def test_prototypes_are_eval_mode_class_means_then_smoothed() -> None:
    p = tiny_problem(lambda: PMR(momentum_coef=0.25, proto_fraction=0.1))
    first = p.batches[0]  # 3 batches: a tenth of them rounds up to the first one

    def expected(m: str) -> torch.Tensor:
        p.model.eval()
        with torch.no_grad():
            h = p.model.encoders[m](first.inputs[m])
        p.model.train()
        return class_means(h, first.label, 3, torch.zeros(3, h.shape[1]))

    p.model.train()
    p.strategy.on_epoch_start(0, p.loader)
    assert p.model.training  # the statistics pass restores training mode
    torch.testing.assert_close(p.strategy.prototypes_["a"], expected("a"))
    old = p.strategy.prototypes_["a"].clone()
    run_steps(p, 2)  # epoch 0 again: the model moves
    p.strategy.on_epoch_start(1, p.loader)
    torch.testing.assert_close(p.strategy.prototypes_["a"], 0.75 * expected("a") + 0.25 * old)


def test_objective_matches_the_formula_on_known_values() -> None:
    s = PMR(alpha=2.0, entropy_weight=0.5, entropy_epochs=3)
    s.prototypes_ = {"a": torch.tensor([[0.0, 0.0], [3.0, 0.0]]), "b": torch.tensor([[0.0, 0.0], [0.0, 1.0]])}
    feats = {"a": torch.tensor([[0.1, 0.0], [2.9, 0.1]]), "b": torch.tensor([[0.0, 0.6], [0.0, 0.5]])}
    fused, label = torch.tensor([[1.0, -1.0], [0.0, 2.0]]), torch.tensor([0, 1])

    def dist_logits(h: list[list[float]], c: list[list[float]]) -> torch.Tensor:
        return -torch.tensor([[math.dist(x, ck) for ck in c] for x in h])

    z = {m: dist_logits(feats[m].tolist(), s.prototypes_[m].tolist()) for m in feats}
    score = {m: F.softmax(z[m], 1)[torch.arange(2), label].sum() for m in z}
    assert score["a"] > score["b"]  # "a" is dominant: "b" is accelerated, "a" regularised
    beta_b = min(float(score["a"] / score["b"]) - 1, 1.0)
    p_a = F.softmax(z["a"], 1)
    entropy_a = float(-(p_a * p_a.log()).sum(1).mean())
    expected = F.cross_entropy(fused, label) + 2.0 * beta_b * F.cross_entropy(z["b"], label)
    expected = expected - 0.5 * beta_b * entropy_a
    loss, logs = s.pmr_loss(feats, fused, label, epoch=1)
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    assert float(logs["pmr_coef_a"]) == 0.0 and float(logs["pmr_coef_b"]) == pytest.approx(beta_b)
    late, _ = s.pmr_loss(feats, fused, label, epoch=3)  # past entropy_epochs: no entropy term
    assert float(late) == pytest.approx(float(expected) + 0.5 * beta_b * entropy_a, rel=1e-5)


def joint_steps(head: str, steps: int) -> list[torch.Tensor]:
    p = tiny_problem(lambda: build_strategy("joint", head=head))
    batches = p.batches
    for i in range(steps):
        opt = p.strategy.optimizer
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(
            p.model(batches[i % len(batches)].inputs).logits, batches[i % len(batches)].label
        ).backward()
        opt.step()
    return params_of(p.model)


@pytest.mark.parametrize(
    "kwargs", [{"alpha": 0.0, "entropy_weight": 0.0}, {"modulation_starts": 5, "modulation_ends": 9}]
)
def test_without_modulation_pmr_is_joint_training_bit_for_bit(kwargs: dict) -> None:
    p = tiny_problem(lambda: PMR(head="sum", **kwargs))
    run_steps(p, 4)
    assert same_tensors(params_of(p.model), joint_steps("sum", 4))


def test_modulation_changes_the_step() -> None:
    p = tiny_problem(lambda: PMR(head="sum", alpha=1.0))
    logs = run_steps(p, 4)
    assert not same_tensors(params_of(p.model), joint_steps("sum", 4))
    assert all(0.0 <= float(r.logs[f"pmr_coef_{m}"]) <= 1.0 for r in logs for m in "ab")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"head": "multitask"}, "head='multitask'"),
        ({"alpha": -1.0}, "alpha=-1.0"),
        ({"momentum_coef": 1.5}, "momentum_coef=1.5"),
        ({"modulation_starts": 5, "modulation_ends": 2}, "modulation_ends=2"),
        ({"scaled": "yes"}, "scaled='yes'"),
    ],
)
def test_bad_values_give_one_line_errors(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as err:
        PMR(**kwargs).validate(["a", "b"])
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="takes at least 2 modalities"):
        PMR().validate(["a"])
