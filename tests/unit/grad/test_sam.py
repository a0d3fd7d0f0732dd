from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mmbalance.errors import ConfigError
from mmbalance.grad import frozen_bn_stats, perturbed, sam_perturbation

F64 = torch.float64


def _params(
    device: torch.device, gen: torch.Generator, dtype: torch.dtype = torch.float32
) -> list[torch.Tensor]:
    shapes = [(4, 3), (3,), (2, 2, 2)]
    return [torch.randn(s, generator=gen, dtype=dtype).to(device).requires_grad_() for s in shapes]


def _grads(params: list[torch.Tensor], gen: torch.Generator) -> list[torch.Tensor]:
    return [torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device) for p in params]


def _global_norm(tensors: list[torch.Tensor]) -> float:
    return math.sqrt(sum(t.double().pow(2).sum().item() for t in tensors))


@pytest.mark.parametrize("adaptive", [False, True])
def test_params_restored_bit_exactly(device: torch.device, gen: torch.Generator, adaptive: bool) -> None:
    params = _params(device, gen)
    grads, saved = _grads(params, gen), [p.detach().clone() for p in params]
    with perturbed(params, grads, rho=0.37, adaptive=adaptive):
        assert not any(torch.equal(p, s) for p, s in zip(params, saved, strict=True))
    assert all(torch.equal(p, s) for p, s in zip(params, saved, strict=True))
    assert all(p.requires_grad for p in params)


def test_params_restored_on_exception(device: torch.device, gen: torch.Generator) -> None:
    params = _params(device, gen)
    grads, saved = _grads(params, gen), [p.detach().clone() for p in params]
    with pytest.raises(RuntimeError, match="inside"), perturbed(params, grads, rho=1.3):
        raise RuntimeError("inside")
    assert all(torch.equal(p, s) for p, s in zip(params, saved, strict=True))


def test_perturbation_has_norm_rho_along_g(device: torch.device, gen: torch.Generator) -> None:
    params = _params(device, gen, F64)
    grads, saved = _grads(params, gen), [p.detach().clone() for p in params]
    with perturbed(params, grads, rho=0.05) as steps:
        moved = [p.detach() - s for p, s in zip(params, saved, strict=True)]
    assert math.isclose(_global_norm(moved), 0.05, rel_tol=1e-9)
    assert math.isclose(_global_norm(steps), 0.05, rel_tol=1e-12)
    scale = 0.05 / _global_norm(grads)
    assert all(torch.allclose(e, scale * g, rtol=1e-12) for e, g in zip(steps, grads, strict=True))


def test_adaptive_perturbation_formula(device: torch.device, gen: torch.Generator) -> None:
    params = _params(device, gen, F64)
    grads = _grads(params, gen)
    steps = sam_perturbation(params, grads, rho=0.2, adaptive=True)
    weighted = [p.detach().abs() * g for p, g in zip(params, grads, strict=True)]
    norm = _global_norm(weighted)
    for e, p, g in zip(steps, params, grads, strict=True):
        assert torch.allclose(e, 0.2 * p.detach().pow(2) * g / norm, rtol=1e-12)
    # ASAM's normalised step |θ|⁻¹ e has norm ρ.
    assert math.isclose(_global_norm([e / p.detach().abs() for e, p in zip(steps, params, strict=True)]), 0.2)


def test_rho_zero_changes_nothing(device: torch.device, gen: torch.Generator) -> None:
    params = _params(device, gen)
    grads, saved = _grads(params, gen), [p.detach().clone() for p in params]
    with perturbed(params, grads, rho=0.0) as steps:
        assert all(torch.equal(p, s) for p, s in zip(params, saved, strict=True))
        assert all(not e.any() for e in steps)
    assert all(torch.equal(p, s) for p, s in zip(params, saved, strict=True))


@pytest.mark.parametrize("adaptive", [False, True])
def test_zero_or_missing_grads_give_no_nan(
    device: torch.device, gen: torch.Generator, adaptive: bool
) -> None:
    params = _params(device, gen)
    saved = [p.detach().clone() for p in params]
    grads: list[torch.Tensor | None] = [torch.zeros_like(params[0]), None, torch.zeros_like(params[2])]
    with perturbed(params, grads, rho=0.5, adaptive=adaptive) as steps:
        assert all(torch.equal(p, s) for p, s in zip(params, saved, strict=True))
        assert all(not e.isnan().any() for e in steps)


def test_bad_arguments(device: torch.device, gen: torch.Generator) -> None:
    params = _params(device, gen)
    with pytest.raises(ConfigError, match=r"rho=-0\.1"), perturbed(params, _grads(params, gen), rho=-0.1):
        pass
    with pytest.raises(ConfigError, match="grads has 1 entries, params 3"):
        sam_perturbation(params, [None], rho=0.1)


def _bn_net(device: torch.device) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3), nn.Flatten(), nn.BatchNorm1d(12, momentum=None)
    ).to(device)


def _bn_state(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items() if "running" in k or "num_batches" in k}


def test_frozen_bn_stats_restores_running_stats(device: torch.device, gen: torch.Generator) -> None:
    net = _bn_net(device).train()
    net(torch.randn(5, 2, 2, 2, generator=gen).to(device))  # non-trivial stats before
    before = _bn_state(net)
    with frozen_bn_stats(net):
        net(torch.randn(5, 2, 2, 2, generator=gen).to(device) * 3 + 1)
        changed = _bn_state(net)
        assert not all(torch.equal(changed[k], v) for k, v in before.items())
    assert all(torch.equal(_bn_state(net)[k], v) for k, v in before.items())


def test_frozen_bn_stats_restores_on_exception(device: torch.device, gen: torch.Generator) -> None:
    net = _bn_net(device).train()
    before = _bn_state(net)
    with pytest.raises(RuntimeError, match="boom"), frozen_bn_stats(net):
        net(torch.randn(4, 2, 2, 2, generator=gen).to(device))
        raise RuntimeError("boom")
    assert all(torch.equal(_bn_state(net)[k], v) for k, v in before.items())
