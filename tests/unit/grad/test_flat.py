from __future__ import annotations

import pytest
import torch
from torch import nn

from mmbalance.errors import ConfigError
from mmbalance.grad import cosine, flatten, gradients_of, unflatten, write_grads_

SHAPES = [(3, 4), (5,), (2, 1, 3), ()]


def test_unflatten_inverts_flatten(device: torch.device, gen: torch.Generator) -> None:
    tensors = [torch.randn(s, generator=gen).to(device) for s in SHAPES]
    vec = flatten(tensors)
    assert vec.shape == (sum(t.numel() for t in tensors),) and vec.device.type == device.type
    back = unflatten(vec, tensors)
    assert all(torch.equal(a, b) and a.shape == b.shape for a, b in zip(back, tensors, strict=True))
    assert torch.equal(flatten(back), vec)


def test_flatten_none_gives_zeros_like(device: torch.device) -> None:
    like = [torch.ones(2, 2, device=device), torch.ones(3, device=device)]
    vec = flatten([None, torch.full((3,), 2.0, device=device)], like=like)
    assert vec.tolist() == [0.0] * 4 + [2.0] * 3


def test_flatten_and_unflatten_reject_bad_input(device: torch.device) -> None:
    with pytest.raises(ConfigError, match="None"):
        flatten([None])
    with pytest.raises(ConfigError, match="1 entries; expected 2"):
        flatten([torch.ones(1)], like=[torch.ones(1), torch.ones(1)])
    with pytest.raises(ConfigError, match=r"expected a 1-D tensor of 5 elements"):
        unflatten(torch.ones(4, device=device), [torch.ones(5)])


def _model(device: torch.device) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).to(device)


def test_gradients_of_matches_backward(device: torch.device, gen: torch.Generator) -> None:
    model, x = _model(device), torch.randn(5, 4, generator=gen).to(device)
    params = list(model.parameters())
    grads = gradients_of(model(x).pow(2).sum(), params)
    assert all(p.grad is None for p in params)  # autograd.grad does not touch .grad
    model(x).pow(2).sum().backward()
    for g, p in zip(grads, params, strict=True):
        assert p.grad is not None and torch.allclose(g, p.grad, rtol=1e-6, atol=1e-7)


def test_gradients_of_unused_param_gives_zeros(device: torch.device) -> None:
    used = torch.tensor([1.0, 2.0], device=device, requires_grad=True)
    unused = torch.ones(2, 3, device=device, requires_grad=True)
    grads = gradients_of((3 * used).sum(), [used, unused])
    assert grads[0].tolist() == [3.0, 3.0]
    assert torch.equal(grads[1], torch.zeros(2, 3, device=device))


def test_gradients_of_retain_graph_allows_second_call(device: torch.device) -> None:
    w = torch.tensor([2.0], device=device, requires_grad=True)
    loss = (w**3).sum()
    first = gradients_of(loss, [w], retain_graph=True)
    assert torch.equal(first[0], gradients_of(loss, [w])[0])
    assert first[0].tolist() == [12.0]


def test_write_grads_sets_copies_and_accumulates(device: torch.device) -> None:
    p = torch.zeros(2, 2, device=device, requires_grad=True)
    g = torch.arange(4.0, device=device).view(2, 2)
    write_grads_([p], [g])
    assert p.grad is not None and torch.equal(p.grad, g) and p.grad.data_ptr() != g.data_ptr()
    buffer = p.grad
    write_grads_([p], [2 * g])
    assert p.grad is buffer and torch.equal(p.grad, 2 * g)  # copied into the existing tensor
    write_grads_([p], [g], accumulate=True)
    assert torch.equal(p.grad, 3 * g) and not p.grad.requires_grad


def test_write_grads_rejects_shape_mismatch(device: torch.device) -> None:
    p = torch.zeros(2, device=device, requires_grad=True)
    with pytest.raises(ConfigError, match=r"shape \(3,\); expected the parameter's \(2,\)"):
        write_grads_([p], [torch.zeros(3, device=device)])
    with pytest.raises(ConfigError, match="0 entries; expected 1"):
        write_grads_([p], [])


@pytest.mark.parametrize(("b", "expected"), [([2.0, 0.0], 1.0), ([0.0, 3.0], 0.0), ([-1.0, 0.0], -1.0)])
def test_cosine_known_values(device: torch.device, b: list[float], expected: float) -> None:
    out = cosine(torch.tensor([1.0, 0.0], device=device), torch.tensor(b, device=device))
    assert out.dim() == 0 and out.device.type == device.type
    assert abs(out.item() - expected) < 1e-6


def test_cosine_of_zero_vector_is_zero_not_nan(device: torch.device) -> None:
    out = cosine(torch.zeros(3, device=device), torch.ones(3, device=device))
    assert out.item() == 0.0
    with pytest.raises(ConfigError, match="3 elements and b has 2"):
        cosine(torch.zeros(3), torch.zeros(2))
