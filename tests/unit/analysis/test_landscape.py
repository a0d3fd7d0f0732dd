"""Filter-normalised directions, the landscape grid and surfaces, and the sharpness of a tiny model."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmbalance.analysis.landscape import (
    axis,
    filter_normalized_direction,
    fused_objective,
    subset_losses,
    surface,
    trainable,
)
from mmbalance.analysis.sharpness import SharpnessSettings, measure_sharpness
from mmbalance.errors import ConfigError
from mmbalance.grad.curvature import loss_and_gradient
from mmbalance.models import MultimodalModel, build_model
from mmbalance.strategies import Strategy, build_strategy
from mmbalance.types import Batch


def _model(device: str) -> MultimodalModel:
    torch.manual_seed(0)
    model = build_model(
        {"img": {"name": "cnn", "channels": [3, 4]}, "tab": {"name": "mlp", "hidden": [6]}},
        {"img": (1, 6, 5), "tab": (7,)},
        3,
        {"name": "concat"},
        feature_dim=5,
    ).to(device)
    with torch.no_grad():  # running statistics unlike a batch's own, so eval and train mode differ
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model


def _batches(device: str, sizes: tuple[int, ...] = (7, 5)) -> list[Batch]:
    g = torch.Generator().manual_seed(1)
    out = []
    for n in sizes:
        inputs = {"img": torch.randn(n, 1, 6, 5, generator=g), "tab": torch.randn(n, 7, generator=g)}
        out.append(Batch(inputs, torch.randint(0, 3, (n,), generator=g)).to(device))
    return out


def _direct_losses(model: MultimodalModel, strategy: Strategy, batches: list[Batch]) -> dict[str, float]:
    """The checkpoint's mean cross-entropies on all samples at once, in eval mode, computed directly."""
    model.eval()
    inputs = {m: torch.cat([b.inputs[m] for b in batches]) for m in batches[0].inputs}
    labels = torch.cat([b.label for b in batches])
    with torch.no_grad():
        out = model(inputs)
        found = {"fused": F.cross_entropy(strategy.predict(out), labels)}
        found |= {m: F.cross_entropy(z, labels) for m, z in out.unimodal_logits.items()}
    return {k: float(v) for k, v in found.items()}


def test_directions_have_the_filter_norms_of_the_weights(device: str) -> None:
    model = _model(device)
    params = trainable(model)
    with torch.no_grad():
        params[0][1].zero_()  # a dead filter of the first convolution: its direction stays zero
    direction = filter_normalized_direction(params, torch.Generator().manual_seed(3))
    assert [d.shape for d in direction] == [p.shape for p in params]
    assert any(p.dim() == 4 for p in params) and any(p.dim() == 2 for p in params)
    for p, d in zip(params, direction, strict=True):
        assert d.device == p.device and d.dtype == p.dtype
        if p.dim() <= 1:  # biases and BatchNorm scales and shifts are not moved
            assert torch.equal(d, torch.zeros_like(p))
        else:
            want = p.detach().reshape(p.shape[0], -1).norm(dim=1)
            torch.testing.assert_close(d.reshape(p.shape[0], -1).norm(dim=1), want)
    assert torch.equal(direction[0][1], torch.zeros_like(direction[0][1]))


def test_directions_depend_only_on_the_seed(device: str) -> None:
    params = trainable(_model(device))
    a, b, c = (filter_normalized_direction(params, torch.Generator().manual_seed(s)) for s in (3, 3, 4))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])
    on_cpu = filter_normalized_direction([p.cpu() for p in params], torch.Generator().manual_seed(3))
    torch.testing.assert_close([x.cpu() for x in a], on_cpu)


def test_axis_is_symmetric_with_an_exact_zero_and_rejects_even_counts() -> None:
    coords = axis(7, 0.3)
    assert coords[3] == 0.0 and coords[0] == -0.3 and coords[-1] == 0.3
    assert coords == [-c for c in reversed(coords)]
    for points in (1, 2, 4, 2.0):
        with pytest.raises(ConfigError, match=f"points={points!r}"):
            axis(points, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="span"):
        axis(3, 0.0)


@pytest.mark.parametrize("method", ["joint", "igm"])
def test_the_landscape_at_the_origin_is_the_checkpoints_loss(device: str, method: str) -> None:
    model, strategy, batches = _model(device), build_strategy(method), _batches(device)
    model.train()  # the surface switches to eval mode: BatchNorm's running statistics, no dropout
    saved = [p.detach().clone() for p in trainable(model)]
    gen = torch.Generator().manual_seed(0)
    dirs = [filter_normalized_direction(saved, gen) for _ in range(2)]
    line = surface(model, strategy, batches, dirs[:1], [(a,) for a in axis(5, 1.0)])
    plane = surface(model, strategy, batches, dirs, [(a, b) for b in axis(3, 0.5) for a in axis(3, 0.5)])
    direct = _direct_losses(model, strategy, batches)
    assert list(line[0]) == ["alpha", "fused", "img", "tab"] and len(line) == 5
    assert list(plane[0])[:2] == ["alpha", "beta"] and len(plane) == 9
    for origin in (line[2], plane[4]):
        assert origin["fused"] == pytest.approx(direct["fused"], rel=1e-5)
        assert origin["img"] == pytest.approx(direct["img"], rel=1e-5)
        assert origin["tab"] == pytest.approx(direct["tab"], rel=1e-5)
    assert line[0]["fused"] != pytest.approx(line[2]["fused"], rel=1e-3)
    assert all(torch.equal(p, s) for p, s in zip(trainable(model), saved, strict=True))


def test_a_doubled_direction_at_half_the_distance_gives_the_same_losses(device: str) -> None:
    model, strategy, batches = _model(device), build_strategy("joint"), _batches(device)
    d = filter_normalized_direction(trainable(model), torch.Generator().manual_seed(5))
    once = surface(model, strategy, batches, [d], [(0.8,)])[0]
    twice = surface(model, strategy, batches, [[2 * t for t in d]], [(0.4,)])[0]
    assert once["fused"] == pytest.approx(twice["fused"], rel=1e-5)
    assert once["img"] == pytest.approx(twice["img"], rel=1e-5)


def test_surface_restores_the_weights_when_evaluation_fails(device: str) -> None:
    model, batches = _model(device), _batches(device)
    saved = [p.detach().clone() for p in trainable(model)]
    d = filter_normalized_direction(saved, torch.Generator().manual_seed(0))

    class Broken(Strategy):
        def predict(self, out):  # type: ignore[no-untyped-def]
            raise RuntimeError("broken predict")

    with pytest.raises(RuntimeError, match="broken predict"):
        surface(model, Broken(), batches, [d], [(0.5,)])
    assert all(torch.equal(p, s) for p, s in zip(trainable(model), saved, strict=True))


def test_fused_objective_is_the_subset_loss_with_its_gradient(device: str) -> None:
    model, strategy, batches = _model(device), build_strategy("joint"), _batches(device)
    model.eval()
    params = trainable(model)
    loss, grad = loss_and_gradient(fused_objective(model, strategy, batches), params)
    assert loss == pytest.approx(subset_losses(model, strategy, batches)["fused"], rel=1e-6)
    inputs = {m: torch.cat([b.inputs[m] for b in batches]) for m in ("img", "tab")}
    whole = F.cross_entropy(strategy.predict(model(inputs)), torch.cat([b.label for b in batches]))
    want = torch.cat([g.reshape(-1) for g in torch.autograd.grad(whole, params)])
    torch.testing.assert_close(grad, want, rtol=1e-4, atol=1e-6)


def test_sharpness_of_a_frozen_encoder_model_matches_the_explicit_head_hessian(device: str) -> None:
    """Only the (linear, cross-entropy) head is trainable: λ_max equals that of the head's exact Hessian."""
    model, strategy, batches = _model(device), build_strategy("joint"), _batches(device)
    model.eval()
    for p in model.encoders.parameters():
        p.requires_grad_(False)
    weight, bias = model.head.fc.weight, model.head.fc.bias
    assert trainable(model) == [weight, bias]
    inputs = {m: torch.cat([b.inputs[m] for b in batches]) for m in ("img", "tab")}
    labels = torch.cat([b.label for b in batches])
    with torch.no_grad():
        features = torch.cat([f for f in model.encode(inputs).values()], dim=1)

    def loss(w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(features @ w.T + b, labels)

    blocks = torch.autograd.functional.hessian(loss, (weight.detach(), bias.detach()))
    sizes = [weight.numel(), bias.numel()]
    hessian = torch.cat(
        [torch.cat([blocks[i][j].reshape(sizes[i], sizes[j]) for j in range(2)], 1) for i in range(2)], 0
    )
    settings = SharpnessSettings(iterations=3000, tol=1e-9, rho=0.1)
    before = [p.detach().clone() for p in (weight, bias)]
    found = measure_sharpness(model, strategy, batches, settings)
    assert found["hessian_max_eig"] == pytest.approx(float(torch.linalg.eigvalsh(hessian).max()), rel=1e-3)
    assert found["rho_sharpness"] >= 0.0 and found["rho_step_norm"] <= 0.1 * (1 + 1e-6)
    assert found["loss"] == pytest.approx(float(loss(weight.detach(), bias.detach())), rel=1e-5)
    assert found["samples"] == 12 and found["settings"] == settings.as_dict()
    assert all(torch.equal(p, s) for p, s in zip((weight, bias), before, strict=True))


def test_sharpness_is_repeatable_and_bounded(device: str) -> None:
    model, strategy, batches = _model(device), build_strategy("joint"), _batches(device)
    first = measure_sharpness(model, strategy, batches, SharpnessSettings(seed=2))
    again = measure_sharpness(model, strategy, batches, SharpnessSettings(seed=2))
    assert first == again
    assert math.isfinite(first["hessian_max_eig"]) and first["rho_sharpness"] >= 0.0
    assert first["worst_loss"] == pytest.approx(first["loss"] + first["rho_sharpness"])
    assert first["weight_norm"] == pytest.approx(
        math.sqrt(sum(float(p.detach().double().square().sum()) for p in trainable(model)))
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"samples": 0}, "samples=0"), ({"iterations": 1.5}, "iterations=1.5"), ({"rho": -1.0}, "rho=-1.0")],
)
def test_sharpness_settings_name_the_bad_value(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SharpnessSettings(**kwargs)
