"""Sharding a seeded epoch across processes: the ranks' k-th batches together are one process's k-th
batch (with ``drop_last``: the same rows dropped), and the global batch must split evenly."""

from __future__ import annotations

import pytest
import torch

from mmbalance import distributed
from mmbalance.data.loader import SeededBatchSampler
from mmbalance.errors import ConfigError


@pytest.mark.parametrize(("n", "world", "drop_last"), [(103, 2, True), (103, 4, True), (96, 2, False)])
def test_the_ranks_kth_batches_are_one_processs_kth_batch(n: int, world: int, drop_last: bool) -> None:
    index, batch = torch.arange(1000, 1000 + n), 16
    one = list(SeededBatchSampler(index, batch, shuffle=True, seed=3, drop_last=drop_last))
    ranks = [
        list(SeededBatchSampler(index, batch // world, True, 3, drop_last, rank=r, world_size=world))
        for r in range(world)
    ]
    assert all(len(r) == len(one) for r in ranks)
    for k, rows in enumerate(one):
        assert sorted(x for r in ranks for x in r[k]) == sorted(rows)


def test_without_drop_last_the_shards_are_padded_to_equal_length() -> None:
    index = torch.arange(7)
    shards = [list(SeededBatchSampler(index, 2, rank=r, world_size=2)) for r in range(2)]
    rows = [x for s in shards for b in s for x in b]
    assert [len(b) for b in shards[0]] == [len(b) for b in shards[1]]
    assert set(rows) == set(range(7)) and len(rows) == 8  # one row repeated, as few as possible


def test_single_process_reductions_return_their_input() -> None:
    t = torch.tensor([1.0, 2.0])
    assert distributed.mean_(t) is t and distributed.sum_(t) is t and distributed.gather(t) is t
    assert distributed.mean_list_([t])[0] is t and distributed.world_size() == 1 and distributed.is_main()
    assert distributed.global_top_k(torch.tensor([0.1, 0.9, 0.5]), 2).tolist() == [False, True, True]
    assert distributed.local_batch_size(64) == 64


def test_a_global_batch_that_does_not_split_evenly_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(distributed, "world_size", lambda: 3)
    with pytest.raises(ConfigError, match=r"data\.batch_size=64 does not split evenly across 3 processes"):
        distributed.local_batch_size(64)
