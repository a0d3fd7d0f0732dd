"""Curvature of a loss around the current parameters: Hessian-vector products, the top Hessian eigenvalue by
power iteration, and the worst loss increase within an L2 ball by projected gradient ascent.

A loss is given as an :data:`Objective`: a function that yields scalar terms whose sum is the loss (for
example one already-weighted term per mini-batch), so a large evaluation set never needs one graph; terms
may share parts of a graph (every backward retains it, and a graph is freed once its terms are). These
functions read the parameters' values and never change them: every perturbation is undone, bit-exactly,
before they return. They synchronise with the host (convergence tests); they are analysis, not training.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from mmbalance.errors import ConfigError, check_range
from mmbalance.grad.flat import flatten, gradients_of, unflatten

Objective = Callable[[], Iterable[Tensor]]


@dataclass(frozen=True)
class Eigen:
    """The result of a power iteration: the eigenvalue, the iterations run and whether it converged."""

    value: float
    iterations: int
    converged: bool


def loss_and_gradient(objective: Objective, params: Sequence[Tensor]) -> tuple[float, Tensor]:
    """The loss (summed over the objective's terms) and its flat gradient with respect to ``params``."""
    size, like = sum(p.numel() for p in params), params[0]
    total, grad = 0.0, torch.zeros(size, device=like.device, dtype=like.dtype)
    for term in objective():
        total += float(term.detach())
        if term.requires_grad:
            grad += flatten(gradients_of(term, params, retain_graph=True)).to(grad.dtype)
    return total, grad


def hessian_vector_product(objective: Objective, params: Sequence[Tensor], vec: Tensor) -> Tensor:
    """``H v`` for the Hessian ``H`` of the objective at ``params`` and the flat vector ``vec``, by double
    backward (``∇(∇L · v)``), accumulated term by term. A term that is linear in ``params`` adds nothing.

    >>> w = torch.tensor([1.0, 2.0], requires_grad=True)
    >>> hessian_vector_product(lambda: [(w**3).sum()], [w], torch.tensor([1.0, 1.0])).tolist()  # 6w
    [6.0, 12.0]
    """
    out = torch.zeros_like(vec)
    vs = unflatten(vec, params)
    for term in objective():
        grads = torch.autograd.grad(term, params, create_graph=True, allow_unused=True)
        dot = sum(((g * v).sum() for g, v in zip(grads, vs, strict=True) if g is not None), torch.zeros(()))
        if dot.requires_grad:
            out += flatten(gradients_of(dot, params, retain_graph=True)).detach().to(out.dtype)
    return out


def power_iteration(
    operator: Callable[[Tensor], Tensor], start: Tensor, iterations: int = 100, tol: float = 1e-3
) -> Eigen:
    """The dominant eigenvalue (largest in magnitude) of a symmetric linear ``operator``, as the Rayleigh
    quotient ``vᵀAv`` of the normalised iterate. Stops when two successive estimates differ by at most
    ``tol`` times the latest one's magnitude, or after ``iterations`` products. A zero product gives 0.

    >>> a = torch.diag(torch.tensor([1.0, -3.0, 2.0]))
    >>> round(power_iteration(lambda v: a @ v, torch.ones(3), tol=1e-6).value, 3)
    -3.0
    """
    if iterations < 1:
        raise ConfigError(f"iterations={iterations} must be a positive integer")
    v, value = start / start.norm(), float("nan")
    for i in range(1, iterations + 1):
        av = operator(v)
        new, norm = float(v @ av), float(av.norm())
        if norm == 0.0:
            return Eigen(0.0, i, True)
        if abs(new - value) <= tol * abs(new):
            return Eigen(new, i, True)
        v, value = av / norm, new
    return Eigen(value, iterations, False)


def top_hessian_eigenvalue(
    objective: Objective,
    params: Sequence[Tensor],
    iterations: int = 100,
    tol: float = 1e-3,
    generator: torch.Generator | None = None,
) -> Eigen:
    """The largest (most positive) eigenvalue of the objective's Hessian at ``params``.

    Power iteration on Hessian-vector products from a Gaussian start drawn with ``generator`` (on the CPU).
    If the dominant eigenvalue ``μ`` is negative, a second power iteration on ``H − μI`` (whose spectrum is
    non-negative, with ``λ_max − μ`` on top) finds ``λ_max``; ``iterations`` counts both.
    """
    params = list(params)
    start = torch.randn(sum(p.numel() for p in params), generator=generator, dtype=torch.float64)
    start = start.to(device=params[0].device, dtype=params[0].dtype)
    dominant = power_iteration(lambda v: hessian_vector_product(objective, params, v), start, iterations, tol)
    if dominant.value >= 0:
        return dominant
    mu = dominant.value
    shifted = power_iteration(
        lambda v: hessian_vector_product(objective, params, v) - mu * v, start, iterations, tol
    )
    return Eigen(shifted.value + mu, dominant.iterations + shifted.iterations, shifted.converged)


@dataclass(frozen=True)
class BallAscent:
    """The worst point found in the ball: the loss there and at the centre, and the step's norm."""

    loss: float
    worst_loss: float
    step_norm: float

    @property
    def increase(self) -> float:
        return self.worst_loss - self.loss


def worst_increase_in_ball(
    objective: Objective,
    params: Sequence[Tensor],
    radius: float,
    steps: int = 5,
    generator: torch.Generator | None = None,
) -> BallAscent:
    """The largest loss found within ``‖ε‖₂ ≤ radius`` around ``params`` by projected gradient ascent.

    Each step moves ``ε`` by ``radius`` along the normalised gradient at ``params + ε`` (the first step is
    SAM's ``ε = radius·g/‖g‖``) and projects it back onto the ball; where the gradient is zero (at a
    stationary point) the step takes a Gaussian direction drawn with ``generator`` instead. The best point
    visited is kept, the centre included, so ``increase >= 0`` and ``step_norm <= radius`` always (``ε`` is
    kept in float64 and rounded to the parameters' dtype when applied).
    ``params`` hold their original values again on return, also when an objective raises.
    """
    check_range("radius", radius, 0.0)
    if steps < 1:
        raise ConfigError(f"steps={steps} must be a positive integer")
    params = list(params)
    saved = [p.detach().clone() for p in params]
    base, grad = loss_and_gradient(objective, params)
    best, best_norm, eps = base, 0.0, torch.zeros_like(grad, dtype=torch.float64)  # ε in float64
    try:
        for _ in range(steps if radius > 0 else 0):
            if float(grad.norm()) == 0.0:
                grad = torch.randn(grad.numel(), generator=generator, dtype=torch.float64).to(grad)
            eps = eps + radius * grad.double() / grad.double().norm()
            norm = float(eps.norm())
            if norm > radius:
                eps = eps * (radius / norm)
            _set(params, saved, eps)
            value, grad = loss_and_gradient(objective, params)
            if value > best:
                best, best_norm = value, float(eps.norm())
    finally:
        _set(params, saved, None)
    return BallAscent(base, best, best_norm)


def _set(params: Sequence[Tensor], saved: Sequence[Tensor], eps: Tensor | None) -> None:
    """``params = saved + eps`` (``None``: ``saved`` exactly), in place, outside autograd."""
    with torch.no_grad():
        steps = [None] * len(params) if eps is None else unflatten(eps.to(saved[0].dtype), saved)
        for p, s, e in zip(params, saved, steps, strict=True):
            p.copy_(s if e is None else s + e)
