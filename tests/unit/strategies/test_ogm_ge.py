"""OGM-GE: the coefficient formula, the modulated gradient, the noise, joint training as a special case."""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from mmbalance import testing
from mmbalance.errors import ConfigError
from mmbalance.models import build_encoder
from mmbalance.strategies.joint import Joint
from mmbalance.strategies.ogm_ge import OGMGE, PARAM_RULES, confidence_scores, ogm_coefficients
from mmbalance.testing import TinyProblem, check_strategy, params_of, run_steps, same_tensors

# Equivalences compare steps bit for bit: no dropout, whose masks would depend on RNG use.
tiny_problem = partial(testing.tiny_problem, dropout=0.0)


@pytest.mark.parametrize("kw", [{}, {"head": "sum", "noise": False}, {"params": "weights"}])
def test_contract(kw: dict[str, Any], device: str) -> None:
    check_strategy(lambda: OGMGE(**kw), device=device)


def test_three_modalities_train_and_log_every_coefficient(device: str) -> None:
    p = tiny_problem(lambda: OGMGE(), modalities=3, device=device)
    before = params_of(p.model)
    logs = run_steps(p, 2)
    assert not same_tensors(before, params_of(p.model))
    for r in logs:
        assert set(r.logs) == {"ogm_coeff_a", "ogm_coeff_b", "ogm_coeff_c"}
        assert all(0.0 < float(v) <= 1.0 for v in r.logs.values())


def test_coefficients_match_the_formula_on_hand_computed_numbers() -> None:
    k = ogm_coefficients(torch.tensor([3.0, 1.0]), 0.5)
    assert k[1] == 1.0  # the weaker modality is untouched
    assert 0.0 < float(k[0]) < 1.0 and math.isclose(float(k[0]), 1 - math.tanh(0.5 * 3.0), abs_tol=1e-6)
    swapped = ogm_coefficients(torch.tensor([1.0, 4.0]), 0.8)
    assert swapped[0] == 1.0 and math.isclose(float(swapped[1]), 1 - math.tanh(0.8 * 4.0), abs_tol=1e-6)
    assert ogm_coefficients(torch.tensor([2.0, 2.0]), 0.8).tolist() == [1.0, 1.0]  # a tie damps nothing
    three = ogm_coefficients(torch.tensor([2.0, 2.0, 1.0]), 0.5)  # rho = 2/1.5, 2/1.5, 1/2
    assert math.isclose(float(three[0]), 1 - math.tanh(0.5 * 4 / 3), abs_tol=1e-6)
    assert three[0] == three[1] and three[2] == 1.0
    assert ogm_coefficients(torch.tensor([5.0, 1.0]), 0.0).tolist() == [1.0, 1.0]


def test_confidence_scores_sum_the_true_class_probability() -> None:
    z = {"a": torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]]), "b": torch.tensor([[0.0, 0.0], [0.0, 0.0]])}
    torch.testing.assert_close(confidence_scores(z, torch.tensor([0, 1])), torch.tensor([0.75 + 0.5, 1.0]))


def joint_grads(p: TinyProblem, batch: Any) -> list[torch.Tensor]:
    p.strategy.optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(p.model(batch.inputs).logits, batch.label).backward()
    return [q.grad.clone() for q in p.model.parameters()]


def test_dominant_encoder_gradient_is_scaled_and_the_head_is_untouched(device: str) -> None:
    p = tiny_problem(lambda: OGMGE(alpha=0.7, noise=False), device=device)
    batch = p.batches[0]
    raw = joint_grads(p, batch)
    out = p.model(batch.inputs)
    k = ogm_coefficients(confidence_scores(out.unimodal_logits, batch.label), 0.7)
    logs = p.strategy.modify_gradients(out, batch, epoch=0)
    assert sorted(float(v) for v in k)[1] == 1.0 and float(k.min()) < 1.0  # one modality is damped
    scale = {id(q): k[i] for i, m in enumerate("ab") for q in p.model.encoder_parameters(m)}
    for q, g in zip(p.model.parameters(), raw, strict=True):
        torch.testing.assert_close(q.grad, g * scale.get(id(q), 1.0))
    assert float(logs["ogm_coeff_a"]) == float(k[0]) and float(logs["ogm_coeff_b"]) == float(k[1])


def test_noise_has_the_std_of_the_unscaled_gradient_on_both_encoders(device: str) -> None:
    p = tiny_problem(lambda: OGMGE(alpha=0.5), device=device)
    batch = p.batches[0]
    raw = joint_grads(p, batch)
    out = p.model(batch.inputs)
    k = ogm_coefficients(confidence_scores(out.unimodal_logits, batch.label), 0.5)
    gen = torch.Generator(device=device).set_state(p.strategy.state_dict()["rng_"])
    p.strategy.modify_gradients(out, batch, epoch=0)
    expected = {}  # replay the draws in parameter order: encoder a, then encoder b
    for i, m in enumerate("ab"):
        for q in p.model.encoder_parameters(m):
            g = raw[[id(x) for x in p.model.parameters()].index(id(q))]
            noise = torch.randn(g.shape, generator=gen, device=device)
            expected[id(q)] = g * k[i] + noise * (g.std() + 1e-8)
    for q, g in zip(p.model.parameters(), raw, strict=True):
        torch.testing.assert_close(q.grad, expected.get(id(q), g))


@pytest.mark.parametrize("kw", [{"alpha": 0.0, "noise": False}, {"modulation_starts": 1}])
def test_without_modulation_it_is_joint_training_bit_for_bit(kw: dict[str, Any], device: str) -> None:
    ogm = tiny_problem(lambda: OGMGE(**kw), device=device)
    joint = tiny_problem(lambda: Joint(), device=device)
    logs = run_steps(ogm, 4)  # epoch 0: outside the window of modulation_starts=1
    run_steps(joint, 4)
    assert same_tensors(params_of(ogm.model), params_of(joint.model))
    assert all(float(v) == 1.0 for r in logs for v in r.logs.values())


def test_conv_rule_selects_convolution_kernels_only() -> None:
    cnn = build_encoder("cnn", (1, 8, 8), out_dim=4, channels=(2, 3))
    chosen = [q for q in cnn.parameters() if PARAM_RULES["conv"](q)]
    assert [tuple(q.shape) for q in chosen] == [(2, 1, 3, 3), (3, 2, 3, 3)]
    assert len([q for q in cnn.parameters() if PARAM_RULES["weights"](q)]) == 3  # + the final Linear
    mlp = tiny_problem(lambda: OGMGE(params="conv", alpha=5.0))  # MLP encoders: nothing is modulated
    joint = tiny_problem(lambda: Joint())
    run_steps(mlp, 2)
    run_steps(joint, 2)
    assert same_tensors(params_of(mlp.model), params_of(joint.model))


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"alpha": -1.0}, "alpha=-1.0"),
        ({"modulation_starts": 5, "modulation_ends": 2}, "modulation_ends=2"),
        ({"params": "head"}, "params='head'"),
        ({"noise": "yes"}, "noise='yes'"),
        ({"head": "shared"}, "head='shared'"),
    ],
)
def test_bad_values_give_one_line(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as err:
        tiny_problem(lambda: OGMGE(**kwargs))
    assert "\n" not in str(err.value)


def test_one_modality_is_refused() -> None:
    with pytest.raises(ConfigError, match="ogm_ge needs >= 2 modalities"):
        OGMGE().validate(["a"])
