"""MMPareto: the written gradients against a hand reference, no conflict after integration, and the
multitask equivalence without conflict."""

from __future__ import annotations

from functools import partial

import pytest
import torch
import torch.nn.functional as F

from mmbalance import testing
from mmbalance.errors import ConfigError
from mmbalance.grad import flatten, pareto_combine, pareto_weights
from mmbalance.strategies.mmpareto import MMPareto
from mmbalance.testing import TinyProblem, check_strategy, params_of, run_steps

# Equivalences compare steps bit for bit: no dropout, whose masks would depend on RNG use.
tiny_problem = partial(testing.tiny_problem, dropout=0.0)


def test_contract(device: str) -> None:
    check_strategy(lambda: MMPareto(), device=device)
    check_strategy(lambda: MMPareto(head="concat", rescale="tensor"), device=device)


def test_three_modalities(device: str) -> None:
    p = tiny_problem(lambda: MMPareto(), modalities=3, device=device)
    logs = run_steps(p, 3)
    assert {"pareto_cos_c", "pareto_w_mm_c"} <= set(logs[0].logs)


def reference(
    p: TinyProblem, batch: object
) -> tuple[dict[str, list[torch.Tensor]], dict[str, list[torch.Tensor]]]:
    """Per modality: the encoder gradients of L_mm and of that modality's own loss, each on its own."""
    out = p.model(batch.inputs)  # type: ignore[attr-defined]
    label = batch.label  # type: ignore[attr-defined]
    g_mm, g_uni = {}, {}
    for m in p.model.modalities:
        params = p.model.encoder_parameters(m)
        g_mm[m] = list(torch.autograd.grad(F.cross_entropy(out.logits, label), params, retain_graph=True))
        g_uni[m] = list(
            torch.autograd.grad(F.cross_entropy(out.unimodal_logits[m], label), params, retain_graph=True)
        )
    return g_mm, g_uni


@pytest.mark.parametrize("rescale", ["global", "tensor"])
def test_written_gradients_match_the_rule(rescale: str) -> None:
    p = tiny_problem(lambda: MMPareto(gamma=1.5, rescale=rescale), seed=3)  # seed 3: conflicting gradients
    batch = p.batches[0]
    g_mm, g_uni = reference(p, batch)
    p.strategy.optimizer.zero_grad(set_to_none=True)
    _, logs = p.strategy.pareto_gradients(batch)
    assert float(logs["pareto_cos_a"]) < 0  # the rule's min-norm branch is exercised
    for m in p.model.modalities:
        params = p.model.encoder_parameters(m)
        flat_mm, flat_uni = flatten(g_mm[m]), flatten(g_uni[m])
        if rescale == "global":
            expected = [pareto_combine(flat_mm, flat_uni, 1.5)]
        else:
            w = pareto_weights(flat_mm, flat_uni)
            expected = []
            for a, b in zip(g_mm[m], g_uni[m], strict=True):
                d = 2 * (w[0] * a + w[1] * b)
                expected.append(d * 1.5 * max(1.0, float((a + b).norm() / d.norm())))
        torch.testing.assert_close(flatten([q.grad for q in params]), flatten(expected), rtol=1e-5, atol=1e-7)


def test_encoder_gradients_never_conflict_and_heads_get_the_summed_gradient() -> None:
    p = tiny_problem(lambda: MMPareto(), seed=3)
    for batch in p.batches:
        g_mm, g_uni = reference(p, batch)
        out = p.model(batch.inputs)
        total = F.cross_entropy(out.logits, batch.label) + sum(
            F.cross_entropy(z, batch.label) for z in out.unimodal_logits.values()
        )
        head_ref = torch.autograd.grad(total, p.model.head_parameters())
        p.strategy.optimizer.zero_grad(set_to_none=True)
        p.strategy.pareto_gradients(batch)
        for m in p.model.modalities:
            g = flatten([q.grad for q in p.model.encoder_parameters(m)])
            assert float(g @ flatten(g_mm[m])) >= -1e-7 and float(g @ flatten(g_uni[m])) >= -1e-7
        torch.testing.assert_close(
            flatten([q.grad for q in p.model.head_parameters()]), flatten(list(head_ref))
        )
        p.strategy.optimizer.step()


def test_without_conflict_and_gamma_one_it_is_multitask_training() -> None:
    a = tiny_problem(lambda: MMPareto(gamma=1.0))  # seed 0: the first two batches agree
    b = tiny_problem(lambda: MMPareto(gamma=1.0))
    logs = run_steps(a, 2)
    assert all(float(r.logs[f"pareto_cos_{m}"]) > 0 for r in logs for m in "ab")
    assert all(float(r.logs[f"pareto_w_mm_{m}"]) == 0.5 for r in logs for m in "ab")
    for batch in b.batches[:2]:
        b.strategy.optimizer.zero_grad(set_to_none=True)
        out = b.model(batch.inputs)
        loss = F.cross_entropy(out.logits, batch.label)
        (loss + sum(F.cross_entropy(z, batch.label) for z in out.unimodal_logits.values())).backward()
        b.strategy.optimizer.step()
    for x, y in zip(params_of(a.model), params_of(b.model), strict=True):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"head": "sum"}, "head='sum'"),
        ({"gamma": -1.0}, "gamma=-1.0"),
        ({"rescale": "layer"}, "rescale='layer'"),
    ],
)
def test_bad_values_give_one_line_errors(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as err:
        MMPareto(**kwargs).validate(["a", "b"])
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="takes at least 2 modalities"):
        MMPareto().validate(["a"])
