"""Text encoders: a bag of word embeddings (``text``).

Its input format is that of :mod:`mmbalance.text`: ids ``[B, L]`` (0 = padding). ``pretrained`` says
whether an encoder starts from weights trained elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from mmbalance.errors import ConfigError
from mmbalance.models.registry import ENCODERS
from mmbalance.text import PAD


def _masked_mean(h: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``h[B, L, D]`` over the positions where ``mask[B, L]`` is non-zero; zeros where none is.
    Masked arithmetic only: no boolean indexing, nothing waits for the device."""
    keep = mask.unsqueeze(-1).to(h.dtype)
    return (h * keep).sum(1) / keep.sum(1).clamp_min(1.0)


@ENCODERS.register("text")
class TextEncoder(nn.Module):
    """Bag of embeddings: ``Embedding(vocab_size, embed_dim) -> masked mean -> Linear(out_dim) -> ReLU``.

    Input ``LongTensor[B, L]`` of word ids as :class:`mmbalance.text.WordTokenizer` gives them: 0 is
    padding and is ignored (appending padding changes nothing; a text of padding only gives
    ``ReLU(bias)``), 1 is the unknown word. ``vocab_size`` is the fitted tokeniser's ``vocab_size``; an
    id at or above it is an indexing error of the embedding. The order of the words does not matter.

    >>> import torch
    >>> enc = TextEncoder(input_shape=(6,), vocab_size=10, out_dim=3)
    >>> enc(torch.tensor([[2, 5, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0]])).shape
    torch.Size([2, 3])
    """

    pretrained = False

    def __init__(
        self,
        input_shape: Sequence[int],
        out_dim: int = 128,
        vocab_size: int | None = None,
        embed_dim: int = 64,
    ) -> None:
        super().__init__()
        if len(input_shape) != 1:
            raise ConfigError(f"text input_shape={tuple(input_shape)}; expected (max_length,) of word ids")
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 2:
            raise ConfigError(
                f"text vocab_size={vocab_size!r}; expected the fitted tokeniser's vocab_size, an integer >= 2"
            )
        self.out_dim = out_dim
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.proj = nn.Sequential(nn.Linear(embed_dim, out_dim), nn.ReLU())

    def forward(self, ids: Tensor) -> Tensor:
        return self.proj(_masked_mean(self.embed(ids), ids != PAD))
