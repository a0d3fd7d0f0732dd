"""AGM: Shapley responses, the coefficients, the modulated gradient, and joint training as a special case."""

from __future__ import annotations

import copy
import math
from functools import partial
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from mmbalance import testing
from mmbalance.errors import ConfigError
from mmbalance.strategies.agm import AGM, agm_coefficients, shapley_responses
from mmbalance.strategies.joint import Joint
from mmbalance.testing import check_strategy, params_of, run_steps, same_tensors

# Equivalences compare steps bit for bit: no dropout, whose masks would depend on RNG use.
tiny_problem = partial(testing.tiny_problem, dropout=0.0)


@pytest.mark.parametrize("kw", [{}, {"head": "sum", "clip": False}, {"hold_after_window": True}])
def test_contract(kw: dict[str, Any], device: str) -> None:
    check_strategy(lambda: AGM(**kw), device=device)


def test_three_modalities(device: str) -> None:
    p = tiny_problem(lambda: AGM(alpha=2.0), modalities=3, device=device)
    before = params_of(p.model)
    logs = run_steps(p, 3)[-1].logs
    assert not same_tensors(before, params_of(p.model))
    assert {f"agm_coeff_{m}" for m in "abc"} | {f"agm_score_{m}" for m in "abc"} == set(logs)


def test_shapley_responses_on_known_games() -> None:
    v = [torch.tensor(x) for x in (0.5, 1.0, 4.0, 9.0)]  # masks: {}, {a}, {b}, {a, b}
    za, zb = shapley_responses(v, 2)
    assert za.item() == pytest.approx(0.5 * (9.0 - 4.0 + 1.0))  # the released formula ½(T − P_a0 + P_v0)
    assert zb.item() == pytest.approx(0.5 * (9.0 - 1.0 + 4.0))
    gen = torch.Generator().manual_seed(0)
    three = [torch.randn(2, 3, generator=gen) for _ in range(8)]
    z = shapley_responses(three, 3)
    torch.testing.assert_close(sum(z), three[7])  # efficiency: the responses sum to v(all)
    a, c = torch.tensor([1.0, -2.0, 0.5]), 0.3  # an additive game: each response is its own term + c/M
    additive = [c + sum(a[i] for i in range(3) if mask >> i & 1) for mask in range(8)]
    got = shapley_responses([torch.as_tensor(x) for x in additive], 3)
    torch.testing.assert_close(torch.stack(got), a + c / 3)


def test_coefficients_on_hand_computed_numbers() -> None:
    k = agm_coefficients(torch.tensor([1.0, 2.0]), torch.tensor([1.5, 1.5]), 1.0)
    # r = (e^{2 - 1}, e^{1 - 2}); running means equal: r̄ = 1; κ = exp(1 − r)
    torch.testing.assert_close(k, torch.tensor([math.exp(1 - math.e), math.exp(1 - 1 / math.e)]))
    capped = agm_coefficients(torch.tensor([9.0, 1.0]), torch.tensor([1.0, 9.0]), 0.5)
    assert capped[0].item() == pytest.approx(math.exp(0.5 * 10))  # r̄ − r capped at 10
    three = agm_coefficients(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 2.0, 2.0]), 1.0)
    torch.testing.assert_close(three, torch.exp(1 - torch.exp(2 * torch.tensor([1.0, 0.0, -1.0]))))


def test_the_subset_passes_equal_zeroed_inputs_in_eval_mode(device: str) -> None:
    p = tiny_problem(lambda: AGM(), device=device, dropout=0.0)  # the reference pass draws no other mask
    batch, x = p.batches[0], p.batches[0].inputs
    ref = copy.deepcopy(p.model)
    p.model.train()
    za, zb = p.strategy.responses(batch)
    ref.train()
    fused = ref(x).logits  # one training-mode pass (BN statistics move once, as in the step), then eval
    ref.eval()
    pad_b = ref({"a": x["a"], "b": torch.zeros_like(x["b"])}).logits  # P_v0 in the released names
    pad_a = ref({"a": torch.zeros_like(x["a"]), "b": x["b"]}).logits
    torch.testing.assert_close(za, 0.5 * (fused - pad_a + pad_b))
    torch.testing.assert_close(zb, 0.5 * (fused - pad_b + pad_a))


def test_with_unit_coefficients_and_no_clip_it_is_joint_training(device: str) -> None:
    agm = tiny_problem(lambda: AGM(alpha=0.0, clip=False), device=device)
    joint = tiny_problem(lambda: Joint(), device=device)
    logs = run_steps(agm, 4)
    run_steps(joint, 4)
    for got, want in zip(params_of(agm.model), params_of(joint.model), strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
    bn = [agm.model.encoders["a"].net[2], joint.model.encoders["a"].net[2]]
    assert torch.equal(bn[0].running_mean, bn[1].running_mean)  # the eval passes leave BN statistics alone
    assert all(float(r.logs["agm_coeff_a"]) == 1.0 for r in logs)


def test_each_response_gradient_is_scaled_by_its_coefficient(device: str) -> None:
    p = tiny_problem(lambda: AGM(alpha=1.5, clip=False), device=device)
    p.strategy.running_ = torch.tensor([0.2, 1.4], device=device)  # an imbalance history
    p.strategy.steps_ = 10
    p.strategy.optimizer = torch.optim.SGD(p.model.parameters(), lr=1.0)
    batch = p.batches[0]
    ref = tiny_problem(lambda: AGM(), device=device)  # the same seed: the same initial model
    theta = params_of(p.model)
    logs = p.strategy.training_step(batch, 0).logs
    k = [float(logs["agm_coeff_a"]), float(logs["agm_coeff_b"])]
    assert k[0] != pytest.approx(1.0) and k[1] != pytest.approx(1.0)
    z = ref.strategy.responses(batch)
    out = (z[0] + z[1]).detach()
    g_out = (torch.softmax(out, 1) - F.one_hot(batch.label, 3)) / batch.size  # ∂CE/∂out
    weighted = sum(kk * (zm * g_out).sum() for kk, zm in zip(k, z, strict=True))
    expected = torch.autograd.grad(weighted, list(ref.model.parameters()))
    for new, old, g in zip(params_of(p.model), theta, expected, strict=True):
        torch.testing.assert_close(old - new, g, atol=1e-6, rtol=1e-4)


def test_running_scores_and_the_window(device: str) -> None:
    p = tiny_problem(lambda: AGM(alpha=1.0, modulation_starts=1, modulation_ends=1), device=device)
    logs = [p.strategy.training_step(b, e) for e, b in zip([0, 1, 2], p.batches, strict=True)]
    scores = torch.tensor([[float(r.logs[f"agm_score_{m}"]) for m in "ab"] for r in logs])
    torch.testing.assert_close(p.strategy.running_.cpu(), scores.mean(0))  # the mean over every step so far
    coeff = [[float(r.logs[f"agm_coeff_{m}"]) for m in "ab"] for r in logs]
    assert coeff[0] == [1.0, 1.0] and coeff[2] == [1.0, 1.0] and coeff[1] != [1.0, 1.0]
    held = tiny_problem(
        lambda: AGM(alpha=1.0, modulation_starts=1, modulation_ends=1, hold_after_window=True)
    )
    last = [held.strategy.training_step(b, e).logs for e, b in zip([0, 1, 2], held.batches, strict=True)]
    assert float(last[2]["agm_coeff_a"]) == float(last[1]["agm_coeff_a"]) != 1.0  # the released stale κ


def test_clip_only_when_a_head_weight_gradient_exceeds_one() -> None:
    norms, head_max = [], []
    for clip, scale in ((True, 100.0), (False, 100.0), (True, 1.0)):
        p = tiny_problem(lambda clip=clip: AGM(alpha=0.0, clip=clip), lr=0.0)
        with torch.no_grad():
            for enc in p.model.encoders.values():
                enc.net[-2].weight.mul_(scale)  # large features: large head weight gradients
        p.strategy.training_step(p.batches[0], 0)
        grads = [q.grad for q in p.model.parameters() if q.grad is not None]
        norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))
        head_max.append(float(p.model.head.fc.weight.grad.abs().max()))
    assert head_max[1] > 1.0 and norms[1] > 1.0  # unclipped
    assert norms[0] == pytest.approx(1.0, abs=1e-4)  # the same step, clipped to norm 1
    assert head_max[2] < 1.0 and norms[2] < 1.0  # small gradients: no clip (bit-identity: test_scale.py)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"alpha": -0.5}, "alpha=-0.5"),
        ({"modulation_starts": 3, "modulation_ends": 1}, "modulation_ends=1"),
        ({"clip": "no"}, "clip='no'"),
        ({"hold_after_window": 1}, "hold_after_window=1"),
        ({"head": "shared"}, "head='shared'"),
    ],
)
def test_bad_values_give_one_line(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as err:
        tiny_problem(lambda: AGM(**kwargs))
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="agm needs >= 2 modalities"):
        AGM().validate(["a"])
