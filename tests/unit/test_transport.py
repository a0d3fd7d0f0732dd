"""Exact optimal transport: a valid plan that attains the brute-force optimum."""

from __future__ import annotations

import itertools

import pytest
import torch

from mmbalance.errors import ConfigError
from mmbalance.transport import transport_plan


def test_the_plan_is_a_valid_transport_plan() -> None:
    g = torch.Generator().manual_seed(0)
    cost = torch.rand(6, 4, generator=g, dtype=torch.float64)
    a = torch.tensor([0.1, 0.2, 0.1, 0.3, 0.2, 0.1], dtype=torch.float64)
    b = torch.tensor([0.4, 0.1, 0.25, 0.25], dtype=torch.float64)
    plan = transport_plan(cost, a, b)
    assert plan.shape == (6, 4) and bool((plan >= 0).all())
    torch.testing.assert_close(plan.sum(1), a)
    torch.testing.assert_close(plan.sum(0), b)
    assert int((plan > 1e-12).sum()) <= 6 + 4 - 1  # a vertex of the transport polytope, as ot.emd's
    uniform = transport_plan(cost)
    torch.testing.assert_close(uniform.sum(1), torch.full((6,), 1 / 6, dtype=torch.float64))
    torch.testing.assert_close(uniform.sum(0), torch.full((4,), 1 / 4, dtype=torch.float64))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_plan_attains_the_brute_force_optimum(seed: int) -> None:
    """With uniform square marginals the optimal plans include a permutation matrix / n (Birkhoff), so the
    optimum is the cheapest assignment over all n! permutations."""
    n = 5
    cost = torch.rand(n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    best = min(sum(float(cost[i, p[i]]) for i in range(n)) / n for p in itertools.permutations(range(n)))
    plan = transport_plan(cost)
    assert float((plan * cost).sum()) == pytest.approx(best, abs=1e-9)


def test_a_non_square_problem_matches_the_enumerated_optimum() -> None:
    """2 rows of mass 1/2 onto 3 columns of mass 1/3: with row 0's masses (x, y, 1/2 − x − y) the cost is
    linear, so the optimum is at a vertex of the feasible (x, y) polygon; a fine grid finds it."""
    cost = torch.tensor([[0.3, 0.9, 0.1], [0.5, 0.2, 0.8]], dtype=torch.float64)
    grid = [i / 600 for i in range(201)]  # masses in [0, 1/3] in steps of 1/600
    best = min(
        float(cost[0, 0] * x + cost[0, 1] * y + cost[0, 2] * (0.5 - x - y))
        + float(cost[1, 0] * (1 / 3 - x) + cost[1, 1] * (1 / 3 - y) + cost[1, 2] * (1 / 3 - (0.5 - x - y)))
        for x, y in itertools.product(grid, grid)
        if -1e-12 <= 0.5 - x - y <= 1 / 3 + 1e-12
    )
    assert float((transport_plan(cost) * cost).sum()) == pytest.approx(best, abs=1e-9)


def test_errors_are_one_line() -> None:
    with pytest.raises(ConfigError, match="marginals sum to 1 and 2"):
        transport_plan(torch.zeros(2, 2), torch.tensor([0.5, 0.5]), torch.tensor([1.0, 1.0]))
    with pytest.raises(ConfigError, match=r"shape \(3,\); expected a finite"):
        transport_plan(torch.zeros(3))
    with pytest.raises(ConfigError, match="marginal a"):
        transport_plan(torch.zeros(2, 2), torch.tensor([-0.5, 1.5]))
