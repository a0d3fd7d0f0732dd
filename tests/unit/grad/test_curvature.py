"""Hessian-vector products, the top Hessian eigenvalue and the ρ-ball ascent against known Hessians."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mmbalance.errors import ConfigError
from mmbalance.grad.curvature import (
    hessian_vector_product,
    power_iteration,
    top_hessian_eigenvalue,
    worst_increase_in_ball,
)

F64 = torch.float64


def _symmetric(eigenvalues: list[float], gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """``Q diag(λ) Qᵀ`` with a random orthogonal ``Q``: a matrix whose spectrum is known exactly."""
    q, _ = torch.linalg.qr(torch.randn(len(eigenvalues), len(eigenvalues), generator=gen, dtype=F64))
    return (q @ torch.diag(torch.tensor(eigenvalues, dtype=F64)) @ q.T).to(device)


def _quadratic(a: torch.Tensor, w: torch.Tensor):  # type: ignore[no-untyped-def]
    """``0.5 wᵀAw``, split into two terms (the objective sums them) to exercise the accumulation."""
    half = 0.5 * a
    return lambda: [0.5 * w @ half @ w, 0.5 * w @ half @ w]


def _point(n: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.randn(n, generator=gen, dtype=F64).to(device).requires_grad_()


def test_hvp_of_a_quadratic_is_a_times_v(device: torch.device, gen: torch.Generator) -> None:
    a = _symmetric([4.0, 1.0, -2.0, 0.5], gen, device)
    w, v = _point(4, gen, device), torch.randn(4, generator=gen, dtype=F64).to(device)
    torch.testing.assert_close(hessian_vector_product(_quadratic(a, w), [w], v), a @ v)


def test_hvp_of_a_linear_loss_is_zero(device: torch.device, gen: torch.Generator) -> None:
    w = _point(3, gen, device)
    hv = hessian_vector_product(lambda: [w.sum() * 2.0], [w], torch.ones(3, dtype=F64, device=device))
    assert torch.equal(hv, torch.zeros(3, dtype=F64, device=device))


@pytest.mark.parametrize(
    ("spectrum", "top"),
    [([5.0, 2.0, 0.5, 0.1, 0.0], 5.0), ([-6.0, 2.0, 1.0, -0.5], 2.0), ([-3.0, -1.0, -2.0], -1.0)],
)
def test_top_eigenvalue_of_a_quadratic_is_lambda_max(
    device: torch.device, gen: torch.Generator, spectrum: list[float], top: float
) -> None:
    """Also when the dominant eigenvalue is negative (the shifted second iteration finds λ_max)."""
    a = _symmetric(spectrum, gen, device)
    w = _point(len(spectrum), gen, device)
    eig = top_hessian_eigenvalue(_quadratic(a, w), [w], iterations=2000, tol=1e-12, generator=gen)
    assert eig.value == pytest.approx(top, rel=1e-6, abs=1e-6)


def test_top_eigenvalue_of_linear_cross_entropy_matches_the_explicit_hessian(
    device: torch.device, gen: torch.Generator
) -> None:
    """A linear classifier with cross-entropy: compare with the Hessian from autograd.functional.hessian."""
    x = torch.randn(12, 4, generator=gen, dtype=F64).to(device)
    y = torch.randint(0, 3, (12,), generator=gen).to(device)
    weight = torch.randn(3, 4, generator=gen, dtype=F64).to(device).requires_grad_()
    bias = torch.randn(3, generator=gen, dtype=F64).to(device).requires_grad_()

    def loss(w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(x @ w.T + b, y)

    blocks = torch.autograd.functional.hessian(loss, (weight.detach(), bias.detach()))
    rows = [
        torch.cat([blocks[i][j].reshape(p.numel(), q.numel()) for j, q in enumerate((weight, bias))], 1)
        for i, p in enumerate((weight, bias))
    ]
    hessian = torch.cat(rows, 0)

    def objective():  # type: ignore[no-untyped-def]
        logits = x @ weight.T + bias
        return [
            F.cross_entropy(logits[:5], y[:5], reduction="sum") / 12,
            F.cross_entropy(logits[5:], y[5:], reduction="sum") / 12,
        ]

    v = torch.randn(15, generator=gen, dtype=F64).to(device)
    torch.testing.assert_close(hessian_vector_product(objective, [weight, bias], v), hessian @ v)
    eig = top_hessian_eigenvalue(objective, [weight, bias], iterations=5000, tol=1e-13, generator=gen)
    assert eig.converged
    assert eig.value == pytest.approx(float(torch.linalg.eigvalsh(hessian).max()), rel=1e-6)


def test_power_iteration_stops_at_its_budget_and_on_a_zero_operator() -> None:
    a = torch.diag(torch.tensor([1.0, 0.999, 0.5], dtype=F64))
    capped = power_iteration(lambda v: a @ v, torch.ones(3, dtype=F64), iterations=3, tol=1e-15)
    assert capped.iterations == 3 and not capped.converged
    zero = power_iteration(lambda v: 0 * v, torch.ones(3, dtype=F64))
    assert (zero.value, zero.converged) == (0.0, True)
    with pytest.raises(ConfigError, match="iterations=0"):
        power_iteration(lambda v: v, torch.ones(2), iterations=0)


@pytest.mark.parametrize("rho", [0.01, 0.3, 2.0])
def test_ball_ascent_stays_in_the_ball_within_the_quadratic_bound(
    device: torch.device, gen: torch.Generator, rho: float
) -> None:
    """For 0.5 wᵀAw with PSD A: ρ‖g‖ (the first, SAM, step) <= increase <= ρ‖g‖ + 0.5 ρ² λ_max."""
    a = _symmetric([3.0, 1.0, 0.2, 0.0], gen, device)
    w = _point(4, gen, device)
    saved = w.detach().clone()
    g = float((a @ saved).norm())
    found = worst_increase_in_ball(_quadratic(a, w), [w], rho, steps=5, generator=gen)
    assert found.step_norm <= rho * (1 + 1e-9)
    assert found.loss == pytest.approx(float(0.5 * saved @ a @ saved))
    assert rho * g * (1 - 1e-9) <= found.increase <= rho * g + 0.5 * rho**2 * 3.0 + 1e-9
    assert torch.equal(w, saved)


def test_ball_ascent_at_a_minimum_climbs_the_curvature(device: torch.device, gen: torch.Generator) -> None:
    """At w = 0 the gradient is zero: a random direction starts the ascent, which then follows curvature."""
    a = _symmetric([3.0, 1.0, 0.2], gen, device)
    w = torch.zeros(3, dtype=F64, device=device, requires_grad=True)
    found = worst_increase_in_ball(_quadratic(a, w), [w], 0.5, steps=20, generator=gen)
    assert 0.5 * 0.25 * 0.2 <= found.increase <= 0.5 * 0.25 * 3.0 + 1e-12
    assert found.increase == pytest.approx(0.5 * 0.25 * 3.0, rel=1e-3)  # the top eigenvector, on the sphere
    assert math.isclose(found.step_norm, 0.5)
    assert torch.equal(w, torch.zeros(3, dtype=F64, device=device))


def test_ball_ascent_with_radius_zero_finds_no_increase(device: torch.device, gen: torch.Generator) -> None:
    a = _symmetric([1.0, 2.0], gen, device)
    w = _point(2, gen, device)
    found = worst_increase_in_ball(_quadratic(a, w), [w], 0.0)
    assert (found.increase, found.step_norm) == (0.0, 0.0)


def test_ball_ascent_restores_the_parameters_when_the_objective_raises(device: torch.device) -> None:
    w = torch.ones(2, dtype=F64, device=device, requires_grad=True)
    calls = []

    def objective():  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("boom")
        return [(w**2).sum()]

    with pytest.raises(RuntimeError, match="boom"):
        worst_increase_in_ball(objective, [w], 0.5)
    assert torch.equal(w, torch.ones(2, dtype=F64, device=device))


def test_ball_ascent_rejects_bad_settings() -> None:
    w = torch.ones(2, requires_grad=True)
    with pytest.raises(ConfigError, match="radius=-1"):
        worst_increase_in_ball(lambda: [(w**2).sum()], [w], -1.0)
    with pytest.raises(ConfigError, match="steps=0"):
        worst_increase_in_ball(lambda: [(w**2).sum()], [w], 1.0, steps=0)
