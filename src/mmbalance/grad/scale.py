"""Scaling what flows backward without changing what flows forward, and AGM-style norm clipping."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def scale_grad(x: Tensor, k: Tensor | float) -> Tensor:
    """Identity in the forward pass; multiplies the gradient flowing back into ``x`` by ``k``.

    The forward value is bit-identical to ``x`` (``x.detach() + k·0``); ``k`` may be a 0-d tensor or a
    tensor broadcastable to ``x`` and receives no gradient. What a backward hook of an identity module
    does, without a hook.

    >>> x = torch.tensor([1.0, 2.0], requires_grad=True)
    >>> y = scale_grad(x, 3.0)
    >>> torch.equal(y, x), torch.autograd.grad(y.sum(), x)[0].tolist()
    (True, [3.0, 3.0])
    """
    k = k.detach() if isinstance(k, Tensor) else k
    return x.detach() + k * (x - x.detach())


def clip_if_any_exceeds_(
    grads: Sequence[Tensor], watched: Sequence[Tensor], threshold: float = 1.0, max_norm: float = 1.0
) -> Tensor:
    """If some element of the ``watched`` gradients lies outside ``[−threshold, threshold]``, rescale all
    ``grads`` in place to global norm ``max_norm`` (as ``torch.nn.utils.clip_grad_norm_``: factor
    ``min(1, max_norm / (‖g‖ + 1e-6))``); otherwise leave them bit-identical. Returns the factor applied,
    a 0-d tensor; no host synchronisation.

    >>> g = [torch.tensor([3.0, 4.0])]
    >>> round(clip_if_any_exceeds_(g, g).item(), 4), [round(v, 4) for v in g[0].tolist()]
    (0.2, [0.6, 0.8])
    """
    device = grads[0].device
    big = torch.stack([w.abs().max() > threshold for w in watched]).any().to(device)
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]))
    factor = torch.where(big, (max_norm / (norm + 1e-6)).clamp(max=1.0), torch.ones((), device=device))
    for g in grads:
        g.mul_(factor.to(g.dtype))
    return factor
