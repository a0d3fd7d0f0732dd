"""BatchNorm over the real rows of a padded batch, by masked sums (no host sync, no data-dependent shapes)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` whose statistics come from the rows where ``mask`` is true, and nowhere else.

    ``forward(x, mask)`` takes ``x`` of shape ``[N, C]`` or ``[N, C, L]`` and ``mask`` of the same shape
    without the channel dimension (bool, or 0/1). On the real rows the output, the gradients and every
    buffer update equal those of ``nn.BatchNorm1d`` applied to the real rows alone: in training, the
    batch mean and biased variance normalise, ``running_var`` moves towards the unbiased variance with
    ``momentum`` (``momentum=None``: the cumulative average over ``num_batches_tracked``); in eval, the
    running statistics normalise. Masked rows of the output are exactly 0 and never influence anything,
    even when they hold inf or NaN.

    Counts stay tensors: no ``.item()``, boolean indexing or shape that depends on the data, so a
    forward never waits for the device. Where ``nn.BatchNorm1d`` raises (fewer than two real rows in
    training), this module normalises with the batch's own statistics (a lone row gives ``bias``) and
    leaves the running statistics and ``num_batches_tracked`` unchanged. Parameter and buffer names are
    those of ``nn.BatchNorm1d``, so its checkpoints load and ``_BatchNorm`` checks find this module.

    >>> bn = MaskedBatchNorm1d(2)
    >>> x = torch.tensor([[1.0, 2.0], [3.0, 6.0], [1e9, -1e9]])
    >>> [[round(v, 3) for v in row] for row in bn(x, torch.tensor([True, True, False])).tolist()]
    [[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]]
    >>> [round(v, 3) for v in bn.running_var.tolist()]  # 0.9 * 1 + 0.1 * unbiased variance (2, 8)
    [1.1, 1.7]
    """

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:  # type: ignore[override]
        self._check_input_dim(x)
        keep = (mask if mask.dtype == torch.bool else mask != 0).unsqueeze(1)  # [N, 1, *]
        if keep.shape[0] != x.shape[0] or keep.shape[2:] != x.shape[2:]:
            raise ValueError(
                f"mask shape {tuple(mask.shape)} for input {tuple(x.shape)}; expected [N, *] for [N, C, *]"
            )
        dims = [0, *range(2, x.dim())]
        x = x.where(keep, 0)  # masked rows hold 0 from here on: inf or NaN there cannot leak into a gradient
        if self.training or self.running_mean is None or self.running_var is None:
            count = keep.sum(dims).to(x.dtype)  # [1], a tensor
            mean = x.sum(dims) / count.clamp_min(1)
            var = (x - _expand(mean, x)).where(keep, 0).square().sum(dims) / count.clamp_min(1)
            if self.training and self.track_running_stats and self.running_mean is not None:
                self._update_running_stats(mean.detach(), var.detach(), count)
        else:
            mean, var = self.running_mean, self.running_var
        y = (x - _expand(mean, x)) * _expand(torch.rsqrt(var + self.eps), x)
        if self.affine:
            y = y * _expand(self.weight, x) + _expand(self.bias, x)
        return y.where(keep, 0)

    @torch.no_grad()
    def _update_running_stats(self, mean: Tensor, var: Tensor, count: Tensor) -> None:
        """``running <- (1-f)·running + f·batch`` with ``f = momentum`` or ``1/num_batches_tracked``;
        skipped (without a branch on the host) when the batch has fewer than two real rows."""
        assert self.running_mean is not None and self.running_var is not None
        assert self.num_batches_tracked is not None
        counted = count > 1
        self.num_batches_tracked.add_(counted.to(self.num_batches_tracked.dtype).reshape(()))
        factor: Tensor | float
        if self.momentum is None:  # cumulative average; nn.BatchNorm1d reads the counter on the host here
            factor = 1.0 / self.num_batches_tracked.clamp_min(1).to(self.running_mean.dtype)
        else:
            factor = self.momentum
        unbiased = var * count / (count - 1).clamp_min(1)
        for buf, batch in ((self.running_mean, mean), (self.running_var, unbiased)):
            new = factor * batch.to(buf.dtype) + (1 - factor) * buf
            buf.copy_(torch.where(counted, new, buf))


def _expand(stat: Tensor, x: Tensor) -> Tensor:
    """A per-channel ``[C]`` tensor shaped to broadcast against ``x`` of shape ``[N, C, *]``."""
    return stat.reshape(1, -1, *([1] * (x.dim() - 2)))
