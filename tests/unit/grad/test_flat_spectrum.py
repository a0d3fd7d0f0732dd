"""``flat_spectrum``: the eigen-data behind ``flat_projector``, consistent with it bit for bit."""

from __future__ import annotations

import math

import pytest
import torch

from mmbalance.grad import flat_projector, flat_spectrum

F64 = torch.float64


@pytest.mark.parametrize(("rank", "tau"), [(3, 0.4), (6, 2.0), (6, 0.0)])
def test_spectrum_rebuilds_the_projector(
    device: torch.device, gen: torch.Generator, rank: int, tau: float
) -> None:
    a = torch.randn(6, rank, generator=gen, dtype=F64)
    cov = (a @ a.T).to(device)
    spec = flat_spectrum(cov, tau)
    for dtype in (F64, torch.float32):
        assert torch.equal(spec.projector(dtype), flat_projector(cov, tau).to(dtype))
    torch.testing.assert_close(spec.eigenvalues, torch.linalg.eigvalsh(cov))
    lam = spec.eigenvalues
    want = torch.exp(-tau * (lam - lam[0]) / (lam[-1] - lam[0]))
    torch.testing.assert_close(spec.shrink, want)
    assert spec.shrink[-1].item() == pytest.approx(math.exp(-tau)) and spec.shrink[0].item() == pytest.approx(
        1.0
    )
    # P scales each eigenvector of the statistic by its shrink factor
    P = spec.projector(F64)
    torch.testing.assert_close(P @ spec.vectors, spec.vectors * spec.shrink, atol=1e-12, rtol=0)
    assert not bool(spec.flat)


def test_a_flat_spectrum_shrinks_nothing(device: torch.device) -> None:
    for cov in (3 * torch.eye(4, dtype=F64, device=device), torch.zeros(4, 4, dtype=F64, device=device)):
        spec = flat_spectrum(cov, 5.0)
        assert bool(spec.flat) and torch.equal(spec.shrink, torch.ones_like(spec.shrink))
        assert torch.equal(spec.projector(F64), torch.eye(4, dtype=F64, device=device))
