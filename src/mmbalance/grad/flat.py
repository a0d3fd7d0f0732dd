"""Flat views of per-parameter gradients, and writing gradients back to ``.grad``.

Every function stays on the tensors' device and never synchronises with the host.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from mmbalance.errors import ConfigError
from mmbalance.precision import float32_math


def _check_lengths(name: str, got: Sequence[object], expected: Sequence[object]) -> None:
    if len(got) != len(expected):
        raise ConfigError(f"{name} has {len(got)} entries; expected {len(expected)} (one per parameter)")


def flatten(grads: Sequence[Tensor | None], like: Sequence[Tensor] | None = None) -> Tensor:
    """Concatenate ``grads`` into one 1-D tensor; a ``None`` entry becomes zeros shaped like ``like[i]``.

    >>> flatten([torch.ones(2, 2), None], like=[torch.ones(2, 2), torch.ones(3)]).tolist()
    [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    """
    if like is not None:
        _check_lengths("grads", grads, like)
    if not grads:
        raise ConfigError("grads is empty; expected at least one gradient tensor")
    parts: list[Tensor] = []
    for i, g in enumerate(grads):
        if g is not None:
            parts.append(g.reshape(-1))
        elif like is None:
            raise ConfigError(f"grads[{i}] is None; expected a tensor, or `like` to shape its zeros")
        else:
            parts.append(torch.zeros_like(like[i]).reshape(-1))
    return torch.cat(parts)


def unflatten(vec: Tensor, like: Sequence[Tensor]) -> list[Tensor]:
    """Split the 1-D ``vec`` into views shaped like each tensor of ``like`` (inverse of :func:`flatten`).

    >>> [t.shape for t in unflatten(torch.arange(7.0), [torch.ones(2, 2), torch.ones(3)])]
    [torch.Size([2, 2]), torch.Size([3])]
    """
    sizes = [t.numel() for t in like]
    if vec.dim() != 1 or vec.numel() != sum(sizes):
        raise ConfigError(f"vec has shape {tuple(vec.shape)}; expected a 1-D tensor of {sum(sizes)} elements")
    return [part.view_as(t) for part, t in zip(torch.split(vec, sizes), like, strict=True)]


def gradients_of(
    loss: Tensor, params: Sequence[Tensor], retain_graph: bool = False, allow_unused: bool = True
) -> list[Tensor]:
    """Gradients of the scalar ``loss`` w.r.t. ``params``; an unused parameter gets zeros, never ``None``.

    >>> w = torch.tensor([2.0, 3.0], requires_grad=True)
    >>> unused = torch.ones(1, requires_grad=True)
    >>> [g.tolist() for g in gradients_of((w * w).sum(), [w, unused])]
    [[4.0, 6.0], [0.0]]
    """
    params = list(params)
    grads = torch.autograd.grad(loss, params, retain_graph=retain_graph, allow_unused=allow_unused)
    return [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params, strict=True)]


def write_grads_(params: Sequence[Tensor], grads: Sequence[Tensor], accumulate: bool = False) -> None:
    """Set (or, with ``accumulate``, add to) each ``p.grad``; a missing ``.grad`` gets a clone of ``g``.

    >>> p = torch.zeros(2, requires_grad=True)
    >>> write_grads_([p], [torch.ones(2)])
    >>> write_grads_([p], [torch.ones(2)], accumulate=True)
    >>> p.grad.tolist()
    [2.0, 2.0]
    """
    _check_lengths("grads", grads, params)
    with torch.no_grad():
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if g.shape != p.shape:
                raise ConfigError(
                    f"grads[{i}] has shape {tuple(g.shape)}; expected the parameter's {tuple(p.shape)}"
                )
            if p.grad is None:
                p.grad = g.detach().to(dtype=p.dtype, device=p.device).clone()
            elif accumulate:
                p.grad.add_(g)
            else:
                p.grad.copy_(g)


@float32_math
def cosine(a: Tensor, b: Tensor, eps: float = 1e-12) -> Tensor:
    """Cosine similarity of two tensors viewed as flat vectors, as a 0-d tensor (no host sync), computed in
    float32 at least.

    The norm product is clamped below by ``eps`` so zero vectors give 0, not NaN.

    >>> round(cosine(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0])).item(), 4)
    0.7071
    """
    if a.numel() != b.numel():
        raise ConfigError(f"a has {a.numel()} elements and b has {b.numel()}; expected equal sizes")
    work = torch.promote_types(a.dtype, torch.float32)
    a, b = a.reshape(-1).to(work), b.reshape(-1).to(work)
    return torch.dot(a, b) / (torch.linalg.vector_norm(a) * torch.linalg.vector_norm(b)).clamp_min(eps)
