"""``scale_grad`` (identity forward, scaled backward) and ``clip_if_any_exceeds_``."""

from __future__ import annotations

import torch
from torch import nn

from mmbalance.grad import clip_if_any_exceeds_, scale_grad


def test_scale_grad_keeps_value_and_scales_gradient(device: torch.device, gen: torch.Generator) -> None:
    x = torch.randn(4, 3, generator=gen).to(device).requires_grad_()
    up = torch.randn(4, 3, generator=gen).to(device)
    k = torch.rand(4, 1, generator=gen).to(device).requires_grad_()  # per-row factors; k gets no gradient
    y = scale_grad(x, k)
    assert torch.equal(y, x)
    (gx,) = torch.autograd.grad((y * up).sum(), x)
    torch.testing.assert_close(gx, k.detach() * up)
    (one,) = torch.autograd.grad((scale_grad(x, 1.0) * up).sum(), x)
    assert torch.equal(one, up)  # k = 1 changes nothing, bit for bit
    (zero,) = torch.autograd.grad((scale_grad(x, 0.0) * up).sum(), x)
    assert torch.equal(zero, torch.zeros_like(up))


def test_scale_grad_inside_a_sum_weights_each_path() -> None:
    x = torch.tensor(2.0, requires_grad=True)
    a, b = x * 3, x * 5  # d/dx of a + b = 8; scaled paths: 0.5·3 + 2·5 = 11.5
    (g,) = torch.autograd.grad(scale_grad(a, 0.5) + scale_grad(b, 2.0), x)
    assert g.item() == 11.5


def test_clip_acts_only_when_a_watched_element_exceeds(device: torch.device, gen: torch.Generator) -> None:
    small = [torch.rand(3, 2, generator=gen).to(device) * 0.9, torch.randn(5, generator=gen).to(device) * 4]
    before = [g.clone() for g in small]
    factor = clip_if_any_exceeds_(small, small[:1])  # the watched tensor stays inside [-1, 1]
    assert factor.item() == 1.0 and all(torch.equal(a, b) for a, b in zip(small, before, strict=True))


def test_clip_matches_clip_grad_norm(device: torch.device, gen: torch.Generator) -> None:
    layers = [nn.Linear(3, 4).to(device), nn.Linear(4, 2).to(device)]
    params = [p for layer in layers for p in layer.parameters()]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen).to(device) * 3
    grads = [p.grad.clone() for p in params]
    factor = clip_if_any_exceeds_(grads, [layers[1].weight.grad])
    torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)
    for got, want in zip(grads, [p.grad for p in params], strict=True):
        torch.testing.assert_close(got, want)
    assert 0.0 < factor.item() < 1.0
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    torch.testing.assert_close(total, torch.tensor(1.0, device=device), atol=1e-5, rtol=0)
