"""MaskedBatchNorm1d equals nn.BatchNorm1d applied to the real rows (outputs, gradients, every buffer)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmbalance.grad import frozen_bn_stats
from mmbalance.models.masked_norm import MaskedBatchNorm1d


def _rows(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The real rows of ``x`` ([N, C] or [N, C, L]) as an ``[n, C]`` matrix, what nn.BatchNorm1d sees."""
    return x[mask] if x.dim() == 2 else x.transpose(1, 2)[mask]


def _pair(momentum: float | None, affine: bool = True) -> tuple[MaskedBatchNorm1d, nn.BatchNorm1d]:
    torch.manual_seed(0)
    ref = nn.BatchNorm1d(5, momentum=momentum, affine=affine, dtype=torch.float64)
    if affine:
        with torch.no_grad():
            ref.weight.uniform_(0.5, 2.0)
            ref.bias.uniform_(-1.0, 1.0)
    masked = MaskedBatchNorm1d(5, momentum=momentum, affine=affine, dtype=torch.float64)
    masked.load_state_dict(ref.state_dict())
    return masked, ref


def _case(step: int, three_d: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Shifted, scaled random data; masked entries hold garbage (inf on odd steps)."""
    g = torch.Generator().manual_seed(step)
    shape = (4, 5, 7) if three_d else (9, 5)
    x = torch.randn(*shape, generator=g, dtype=torch.float64) * (1 + step) + step
    mask = torch.rand(shape[0], *shape[2:], generator=g) < 0.6
    mask.view(-1)[:2] = True  # at least two real rows
    garbage = float("inf") if step % 2 else 1e6
    x = x.where(mask.unsqueeze(1), garbage)
    return x, mask


@pytest.mark.parametrize("three_d", [True, False])
@pytest.mark.parametrize("momentum", [0.1, 0.7, None])
@pytest.mark.parametrize("affine", [True, False])
def test_equals_batchnorm_on_the_real_rows(three_d: bool, momentum: float | None, affine: bool) -> None:
    masked, ref = _pair(momentum, affine)
    for step in range(6):
        train = step < 4
        masked.train(train), ref.train(train)
        x, mask = _case(step, three_d)
        x_m, x_r = x.clone().requires_grad_(True), _rows(x, mask).requires_grad_(True)
        out, want = masked(x_m, mask), ref(x_r)
        torch.testing.assert_close(_rows(out, mask), want, atol=1e-12, rtol=1e-10)
        assert torch.all(out.where(~mask.unsqueeze(1), 0) == 0)  # padded rows are exactly 0
        weights = torch.randn(want.shape, generator=torch.Generator().manual_seed(10 + step), dtype=x.dtype)
        (_rows(out, mask) * weights).sum().backward()
        (want * weights).sum().backward()
        assert x_m.grad is not None and x_r.grad is not None
        torch.testing.assert_close(_rows(x_m.grad, mask), x_r.grad, atol=1e-12, rtol=1e-10)
        assert torch.all(x_m.grad.where(~mask.unsqueeze(1), 0) == 0)
        for (name, got), (_, expected) in zip(
            list(masked.named_parameters()) + list(masked.named_buffers()),
            list(ref.named_parameters()) + list(ref.named_buffers()),
            strict=True,
        ):
            torch.testing.assert_close(got, expected, atol=1e-12, rtol=1e-10, msg=name)
            if isinstance(got, nn.Parameter):
                torch.testing.assert_close(got.grad, expected.grad, atol=1e-12, rtol=1e-10, msg=name)
                got.grad, expected.grad = None, None
    assert int(masked.num_batches_tracked) == 4


def test_without_running_stats_uses_the_batch_in_eval_too() -> None:
    masked = MaskedBatchNorm1d(5, track_running_stats=False, dtype=torch.float64).eval()
    ref = nn.BatchNorm1d(5, track_running_stats=False, dtype=torch.float64).eval()
    x, mask = _case(0, three_d=True)
    torch.testing.assert_close(_rows(masked(x, mask), mask), ref(_rows(x, mask)), atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_fewer_than_two_real_rows_leave_the_running_statistics(momentum: float | None) -> None:
    masked, _ = _pair(momentum)
    masked.train()(*_case(0, three_d=False))  # non-trivial statistics and counter
    before = {k: v.clone() for k, v in masked.state_dict().items()}
    x = torch.randn(3, 5, dtype=torch.float64)
    for mask in (torch.tensor([False, True, False]), torch.zeros(3, dtype=torch.bool)):
        out = masked(x, mask)
        assert torch.isfinite(out).all()
        expected = torch.where(mask[:, None], masked.bias.detach(), 0.0)  # a lone row normalises to 0
        torch.testing.assert_close(out, expected.expand_as(out), atol=1e-6, rtol=0)
    assert all(torch.equal(v, before[k]) for k, v in masked.state_dict().items())


def test_is_a_batchnorm_with_its_checkpoint_layout() -> None:
    masked, ref = _pair(0.1)
    assert isinstance(masked, _BatchNorm)
    assert list(masked.state_dict()) == list(ref.state_dict())
    x, mask = _case(1, three_d=True)
    with frozen_bn_stats(masked):  # the SAM helper finds its buffers
        masked(x, mask)
    assert int(masked.num_batches_tracked) == 0 and torch.all(masked.running_mean == 0)


def test_float_mask_and_bad_mask_shape() -> None:
    masked, _ = _pair(0.1)
    x, mask = _case(0, three_d=True)
    torch.testing.assert_close(masked.eval()(x, mask.double()), masked(x, mask))
    with pytest.raises(ValueError, match=r"mask shape \(4, 6\) for input \(4, 5, 7\)"):
        masked(x, mask[:, :6])
