from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mmbalance.errors import ConfigError
from mmbalance.grad import InputCovariance, OrthogonalProjector, flat_projector, owm_update, project_right_

F64 = torch.float64


def _psd(n: int, rank: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    a = torch.randn(n, rank, generator=gen, dtype=F64)
    return (a @ a.T).to(device)


def test_projector_starts_at_identity(device: torch.device) -> None:
    proj = OrthogonalProjector(5, device=device)
    assert torch.equal(proj.P_, torch.eye(5, device=device))
    grad = torch.randn(3, 5, device=device)
    assert torch.equal(proj.project(grad), grad)


@pytest.mark.parametrize("normalize", [True, False])
def test_projector_stays_symmetric(device: torch.device, gen: torch.Generator, normalize: bool) -> None:
    proj = OrthogonalProjector(6, normalize=normalize, device=device, dtype=F64)
    for _ in range(10):
        proj.update_(torch.randn(1, 6, generator=gen, dtype=F64).to(device), alpha=0.1)
        assert torch.allclose(proj.P_, proj.P_.T, atol=1e-14)
    if normalize:
        assert math.isclose(torch.linalg.matrix_norm(proj.P_).item(), 1.0, rel_tol=1e-12)


def test_projector_removes_updated_direction(device: torch.device, gen: torch.Generator) -> None:
    x = torch.randn(8, generator=gen, dtype=F64).to(device)
    proj = OrthogonalProjector(8, normalize=False, device=device, dtype=F64)
    proj.update_(x, alpha=1e-6)
    # P x = x α / (α + ‖x‖²): the residual vanishes with α.
    assert (torch.linalg.vector_norm(proj.P_ @ x) / torch.linalg.vector_norm(x)).item() < 1e-6
    y = torch.randn(8, generator=gen, dtype=F64).to(device)
    y = y - y.dot(x) / x.dot(x) * x  # orthogonal to x: untouched
    assert torch.allclose(proj.P_ @ y, y, atol=1e-12)
    normed = OrthogonalProjector(8, device=device, dtype=F64)
    normed.update_(x, alpha=1e-6)
    ratio = [(torch.linalg.vector_norm(normed.P_ @ v) / torch.linalg.vector_norm(v)).item() for v in (x, y)]
    assert ratio[0] < 1e-6 * ratio[1]


def test_owm_update_hand_computation(device: torch.device) -> None:
    # P = I, r = (1, 1), α = 1: k = (1, 1), r·k = 2, P' = I - [[1, 1], [1, 1]] / 3 = [[2, -1], [-1, 2]] / 3.
    # ‖P'‖_F = √10 / 3, so the normalised P' is [[2, -1], [-1, 2]] / √10.
    eye, r = torch.eye(2, dtype=F64, device=device), torch.tensor([1.0, 1.0], dtype=F64, device=device)
    raw = torch.tensor([[2.0, -1.0], [-1.0, 2.0]], dtype=F64, device=device)
    assert torch.allclose(owm_update(eye, r, 1.0, normalize=False), raw / 3, atol=1e-15)
    assert torch.allclose(owm_update(eye, r, 1.0, normalize=True), raw / math.sqrt(10), atol=1e-15)
    assert torch.equal(eye, torch.eye(2, dtype=F64, device=device))  # pure: input unchanged


def test_projector_project_state_dict_and_errors(device: torch.device, gen: torch.Generator) -> None:
    proj = OrthogonalProjector(4, device=device)
    proj.update_(torch.randn(4, generator=gen).to(device), alpha=0.5)
    grad = torch.randn(3, 4, generator=gen).to(device)
    assert torch.allclose(proj.project(grad), grad @ proj.P_.T)
    other = OrthogonalProjector(4).to(device)
    other.load_state_dict(proj.state_dict())
    assert torch.equal(other.P_, proj.P_) and other.P_.device == proj.P_.device
    with pytest.raises(ConfigError, match=r"expected \[out, 4\]"):
        proj.project(torch.ones(3, 5, device=device))
    with pytest.raises(ConfigError, match=r"expected \[4, 4\]"):
        other.load_state_dict({"P": torch.eye(3)})
    with pytest.raises(ConfigError, match=r"r has shape \(3,\)"):
        owm_update(torch.eye(4), torch.ones(3), 1.0)


@pytest.mark.parametrize("tau", [0.5, 2.0, 6.0])
def test_flat_projector_spectrum(device: torch.device, gen: torch.Generator, tau: float) -> None:
    cov = _psd(6, 4, gen, device)  # rank 4: a 2-D null space
    P = flat_projector(cov, tau)
    assert torch.allclose(P, P.T, atol=1e-12)
    eig = torch.linalg.eigvalsh(P)
    assert eig.min().item() >= math.exp(-tau) - 1e-9 and eig.max().item() <= 1 + 1e-9
    _, vecs = torch.linalg.eigh(cov)
    top, null = vecs[:, -1], vecs[:, 0]
    assert torch.allclose(P @ top, math.exp(-tau) * top, atol=1e-9)
    assert torch.allclose(P @ null, null, atol=1e-9)
    assert torch.allclose(P @ cov, cov @ P, atol=1e-9)  # commuting symmetric matrices share eigenvectors
    for c in (1e-3, 50.0):
        assert torch.allclose(flat_projector(c * cov, tau), P, atol=1e-9)


def test_flat_projector_identity_cases(device: torch.device, gen: torch.Generator) -> None:
    eye = torch.eye(5, dtype=F64, device=device)
    assert torch.allclose(flat_projector(_psd(5, 5, gen, device), 0.0), eye, atol=1e-12)
    for cov in (eye, 3 * eye, torch.zeros_like(eye)):
        out = flat_projector(cov, 4.0)
        assert torch.equal(out, eye) and not out.isnan().any()


def test_flat_projector_symmetrises_and_keeps_dtype(device: torch.device, gen: torch.Generator) -> None:
    cov = _psd(4, 4, gen, device)
    skew = torch.randn(4, 4, generator=gen, dtype=F64).to(device)
    assert torch.allclose(flat_projector(cov + skew - skew.T, 1.0), flat_projector(cov, 1.0), atol=1e-12)
    out = flat_projector(cov.float(), 1.0)
    assert out.dtype == torch.float32 and out.device == cov.device
    with pytest.raises(ConfigError, match=r"temperature=-1\.0"):
        flat_projector(cov, -1.0)
    with pytest.raises(ConfigError, match=r"cov has shape \(2, 3\)"):
        flat_projector(torch.ones(2, 3), 1.0)


def test_project_right(device: torch.device, gen: torch.Generator) -> None:
    grad = torch.randn(3, 4, generator=gen).to(device)
    before = grad.clone()
    project_right_(grad, torch.eye(4, device=device))
    assert torch.equal(grad, before)
    P = torch.randn(4, 4, generator=gen).to(device)
    project_right_(grad, P)
    assert torch.allclose(grad, before @ P)
    with pytest.raises(ConfigError, match=r"grad has shape \(3, 4\); expected \[out, 5\]"):
        project_right_(grad, torch.eye(5, device=device))


BATCHES = [[[1.0, 0.0, 2.0], [3.0, 2.0, 0.0]], [[0.0, -1.0, 1.0]], [[2.0, 2.0, 2.0], [0.0, 0.0, 0.0]]]


@pytest.mark.parametrize("mode", ["batch_mean", "second_moment"])
def test_input_covariance_hand_computation(device: torch.device, mode: str) -> None:
    lin = nn.Linear(3, 2).to(device)
    with InputCovariance([lin], mode=mode) as stats:
        for rows in BATCHES:
            lin(torch.tensor(rows, device=device, requires_grad=True))
    got = stats.covariances[lin]
    # batch means: (2, 1, 1), (0, -1, 1), (1, 1, 1); summed outer products:
    expected_mean = [[5.0, 3.0, 3.0], [3.0, 3.0, 1.0], [3.0, 1.0, 3.0]]
    # all 5 rows: Σ a aᵀ = [[14, 10, 6], [10, 9, 3], [6, 3, 9]], divided by N = 5
    expected_moment = [[14 / 5, 2.0, 6 / 5], [2.0, 9 / 5, 3 / 5], [6 / 5, 3 / 5, 9 / 5]]
    expected = torch.tensor(expected_mean if mode == "batch_mean" else expected_moment, device=device)
    assert torch.allclose(got, expected, atol=1e-6)
    assert got.device == lin.weight.device and not got.requires_grad
    assert len(lin._forward_hooks) == 0


def test_input_covariance_flattens_leading_dims_and_unseen_modules(device: torch.device) -> None:
    seen, unseen = nn.Linear(2, 1).to(device), nn.Linear(2, 1).to(device)
    x = torch.tensor([[[1.0, 1.0], [3.0, 1.0]]], device=device)  # [1, 2, 2]: mean (2, 1)
    with InputCovariance([seen, unseen, seen]) as stats:
        seen(x)
    assert stats.covariances[seen].tolist() == [[4.0, 2.0], [2.0, 1.0]]
    assert torch.equal(stats.covariances[unseen], torch.zeros(2, 2, device=device))


def test_input_covariance_removes_hooks_on_exception(device: torch.device) -> None:
    lin = nn.Linear(2, 2).to(device)
    with pytest.raises(RuntimeError, match="boom"), InputCovariance([lin]):
        assert len(lin._forward_hooks) == 1
        raise RuntimeError("boom")
    assert len(lin._forward_hooks) == 0


def test_input_covariance_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="modules\\[0\\] is a ReLU"):
        InputCovariance([nn.ReLU()])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="mode='centred'"):
        InputCovariance([nn.Linear(2, 2)], mode="centred")
