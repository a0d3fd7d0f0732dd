from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from mmbalance.errors import ConfigError
from mmbalance.grad import MAX_REFS, conflicts, project_to_cone
from mmbalance.grad.surgery import _active_set_qp

F64 = torch.float64


def reference_dual_qp(gram: np.ndarray, dots: np.ndarray, margin: float) -> np.ndarray:
    """Brute-force KKT point of ``min ½vᵀGv + bᵀv, v ≥ margin`` in float64 numpy (tests only).

    For each set of free variables, solve them with the others at the bound, and keep the point that is
    primal feasible (``v ≥ margin``) and dual feasible (``Gv + b ≥ 0`` on the bound variables).
    """
    k = len(dots)
    best: np.ndarray | None = None
    for mask in itertools.product([False, True], repeat=k):
        free = np.array(mask)
        v = np.full(k, margin)
        if free.any():
            rhs = -(dots[free] + gram[np.ix_(free, ~free)] @ v[~free])
            v[free] = np.linalg.solve(gram[np.ix_(free, free)], rhs)
        lam = gram @ v + dots
        scale = 1e-9 * (np.abs(gram).max() * max(np.abs(v).max(), 1.0) + np.abs(dots).max())
        if (v >= margin - 1e-9 * max(1.0, margin)).all() and (lam[~free] >= -scale).all():
            best = v
            break
    assert best is not None, "no KKT point found"
    return best


def reference_project(g: np.ndarray, refs: np.ndarray, margin: float, eps: float) -> np.ndarray:
    dots = refs @ g
    if (dots >= 0).all():
        return g
    v = reference_dual_qp(refs @ refs.T + eps * np.eye(len(refs)), dots, margin)
    return g + refs.T @ v


def _rel_err(out: torch.Tensor, ref: np.ndarray) -> float:
    return float(np.linalg.norm(out.cpu().numpy() - ref) / max(np.linalg.norm(ref), 1e-300))


def test_conflicts(device: torch.device) -> None:
    r = torch.tensor([0.0, 1.0], device=device)
    assert conflicts(torch.tensor([1.0, -0.5], device=device), r).item() is True
    assert conflicts(torch.tensor([1.0, 0.0], device=device), r).item() is False
    assert conflicts(torch.tensor([1.0, 0.5], device=device), r).item() is False


@pytest.mark.parametrize("k", [1, 3])
def test_no_conflict_returns_g_bit_identical(device: torch.device, gen: torch.Generator, k: int) -> None:
    refs = torch.randn(k, 50, generator=gen).abs().to(device)
    g = (torch.rand(50, generator=gen) * 1e-3 + 1e-7).to(device)  # positive: <g, r_i> > 0 for all i
    assert torch.equal(project_to_cone(g, refs), g)
    assert torch.equal(project_to_cone(g, refs[0], margin=5.0, eps=0.0), g)


def test_hand_worked_k1(device: torch.device) -> None:
    # g = (1, -2), r = (0, 1): <g,r> = -2, ‖r‖² = 1.
    # margin 0.75, eps 0 : v = max(0.75, 2/1) = 2     -> g + 2r   = (1, 0)
    # margin 0.75, eps 1 : v = max(0.75, 2/2) = 1     -> g + r    = (1, -1)
    # margin 3,    eps 0 : v = max(3, 2)      = 3     -> g + 3r   = (1, 1)
    g, r = torch.tensor([1.0, -2.0], device=device), torch.tensor([0.0, 1.0], device=device)
    assert project_to_cone(g, r, margin=0.75, eps=0.0).tolist() == [1.0, 0.0]
    assert project_to_cone(g, r, margin=0.75, eps=1.0).tolist() == [1.0, -1.0]
    assert project_to_cone(g, r, margin=3.0, eps=0.0).tolist() == [1.0, 1.0]


def test_hand_worked_k2(device: torch.device) -> None:
    # g = (1, -1), R = [(0, 1), (1, 1)]: Rg = (-1, 0), G = RRᵀ = [[1, 1], [1, 2]] (eps 0).
    # Unconstrained v = -G⁻¹Rg = (2, -1) violates v2 ≥ margin.
    # margin 0   : v2 = 0, v1 = -(-1)/1 = 1; multiplier of v2: G21·1 + 0 = 1 ≥ 0 -> g + r1 = (1, 0)
    # margin 0.75: v2 = 0.75, v1 = max(0.75, (1 - 0.75)/1) = 0.75; multipliers (0.5, 2.25) ≥ 0
    #              -> g + 0.75 r1 + 0.75 r2 = (1.75, 0.5)
    g = torch.tensor([1.0, -1.0], device=device)
    refs = torch.tensor([[0.0, 1.0], [1.0, 1.0]], device=device)
    assert project_to_cone(g, refs, margin=0.0, eps=0.0).tolist() == [1.0, 0.0]
    assert project_to_cone(g, refs, margin=0.75, eps=0.0).tolist() == [1.75, 0.5]


def test_margin0_non_binding_regime(device: torch.device, gen: torch.Generator) -> None:
    g, r = torch.randn(100, generator=gen, dtype=F64).to(device), torch.randn(100, generator=gen, dtype=F64)
    r = r.to(device)
    g = g if torch.dot(g, r) < 0 else -g
    for eps in (1e-3, 0.5, 10.0):
        out = project_to_cone(g, r, margin=0.0, eps=eps)
        expected = torch.dot(g, r) * eps / (r.dot(r) + eps)
        assert torch.allclose(torch.dot(out, r), expected, rtol=1e-9, atol=1e-12)


def test_binding_regime(device: torch.device) -> None:
    # -<g,r>/(‖r‖²+eps) = 0.1 / 4.001 < margin, so v = margin and <g̃,r> = <g,r> + margin ‖r‖².
    g = torch.tensor([5.0, -0.05, 0.0], dtype=F64, device=device)
    r = torch.tensor([0.0, 2.0, 0.0], dtype=F64, device=device)
    out = project_to_cone(g, r, margin=0.75)
    assert math.isclose(torch.dot(out, r).item(), -0.1 + 0.75 * 4.0, rel_tol=1e-12)


def test_scale_equivariance_with_zero_margin(device: torch.device, gen: torch.Generator) -> None:
    refs = torch.randn(3, 40, generator=gen, dtype=F64).to(device)
    g = -refs.sum(0) + 0.1 * torch.randn(40, generator=gen, dtype=F64).to(device)
    for r in (refs[0], refs):
        base = project_to_cone(g, r, margin=0.0)
        for c in (1e-3, 0.5, 7.0):
            assert torch.allclose(project_to_cone(c * g, r, margin=0.0), c * base, rtol=1e-9, atol=1e-12)


def test_closed_form_matches_reference_solver(device: torch.device) -> None:
    rng = np.random.default_rng(0)
    n_conflict = 0
    for _ in range(250):
        d = int(np.exp(rng.uniform(np.log(2), np.log(3000))))
        g = rng.standard_normal(d) * np.exp(rng.uniform(np.log(1e-4), np.log(10)))
        r = rng.standard_normal(d) * np.exp(rng.uniform(np.log(1e-4), np.log(10)))
        margin, eps = float(rng.choice([0.0, 0.75, rng.uniform(0, 2)])), float(rng.choice([1e-3, 0.0, 1.0]))
        n_conflict += int(g @ r < 0)
        out = project_to_cone(torch.from_numpy(g).to(device), torch.from_numpy(r).to(device), margin, eps)
        assert _rel_err(out, reference_project(g, r[None], margin, eps)) < 1e-6
    assert n_conflict > 80  # both branches are exercised


@pytest.mark.parametrize("k", [2, 3, 4])
def test_active_set_solver_matches_reference(device: torch.device, k: int) -> None:
    rng = np.random.default_rng(k)
    for _ in range(60):
        d = int(rng.integers(2, 300))
        common = rng.standard_normal(d) * rng.uniform(0, 2)  # correlated refs: varied active sets
        refs = (rng.standard_normal((k, d)) + common) * np.exp(rng.uniform(np.log(1e-2), np.log(10)))
        g = -refs.mean(0) * rng.uniform(0, 3) + rng.standard_normal(d) * rng.uniform(0.1, 3)
        margin, eps = float(rng.choice([0.0, 0.75, rng.uniform(0, 2)])), float(rng.choice([1e-3, 1.0]))
        out = project_to_cone(torch.from_numpy(g).to(device), torch.from_numpy(refs).to(device), margin, eps)
        assert _rel_err(out, reference_project(g, refs, margin, eps)) < 1e-6


@pytest.mark.parametrize("k", [2, 3, 4, 6])
def test_active_set_solution_satisfies_kkt(device: torch.device, gen: torch.Generator, k: int) -> None:
    for _ in range(20):
        a = torch.randn(k, k + 1, generator=gen, dtype=F64).to(device)
        gram = a @ a.T + 1e-3 * torch.eye(k, dtype=F64, device=device)
        dots = torch.randn(k, generator=gen, dtype=F64).to(device) * 3
        v = _active_set_qp(gram, dots, 0.5)
        lam = gram @ v + dots
        assert (v >= 0.5 - 1e-12).all() and (lam >= -1e-9).all()
        assert torch.allclose((v - 0.5) * lam, torch.zeros_like(v), atol=1e-9)


def test_k1_as_matrix_equals_vector(device: torch.device, gen: torch.Generator) -> None:
    for _ in range(20):
        g, r = torch.randn(30, generator=gen).to(device), torch.randn(30, generator=gen).to(device)
        assert torch.equal(project_to_cone(g, r.unsqueeze(0)), project_to_cone(g, r))


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("k", [1, 3])
def test_result_keeps_device_and_dtype(device: torch.device, dtype: torch.dtype, k: int) -> None:
    refs = torch.ones(k, 8, dtype=dtype, device=device)
    for g in (-torch.ones(8, dtype=dtype, device=device), torch.ones(8, dtype=dtype, device=device)):
        out = project_to_cone(g, refs)
        assert out.dtype == dtype and out.device == g.device and out.shape == g.shape


def test_shape_and_value_errors() -> None:
    with pytest.raises(ConfigError, match=r"refs has shape \(2, 4\) and g \(3,\); expected \[k, 3\]"):
        project_to_cone(torch.ones(3), torch.ones(2, 4))
    with pytest.raises(ConfigError, match=r"refs has shape \(4,\)"):
        project_to_cone(torch.ones(3), torch.ones(4))
    with pytest.raises(ConfigError, match=r"g has shape \(1, 3\); expected a 1-D"):
        project_to_cone(torch.ones(1, 3), torch.ones(1, 3))
    with pytest.raises(ConfigError, match="at most"):
        project_to_cone(torch.ones(3), torch.ones(MAX_REFS + 1, 3))
    with pytest.raises(ConfigError, match=r"margin=-1\.0"):
        project_to_cone(torch.ones(3), torch.ones(3), margin=-1.0)
    with pytest.raises(ConfigError, match="expected equal sizes"):
        conflicts(torch.ones(3), torch.ones(2))
