"""Pareto integration: the closed form is the segment's minimum, the combination never conflicts."""

from __future__ import annotations

import pytest
import torch

from mmbalance.errors import ConfigError
from mmbalance.grad import min_norm_weights, pareto_combine, pareto_weights, rescale_to_sum


def conflicting_pair(
    gen: torch.Generator, device: torch.device, d: int = 7
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two random vectors with a negative inner product (the second is reflected when needed)."""
    g1 = torch.randn(d, generator=gen, dtype=torch.float64)
    g2 = torch.randn(d, generator=gen, dtype=torch.float64) * 3
    if torch.dot(g1, g2) > 0:
        g2 = g2 - 2 * torch.dot(g1, g2) / torch.dot(g1, g1) * g1
    return g1.to(device), g2.to(device)


def test_min_norm_weights_minimise_the_norm_on_the_segment(
    gen: torch.Generator, device: torch.device
) -> None:
    grid = torch.linspace(0, 1, 20001, dtype=torch.float64, device=device)
    for _ in range(20):
        g1, g2 = (
            conflicting_pair(gen, device)
            if torch.rand(1, generator=gen) < 0.5
            else (
                torch.randn(5, generator=gen, dtype=torch.float64).to(device),
                torch.randn(5, generator=gen, dtype=torch.float64).to(device),
            )
        )
        w = min_norm_weights(g1, g2)
        assert float(w.sum()) == pytest.approx(1.0) and 0.0 <= float(w[0]) <= 1.0
        brute = (grid[:, None] * g1 + (1 - grid[:, None]) * g2).norm(dim=1).min()
        assert float((w[0] * g1 + w[1] * g2).norm()) == pytest.approx(float(brute), abs=1e-6)


def test_min_norm_point_never_conflicts(gen: torch.Generator, device: torch.device) -> None:
    for _ in range(50):
        g1, g2 = conflicting_pair(gen, device)
        w = min_norm_weights(g1, g2)
        point = w[0] * g1 + w[1] * g2
        sq = torch.dot(point, point)
        assert (
            float(torch.dot(point, g1)) >= float(sq) - 1e-9
            and float(torch.dot(point, g2)) >= float(sq) - 1e-9
        )


def test_equal_vectors_and_boundary_cases() -> None:
    g = torch.tensor([1.0, -2.0])
    assert min_norm_weights(g, g).tolist() == [0.5, 0.5]
    assert min_norm_weights(torch.zeros(2), g).tolist() == [1.0, 0.0]  # the zero end is the minimum
    assert pareto_weights(g, 2 * g).tolist() == [0.5, 0.5]  # agreeing gradients: equal weights


def test_combination_has_non_negative_inner_products_and_enough_norm(
    gen: torch.Generator, device: torch.device
) -> None:
    for _ in range(50):
        g1, g2 = conflicting_pair(gen, device)
        for gamma in (1.0, 1.5):
            g = pareto_combine(g1, g2, gamma)
            assert float(torch.dot(g, g1)) >= -1e-9 and float(torch.dot(g, g2)) >= -1e-9
            assert float(g.norm()) >= gamma * float((g1 + g2).norm()) - 1e-9
            direction = pareto_weights(g1, g2)
            expected = direction[0] * g1 + direction[1] * g2  # same direction as the min-norm point
            assert float(torch.dot(g, expected) / (g.norm() * expected.norm())) == pytest.approx(1.0)


def test_without_conflict_the_combination_is_the_scaled_sum(
    gen: torch.Generator, device: torch.device
) -> None:
    g1 = torch.randn(6, generator=gen).to(device)
    g2 = g1 + 0.1 * torch.randn(6, generator=gen).to(device)
    assert torch.equal(pareto_combine(g1, g2, 1.0), g1 + g2)
    torch.testing.assert_close(pareto_combine(g1, g2, 1.5), 1.5 * (g1 + g2))


def test_zero_direction_stays_zero_and_shapes_are_checked() -> None:
    zero, g = torch.zeros(3), torch.tensor([1.0, 2.0, 3.0])
    assert torch.equal(rescale_to_sum(zero, g, g), zero)
    assert torch.equal(pareto_combine(g, -g), zero)  # opposite gradients: the min-norm point is 0
    with pytest.raises(ConfigError, match="expected equal shapes"):
        min_norm_weights(torch.zeros(2), torch.zeros(3))
    with pytest.raises(ConfigError, match=r"gamma=-1\.0"):
        rescale_to_sum(g, g, g, gamma=-1.0)
