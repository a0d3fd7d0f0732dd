"""Exact discrete optimal transport (the earth mover's problem), as CHARMS matches tabular attributes to
image channel groups (Jiang et al., ICML 2024, with POT's ``ot.emd``).

``min_P Σ_ij P_ij C_ij`` subject to ``P ≥ 0``, ``P 1 = a``, ``Pᵀ 1 = b`` is a linear programme; it is
solved exactly with SciPy's HiGHS solver (the ``charms`` extra), which returns a vertex of the
transport polytope (at most ``n + m − 1`` non-zero entries), as the network simplex of ``ot.emd`` does.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from mmbalance.errors import ConfigError


def _marginal(weights: Tensor | None, n: int, name: str) -> np.ndarray:
    if weights is None:
        return np.full(n, 1.0 / n)
    w = weights.detach().double().cpu().numpy().reshape(-1)
    if w.shape[0] != n or (w < 0).any() or not np.isfinite(w).all():
        raise ConfigError(
            f"transport marginal {name} has shape {w.shape} or negative values; expected {n} >= 0"
        )
    return w


def transport_plan(cost: Tensor, a: Tensor | None = None, b: Tensor | None = None) -> Tensor:
    """The optimal plan ``P`` (``[n, m]``, float64) for ``cost`` (``[n, m]``) and marginals ``a``
    (``[n]``, default uniform ``1/n``) and ``b`` (``[m]``, default ``1/m``), which must have equal sums.

    >>> transport_plan(torch.tensor([[0.0, 1.0], [1.0, 0.0]])).tolist()
    [[0.5, 0.0], [0.0, 0.5]]
    """
    try:
        from scipy.optimize import linprog
    except ImportError:  # pragma: no cover - depends on the installation
        raise ConfigError(
            "exact optimal transport needs SciPy; install the extra: pip install 'mmbalance[charms]'"
        ) from None
    if cost.dim() != 2 or not bool(torch.isfinite(cost).all()):
        raise ConfigError(f"transport cost has shape {tuple(cost.shape)}; expected a finite [n, m] matrix")
    n, m = cost.shape
    ra, rb = _marginal(a, n, "a"), _marginal(b, m, "b")
    if not np.isclose(ra.sum(), rb.sum()):
        raise ConfigError(f"transport marginals sum to {ra.sum():g} and {rb.sum():g}; expected equal sums")
    rows = np.kron(np.eye(n), np.ones((1, m)))  # Σ_j P_ij = a_i
    cols = np.kron(np.ones((1, n)), np.eye(m))  # Σ_i P_ij = b_j
    result = linprog(
        cost.detach().double().cpu().numpy().reshape(-1),
        A_eq=np.vstack([rows, cols]),
        b_eq=np.concatenate([ra, rb]),
        bounds=(0, None),
        method="highs",
    )
    if not result.success:  # pragma: no cover - a feasible bounded LP always solves
        raise RuntimeError(f"optimal transport failed: {result.message}")
    return torch.from_numpy(np.clip(result.x, 0.0, None).reshape(n, m))
