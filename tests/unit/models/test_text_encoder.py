"""The ``text`` encoder: a bag of word embeddings with masked mean pooling over ``[B, L]`` ids."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from mmbalance.errors import ConfigError
from mmbalance.models import build_encoder
from mmbalance.models.registry import ENCODERS
from mmbalance.models.text import TextEncoder
from mmbalance.text import WordTokenizer

IDS = torch.tensor([[2, 5, 1, 7, 0, 0], [3, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0], [4, 4, 6, 2, 8, 9]])


def test_registered_shape_and_not_pretrained() -> None:
    enc = ENCODERS.build("text", input_shape=(6,), out_dim=5, vocab_size=10, embed_dim=4)
    assert isinstance(enc, TextEncoder) and enc.out_dim == 5 and enc.pretrained is False
    out = enc(IDS)
    assert out.shape == (4, 5) and torch.all(out >= 0)


def test_known_value_is_the_mean_of_the_real_words() -> None:
    torch.manual_seed(0)
    enc = TextEncoder(input_shape=(6,), out_dim=3, vocab_size=10, embed_dim=4)
    table, lin = enc.embed.weight.detach(), enc.proj[0]
    for row, out in zip(IDS, enc(IDS), strict=True):
        real = row[row != 0]
        mean = table[real].mean(0) if len(real) else torch.zeros(4)
        torch.testing.assert_close(out, torch.relu(lin(mean)))


def test_padding_and_word_order_change_nothing() -> None:
    enc = TextEncoder(input_shape=(6,), out_dim=8, vocab_size=10)
    ref = enc(IDS)
    longer = torch.cat([IDS, torch.zeros(4, 9, dtype=torch.long)], dim=1)
    torch.testing.assert_close(enc(longer), ref)
    reordered = IDS.clone()
    reordered[0, :4] = torch.tensor([7, 1, 2, 5])
    torch.testing.assert_close(enc(reordered), ref)


def test_gradients_reach_the_used_words_and_never_padding() -> None:
    enc = TextEncoder(input_shape=(6,), out_dim=8, vocab_size=12)
    enc(IDS).square().sum().backward()
    grad = enc.embed.weight.grad
    assert grad is not None
    used = torch.zeros(12, dtype=torch.bool)
    used[IDS[IDS != 0]] = True
    assert torch.all(grad[0] == 0) and torch.all(grad[~used] == 0)
    assert torch.all(grad[used].abs().sum(1) > 0)


def test_forward_and_backward_never_wait_for_the_device(
    device: str, syncing_ops: Callable[[Callable[[], None]], list[str]]
) -> None:
    enc = TextEncoder(input_shape=(6,), out_dim=8, vocab_size=10).to(device)
    ids = IDS.to(device)
    assert syncing_ops(lambda: enc(ids).square().sum().backward()) == []
    if torch.device(device).type == "cuda":  # the forward, kernels included
        torch.cuda.set_sync_debug_mode("error")
        try:
            enc(ids)
        finally:
            torch.cuda.set_sync_debug_mode("default")


def test_builds_from_a_fitted_tokeniser() -> None:
    texts = ["a red cat sat", "the blue dog ran", "a cat and a dog"]
    tok = WordTokenizer().fit(texts)
    ids, _ = tok.encode([*texts, "an unseen zebra"], max_length=5)
    enc = build_encoder("text", (5,), 6, vocab_size=tok.vocab_size)
    out = enc(ids)
    assert out.shape == (4, 6) and torch.isfinite(out).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"input_shape": (2, 6), "vocab_size": 10}, "input_shape"),
        ({"input_shape": (6,)}, "vocab_size=None"),
        ({"input_shape": (6,), "vocab_size": 1}, "vocab_size=1"),
    ],
)
def test_bad_options_are_one_line_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        TextEncoder(**kwargs)
    assert "\n" not in str(info.value)
