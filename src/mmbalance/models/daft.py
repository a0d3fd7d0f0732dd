"""DAFT, the dynamic affine feature-map transform (Pölsterl et al., MICCAI 2021), and conditioned encoders.

An encoder built with ``condition="tabular"`` is *conditioned*: it declares ``condition`` (the modality
whose raw input it also receives) and :class:`~mmbalance.models.MultimodalModel` calls it as
``encoder(x, inputs["tabular"])``. The ``cnn`` and ``mlp`` encoders insert a :class:`DAFTBlock` before
their last block (the official ``film_location=0``, the block's input): for the CNN the input of the last
``Conv -> BN -> ReLU``, for the MLP the input of the last ``Linear``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mmbalance.errors import ConfigError


class DAFTBlock(nn.Module):
    """``F' = (1 + Δα) ⊙ F + β`` with ``[Δα; β] = W₂ ReLU(W₁ [GAP(F); x])``, per channel.

    ``F`` is ``[B, C, *spatial]`` (``GAP`` averages the spatial axes; a ``[B, C]`` vector is its own
    pool), ``x`` the ``[B, D]`` conditioning vector. The bottleneck width is ``max(1, (C + D) //
    reduction)`` (the official ``bottleneck_factor`` 7). Scale is parametrised as ``1 + Δα``: with ``W₂``
    zero the block is the identity, and it equals the released ``α`` of an MLP with bias (TIP's 2-D
    DAFT) whose scale bias is shifted by one.

    >>> block = DAFTBlock(channels=4, condition_dim=3)
    >>> block(torch.randn(2, 4, 5, 5), torch.randn(2, 3)).shape
    torch.Size([2, 4, 5, 5])
    """

    def __init__(self, channels: int, condition_dim: int, reduction: int = 7) -> None:
        super().__init__()
        if not isinstance(reduction, int) or isinstance(reduction, bool) or reduction < 1:
            raise ConfigError(f"film_reduction={reduction!r} is invalid; expected a positive integer")
        hidden = max(1, (channels + condition_dim) // reduction)
        self.channels = channels
        self.mlp = nn.Sequential(
            nn.Linear(channels + condition_dim, hidden), nn.ReLU(), nn.Linear(hidden, 2 * channels)
        )

    def forward(self, feature_map: Tensor, condition: Tensor) -> Tensor:
        pooled = feature_map.flatten(2).mean(2) if feature_map.dim() > 2 else feature_map
        delta_scale, shift = self.mlp(torch.cat([pooled, condition.flatten(1)], dim=1)).split(
            self.channels, 1
        )
        shape = (*delta_scale.shape, *([1] * (feature_map.dim() - 2)))
        return feature_map * (1 + delta_scale.view(shape)) + shift.view(shape)


class Conditioning(nn.Module):
    """The optional DAFT of an encoder: where it sits in the encoder's ``nn.Sequential`` and on what.

    ``split`` is the index of the first layer after the DAFT block; ``condition`` names the modality.
    """

    def __init__(
        self,
        condition: str,
        condition_shape: Sequence[int] | None,
        channels: int,
        split: int,
        reduction: int,
    ) -> None:
        super().__init__()
        if condition_shape is None:
            raise ConfigError(f"condition={condition!r}: the model has no input of that modality to read")
        self.condition, self.split = condition, split
        self.block = DAFTBlock(channels, math.prod(condition_shape), reduction)

    def run(self, net: nn.Sequential, x: Tensor, condition: Tensor | None) -> Tensor:
        """``net`` applied to ``x`` with the DAFT block before layer ``split``."""
        if condition is None:
            raise ConfigError(
                f"this encoder is conditioned on {self.condition!r} and was called without it; "
                "only strategies that encode through the model (joint, daft) support conditioned encoders"
            )
        h = net[: self.split](x)
        return net[self.split :](self.block(h, condition.to(h.dtype)))


def conditioning(
    condition: str | None,
    condition_shape: Sequence[int] | None,
    channels: int,
    split: int,
    reduction: int,
) -> Conditioning | None:
    """A :class:`Conditioning` when ``condition`` names a modality, else ``None`` (an ordinary encoder)."""
    if condition is None:
        return None
    if not isinstance(condition, str) or not condition:
        raise ConfigError(f"condition={condition!r} is invalid; expected a modality name such as tabular")
    return Conditioning(condition, condition_shape, channels, split, reduction)
