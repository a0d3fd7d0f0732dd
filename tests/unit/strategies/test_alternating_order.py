"""The ``order`` option of MLA and GAAL: which modality steps first, exact fresh references in any order,
and the cost order that spares the most expensive encoder its re-forward."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import pytest
import torch
import torch.nn.functional as F

from mmbalance.data import BatchLoader, build_dataset
from mmbalance.errors import ConfigError
from mmbalance.models import build_model, parameter_groups
from mmbalance.strategies import Strategy, build_strategy
from mmbalance.strategies._order import forward_flops, resolve_order
from mmbalance.strategies.gaal import GAAL
from mmbalance.strategies.mla import MLA
from mmbalance.testing import TinyProblem, check_strategy, params_of, run_steps, same_tensors, tiny_problem


def uneven_problem(make: Callable[[], Strategy]) -> TinyProblem:
    """Two modalities; ``a``'s encoder is far more expensive than ``b``'s (no dropout)."""
    torch.manual_seed(0)
    ds = build_dataset("synthetic", n_samples=48, num_classes=3, modalities=["a", "b"], dims=[6, 6])
    widths = {"a": (64, 64), "b": (4,)}
    model = build_model(
        {m: {"name": "mlp", "hidden": widths[m], "dropout": 0.0} for m in ("a", "b")},
        {m: ds.input_shape(m) for m in ("a", "b")},
        ds.num_classes,
        {"name": "shared"},
        feature_dim=8,
    )

    def make_opt() -> torch.optim.Optimizer:
        return torch.optim.SGD(parameter_groups(model), lr=0.05, momentum=0.9)

    strategy = make()
    strategy.setup(model, make_opt(), make_opt)
    loader = BatchLoader(ds, torch.arange(len(ds)), batch_size=16, shuffle=False)
    return TinyProblem(ds, loader, model, strategy)


def count_forwards(p: TinyProblem) -> dict[str, int]:
    """Live counts of each encoder's forward calls (hooks stay for the problem's lifetime)."""
    counts = dict.fromkeys(p.model.modalities, 0)
    for m, enc in p.model.encoders.items():
        enc.register_forward_hook(lambda *_, m=m: counts.__setitem__(m, counts[m] + 1))
    return counts


@pytest.mark.parametrize(("order", "once", "twice"), [("cost", "a", "b"), ("dataset", "b", "a")])
def test_the_last_modality_is_never_forwarded_again(order: str, once: str, twice: str) -> None:
    p = uneven_problem(lambda: GAAL(order=order))
    run_steps(p, 1)  # resolves the order (the cost order's counting forward is not a training forward)
    counts = count_forwards(p)
    run_steps(p, 3)
    assert counts == {once: 3, twice: 6}


@pytest.mark.parametrize(
    ("order", "expected"),
    [(["b", "a"], ["b", "a"]), (["a", "b"], ["a", "b"]), ("cost", ["b", "a"]), ("dataset", ["a", "b"])],
)
def test_every_reference_equals_a_forward_of_the_current_encoder(
    order: str | list[str], expected: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the order, each half-step's reference features are those the encoder computes now (after
    every update so far), in training mode: the references are exactly fresh."""
    p = uneven_problem(lambda: GAAL(order=order))
    seen: list[str] = []
    original = GAAL.modify_head_grad

    def checked(self: GAAL, modality: str, feats: object, batch: object) -> dict:
        seen.append(modality)
        for j in (j for j in self.model.modalities if j != modality):
            with torch.no_grad():  # a copy: its BatchNorm buffers are not the ones j's pending backward saved
                now = copy.deepcopy(self.model.encoders[j])(batch.inputs[j])  # type: ignore[attr-defined]
            assert torch.equal(self._ref_feats[j], now), f"stale reference of {j} at {modality}'s step"
        return original(self, modality, feats, batch)  # type: ignore[arg-type]

    monkeypatch.setattr(GAAL, "modify_head_grad", checked)
    run_steps(p, 3)
    assert seen == 3 * expected


def plain_alternation(p: TinyProblem, steps: int, order: Sequence[str]) -> None:
    for i in range(steps):
        batch = p.batches[i % len(p.batches)]
        feats = p.model.encode(batch.inputs)
        for m in order:
            p.strategy.optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(p.model.head.unimodal(m, feats[m]), batch.label).backward()
            p.strategy.optimizer.step()


def test_mla_in_a_given_order_is_plain_alternation_in_that_order() -> None:
    a = tiny_problem(lambda: MLA(projection="identity", order=["b", "a"]), dropout=0.0)
    b = tiny_problem(lambda: MLA(projection="none"), dropout=0.0)
    c = tiny_problem(lambda: MLA(projection="none"), dropout=0.0)
    run_steps(a, 4)
    plain_alternation(b, 4, ["b", "a"])
    plain_alternation(c, 4, ["a", "b"])
    assert same_tensors(params_of(a.model), params_of(b.model))
    assert not same_tensors(params_of(a.model), params_of(c.model))


def test_forward_flops_counts_one_sample_and_changes_nothing() -> None:
    encoder = build_model(
        {"a": {"name": "mlp", "hidden": (16,), "dropout": 0.5}}, {"a": (6,)}, 3, {"name": "shared"}, 8
    ).encoders["a"]
    encoder.train()
    state = {k: v.clone() for k, v in encoder.state_dict().items()}
    x = torch.randn(32, 6)
    rng = torch.get_rng_state()
    flops = forward_flops(encoder, x)
    assert flops == 2 * (6 * 16 + 16 * 8)  # the two Linear layers, for one sample
    assert encoder.training and all(m.training for m in encoder.modules())
    assert same_tensors(list(state.values()), list(encoder.state_dict().values()))
    assert torch.equal(rng, torch.get_rng_state())


def test_cost_order_depends_on_shapes_not_values_and_keeps_ties_in_dataset_order() -> None:
    p = uneven_problem(lambda: GAAL())
    inputs = p.batches[0].inputs
    scaled = {m: 100 * x for m, x in inputs.items()}
    assert resolve_order("cost", p.model.encoders, inputs) == ["b", "a"]
    assert resolve_order("cost", p.model.encoders, scaled) == ["b", "a"]
    q = tiny_problem(lambda: GAAL())  # identical encoders: a tie
    assert resolve_order("cost", q.model.encoders, q.batches[0].inputs) == ["a", "b"]


@pytest.mark.parametrize("make", [lambda: GAAL(order=["b", "a"]), lambda: MLA(order="cost")])
def test_the_contract_holds_in_any_order(make: Callable[[], Strategy]) -> None:
    check_strategy(make)


@pytest.mark.parametrize("order", ["fast", ["a"], ["a", "a"], ["a", "c"], 3])
@pytest.mark.parametrize("name", ["gaal", "mla"])
def test_a_bad_order_is_one_line(name: str, order: object) -> None:
    with pytest.raises(ConfigError, match=r"^order=.* is invalid; expected dataset, cost or a list") as err:
        tiny_problem(lambda: build_strategy(name, order=order))
    assert "\n" not in str(err.value)
