"""An encoder for padded frame sequences whose last channel is a validity mask (e.g. ``avdigits`` audio)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mmbalance.errors import ConfigError
from mmbalance.models.masked_norm import MaskedBatchNorm1d
from mmbalance.models.registry import ENCODERS


@ENCODERS.register("sequence")
class SequenceEncoder(nn.Module):
    """1-D convolutions over time, then masked mean + max pooling over the valid frames.

    Input ``[B, T, F + 1]``: ``F`` features per frame and a last channel that is 1 for real frames and 0
    for padding; the class attribute ``mask_channel = True`` declares this layout to code that transforms
    inputs (mixup, say, must keep that channel 0/1). Per width in ``channels``: ``Conv1d(kernel_size,
    'same' padding) -> MaskedBatchNorm1d -> ReLU``, with the padded frames zeroed again after each layer
    (a convolution leaks across time) and before the first. The norm's statistics come from real frames
    only, by masked sums, so appending padding changes nothing, in training or eval mode, and a forward
    never synchronises with the device (no boolean indexing, no ``.item()``). The mean and max over real
    frames (a clip with no real frame gives zeros) are concatenated and mapped by ``Linear(out_dim)`` and
    ReLU.

    >>> enc = SequenceEncoder(input_shape=(10, 4), out_dim=6, channels=(8,)).eval()
    >>> x = torch.randn(2, 10, 4)
    >>> x[..., -1] = (torch.arange(10) < torch.tensor([[3], [10]])).float()
    >>> enc(x).shape
    torch.Size([2, 6])
    """

    mask_channel = True

    def __init__(
        self,
        input_shape: Sequence[int],
        out_dim: int = 128,
        channels: Sequence[int] = (64, 64),
        kernel_size: int = 5,
    ) -> None:
        super().__init__()
        if len(input_shape) != 2 or int(input_shape[1]) < 2:
            raise ConfigError(
                f"sequence input_shape={tuple(input_shape)}; expected (time, features + 1 mask channel)"
            )
        if kernel_size < 1 or kernel_size % 2 == 0 or not channels:
            raise ConfigError(
                f"sequence kernel_size={kernel_size}, channels={list(channels)}: expected an odd kernel "
                "size and at least one channel width"
            )
        self.out_dim = out_dim
        c_in = int(input_shape[1]) - 1
        self.convs, self.norms = nn.ModuleList(), nn.ModuleList()
        for c in channels:
            self.convs.append(nn.Conv1d(c_in, c, kernel_size, padding=kernel_size // 2, bias=False))
            self.norms.append(MaskedBatchNorm1d(c))
            c_in = c
        self.proj = nn.Sequential(nn.Linear(2 * c_in, out_dim), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        valid = x[..., -1] > 0.5  # [B, T]
        keep = valid.unsqueeze(1).to(x.dtype)  # [B, 1, T]
        h = x[..., :-1].transpose(1, 2) * keep  # [B, F, T]
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = torch.relu(norm(conv(h), valid))  # [B, C, T]; padded frames are exactly 0 again
        count = keep.sum(-1).clamp_min(1.0)  # [B, 1]
        mean = h.sum(-1) / count
        peak = h.amax(-1)  # ReLU features are >= 0 and padding is 0, so padding never raises the max
        return self.proj(torch.cat([mean, peak], dim=1))
