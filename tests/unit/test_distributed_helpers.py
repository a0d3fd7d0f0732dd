"""What the torchrun helpers do to a model: which BatchNorm layers become synchronised, and that every
reduction is a no-op in one process."""

from __future__ import annotations

import torch

from mmbalance import distributed
from mmbalance.models import build_model
from mmbalance.models.masked_norm import MaskedBatchNorm1d


def test_plain_batchnorm_is_synchronised_and_the_masked_one_is_kept() -> None:
    model = build_model(
        {"image": {"name": "cnn"}, "audio": {"name": "sequence"}},
        {"image": (1, 8, 8), "audio": (6, 5)},
        3,
        {"name": "concat"},
        8,
    )
    before = {n: type(m) for n, m in model.named_modules()}
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    distributed.sync_batchnorm_(model)
    after = {n: type(m) for n, m in model.named_modules()}
    plain = [n for n, t in before.items() if t in distributed.PLAIN_BATCHNORM]
    masked = [n for n, t in before.items() if t is MaskedBatchNorm1d]
    assert plain and masked
    assert all(after[n] is torch.nn.SyncBatchNorm for n in plain)
    assert all(after[n] is MaskedBatchNorm1d for n in masked)
    assert all(torch.equal(weights[n], p) for n, p in model.named_parameters())


def test_one_process_keeps_buffers_and_values() -> None:
    bn = torch.nn.BatchNorm1d(2)
    bn.running_mean.fill_(3.0)
    distributed.average_buffers(bn)
    assert bn.running_mean.tolist() == [3.0, 3.0]
    value = {"acc": 0.5}
    assert distributed.broadcast_object(value) is value
