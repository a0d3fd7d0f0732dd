from __future__ import annotations

import pytest
import torch

from mmbalance.errors import ConfigError
from mmbalance.models.registry import ENCODERS
from mmbalance.models.sequence import SequenceEncoder


def _batch(lengths: list[int], t: int, features: int = 13, seed: int = 0) -> torch.Tensor:
    """Random frames; padded frames hold garbage features (they must be ignored) and mask 0."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), t, features + 1, generator=g) * 3.0
    x[..., -1] = (torch.arange(t) < torch.tensor(lengths)[:, None]).float()
    return x


def _pad(x: torch.Tensor, extra: int) -> torch.Tensor:
    tail = torch.randn(x.shape[0], extra, x.shape[2]) * 5.0
    tail[..., -1] = 0.0
    return torch.cat([x, tail], dim=1)


def test_registered_and_output_shape() -> None:
    enc = ENCODERS.build("sequence", input_shape=(92, 14), out_dim=32, channels=(16, 24))
    assert isinstance(enc, SequenceEncoder) and enc.out_dim == 32
    out = enc(_batch([6, 92, 17], t=92))
    assert out.shape == (3, 32) and torch.all(out >= 0)


@pytest.mark.parametrize("shape", [(14,), (2, 92, 14), (92, 1)])
def test_rejects_bad_input_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(ConfigError, match="input_shape"):
        SequenceEncoder(input_shape=shape)


def test_rejects_even_kernel() -> None:
    with pytest.raises(ConfigError, match="kernel_size"):
        SequenceEncoder(input_shape=(10, 4), kernel_size=4)


@pytest.mark.parametrize("train", [False, True])
def test_padding_does_not_change_the_output(train: bool) -> None:
    torch.manual_seed(0)
    enc = SequenceEncoder(input_shape=(12, 14), out_dim=16, channels=(8, 8)).train(train)
    if not train:  # non-trivial running statistics
        enc.train()(_batch([5, 12, 9, 7], t=12, seed=1))
        enc.eval()
    x = _batch([3, 12, 6, 1], t=12)
    longer = _pad(x, 20)
    garbage = x.clone()
    garbage[..., :-1] += (1 - garbage[..., -1:]) * 100.0  # change only the padded frames
    ref = enc(x)
    torch.testing.assert_close(enc(longer), ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(enc(garbage), ref, atol=1e-5, rtol=1e-5)


def test_eval_rows_are_independent_of_their_batch() -> None:
    enc = SequenceEncoder(input_shape=(12, 5), out_dim=8, channels=(6,)).eval()
    x = _batch([4, 12, 7], t=12, features=4)
    torch.testing.assert_close(enc(x)[1:2], enc(x[1:2]), atol=1e-6, rtol=1e-5)


def test_gradients_flow_and_skip_padding() -> None:
    enc = SequenceEncoder(input_shape=(10, 14), out_dim=8, channels=(8, 8))
    x = _batch([4, 10, 7], t=10).requires_grad_(True)
    enc(x).square().sum().backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    frame_grad = x.grad[..., :-1].abs().sum(-1)  # type: ignore[index]
    mask = x[..., -1].detach()
    assert torch.all(frame_grad[mask == 0] == 0) and frame_grad[mask == 1].sum() > 0


def test_empty_clip_gives_finite_features() -> None:
    enc = SequenceEncoder(input_shape=(8, 3), out_dim=4, channels=(4,)).eval()
    out = enc(_batch([0, 8], t=8, features=2))
    assert torch.isfinite(out).all() and out.shape == (2, 4)
