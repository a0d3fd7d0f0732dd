"""A transformer over per-feature tokens of a tabular vector with missing features masked (TIP's tabular
encoder, Du et al., ECCV 2024).

Feature ``d`` of the flattened input becomes the token ``x_d·w_d + e_d`` (a per-feature ``Linear(1, dim)``
whose bias ``e_d`` is the column embedding); a missing feature's token is the learned ``[MASK]`` embedding
plus ``e_d``, so its value never enters. A ``[CLS]`` token is prepended. In every attention layer the keys
of missing features are masked for every query but their own (TIP's ``-1e9`` except self), so what the
other tokens compute does not depend on a missing feature at all.

Which features are missing: exactly ``0.0`` (:func:`missing_features`). That is the value a missing
feature has in this library's inputs: ``--missing tabular=…`` writes the training mean, ``0`` once
standardised, and the ``columns`` source writes ``0`` for a missing number (beside its indicator ``1``)
and ``0`` in every slot of a one-hot block but the hot one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mmbalance.errors import ConfigError
from mmbalance.models.registry import ENCODERS


def missing_features(x: Tensor) -> Tensor:
    """Bool ``[B, D]``: the features of the flattened ``x`` read as missing (exactly ``0.0``)."""
    return x.flatten(1) == 0


def masked_attention(q: Tensor, k: Tensor, v: Tensor, missing: Tensor) -> Tensor:
    """Scaled dot-product attention of ``[B, H, L, d]`` tensors in which no query attends to the key of a
    token with ``missing[b, j]`` (bool ``[B, L]``) except that token itself; every row keeps its own key,
    so the softmax is always defined."""
    length = q.shape[-2]
    own = torch.eye(length, dtype=torch.bool, device=q.device)
    blocked = missing[:, None, None, :] & ~own
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    return scores.masked_fill(blocked, float("-inf")).softmax(-1) @ v


class MaskedSelfAttention(nn.Module):
    """Multi-head self-attention with :func:`masked_attention`."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"tabular transformer dim={dim} is not divisible by heads={heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: Tensor, missing: Tensor) -> Tensor:
        b, length, dim = x.shape
        q, k, v = self.qkv(x).view(b, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        y = masked_attention(q, k, v, missing)
        return self.out(y.transpose(1, 2).reshape(b, length, dim))


class MaskedBlock(nn.Module):
    """Pre-norm transformer block: ``x + attention(LN(x))``, then ``x + FFN(LN(x))`` (hidden ``2·dim``)."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = MaskedSelfAttention(dim, heads)
        self.ffn = nn.Sequential(
            nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, missing: Tensor) -> Tensor:
        x = x + self.drop(self.attention(self.norm1(x), missing))
        return x + self.drop(self.ffn(self.norm2(x)))


@ENCODERS.register("tab_transformer")
class TabTransformer(nn.Module):
    """TIP's tabular encoder: per-feature tokens, ``[CLS]``, ``layers`` masked transformer blocks of width
    ``dim``; the features are ``ReLU(Linear(LN(CLS)))`` of width ``out_dim``. A row whose features are all
    missing gets the same features as any other such row (``[CLS]`` and ``[MASK]`` tokens only).

    >>> enc = TabTransformer(input_shape=(5,), out_dim=3, dim=8, heads=2)
    >>> enc(torch.randn(4, 5)).shape
    torch.Size([4, 3])
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        out_dim: int = 128,
        dim: int = 32,
        layers: int = 2,
        heads: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        for key, value in (("dim", dim), ("layers", layers), ("heads", heads)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"tab_transformer {key}={value!r} is invalid; expected a positive integer")
        width = math.prod(input_shape)
        self.out_dim, self.dim, self.width = out_dim, dim, width
        self.value_weight = nn.Parameter(torch.randn(width, dim) * 0.02)
        self.column = nn.Parameter(torch.randn(width, dim) * 0.02)
        self.mask_token = nn.Parameter(torch.zeros(dim))
        self.cls = nn.Parameter(torch.zeros(dim))
        self.blocks = nn.ModuleList(MaskedBlock(dim, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, out_dim)

    def tokens(self, x: Tensor, missing: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``([B, 1 + D, dim], bool [B, 1 + D])``: the encoded tokens (``[CLS]`` first, after the final
        LayerNorm) and which of them are missing (``missing``, default :func:`missing_features`)."""
        flat = x.flatten(1)
        missing = missing_features(flat) if missing is None else missing
        values = flat.unsqueeze(-1) * self.value_weight
        tok = torch.where(missing.unsqueeze(-1), self.mask_token.expand_as(values), values) + self.column
        tok = torch.cat([self.cls.expand(flat.shape[0], 1, self.dim), tok], dim=1)
        mask = torch.cat([torch.zeros_like(missing[:, :1]), missing], dim=1)
        for block in self.blocks:
            tok = block(tok, mask)
        return self.norm(tok), mask

    def head(self, cls: Tensor) -> Tensor:
        """The features of a ``[CLS]`` token (``[B, dim] -> [B, out_dim]``)."""
        return torch.relu(self.fc(cls))

    def forward(self, x: Tensor, missing: Tensor | None = None) -> Tensor:
        return self.head(self.tokens(x, missing)[0][:, 0])
