"""IGM's ``gm_modalities``: the gradient modification restricted to chosen modalities (the paper's
"w/o a-GM" / "w/o v-GM" ablations)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from mmbalance.errors import ConfigError
from mmbalance.strategies.igm import IGM
from mmbalance.testing import TinyProblem, params_of, run_epochs, same_tensors, tiny_problem

# Plain steps apart from the projection: no SAM, no mixup, a strong shrink (tau 2) when a projector acts.
KW = {"head_hidden": (16, 8), "schedule": "batch", "sam_mode": "off", "mixup_alpha": 0.0, "temperature": 2.0}


class SpySGD(torch.optim.SGD):
    """SGD that records every gradient it is about to apply."""

    def step(self, closure: Any = None) -> Any:
        self.seen = [p.grad.clone() for g in self.param_groups for p in g["params"] if p.grad is not None]
        return super().step(closure)


def problem(device: str, **kw: Any) -> TinyProblem:
    return tiny_problem(lambda: IGM(**KW, **kw), device=device, dropout=0.0)


def raw_gradients(p: TinyProblem, modality: str, batch: Any) -> list[torch.Tensor]:
    """The unmodified gradients of ``modality``'s own loss, in ``model.parameters()`` order (used ones)."""
    ref = copy.deepcopy(p.model)
    loss = F.cross_entropy(
        ref.head.unimodal(modality, ref.encoders[modality](batch.inputs[modality])), batch.label
    )
    grads = torch.autograd.grad(loss, list(ref.parameters()), allow_unused=True)
    return [g for g in grads if g is not None]


def test_only_the_chosen_modality_is_modified(device: str) -> None:
    p = problem(device, gm_modalities=["b"])
    s = p.strategy
    s.on_epoch_start(1, p.loader)  # batch schedule: projectors from epoch 1 on
    assert set(s.projectors_) == {"b"}
    s.optimizer = SpySGD(p.model.parameters(), lr=0.1)
    for modality, batch in zip(["a", "b"], p.batches, strict=False):  # the batch schedule alternates a, b
        raw = raw_gradients(p, modality, batch)
        logs = s.training_step(batch, 1).logs
        got = s.optimizer.seen
        assert s.active_ == modality and len(got) == len(raw)
        if modality == "a":
            assert all(torch.equal(x, y) for x, y in zip(got, raw, strict=True)) and logs == {}
        else:
            assert not all(torch.equal(x, y) for x, y in zip(got, raw, strict=True))
            assert 0 < logs["projection_shrink"].item() < 1


def test_the_default_modifies_every_modality(device: str) -> None:
    for gm in (None, ["a", "b"]):
        p = problem(device, gm_modalities=gm)
        p.strategy.on_epoch_start(1, p.loader)
        assert set(p.strategy.projectors_) == {"a", "b"}


def test_no_modality_is_plain_alternation_without_a_statistics_pass(device: str) -> None:
    igm, ref = problem(device, gm_modalities=[]), problem(device)
    opt = ref.strategy.optimizer
    for epoch in range(2):
        igm.strategy.on_epoch_start(epoch, igm.loader)
        assert igm.strategy.projectors_ == {} and igm.strategy.spectra_ == []
        for i, batch in enumerate(igm.batches):
            igm.strategy.training_step(batch, epoch)
            m = "ab"[(epoch * len(igm.batches) + i) % 2]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(
                ref.model.head.unimodal(m, ref.model.encoders[m](batch.inputs[m])), batch.label
            ).backward()
            opt.step()
    assert same_tensors(params_of(igm.model), params_of(ref.model))


def test_stage_schedule_builds_projectors_only_for_the_chosen_modality(device: str) -> None:
    p = tiny_problem(lambda: IGM(head_hidden=(16, 8), stage_epochs=1, gm_modalities=["a"]), dropout=0.0)
    targets = []
    for epoch in range(3):  # stage 1 trains "b" (not modified), stage 2 trains "a" (from "b")
        run_epochs(p, 1, start=epoch)
        targets.append(set(p.strategy.projectors_))
    assert targets == [set(), set(), {"a"}]
    assert {r["modality"] for r in p.strategy.records()["spectra"]} == {"a"}


@pytest.mark.parametrize(
    ("gm", "fragment"),
    [
        (["c"], "igm gm_modalities names 'c'; expected modalities of the model: a, b"),
        (["a", "B", "x"], "igm gm_modalities names 'B', 'x'"),
        ("a", "igm gm_modalities='a'; expected a list of modality names"),
    ],
)
def test_unknown_modalities_are_one_line(gm: Any, fragment: str, device: str) -> None:
    with pytest.raises(ConfigError) as err:
        IGM(gm_modalities=gm).validate(["a", "b"])
    assert fragment in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="gm_modalities"):
        problem(device, gm_modalities=gm)  # setup validates too
