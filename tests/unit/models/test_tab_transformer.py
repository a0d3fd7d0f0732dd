"""TIP's tabular encoder: masked attention ignores missing features exactly."""

from __future__ import annotations

import pytest
import torch

from mmbalance.errors import ConfigError
from mmbalance.models import build_encoder
from mmbalance.models.tab_transformer import TabTransformer, masked_attention, missing_features


def encoder(width: int = 6, seed: int = 0) -> TabTransformer:
    torch.manual_seed(seed)
    return TabTransformer(input_shape=(width,), out_dim=5, dim=8, heads=2, layers=2).eval()


def test_changing_a_missing_features_value_changes_nothing() -> None:
    enc = encoder()
    x = torch.randn(4, 6)
    missing = torch.zeros(4, 6, dtype=torch.bool)
    missing[:, [1, 4]] = True
    changed = x.clone()
    changed[:, [1, 4]] = torch.randn(4, 2) * 100
    torch.testing.assert_close(enc(changed, missing), enc(x, missing), rtol=0, atol=0)
    tokens, _ = enc.tokens(x, missing)
    tokens_changed, _ = enc.tokens(changed, missing)
    assert torch.equal(tokens_changed, tokens)  # every token, the missing ones' own included
    assert not torch.equal(enc(changed), enc(x))  # unmasked, those values matter


def test_a_zero_is_read_as_missing_and_rows_with_everything_missing_agree() -> None:
    enc = encoder()
    x = torch.tensor([[0.0, 1.5, -2.0, 0.0, 0.3, 1.0]])
    assert missing_features(x).tolist() == [[True, False, False, True, False, False]]
    torch.testing.assert_close(enc(x), enc(x, missing_features(x)), rtol=0, atol=0)
    out = enc(torch.zeros(3, 6))
    assert torch.equal(out[1], out[0]) and torch.equal(out[2], out[0])


def test_masked_attention_equals_attention_over_the_observed_tokens_alone() -> None:
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 5, 4, generator=g, dtype=torch.float64) for _ in range(3))
    missing = torch.tensor([[False, True, False, True, False]])
    keep = [0, 2, 4]
    full = masked_attention(q, k, v, missing)
    alone = torch.softmax(q[:, :, keep] @ k[:, :, keep].transpose(-1, -2) / 2.0, -1) @ v[:, :, keep]
    torch.testing.assert_close(full[:, :, keep], alone)
    # a missing token attends to the observed keys and to itself only
    own = [0, 1, 2, 4]
    mine = torch.softmax(q[:, :, [1]] @ k[:, :, own].transpose(-1, -2) / 2.0, -1) @ v[:, :, own]
    torch.testing.assert_close(full[:, :, [1]], mine)


def test_it_is_a_registered_encoder_with_one_line_errors() -> None:
    enc = build_encoder("tab_transformer", (3,), 4, dim=8, heads=2)
    assert enc(torch.randn(2, 3)).shape == (2, 4)
    with pytest.raises(ConfigError, match="dim=6 is not divisible by heads=4"):
        build_encoder("tab_transformer", (3,), 4, dim=6, heads=4)
    with pytest.raises(ConfigError, match="layers=0 is invalid"):
        build_encoder("tab_transformer", (3,), 4, layers=0)
