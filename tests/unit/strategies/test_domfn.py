"""DOMFN: penalties and gate on known values, the batch loss as the mean of per-sample (batch-1) losses,
what a rejected sample trains, pre-training, and per-sample inference."""

from __future__ import annotations

import itertools
from functools import partial

import pytest
import torch
import torch.nn.functional as F

from mmbalance import testing
from mmbalance.errors import ConfigError
from mmbalance.strategies.domfn import DOMFN, fusion_gate, penalties
from mmbalance.testing import check_strategy, run_steps
from mmbalance.trainer import Trainer
from mmbalance.types import ModelOutput

# Equivalences compare steps bit for bit: no dropout, whose masks would depend on RNG use.
tiny_problem = partial(testing.tiny_problem, dropout=0.0)


def test_contract(device: str) -> None:
    check_strategy(lambda: DOMFN(pre_epochs=0), device=device)
    check_strategy(lambda: DOMFN(pre_epochs=0, reference="fused", scores="sigmoid"), device=device)


def test_three_modalities(device: str) -> None:
    p = tiny_problem(lambda: DOMFN(pre_epochs=0), modalities=3, device=device)
    logs = run_steps(p, 3)
    assert 0.0 <= float(logs[0].logs["domfn_fused_rate"]) <= 1.0


def test_penalties_and_gate_on_known_values() -> None:
    probs = torch.tensor([[[0.8, 0.2], [0.5, 0.5]], [[0.2, 0.8], [0.4, 0.6]], [[0.2, 0.8], [0.6, 0.4]]])
    ref = probs.mean(0)  # sample 0: [0.4, 0.6], sample 1: [0.5, 0.5]
    pen = penalties(probs, ref)
    torch.testing.assert_close(pen, torch.tensor([[0.16, 0.0], [0.04, 0.01], [0.04, 0.01]]))
    assert fusion_gate(pen, tau=0.5, gamma=0.3).tolist() == [False, True]  # 0.16/0.5 = 0.32 ≥ 0.3
    assert fusion_gate(pen, tau=0.5, gamma=0.33).tolist() == [True, True]


def test_two_modalities_with_the_mean_reference_have_equal_bounded_penalties() -> None:
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(2, 50, 4, generator=g) * 5, -1)
    pen = penalties(probs, probs.mean(0))
    torch.testing.assert_close(pen[0], pen[1])
    assert float(pen.max()) <= 0.25 and bool(
        fusion_gate(pen, 0.5, 0.8).all()
    )  # the released gate never rejects


def outputs(seed: int = 0, n: int = 6) -> tuple[ModelOutput, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    uni = {m: (torch.randn(n, 3, generator=g) * 2).requires_grad_() for m in "ab"}
    fused = torch.randn(n, 3, generator=g).requires_grad_()
    return ModelOutput({}, fused, uni), torch.randint(0, 3, (n,), generator=g)


@pytest.mark.parametrize("kwargs", [{}, {"reference": "fused", "scores": "sigmoid"}])
def test_batch_loss_is_the_mean_of_batch_one_losses(kwargs: dict) -> None:
    s = DOMFN(pre_epochs=0, gamma=0.5, **kwargs)
    out, label = outputs()
    s.tau = float(s.gate(out)[1].amax(0).median().detach()) / s.gamma  # about half the samples are fused
    loss, logs = s.domfn_loss(out, label, epoch=0)
    singles = []
    for i in range(len(label)):
        one = ModelOutput(
            {}, out.logits[i : i + 1], {m: z[i : i + 1] for m, z in out.unimodal_logits.items()}
        )
        singles.append(s.domfn_loss(one, label[i : i + 1], epoch=0)[0])
    torch.testing.assert_close(loss, torch.stack(singles).mean())
    assert 0.0 < float(logs["domfn_fused_rate"]) < 1.0  # both branches are exercised


def test_accepted_sample_loss_matches_the_formula_and_rejected_samples_skip_the_fused_head() -> None:
    out, label = outputs(n=1)
    accept = DOMFN(pre_epochs=0, gamma=10.0, eta=0.5)
    loss, _ = accept.domfn_loss(out, label, epoch=0)
    with torch.no_grad():
        ce = {m: float(F.cross_entropy(z, label)) for m, z in out.unimodal_logits.items()}
        p = {m: torch.softmax(z, -1) for m, z in out.unimodal_logits.items()}
        mean = (p["a"] + p["b"]) / 2
        pen = {m: float((p[m] - mean).square().max()) for m in p}
        expected = sum(0.5 * ce[m] ** 2 - 0.5 * pen[m] + ce[m] for m in ce)
        expected += float(F.cross_entropy(out.logits, label))
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-6)
    reject = DOMFN(pre_epochs=0, gamma=0.0)  # nothing is below 0: every sample is rejected
    loss, logs = reject.domfn_loss(out, label, epoch=0)
    assert float(logs["domfn_fused_rate"]) == 0.0
    assert float(loss.detach()) == pytest.approx(sum(ce.values()), rel=1e-6)
    (grad,) = torch.autograd.grad(loss, [out.logits], allow_unused=True, materialize_grads=True)
    assert torch.equal(grad, torch.zeros_like(grad))


def test_pre_training_epochs_train_only_the_unimodal_branches() -> None:
    p = tiny_problem(lambda: DOMFN(pre_epochs=2))
    fused_before = [q.detach().clone() for q in p.model.head.fused.parameters()]
    results = run_steps(p, 2, epoch=1)
    assert all(torch.equal(a, b) for a, b in zip(fused_before, p.model.head.fused.parameters(), strict=True))
    assert all(q.grad is None for q in p.model.head.fused.parameters())
    assert results[0].logs == {}
    run_steps(p, 1, epoch=2)  # after pre-training the fused head learns
    assert not all(
        torch.equal(a, b) for a, b in zip(fused_before, p.model.head.fused.parameters(), strict=True)
    )


def test_predict_fuses_accepted_samples_and_otherwise_follows_the_most_confident_modality() -> None:
    uni = {
        "a": torch.tensor([[4.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
        "b": torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.0, 5.0]]),
    }
    out = ModelOutput({}, torch.tensor([[0.0, 9.0, 0.0], [0.0, 9.0, 0.0]]), uni)
    s = DOMFN(tau=1.0, gamma=0.1)
    fused = s.gate(out)[2]
    assert fused.tolist() == [True, False]  # sample 1 disagrees strongly
    s.pretraining_ = False
    pred = s.predict(out)
    torch.testing.assert_close(pred[0], out.logits[0])
    torch.testing.assert_close(pred[1], uni["b"][1])  # b's maximum probability is the larger one
    s.pretraining_ = True  # the fused classifier is untrained: every sample follows a modality
    torch.testing.assert_close(s.predict(out), torch.stack([uni["a"][0], uni["b"][1]]))


def test_pre_training_flag_follows_the_epoch_and_is_learned_state() -> None:
    p = tiny_problem(lambda: DOMFN(pre_epochs=2))
    assert p.strategy.state_dict() == {"pretraining_": True}
    p.strategy.on_epoch_start(2, p.loader)
    assert p.strategy.state_dict() == {"pretraining_": False}


@pytest.mark.parametrize(
    ("kwargs", "epochs", "expected"),
    [
        ({}, 10, 1),  # 0.13 · 10 = 1.3
        ({}, 30, 4),  # 3.9
        ({}, 230, 30),  # the release: 30 unimodal epochs before 200 fused ones
        ({"pre_fraction": 0.15}, 10, 2),  # 1.5: halves round up
        ({"pre_fraction": 0.25}, 10, 3),  # 2.5
        ({"pre_fraction": 0.0}, 10, 0),
        ({"pre_fraction": 1.0}, 10, 10),
        ({"pre_epochs": 7}, 10, 7),  # an explicit count overrides the fraction
        ({"pre_epochs": 0, "pre_fraction": 0.5}, 10, 0),
    ],
)
def test_pre_training_is_a_fraction_of_the_run_rounded_half_up(
    kwargs: dict, epochs: int, expected: int
) -> None:
    s = DOMFN(**kwargs)
    s.epochs = epochs
    assert s.pre_training_epochs() == expected


def test_without_the_run_s_epochs_the_fraction_is_a_one_line_error() -> None:
    with pytest.raises(ConfigError, match=r"strategy\.epochs is None") as err:
        DOMFN().pre_training_epochs()
    assert "\n" not in str(err.value)
    assert DOMFN(pre_epochs=3).pre_training_epochs() == 3


def test_in_a_ten_epoch_run_the_fused_head_trains_from_epoch_1_on() -> None:
    """The trainer gives the strategy its epoch budget: by default epoch 0 alone is pre-training."""
    p = tiny_problem(DOMFN)
    snapshots: list[list[torch.Tensor]] = []

    def fused_head(*_: object) -> None:
        snapshots.append([q.detach().clone() for q in p.model.head.fused.parameters()])

    def make_opt() -> torch.optim.Optimizer:
        return torch.optim.SGD(p.model.parameters(), lr=0.05, momentum=0.9)

    fused_head()
    trainer = Trainer(p.model, p.strategy, make_opt, {"name": "none"}, torch.device("cpu"), 10)
    trainer.on_epoch = fused_head
    trainer.fit(p.loader, p.loader)
    changed = [
        not all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
        for before, after in itertools.pairwise(snapshots)
    ]
    assert p.strategy.epochs == 10 and p.strategy.pre_training_epochs() == 1
    assert changed == [False] + [True] * 9
    fused_rates = [row["domfn_fused_rate"] for row in trainer.state.history if "domfn_fused_rate" in row]
    assert len(fused_rates) == 9


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"head": "concat"}, "head='concat'"),
        ({"tau": 0.0}, "tau=0.0"),
        ({"reference": "max"}, "reference='max'"),
        ({"scores": "tanh"}, "scores='tanh'"),
        ({"head_hidden": [0]}, r"head_hidden=\[0\]"),
        ({"head_hidden": 64}, "head_hidden=64"),
        ({"pre_fraction": 1.5}, "pre_fraction=1.5"),
        ({"pre_fraction": -0.1}, "pre_fraction=-0.1"),
        ({"pre_epochs": -1}, "pre_epochs=-1"),
    ],
)
def test_bad_values_give_one_line_errors(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as err:
        DOMFN(**kwargs).validate(["a", "b"])
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="takes at least 2 modalities"):
        DOMFN().validate(["a"])
