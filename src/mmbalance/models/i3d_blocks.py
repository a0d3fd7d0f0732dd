"""Inception-3D building blocks with the module names of the common PyTorch I3D port (``conv3d``, ``bn``;
an Inception module's branches ``b0``, ``b1a``/``b1b``, ``b2a``/``b2b``, ``b3a``/``b3b``), so its
published state dicts load by name.

Convolutions and max pools use TensorFlow's "SAME" padding, computed from the input size at run time:
the output has ``ceil(size / stride)`` positions along each axis whatever the size, as in the original
I3D, and the padding is split with the extra cell at the end.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Triple = tuple[int, int, int]


def same_padding(size: Sequence[int], kernel: Triple, stride: Triple) -> list[int]:
    """``F.pad`` amounts (last axis first) that make a ``kernel``/``stride`` window give
    ``ceil(size / stride)`` outputs per axis.

    >>> same_padding((8, 7, 7), (3, 3, 3), (2, 2, 2))
    [1, 1, 1, 1, 0, 1]
    """
    pads: list[int] = []
    for n, k, s in zip(reversed(tuple(size)), reversed(kernel), reversed(stride), strict=True):
        total = max(k - s, 0) if n % s == 0 else max(k - n % s, 0)
        pads += [total // 2, total - total // 2]
    return pads


class Unit3D(nn.Module):
    """A 3-D convolution (no bias unless ``bias``) with SAME padding, BatchNorm (eps 1e-3, momentum 0.01,
    as the port) unless ``norm=False``, then ReLU unless ``relu=False``."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: Triple = (1, 1, 1),
        stride: Triple = (1, 1, 1),
        norm: bool = True,
        relu: bool = True,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.relu = kernel, stride, relu
        self.conv3d = nn.Conv3d(in_ch, out_ch, kernel, stride=stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(out_ch, eps=0.001, momentum=0.01) if norm else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv3d(F.pad(x, same_padding(x.shape[2:], self.kernel, self.stride)))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class MaxPool3dSame(nn.MaxPool3d):
    """Max pooling with SAME (zero) padding, as the port's ``MaxPool3dSamePadding``."""

    def __init__(self, kernel: Triple, stride: Triple) -> None:
        super().__init__(kernel, stride=stride, padding=0)
        self.window, self.step = kernel, stride

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(F.pad(x, same_padding(x.shape[2:], self.window, self.step)))


class InceptionModule(nn.Module):
    """Four branches concatenated on channels: 1x1x1; 1x1x1 then 3x3x3; 1x1x1 then 3x3x3; 3x3x3 max pool
    then 1x1x1. ``widths`` = (b0, b1a, b1b, b2a, b2b, b3b) output channels; ``out_ch`` is their
    concatenation's width, ``b0 + b1b + b2b + b3b``."""

    def __init__(self, in_ch: int, widths: Sequence[int]) -> None:
        super().__init__()
        w = list(widths)
        self.b0 = Unit3D(in_ch, w[0])
        self.b1a = Unit3D(in_ch, w[1])
        self.b1b = Unit3D(w[1], w[2], (3, 3, 3))
        self.b2a = Unit3D(in_ch, w[3])
        self.b2b = Unit3D(w[3], w[4], (3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_ch, w[5])
        self.out_ch = w[0] + w[2] + w[4] + w[5]

    def forward(self, x: Tensor) -> Tensor:
        parts = [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))]
        return torch.cat(parts, dim=1)
