from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
from torch import nn

from mmbalance.errors import ConfigError
from mmbalance.models.masked_norm import MaskedBatchNorm1d
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


def boolean_index_forward(enc: SequenceEncoder, x: torch.Tensor) -> torch.Tensor:
    """The encoder's former forward: nn.BatchNorm1d on the real frames gathered by boolean indexing."""
    valid = x[..., -1] > 0.5
    keep = valid.unsqueeze(1).to(x.dtype)
    h = x[..., :-1].transpose(1, 2) * keep
    for conv, norm in zip(enc.convs, enc.norms, strict=True):
        h = conv(h).transpose(1, 2)
        out = h.new_zeros(h.shape)
        out[valid] = torch.relu(nn.BatchNorm1d.forward(norm, h[valid]))
        h = out.transpose(1, 2)
    count = keep.sum(-1).clamp_min(1.0)
    return enc.proj(torch.cat([h.sum(-1) / count, h.amax(-1)], dim=1))


def test_matches_the_boolean_index_forward(device: str) -> None:
    torch.manual_seed(0)
    enc = SequenceEncoder(input_shape=(12, 14), out_dim=16, channels=(8, 6)).to(device)
    ref = copy.deepcopy(enc)
    assert all(isinstance(n, MaskedBatchNorm1d) for n in enc.norms)
    for step, lengths in enumerate(([3, 12, 6, 1], [12, 2, 9, 5], [7, 7, 0, 11])):
        x = _batch(lengths, t=12, seed=step).to(device)
        for module in (enc, ref):
            module.zero_grad(set_to_none=True)
        out, want = enc(x), boolean_index_forward(ref, x)
        torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-5)
        out.square().sum().backward()
        want.square().sum().backward()
        for (name, got), expected in zip(enc.state_dict().items(), ref.state_dict().values(), strict=True):
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5, msg=name)
        for (name, p), q in zip(enc.named_parameters(), ref.parameters(), strict=True):
            torch.testing.assert_close(p.grad, q.grad, atol=1e-4, rtol=1e-4, msg=name)
    enc.eval(), ref.eval()
    x = _batch([4, 12, 8], t=12, seed=9).to(device)
    torch.testing.assert_close(enc(x), boolean_index_forward(ref, x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("train", [True, False])
def test_forward_and_backward_never_wait_for_the_device(
    train: bool, device: str, syncing_ops: Callable[[Callable[[], None]], list[str]]
) -> None:
    enc = SequenceEncoder(input_shape=(12, 14), out_dim=8, channels=(8, 8)).to(device).train(train)
    x = _batch([3, 12, 6, 0], t=12).to(device).requires_grad_(True)

    def step() -> None:
        enc(x).square().sum().backward()

    assert syncing_ops(lambda: boolean_index_forward(enc, x).sum().backward())  # the recorder sees them
    assert syncing_ops(step) == []
    cumulative = MaskedBatchNorm1d(8, momentum=None).to(device)  # nn.BatchNorm1d reads its counter here
    assert syncing_ops(lambda: cumulative(torch.randn(4, 8, 5, device=device), x[:, :5, -1] > 0)) == []
    if torch.device(device).type == "cuda":
        torch.cuda.set_sync_debug_mode("error")
        try:
            step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
