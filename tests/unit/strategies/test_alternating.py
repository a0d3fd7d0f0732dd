"""MLA and GAAL: equivalences with plain alternation, idle encoders, surgery and fusion."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

from mmbalance.errors import ConfigError
from mmbalance.grad import conflicts, flatten, gradients_of, project_to_cone, unflatten, write_grads_
from mmbalance.strategies import Strategy, build_strategy
from mmbalance.strategies.gaal import GAAL, hard_sample_loss
from mmbalance.strategies.mla import MLA, entropy_gated_logits
from mmbalance.testing import TinyProblem, params_of, run_steps, same_tensors, tiny_problem


def plain_alternation(p: TinyProblem, steps: int) -> None:
    """The reference: per batch, each modality's CE through the shared head, backward, step."""
    batches = p.batches
    for i in range(steps):
        batch = batches[i % len(batches)]
        feats = p.model.encode(batch.inputs)
        for m in p.model.modalities:
            p.strategy.optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(p.model.head.unimodal(m, feats[m]), batch.label).backward()
            p.strategy.optimizer.step()


def test_mla_with_identity_projector_is_plain_alternation() -> None:
    a = tiny_problem(lambda: MLA(projection="identity"), dropout=0.0)  # the reference draws no masks
    b = tiny_problem(lambda: MLA(projection="none"), dropout=0.0)
    run_steps(a, 4)
    plain_alternation(b, 4)
    assert same_tensors(params_of(a.model), params_of(b.model))


def test_mla_owm_projection_changes_the_step_and_the_projector() -> None:
    a = tiny_problem(lambda: MLA(projection="owm"))
    b = tiny_problem(lambda: MLA(projection="none"))
    logs = run_steps(a, 3)
    run_steps(b, 3)
    assert not same_tensors(params_of(a.model), params_of(b.model))
    eye = torch.eye(a.model.head.fc.weight.shape[1])
    assert not torch.allclose(a.strategy.projector_.P_, eye)
    assert torch.equal(b.strategy.projector_.P_, eye)
    assert all(float(r.logs["projection_shrink"]) <= 1.0 + 1e-6 for r in logs)


def no_conflict_problem(make: Callable[[], Strategy]) -> TinyProblem:
    """Both modalities see the same inputs through identical encoders (no dropout): their head gradients
    agree."""
    p = tiny_problem(make, dropout=0.0)
    p.dataset.inputs["b"] = p.dataset.inputs["a"].clone()
    p.model.encoders["b"].load_state_dict(p.model.encoders["a"].state_dict())
    return p


def test_gaal_without_conflict_is_plain_alternation() -> None:
    a = no_conflict_problem(lambda: GAAL(ratio=1.0, ref_features="stale"))
    b = no_conflict_problem(lambda: GAAL())
    logs = run_steps(a, 1)
    plain_alternation(b, 1)
    assert float(logs[0].logs["surgery_rate"]) == 0.0
    assert same_tensors(params_of(a.model), params_of(b.model))


@pytest.mark.parametrize("make", [lambda: GAAL(), lambda: MLA()])
def test_a_half_step_leaves_the_idle_encoder_bit_identical(make: Callable[[], Strategy]) -> None:
    p = tiny_problem(make)
    batch = p.batches[0]
    feats = p.model.encode(batch.inputs)
    p.strategy.before_half_steps(feats, batch)
    idle = params_of(p.model.encoders["b"])
    p.strategy.optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(p.model.head.unimodal("a", feats["a"]), batch.label).backward()
    p.strategy.modify_head_grad("a", feats, batch)
    p.strategy.optimizer.step()
    assert same_tensors(idle, params_of(p.model.encoders["b"]))
    assert all(q.grad is None for q in p.model.encoders["b"].parameters())


def test_ghost_steps_move_the_idle_encoder_with_zero_gradients() -> None:
    def adam_problem(ghost: bool) -> TinyProblem:
        p = tiny_problem(lambda: GAAL(ghost_steps=ghost))
        make = lambda: torch.optim.Adam(p.model.parameters(), lr=1e-2, weight_decay=1e-2)  # noqa: E731
        p.strategy.setup(p.model, make(), make)
        return p

    ghost, clean = adam_problem(True), adam_problem(False)
    run_steps(ghost, 2)
    run_steps(clean, 2)
    state = ghost.strategy.optimizer.state[next(ghost.model.encoders["a"].parameters())]
    assert int(state["step"]) == 4  # one real and one ghost step per iteration
    clean_state = clean.strategy.optimizer.state[next(clean.model.encoders["a"].parameters())]
    assert int(clean_state["step"]) == 2
    assert not same_tensors(params_of(ghost.model), params_of(clean.model))


def test_gaal_head_gradient_is_the_cone_projection() -> None:
    p = tiny_problem(lambda: GAAL(ratio=0.5, margin=0.75, eps=1e-3))
    batch = p.batches[0]
    feats = p.model.encode(batch.inputs)
    p.strategy.before_half_steps(feats, batch)
    head = p.model.head_parameters()
    ref_loss = hard_sample_loss(p.model.head.unimodal("b", feats["b"].detach()), batch.label, 0.5)
    r = flatten(gradients_of(ref_loss, head), head)
    g = -r + 0.1 * torch.randn_like(r)  # a head gradient that conflicts with the reference by construction
    assert bool(conflicts(g, r))
    write_grads_(head, unflatten(g, head))
    logs = p.strategy.modify_head_grad("a", feats, batch)
    expected = project_to_cone(g, r, 0.75, 1e-3)
    torch.testing.assert_close(flatten([q.grad for q in head], head), expected)
    assert float(logs["surgery_rate"]) == 1.0 and float(logs["grad_cosine_ref"]) < 0
    # the conflict shrinks at least to the ridge's share: <g~, r> >= <g, r>·eps / (|r|² + eps)
    assert float(torch.dot(expected, r)) >= float(torch.dot(g, r)) * 1e-3 / float(r.norm() ** 2 + 1e-3) - 1e-6


def test_hard_sample_loss_selects_the_most_uncertain() -> None:
    logits = torch.randn(10, 4)
    label = torch.randint(0, 4, (10,))
    torch.testing.assert_close(hard_sample_loss(logits, label, 1.0), F.cross_entropy(logits, label))
    logp = torch.log_softmax(logits, 1)
    top = (-(logp.exp() * logp).sum(1)).topk(3).indices
    torch.testing.assert_close(
        hard_sample_loss(logits, label, 0.35), F.cross_entropy(logits[top], label[top])
    )
    one = hard_sample_loss(logits, label, 0.0)  # k = max(1, 0) = 1
    assert one.ndim == 0


def test_fresh_and_stale_references_differ() -> None:
    a = tiny_problem(lambda: GAAL(ref_features="fresh"))
    b = tiny_problem(lambda: GAAL(ref_features="stale"))
    run_steps(a, 3)
    run_steps(b, 3)
    assert not same_tensors(params_of(a.model), params_of(b.model))


def test_entropy_gating_is_per_sample() -> None:
    z = {"a": torch.tensor([[6.0, 0.0], [0.0, 0.0]]), "b": torch.tensor([[0.0, 0.0], [0.0, 6.0]])}
    fused = entropy_gated_logits(z)
    assert (
        fused[0, 0] > fused[0, 1] and fused[1, 1] > fused[1, 0]
    )  # each sample follows its confident modality
    same = {"a": torch.tensor([[1.0, 0.0]]), "b": torch.tensor([[0.0, 1.0]])}
    torch.testing.assert_close(entropy_gated_logits(same), torch.tensor([[0.5, 0.5]]))


def test_mla_fixed_fusion_uses_the_weights() -> None:
    p = tiny_problem(lambda: MLA(fusion="fixed", fusion_weights={"a": 3.0, "b": 1.0}))
    out = p.model(p.batches[0].inputs)
    expected = 0.75 * out.unimodal_logits["a"] + 0.25 * out.unimodal_logits["b"]
    torch.testing.assert_close(p.strategy.predict(out), expected)


def test_three_modalities_use_every_other_modality_as_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    p = tiny_problem(lambda: GAAL(), modalities=3)
    asked: list[tuple[str, list[str]]] = []
    original_modify, original_reference = GAAL.modify_head_grad, GAAL._reference

    def modify(self: GAAL, modality: str, feats: object, batch: object) -> dict:
        asked.append((modality, []))
        return original_modify(self, modality, feats, batch)

    def reference(self: GAAL, modality: str, label: torch.Tensor) -> torch.Tensor:
        asked[-1][1].append(modality)
        return original_reference(self, modality, label)

    monkeypatch.setattr(GAAL, "modify_head_grad", modify)
    monkeypatch.setattr(GAAL, "_reference", reference)
    logs = run_steps(p, 1)
    assert asked == [("a", ["b", "c"]), ("b", ["a", "c"]), ("c", ["a", "b"])]
    assert torch.isfinite(logs[0].loss)


@pytest.mark.parametrize(
    ("name", "kwargs", "fragment"),
    [
        ("gaal", {"ratio": 1.5}, "ratio of a=1.5"),
        ("gaal", {"ref_features": "old"}, "ref_features='old'"),
        ("gaal", {"margin": -1.0}, "margin=-1.0"),
        ("mla", {"projection": "svd"}, "projection='svd'"),
        ("mla", {"fusion": "max"}, "fusion='max'"),
    ],
)
def test_bad_hyperparameters_fail_in_setup(name: str, kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        tiny_problem(lambda: build_strategy(name, **kwargs))


def test_joint_logs_the_conflict_diagnostic() -> None:
    p = tiny_problem(lambda: build_strategy("joint", head="shared"))
    logs = run_steps(p, 1)[0].logs
    assert {"grad_cosine", "grad_cosine_fused_a", "grad_cosine_fused_b"} <= set(logs)
    assert -1.0 <= float(logs["grad_cosine"]) <= 1.0
    none = run_steps(tiny_problem(lambda: build_strategy("joint", head="sum")), 1)[0].logs
    assert "grad_cosine" not in none  # no shared head parameters: the cosine is undefined


def bn_batches(p: TinyProblem) -> dict[str, int]:
    """``num_batches_tracked`` of each encoder's BatchNorm layers (they move together)."""
    out = {}
    for m in p.model.modalities:
        counts = {int(b.num_batches_tracked) for b in p.model.encoders[m].modules() if hasattr(b, "momentum")}
        assert len(counts) == 1
        out[m] = counts.pop()
    return out


@pytest.mark.parametrize(("ghost", "expected"), [(False, 1), (True, 2)])
def test_gaal_training_step_updates_every_encoders_bn_statistics_alike(ghost: bool, expected: int) -> None:
    """Without ghost steps the fresh reference re-forward leaves running statistics alone, so each
    encoder's statistics move once per batch; the released mode moves both twice."""
    p = tiny_problem(lambda: GAAL(ref_features="fresh", ghost_steps=ghost))
    run_steps(p, 1)
    assert bn_batches(p) == {"a": expected, "b": expected}
    if not ghost:  # running statistics are those of the batch's first forward, with the initial weights
        q = tiny_problem(lambda: GAAL())
        q.model.train()
        q.model.encode(q.batches[0].inputs)
        got, want = p.model.state_dict(), q.model.state_dict()
        for key in (k for k in want if "running" in k):
            torch.testing.assert_close(got[key], want[key])
