"""Encoders: ``nn.Module`` objects that map one modality's batch to ``[B, out_dim]`` features.

Every encoder is built as ``build(input_shape=..., out_dim=..., **options)`` and declares ``out_dim``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mmbalance.errors import ConfigError
from mmbalance.models.daft import conditioning
from mmbalance.models.registry import ENCODERS


@ENCODERS.register("mlp")
class MLP(nn.Module):
    """Flatten, then ``Linear -> BatchNorm -> ReLU -> Dropout`` per hidden width, then ``Linear(out_dim)``
    followed by ReLU (features are non-negative, as after a CNN's pooling).

    ``batch_norm=False`` leaves the BatchNorm layers out (statistics that depend on the batch: under
    torchrun on CPU each process would normalise its own shard).

    ``condition=MODALITY`` puts a DAFT block (:mod:`mmbalance.models.daft`) on the input of the last
    ``Linear``, conditioned on that modality's raw input (``condition_shape`` is filled in by the model).

    >>> import torch
    >>> MLP(input_shape=(5,), hidden=(8,), out_dim=3)(torch.randn(4, 5)).shape
    torch.Size([4, 3])
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        out_dim: int = 128,
        hidden: Sequence[int] = (256,),
        dropout: float = 0.1,
        condition: str | None = None,
        condition_shape: Sequence[int] | None = None,
        film_reduction: int = 7,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        self.out_dim = out_dim
        width, layers = math.prod(input_shape), [nn.Flatten()]
        for h in hidden:
            norm = [nn.BatchNorm1d(h)] if batch_norm else []
            layers += [nn.Linear(width, h), *norm, nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers += [nn.Linear(width, out_dim), nn.ReLU()]
        self.net = nn.Sequential(*layers)
        self.condition = condition
        self.film = conditioning(condition, condition_shape, width, len(layers) - 2, film_reduction)

    def forward(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        return self.net(x) if self.film is None else self.film.run(self.net, x, condition)


@ENCODERS.register("cnn")
class CNN(nn.Module):
    """A small image CNN: per width in ``channels``, ``Conv3x3 -> BatchNorm -> ReLU`` and a 2x2 max-pool
    between blocks; global average pooling; ``Linear(out_dim)`` and ReLU. Input ``[B, C, H, W]``.

    ``batch_norm=False`` leaves the BatchNorm layers out (statistics that depend on the batch: under
    torchrun on CPU each process would normalise its own shard).

    ``condition=MODALITY`` puts a DAFT block (:mod:`mmbalance.models.daft`) on the input of the last
    ``Conv -> BN -> ReLU`` block, conditioned on that modality's raw input (``condition_shape`` is filled
    in by the model): the DAFT baseline of tabular-image work.

    ``channels_last=True`` keeps weights and activations in NHWC memory layout, which the oneDNN (CPU)
    and cuDNN convolution, batch-norm and pooling kernels run faster (on a 2-core CPU: about 1.3x for a
    training step and 2.5x for an inference forward of a 1x28x28 batch of 64).

    >>> import torch
    >>> CNN(input_shape=(1, 16, 15), channels=(4, 8), out_dim=6)(torch.randn(2, 1, 16, 15)).shape
    torch.Size([2, 6])
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        out_dim: int = 128,
        channels: Sequence[int] = (32, 64),
        channels_last: bool = True,
        condition: str | None = None,
        condition_shape: Sequence[int] | None = None,
        film_reduction: int = 7,
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ConfigError(f"cnn input_shape={tuple(input_shape)}; expected (channels, height, width)")
        self.out_dim = out_dim
        c_in, layers = input_shape[0], []
        last_block, last_in = 0, c_in  # where the last Conv -> BN -> ReLU starts, and its input channels
        for i, c in enumerate(channels):
            if i:
                layers.append(nn.MaxPool2d(2))
            last_block, last_in = len(layers), c_in
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
            c_in = c
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, out_dim), nn.ReLU()]
        self.net = nn.Sequential(*layers)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net.to(memory_format=self.memory_format)
        self.condition = condition
        self.film = conditioning(condition, condition_shape, last_in, last_block, film_reduction)

    def forward(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        x = x.contiguous(memory_format=self.memory_format)
        return self.net(x) if self.film is None else self.film.run(self.net, x, condition)
