"""IGM: contract, degenerate equivalence with plain alternation, SAM, projectors, stages and state."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmbalance.data import BatchLoader, build_dataset
from mmbalance.errors import ConfigError
from mmbalance.grad import InputCovariance, flat_projector
from mmbalance.models import build_model
from mmbalance.strategies._igm_stages import mixed_loss, mixup, modality_linears, stage_index
from mmbalance.strategies.igm import IGM
from mmbalance.testing import TinyProblem, check_strategy, params_of, same_tensors, tiny_problem
from mmbalance.trainer import Trainer, make_scheduler
from mmbalance.types import Batch

FAST = {"head_hidden": (16, 8)}
PLAIN = {**FAST, "temperature": 0.0, "rho": 0.0, "mixup_alpha": 0.0, "schedule": "batch"}


def problem(device: str, out_dims: dict[str, int] | None = None, lr: float = 0.05, **kw: Any) -> TinyProblem:
    """``tiny_problem`` for ``IGM(**kw)`` without dropout (the references below draw no dropout masks);
    ``out_dims`` gives each encoder its own feature width."""
    if out_dims is None:
        return tiny_problem(lambda: IGM(**kw), device=device, lr=lr, dropout=0.0)
    torch.manual_seed(0)
    ds = build_dataset("synthetic", n_samples=48, num_classes=3, dims=[6, 6], signal=[1.0, 0.7])
    strategy = IGM(**kw)
    encoders = {m: {"name": "mlp", "hidden": (8,), "dropout": 0.0, "out_dim": d} for m, d in out_dims.items()}
    model = build_model(encoders, {m: (6,) for m in out_dims}, 3, strategy.head_config()).to(device)

    def make_opt() -> torch.optim.Optimizer:
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)

    strategy.setup(model, make_opt(), make_opt)
    ds.inputs = {m: x.to(device) for m, x in ds.inputs.items()}
    ds.labels = ds.labels.to(device)
    loader = BatchLoader(ds, torch.arange(len(ds), device=device), batch_size=16)
    return TinyProblem(ds, loader, model, strategy)


def state_of(module: torch.nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in module.state_dict().values()]


class SpySGD(torch.optim.SGD):
    """SGD that records every gradient it is about to apply."""

    def step(self, closure: Any = None) -> Any:
        self.seen = [p.grad.clone() for g in self.param_groups for p in g["params"] if p.grad is not None]
        return super().step(closure)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"schedule": "batch"},
        {"sam_mode": "released", "epoch_list": [1, 2]},
        {"sam_mode": "off", "project_layers": "all", "reload": "none"},
    ],
)
def test_contract(kw: dict[str, Any], device: str) -> None:
    check_strategy(lambda: IGM(**FAST, **kw), device=device)


def test_temperature_zero_equals_plain_alternation(device: str) -> None:
    igm, ref = problem(device, **PLAIN), problem(device, **PLAIN)
    opt = ref.strategy.optimizer
    step = 0
    for epoch in range(2):
        igm.strategy.on_epoch_start(epoch, igm.loader)
        for batch in igm.batches:
            igm.strategy.training_step(batch, epoch)
            m = ["a", "b"][step % 2]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(
                ref.model.head.unimodal(m, ref.model.encoders[m](batch.inputs[m])), batch.label
            ).backward()
            opt.step()
            step += 1
    assert set(igm.strategy.projectors_) == {"a", "b"}  # the projection ran (P = I) in epoch 1
    for got, want in zip(params_of(igm.model), params_of(ref.model), strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    shrunk = problem(device, **{**PLAIN, "temperature": 2.0})
    for epoch in range(2):
        shrunk.strategy.on_epoch_start(epoch, shrunk.loader)
        for batch in shrunk.batches:
            shrunk.strategy.training_step(batch, epoch)
    assert not same_tensors(params_of(shrunk.model), params_of(ref.model))


def test_idle_modality_is_bit_identical(device: str) -> None:
    p = problem(device, **FAST, rho=0.5)
    idle = [p.model.encoders["b"], p.model.head.branches["b"]]
    before, active = [state_of(m) for m in idle], params_of(p.model.encoders["a"])
    for _ in range(2):
        p.strategy.on_epoch_start(0, p.loader)
        for batch in p.batches:
            p.strategy.training_step(batch, 0)
    for module, then in zip(idle, before, strict=True):
        assert same_tensors(state_of(module), then)  # parameters and BN buffers
    assert all(q.grad is None for m in idle for q in m.parameters())
    assert not same_tensors(active, params_of(p.model.encoders["a"]))


def test_sam_restores_parameters_and_counts_bn_once(device: str) -> None:
    p = problem(device, **FAST, rho=0.5, flat_ratio=1.0, mixup_alpha=0.0, schedule="batch")
    p.strategy.optimizer = torch.optim.SGD(p.model.parameters(), lr=0.0)
    p.strategy.on_epoch_start(0, p.loader)
    batch = p.batches[0]
    encoder = copy.deepcopy(p.model.encoders["a"])
    encoder(batch.inputs["a"])  # one training-mode forward: the BN statistics IGM must end with
    before = params_of(p.model)
    p.strategy.training_step(batch, 0)
    assert same_tensors(before, params_of(p.model))  # lr 0: only a restored perturbation could differ
    assert same_tensors(state_of(encoder), state_of(p.model.encoders["a"]))


def test_paper_sam_gradient_is_the_flat_mix(device: str) -> None:
    rho, beta = 0.3, 0.4
    p = problem(device, **FAST, rho=rho, flat_ratio=beta, mixup_alpha=0.0, schedule="batch")
    p.strategy.optimizer = torch.optim.SGD(p.model.parameters(), lr=1.0)
    ref = copy.deepcopy(p.model)
    batch = p.batches[0]
    params = ref.modality_parameters("a")

    def grads() -> list[torch.Tensor]:
        logits = ref.head.unimodal("a", ref.encoders["a"](batch.inputs["a"]))
        return list(torch.autograd.grad(F.cross_entropy(logits, batch.label), params))

    theta = [q.detach().clone() for q in params]
    g = grads()
    norm = torch.sqrt(sum(t.square().sum() for t in g))  # one global norm over encoder + head branch
    with torch.no_grad():
        for q, t in zip(params, g, strict=True):
            q.add_(rho * t / norm)
    sharp = grads()
    p.strategy.on_epoch_start(0, p.loader)
    p.strategy.training_step(batch, 0)
    for q, q0, a, s in zip(p.model.modality_parameters("a"), theta, g, sharp, strict=True):
        torch.testing.assert_close(q.detach(), q0 - ((1 - beta) * a + beta * s), atol=1e-5, rtol=1e-5)


def test_rho_zero_is_the_plain_step(device: str) -> None:
    runs = [problem(device, **FAST, rho=0.0), problem(device, **FAST, sam_mode="off", rho=0.5)]
    for r in runs:
        r.strategy.on_epoch_start(0, r.loader)
        for batch in r.batches:
            r.strategy.training_step(batch, 0)
    assert same_tensors(params_of(runs[0].model), params_of(runs[1].model))


def test_released_loss_on_known_numbers() -> None:
    z, y, y_perm, lam, beta = (
        torch.tensor([[2.0, 0.0], [0.0, 1.0]]),
        torch.tensor([0, 1]),
        torch.tensor([1, 0]),
        0.25,
        0.3,
    )
    own, other = (1 - beta) * lam + beta, (1 - beta) * (1 - lam)
    ce_own = [math.log(1 + math.exp(-2)), math.log(1 + math.exp(-1))]
    ce_other = [math.log(1 + math.exp(2)), math.log(1 + math.exp(1))]
    want = sum(own * a + other * b for a, b in zip(ce_own, ce_other, strict=True)) / 2
    assert mixed_loss(z, y, y_perm, lam, tilt=beta).item() == pytest.approx(want, rel=1e-6)
    # the released step-5 loss: (1-β)·mixup + β·CE on the un-permuted labels
    decomposed = (1 - beta) * mixed_loss(z, y, y_perm, lam) + beta * F.cross_entropy(z, y)
    assert mixed_loss(z, y, y_perm, lam, tilt=beta).item() == pytest.approx(decomposed.item(), rel=1e-6)


def test_released_step_optimises_the_tilted_mixup_loss(device: str) -> None:
    p = problem(device, **FAST, sam_mode="released", mixup_alpha=1.0)
    model, batch = copy.deepcopy(p.model), p.batches[0]
    rng = np.random.default_rng(torch.initial_seed())  # the strategy's generator, seeded the same way
    lam = float(rng.beta(1.0, 1.0))
    perm = torch.from_numpy(rng.permutation(batch.size)).to(device)
    x = lam * batch.inputs["a"] + (1 - lam) * batch.inputs["a"][perm]
    ce = F.cross_entropy(model.head.unimodal("a", model.encoders["a"](x)), batch.label, reduction="none")
    ce_perm = F.cross_entropy(
        model.head.unimodal("a", model.encoders["a"](x)), batch.label[perm], reduction="none"
    )
    want = ((0.7 * lam + 0.3) * ce + 0.7 * (1 - lam) * ce_perm).mean()
    p.strategy.on_epoch_start(0, p.loader)
    got = p.strategy.training_step(batch, 0).loss
    torch.testing.assert_close(got, want.detach(), atol=1e-6, rtol=1e-6)


def test_stage_schedule_switches_and_reloads_best_validation_state(device: str) -> None:
    assert [stage_index(e, [2, 1, 2], 5) for e in range(7)] == [0, 0, 1, 2, 2, 3, 3]
    scores = [0.2, 0.5, 0.4, 0.3, 0.6, 0.1]
    for reload in ("best", "none"):
        p = problem(device, **FAST, epoch_list=[2, 1, 2], mixup_alpha=0.0, sam_mode="off", reload=reload)
        active, starts, ends, optimizers = [], [], [], []
        for epoch, score in enumerate(scores):
            p.strategy.on_epoch_start(epoch, p.loader)
            active.append(p.strategy.active_)
            starts.append(state_of(p.model))
            optimizers.append(p.strategy.optimizer)
            p.strategy.training_step(p.batches[0], epoch)
            ends.append(state_of(p.model))
            p.strategy.on_epoch_end(epoch, {"val_acc": 0.0, "val_macro_f1": score})
        assert active == ["a", "a", "b", "a", "a", "b"]
        assert [optimizers[e] is optimizers[e - 1] for e in range(1, 6)] == [True, False, False, True, False]
        source = {2: 1, 3: 1, 5: 4} if reload == "best" else {2: 1, 3: 2, 5: 4}  # epoch 3 drops stage b
        for epoch, best in source.items():
            assert same_tensors(starts[epoch], ends[best]), (reload, epoch)
        assert not same_tensors(ends[1], ends[2])
    assert p.strategy.best_state_ is None


def test_projectors_come_from_the_previous_modality_and_hit_matched_layers(device: str) -> None:
    tau = 0.7
    p = problem(
        device, {"a": 8, "b": 5}, **FAST, stage_epochs=1, temperature=tau, mixup_alpha=0.0, sam_mode="off"
    )
    s, batch = p.strategy, p.batches[0]
    s.on_epoch_start(0, p.loader)
    s.training_step(batch, 0)
    s.on_epoch_end(0, {"val_macro_f1": 0.5})
    s.on_epoch_start(1, p.loader)
    assert s.active_ == "b" and set(s.projectors_) == {"b"}
    assert sorted(s.projectors_["b"]) == [1, 2]  # layer 0: weight [16, 5] has no [16, 8] twin in "a"
    prev = modality_linears(p.model, "a", with_encoder=False)
    p.model.eval()
    with torch.no_grad(), InputCovariance(prev[1:]) as stats:
        for b in p.batches:
            p.model.head.unimodal("a", p.model.encoders["a"](b.inputs["a"]))
    p.model.train()
    for i, P in s.projectors_["b"].items():
        torch.testing.assert_close(P, flat_projector(stats.covariances[prev[i]], tau))
        eig = torch.linalg.eigvalsh(P.double())
        assert eig.min() >= math.exp(-tau) - 1e-5 and eig.max() <= 1 + 1e-5
        assert eig.min() == pytest.approx(math.exp(-tau), abs=1e-4)
    ref = copy.deepcopy(p.model)
    logits = ref.head.unimodal("b", ref.encoders["b"](batch.inputs["b"]))
    raw = torch.autograd.grad(F.cross_entropy(logits, batch.label), ref.head.modality_parameters("b"))
    s.optimizer = SpySGD(p.model.head.modality_parameters("b"), lr=0.1)
    logs = s.training_step(batch, 1).logs
    got = s.optimizer.seen  # weight0, bias0, weight1, bias1, weight2, bias2
    assert torch.equal(got[0], raw[0]) and all(torch.equal(got[k], raw[k]) for k in (1, 3, 5))
    for k, i in ((2, 1), (4, 2)):
        torch.testing.assert_close(got[k], raw[k] @ s.projectors_["b"][i], atol=1e-6, rtol=1e-5)
        assert not torch.allclose(got[k], raw[k])
    assert 0 < logs["projection_shrink"].item() < 1


def test_project_layers_all_includes_matched_encoder_layers(device: str) -> None:
    head_only = problem(device, **FAST, schedule="batch")
    everywhere = problem(device, **FAST, schedule="batch", project_layers="all")
    for p in (head_only, everywhere):
        p.strategy.on_epoch_start(1, p.loader)
    assert len(head_only.strategy.projectors_["a"]) == 3
    assert len(everywhere.strategy.projectors_["a"]) == 3 + 2  # encoder Linear(6, 8) and Linear(8, 8)


def test_state_round_trip_keeps_stage_projectors_and_best_state(device: str) -> None:
    a = problem(device, **FAST, stage_epochs=1)
    for epoch in range(2):
        a.strategy.on_epoch_start(epoch, a.loader)
        a.strategy.training_step(a.batches[0], epoch)
        a.strategy.on_epoch_end(epoch, {"val_macro_f1": 0.1 * epoch})
    saved = copy.deepcopy(
        {
            "model": a.model.state_dict(),
            "opt": a.strategy.optimizer.state_dict(),
            "s": a.strategy.state_dict(),
        }
    )
    assert {"active_", "stage_", "projectors_", "best_state_", "best_score_", "rng_"} <= set(saved["s"])
    b = tiny_problem(lambda: IGM(**FAST, stage_epochs=1), seed=1, device=device, dropout=0.0)
    b.model.load_state_dict(saved["model"])
    b.strategy.load_state_dict(saved["s"])
    b.strategy.optimizer.load_state_dict(saved["opt"])
    assert b.strategy.active_ == "b" and b.strategy.stage_ == 1
    for x, y in zip(a.strategy.projectors_["b"].values(), b.strategy.projectors_["b"].values(), strict=True):
        assert torch.equal(x, y)
    for p in (a, b):
        p.strategy.training_step(a.batches[1], 1)  # same mixup draws: the RNG state travelled too
    assert same_tensors(params_of(a.model), params_of(b.model))
    for p in (a, b):
        p.strategy.on_epoch_start(2, p.loader)  # stage 2: reload the best state, projectors from "b"
    assert a.strategy.active_ == b.strategy.active_ == "a"
    assert same_tensors(params_of(a.model), params_of(b.model))


def test_predict_averages_probabilities(device: str) -> None:
    p = problem(device, **FAST)
    with torch.no_grad():
        out = p.model(p.batches[0].inputs)
        probs = torch.stack([z.softmax(-1) for z in out.unimodal_logits.values()]).mean(0)
        torch.testing.assert_close(p.strategy.predict(out).softmax(-1), probs)


def test_logit_fusion_averages_logits_over_present_modalities(device: str) -> None:
    p = problem(device, fusion="logits", **FAST)
    with torch.no_grad():
        out = p.model(p.batches[0].inputs)
        z = list(out.unimodal_logits.values())
        torch.testing.assert_close(p.strategy.predict(out), (z[0] + z[1]) / 2)
        first = next(iter(out.unimodal_logits))
        rows = torch.zeros(len(z[0]), dtype=torch.bool, device=z[0].device)
        absent = type(out)(out.features, out.logits, out.unimodal_logits, {first: rows})
        torch.testing.assert_close(p.strategy.predict(absent), z[1])  # only the present modality counts


@pytest.mark.parametrize(
    "kw",
    [
        {"rho": -0.1},
        {"temperature": -1.0},
        {"flat_ratio": 1.5},
        {"sam_mode": "faithful"},
        {"schedule": "epoch"},
        {"reload": "last"},
        {"fusion": "vote"},
        {"epoch_list": []},
        {"epoch_list": [2, 0]},
        {"stage_epochs": 0},
        {"project_layers": "encoder"},
        {"mixup_alpha": -1.0},
        {"lr_schedule": "epoch"},
    ],
)
def test_bad_values_raise_in_setup(kw: dict[str, Any], device: str) -> None:
    strategy = IGM(**kw)  # the constructor only stores
    assert strategy.hyperparameters()[next(iter(kw))] == next(iter(kw.values()))
    with pytest.raises(ConfigError) as err:
        problem(device, **FAST, **kw)
    assert "\n" not in str(err.value)


def test_unknown_select_metric_fails_in_setup(device: str) -> None:
    with pytest.raises(ConfigError, match="select_metric='auc'; expected one of acc, macro_f1, map, auroc"):
        problem(device, **FAST, select_metric="auc")


def test_trainer_follows_the_stage_optimizer(device: str) -> None:
    p = problem(device, **FAST, stage_epochs=1)
    trainer = Trainer(
        p.model,
        p.strategy,
        lambda: torch.optim.SGD(p.model.parameters(), lr=0.05),
        {"name": "step", "step_size": 1, "gamma": 0.5},
        torch.device(device),
        epochs=3,
        select_metric="macro_f1",
    )
    state = trainer.fit(p.loader, p.loader)
    assert trainer.scheduler is not None and trainer.scheduler.optimizer is p.strategy.optimizer
    assert ["projection_shrink" in row for row in state.history] == [False, True, True]
    assert all(math.isfinite(row["train_loss"]) for row in state.history)


def clips(lengths: list[int], device: str, t: int = 10, features: int = 4) -> torch.Tensor:
    """Padded sequences ``[B, t, features + 1]``: zeros on padded frames, the last channel the mask."""
    g = torch.Generator().manual_seed(len(lengths))
    real = torch.arange(t) < torch.tensor(lengths)[:, None]
    x = torch.randn(len(lengths), t, features, generator=g) * real[..., None]
    return torch.cat([x, real[..., None].float()], dim=-1).to(device)


def test_mixup_of_sequences_keeps_the_union_of_frames(device: str) -> None:
    x, rows = clips([3, 8], device), torch.arange(2, device=device)
    lams, swapped = set(), 0
    for seed in range(8):
        mixed, perm, lam = mixup(x, rows, 1.0, np.random.default_rng(seed), mask_channel=True)
        assert lam is not None
        lams.add(lam)
        union = torch.maximum(x[..., -1], x[perm, :, -1])
        assert torch.equal(mixed[..., -1], union)
        want = lam * x[..., :-1] + (1 - lam) * x[perm, :, :-1]
        torch.testing.assert_close(mixed[..., :-1], want, atol=1e-6, rtol=0)
        if perm[0] == 1:  # the 3-frame clip mixed with the 8-frame one: 8 real frames in both
            swapped += 1
            assert mixed[..., -1].sum(1).tolist() == [8.0, 8.0]
    assert len(lams) == 8 and 0 < swapped < 8


def test_mixup_without_mask_channel_is_unchanged(device: str) -> None:
    x, y = torch.randn(6, 4, 3, device=device), torch.arange(6, device=device)
    for seed in range(3):
        rng, masked_rng, ref = (np.random.default_rng(seed) for _ in range(3))
        mixed, y_perm, lam = mixup(x, y, 0.4, rng)
        want_lam = float(ref.beta(0.4, 0.4))
        perm = torch.from_numpy(ref.permutation(6)).to(device)
        assert lam == want_lam and torch.equal(y_perm, y[perm])
        assert torch.equal(mixed, want_lam * x + (1 - want_lam) * x[perm])
        mixup(x, y, 0.4, masked_rng, mask_channel=True)  # the same host draws
        assert masked_rng.bit_generator.state == rng.bit_generator.state


def test_step_on_a_sequence_modality_feeds_the_encoder_the_union_mask(device: str) -> None:
    torch.manual_seed(0)
    strategy = IGM(**FAST, schedule="batch", rho=0.5)  # paper SAM: the encoder runs twice
    encoders = {"a": {"name": "sequence", "channels": (4,)}, "b": {"name": "mlp", "hidden": (8,)}}
    model = build_model(encoders, {"a": (10, 5), "b": (6,)}, 3, strategy.head_config(), 8).to(device)

    def make_opt() -> torch.optim.Optimizer:
        return torch.optim.SGD(model.parameters(), lr=0.05)

    strategy.setup(model, make_opt(), make_opt)
    assert [getattr(model.encoders[m], "mask_channel", False) for m in "ab"] == [True, False]
    x = clips([3, 8, 1, 10, 5, 6], device)
    batch = Batch({"a": x, "b": torch.randn(6, 6, device=device)}, torch.arange(6, device=device) % 3)
    rng = np.random.default_rng()
    rng.bit_generator.state = strategy.state_dict()["rng_"]  # replay the strategy's draws
    lam, perm = float(rng.beta(1.0, 1.0)), torch.from_numpy(rng.permutation(6)).to(device)
    union = torch.maximum(x[..., -1], x[perm, :, -1])
    seen: list[torch.Tensor] = []
    model.encoders["a"].register_forward_pre_hook(lambda _, args: seen.append(args[0].detach().clone()))
    strategy.on_epoch_start(0, [])
    strategy.training_step(batch, 0)
    assert strategy.active_ == "a" and len(seen) == 2 and not torch.equal(union, x[..., -1])
    for got in seen:
        assert torch.equal(got[..., -1], union)
        torch.testing.assert_close(got[..., :-1], lam * x[..., :-1] + (1 - lam) * x[perm, :, :-1])


BASE_LR, EPOCHS = 0.05, 6


def logged_rates(device: str, scheduler: dict[str, Any], lr_schedule: str) -> list[float]:
    """The ``lr`` column of a 6-epoch stage run with 2-epoch stages (new optimizers at epochs 2 and 4)."""
    p = problem(device, **FAST, stage_epochs=2, lr_schedule=lr_schedule)
    trainer = Trainer(
        p.model,
        p.strategy,
        lambda: torch.optim.SGD(p.model.parameters(), lr=BASE_LR),
        scheduler,
        torch.device(device),
        epochs=EPOCHS,
        select_metric="macro_f1",
    )
    first = p.strategy.optimizer
    history = trainer.fit(p.loader, p.loader).history
    assert p.strategy.optimizer is not first and trainer.scheduler is not None
    assert trainer.scheduler.optimizer is p.strategy.optimizer
    return [row["lr"] for row in history]


def one_scheduler_rates(scheduler: dict[str, Any]) -> list[float]:
    """The rates one scheduler over one optimizer gives in each epoch of the whole run."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=BASE_LR)
    sched = make_scheduler(scheduler, opt, EPOCHS)
    assert sched is not None
    rates = []
    for _ in range(EPOCHS):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return rates


SCHEDULES = [
    ({"name": "cosine"}, lambda e: BASE_LR * (1 + math.cos(math.pi * e / EPOCHS)) / 2),
    ({"name": "step", "step_size": 3, "gamma": 0.1}, lambda e: BASE_LR * 0.1 ** (e // 3)),
]


@pytest.mark.parametrize(("scheduler", "closed_form"), SCHEDULES)
def test_stage_optimizers_continue_the_run_schedule(
    scheduler: dict[str, Any], closed_form: Any, device: str
) -> None:
    rates = logged_rates(device, scheduler, "run")
    assert rates == one_scheduler_rates(scheduler)  # bit for bit, across both optimizer replacements
    assert rates == pytest.approx([closed_form(e) for e in range(EPOCHS)], rel=1e-12, abs=0)


@pytest.mark.parametrize(("scheduler", "closed_form"), SCHEDULES)
def test_lr_schedule_stage_restarts_with_each_stage(
    scheduler: dict[str, Any], closed_form: Any, device: str
) -> None:
    rates = logged_rates(device, scheduler, "stage")
    assert rates == pytest.approx([closed_form(e % 2) for e in range(EPOCHS)], rel=1e-12, abs=0)
