"""Sharpness-aware minimisation helpers: perturb the weights for the second pass, then restore them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmbalance.errors import ConfigError, check_range

_BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def _global_norm(tensors: Sequence[Tensor], device: torch.device) -> Tensor:
    dtype = torch.promote_types(tensors[0].dtype, torch.float32)
    norms = [torch.linalg.vector_norm(t, dtype=dtype).to(device) for t in tensors]
    return torch.linalg.vector_norm(torch.stack(norms))


def sam_perturbation(
    params: Sequence[Tensor], grads: Sequence[Tensor | None], rho: float, adaptive: bool = False
) -> list[Tensor]:
    """SAM's ascent step ``e = ρ g / ‖g‖`` (global norm), or ASAM's ``e = ρ |θ|² g / ‖|θ| g‖``.

    A ``None`` gradient counts as zeros; a zero norm gives ``e = 0`` (no NaN). No host sync.

    >>> p = torch.ones(2)
    >>> sam_perturbation([p], [torch.tensor([3.0, 4.0])], rho=1.0)[0].tolist()
    [0.6000000238418579, 0.800000011920929]
    """
    if len(grads) != len(params) or not params:
        raise ConfigError(f"grads has {len(grads)} entries, params {len(params)}; expected equal, non-zero")
    gs = [torch.zeros_like(p) if g is None else g.detach() for p, g in zip(params, grads, strict=True)]
    thetas = [p.detach().abs() for p in params]
    scaled = [t * g for t, g in zip(thetas, gs, strict=True)] if adaptive else gs
    norm = _global_norm(scaled, params[0].device)
    factor = torch.where(norm > 0, rho / norm.clamp_min(torch.finfo(norm.dtype).tiny), 0.0)
    if adaptive:
        gs = [t * t * g for t, g in zip(thetas, gs, strict=True)]
    return [(factor.to(g.device) * g).to(g.dtype) for g in gs]


@contextmanager
def perturbed(
    params: Sequence[Tensor], grads: Sequence[Tensor | None], rho: float, adaptive: bool = False
) -> Iterator[list[Tensor]]:
    """Add :func:`sam_perturbation` to ``params`` in place; yield it; restore the params bit-exactly on exit.

    The original values are cloned and copied back (never subtracted), also when the body raises.
    ``rho = 0`` changes nothing and yields zeros.

    >>> p = torch.zeros(2, requires_grad=True)
    >>> with perturbed([p], [torch.tensor([0.0, 2.0])], rho=0.5):
    ...     p.tolist()
    [0.0, 0.5]
    >>> p.tolist()
    [0.0, 0.0]
    """
    params = list(params)
    check_range("rho", rho, 0.0)
    if rho == 0:
        yield [torch.zeros_like(p) for p in params]
        return
    with torch.no_grad():
        saved = [p.detach().clone() for p in params]
    try:
        with torch.no_grad():
            steps = sam_perturbation(params, list(grads), rho, adaptive)
            for p, e in zip(params, steps, strict=True):
                p.add_(e)
        yield steps
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved, strict=True):
                p.copy_(s)


@contextmanager
def frozen_bn_stats(module: nn.Module) -> Iterator[None]:
    """Save every BatchNorm's running statistics in ``module`` and restore them exactly on exit.

    Use around SAM's second forward pass so the batch statistics are not accumulated twice.

    >>> bn = torch.nn.BatchNorm1d(2)
    >>> with frozen_bn_stats(bn):
    ...     _ = bn(torch.randn(4, 2))
    >>> bn.running_mean.tolist(), int(bn.num_batches_tracked)
    ([0.0, 0.0], 0)
    """
    saved: list[tuple[nn.Module, str, Tensor]] = []
    for m in module.modules():
        if isinstance(m, _BatchNorm):
            for name in _BN_BUFFERS:
                buf = getattr(m, name, None)
                if buf is not None:
                    saved.append((m, name, buf.detach().clone()))
    try:
        yield
    finally:
        with torch.no_grad():
            for m, name, value in saved:
                getattr(m, name).copy_(value)
