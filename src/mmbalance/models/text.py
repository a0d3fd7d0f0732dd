"""Text encoders: a bag of word embeddings (``text``) and a local Hugging Face model (``hf_text``).

Their input formats are those of :mod:`mmbalance.text`: ``text`` reads ids ``[B, L]`` (0 = padding),
``hf_text`` reads ``[B, 2, L]`` (input ids, attention mask). ``pretrained`` says whether an encoder
starts from weights trained elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from mmbalance.errors import ConfigError, check_choice
from mmbalance.models.registry import ENCODERS
from mmbalance.text import PAD, from_local_dir, import_transformers


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


@ENCODERS.register("hf_text")
class HFTextEncoder(nn.Module):
    """A Hugging Face transformer encoder loaded from the local directory ``path`` (never downloaded),
    pooled, then ``Linear(out_dim) -> ReLU``.

    Input ``LongTensor[B, 2, L]``: ``[:, 0]`` input ids, ``[:, 1]`` attention mask (1 = real token), as
    :func:`mmbalance.text.hf_encode` gives them with the directory's own tokenizer (padding at the end).
    ``pooling="cls"`` takes the hidden state of position 0 (the first token), ``"mean"`` the mean over
    the positions the mask keeps (so appending padding changes nothing). ``freeze=True`` sets the
    transformer's parameters to ``requires_grad=False`` and keeps it in eval mode (no dropout) whatever
    ``train()`` says, so its weights stay those of the directory and only the projection learns. Needs
    the optional ``transformers`` package (``pip install 'mmbalance[text]'``).
    """

    pretrained = True

    def __init__(
        self,
        input_shape: Sequence[int],
        out_dim: int = 128,
        path: str | None = None,
        pooling: str = "cls",
        freeze: bool = False,
    ) -> None:
        super().__init__()
        if len(input_shape) != 2 or int(input_shape[0]) != 2:
            raise ConfigError(
                f"hf_text input_shape={tuple(input_shape)}; expected (2, max_length): ids and attention mask"
            )
        check_choice("hf_text pooling", pooling, ("cls", "mean"))
        load = import_transformers("encoder 'hf_text'").AutoModel.from_pretrained
        self.model = from_local_dir(load, path, "hf_text", "Hugging Face model")
        self.out_dim, self.pooling, self.freeze = out_dim, pooling, bool(freeze)
        if self.freeze:
            self.model.requires_grad_(False)
        self.proj = nn.Sequential(nn.Linear(self.model.config.hidden_size, out_dim), nn.ReLU())
        self.train()

    def train(self, mode: bool = True) -> HFTextEncoder:
        super().train(mode)
        if self.freeze:
            self.model.eval()
        return self

    def trunk(self, x: Tensor) -> Tensor:
        """The pooled transformer features ``[B, hidden]`` (what a frozen model's feature cache keeps)."""
        ids, mask = x[:, 0], x[:, 1]
        hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state  # [B, L, H]
        return hidden[:, 0] if self.pooling == "cls" else _masked_mean(hidden, mask)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.trunk(x))
