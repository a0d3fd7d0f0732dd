"""Gradient surgery: GEM-style projection of a gradient into the cone of reference gradients.

The projection solves GEM's dual quadratic programme with a margin,

    min_v  ½ vᵀ(RRᵀ + eps·I)v + (Rg)ᵀv   subject to  v ≥ margin,

and returns ``g + Rᵀv*``. It is applied only when ``g`` conflicts with a reference (``<g, r_i> < 0``
for some ``i``); otherwise ``g`` is returned bit-identical. With several references and at least one
conflict, the QP is solved over *all* references (each one, conflicting or not, gets ``v_i ≥ margin``),
as GEM does. Everything runs on the input's device without host synchronisation: ``k = 1`` uses a
branch-free closed form and ``k ≥ 2`` enumerates all ``2^k`` active sets in one batched solve.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mmbalance.errors import ConfigError, check_range
from mmbalance.precision import float32_math

MAX_REFS = 12
"""Largest number of references :func:`project_to_cone` accepts (it solves ``2^k`` small systems)."""


@float32_math
def conflicts(g: Tensor, ref: Tensor) -> Tensor:
    """Whether ``<g, ref> < 0``, as a 0-d bool tensor (both viewed as flat vectors; no host sync).

    >>> conflicts(torch.tensor([1.0, -2.0]), torch.tensor([0.0, 1.0])).tolist()
    True
    """
    if g.numel() != ref.numel():
        raise ConfigError(f"g has shape {tuple(g.shape)} and ref {tuple(ref.shape)}; expected equal sizes")
    return torch.dot(g.reshape(-1), ref.reshape(-1)) < 0


def _as_refs(g: Tensor, refs: Tensor) -> Tensor:
    if g.dim() != 1:
        raise ConfigError(f"g has shape {tuple(g.shape)}; expected a 1-D gradient [d]")
    matrix = refs.unsqueeze(0) if refs.dim() == 1 else refs
    if matrix.dim() != 2 or matrix.shape[1] != g.shape[0]:
        d, got = g.shape[0], tuple(refs.shape)
        raise ConfigError(f"refs has shape {got} and g {tuple(g.shape)}; expected [k, {d}] or [{d}]")
    if matrix.shape[0] > MAX_REFS:
        raise ConfigError(f"refs has {matrix.shape[0]} rows; expected at most {MAX_REFS} references")
    return matrix


def _closed_form(gram: Tensor, dots: Tensor, margin: float) -> Tensor:
    """``v = max(margin, -<g,r>/(‖r‖²+eps))`` for a single reference (``gram`` and ``dots`` are [1])."""
    return torch.clamp_min(-dots / gram.clamp_min(torch.finfo(gram.dtype).tiny), margin)


def _active_set_qp(gram: Tensor, dots: Tensor, margin: float) -> Tensor:
    """Exact minimiser of ``½vᵀGv + bᵀv`` over ``v ≥ margin`` for a positive-definite ``[k, k]`` ``G``.

    With ``v = margin + u`` the problem is ``min ½uᵀGu + qᵀu, u ≥ 0`` with ``q = b + G·margin``. For
    every subset ``S`` of free variables, ``u_S = -G_SS⁻¹ q_S`` and ``u_rest = 0``; the optimum is one of
    these candidates. Each candidate is clipped to ``u ≥ 0`` (so it is feasible and its objective
    bounds the optimum from above) and the one with the smallest objective is returned. ``S = ∅``
    (``u = 0``) is always a valid candidate, so a singular ``G_SS`` (possible when ``eps = 0``) is skipped.
    """
    k = gram.shape[0]
    bits = torch.arange(2**k, device=gram.device).unsqueeze(1)
    free = ((bits >> torch.arange(k, device=gram.device)) & 1).to(gram.dtype)  # [2^k, k]
    q = dots + gram.sum(1) * margin
    systems = free.unsqueeze(2) * gram * free.unsqueeze(1) + torch.diag_embed(1 - free)
    u = torch.linalg.solve_ex(systems, -(free * q)).result.clamp_min(0)  # [2^k, k]; solve_ex: no sync
    objective = 0.5 * ((u @ gram) * u).sum(1) + u @ q
    objective = torch.where(torch.isfinite(objective), objective, torch.inf)  # singular G_SS (eps = 0)
    best = torch.argmin(objective).reshape(1)  # index_select, not u[best]: a 0-d index would sync
    return u.index_select(0, best).squeeze(0) + margin


@float32_math
def project_to_cone(
    g: Tensor, refs: Tensor, margin: float = 0.75, eps: float = 1e-3, dtype: torch.dtype | None = None
) -> Tensor:
    """Project ``g`` so that it no longer conflicts with ``refs`` (GEM's dual QP, see the module doc).

    Args:
        g: The gradient to correct, 1-D ``[d]``.
        refs: Reference gradients ``[k, d]`` (a 1-D ``[d]`` tensor counts as ``k = 1``), ``k ≤ 12``.
        margin: Lower bound of the dual variables (GEM's ``margin``), ``≥ 0``.
        eps: Ridge added to the Gram matrix ``RRᵀ``, ``≥ 0``.
        dtype: Dtype of the dot products and of the small solve; default ``g``'s dtype, at least float32.

    Returns:
        A tensor bit-identical to ``g`` when no reference conflicts, else ``g + Rᵀv*``; ``g``'s dtype and
        device.

    >>> g, r = torch.tensor([1.0, -1.0]), torch.tensor([0.0, 1.0])
    >>> project_to_cone(g, r, margin=0.0, eps=0.0).tolist()
    [1.0, 0.0]
    >>> project_to_cone(-r, r).tolist() == project_to_cone(-r, r.unsqueeze(0)).tolist()
    True
    """
    check_range("margin", margin, 0.0)
    check_range("eps", eps, 0.0)
    matrix = _as_refs(g, refs)
    if matrix.shape[0] == 0:
        return g
    work = dtype or torch.promote_types(g.dtype, torch.float32)
    gw, rw = g.to(work), matrix.to(work)
    dots = rw @ gw  # [k]
    gram = rw @ rw.T + eps * torch.eye(rw.shape[0], dtype=work, device=rw.device)
    solve = _closed_form if rw.shape[0] == 1 else _active_set_qp
    v = solve(gram.diagonal() if rw.shape[0] == 1 else gram, dots, margin)
    projected = (gw + v @ rw).to(g.dtype)
    return torch.where((dots < 0).any(), projected, g)
