"""Pareto integration of two gradients (the two-task min-norm solution of MGDA, as MMPareto uses it).

Everything works on flat or shaped tensors alike, stays on their device and never synchronises with the
host: data-dependent branches are ``torch.where`` selections.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mmbalance.errors import ConfigError, check_range
from mmbalance.precision import float32_math


def _check_pair(g1: Tensor, g2: Tensor) -> None:
    if g1.shape != g2.shape:
        raise ConfigError(f"g1 has shape {tuple(g1.shape)} and g2 {tuple(g2.shape)}; expected equal shapes")


@float32_math
def min_norm_weights(g1: Tensor, g2: Tensor) -> Tensor:
    """Weights ``[w, 1 − w]`` of the minimum-norm point ``w·g1 + (1 − w)·g2`` of the segment ``[g1, g2]``.

    ``w = clip(<g2, g2 − g1> / ‖g1 − g2‖², 0, 1)`` (float32 at least); equal vectors give ``[½, ½]``.
    The point's inner product with ``g1`` and with ``g2`` is at least its squared norm, so never negative.

    >>> min_norm_weights(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])).tolist()
    [0.5, 0.5]
    >>> min_norm_weights(torch.tensor([1.0, 0.0]), torch.tensor([3.0, 0.0])).tolist()
    [1.0, 0.0]
    """
    _check_pair(g1, g2)
    work = torch.promote_types(g1.dtype, torch.float32)
    a, b = g1.reshape(-1).to(work), g2.reshape(-1).to(work)
    diff = a - b
    gap = torch.dot(diff, diff)
    w = torch.where(gap > 0, torch.dot(b, -diff) / gap.clamp_min(torch.finfo(work).tiny), 0.5).clamp(0, 1)
    return torch.stack([w, 1 - w])


@float32_math
def pareto_weights(g1: Tensor, g2: Tensor) -> Tensor:
    """MMPareto's weights: ``[½, ½]`` when ``<g1, g2> > 0``, else :func:`min_norm_weights` (no host sync).

    >>> pareto_weights(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 0.0])).tolist()
    [0.5, 0.5]
    >>> [round(w, 4) for w in pareto_weights(torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])).tolist()]
    [0.6, 0.4]
    """
    work = torch.promote_types(g1.dtype, torch.float32)
    agree = torch.dot(g1.reshape(-1).to(work), g2.reshape(-1).to(work)) > 0
    return torch.where(agree, torch.full((2,), 0.5, device=g1.device), min_norm_weights(g1, g2))


@float32_math
def rescale_to_sum(direction: Tensor, g1: Tensor, g2: Tensor, gamma: float = 1.0) -> Tensor:
    """``γ·direction·max(1, ‖g1 + g2‖ / ‖direction‖)``: never shorter than ``γ‖g1 + g2‖`` (MMPareto).

    A zero ``direction`` stays zero (no NaN). The result has ``direction``'s dtype and shape.

    >>> rescale_to_sum(torch.tensor([0.0, 1.0]), torch.tensor([3.0, 0.0]), torch.tensor([0.0, 4.0])).tolist()
    [0.0, 5.0]
    """
    _check_pair(g1, g2)
    if direction.shape != g1.shape:
        raise ConfigError(f"direction has shape {tuple(direction.shape)}; expected {tuple(g1.shape)}")
    check_range("gamma", gamma, 0.0)
    work = torch.promote_types(direction.dtype, torch.float32)
    norm = torch.linalg.vector_norm(direction.to(work))
    ratio = torch.linalg.vector_norm((g1 + g2).to(work)) / norm.clamp_min(torch.finfo(work).tiny)
    scale = torch.where(norm > 0, ratio.clamp_min(1.0), 0.0) * gamma
    return direction * scale.to(direction.dtype)


@float32_math
def pareto_combine(g1: Tensor, g2: Tensor, gamma: float = 1.0) -> Tensor:
    """MMPareto's combined gradient of two objectives on the same parameters.

    ``w = pareto_weights(g1, g2)``, ``d = 2(w₁g₁ + w₂g₂)``, result :func:`rescale_to_sum` ``(d, g1, g2, γ)``.
    Without conflict it is ``γ(g1 + g2)``; with conflict it points along the min-norm element, so its inner
    product with ``g1`` and with ``g2`` is never negative, and its norm is at least ``γ‖g1 + g2‖``.

    >>> pareto_combine(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 0.0]), gamma=1.5).tolist()
    [3.0, 1.5]
    """
    w = pareto_weights(g1, g2).to(g1.dtype)
    return rescale_to_sum(2 * (w[0] * g1 + w[1] * g2), g1, g2, gamma)
