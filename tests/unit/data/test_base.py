from __future__ import annotations

import pytest
import torch

from mmbalance.data import BatchLoader, build_dataset, stratified_split
from mmbalance.errors import ConfigError


def test_split_is_stratified_disjoint_and_deterministic() -> None:
    labels = torch.arange(5).repeat_interleave(40)
    a = stratified_split(labels, (0.6, 0.2, 0.2), seed=3)
    b = stratified_split(labels, (0.6, 0.2, 0.2), seed=3)
    c = stratified_split(labels, (0.6, 0.2, 0.2), seed=4)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["train"], c["train"])
    joined = torch.cat([a["train"], a["val"], a["test"]])
    assert torch.equal(joined.sort().values, torch.arange(200))
    for k, n in (("train", 24), ("val", 8), ("test", 8)):
        assert torch.equal(labels[a[k]].bincount(), torch.full((5,), n))


@pytest.mark.parametrize("ratios", [(0.5, 0.5), (0.6, 0.6, -0.2), (0.5, 0.2, 0.2)])
def test_split_rejects_bad_ratios(ratios: tuple[float, ...]) -> None:
    with pytest.raises(ConfigError):
        stratified_split(torch.arange(10), ratios)


def test_loader_covers_rows_and_reshuffles_per_epoch() -> None:
    ds = build_dataset("synthetic", n_samples=50, num_classes=2)
    index = torch.arange(0, 50, 2)
    loader = BatchLoader(ds, index, batch_size=4, shuffle=True, seed=1)
    first = torch.cat([b.index for b in loader])
    assert torch.equal(first.sort().values, index) and len(loader) == 7
    again = torch.cat([b.index for b in loader])
    loader.set_epoch(1)
    other = torch.cat([b.index for b in loader])
    assert torch.equal(first, again) and not torch.equal(first, other)
    batch = next(iter(loader))
    assert torch.equal(batch.label, ds.labels[batch.index])
    assert torch.equal(batch.inputs["a"], ds.inputs["a"][batch.index])


def test_loader_drop_last_and_sharding() -> None:
    ds = build_dataset("synthetic", n_samples=40, num_classes=2)
    loader = BatchLoader(ds, torch.arange(10), batch_size=4, drop_last=True)
    assert [b.size for b in loader] == [4, 4] and len(loader) == 2
    shards = [BatchLoader(ds, torch.arange(10), batch_size=3, rank=r, world_size=2) for r in (0, 1)]
    rows = [torch.cat([b.index for b in s]) for s in shards]
    assert set(rows[0].tolist()).isdisjoint(rows[1].tolist())
    assert sorted(rows[0].tolist() + rows[1].tolist()) == list(range(10))
    uneven = [BatchLoader(ds, torch.arange(9), batch_size=2, rank=r, world_size=2) for r in (0, 1)]
    sizes = [[b.size for b in s] for s in uneven]
    assert sizes[0] == sizes[1] == [2, 2, 1]  # 9 rows padded to 10: every rank takes the same steps
    with pytest.raises(ConfigError, match="batch_size=0"):
        BatchLoader(ds, torch.arange(10), batch_size=0)


def test_standardize_uses_train_rows_only() -> None:
    ds = build_dataset("synthetic", n_samples=40, num_classes=2)
    raw = ds.inputs["a"].clone()
    train = torch.arange(20)
    ds.standardize_(train)
    expected = (raw - raw[train].mean(0)) / raw[train].std(0)
    torch.testing.assert_close(ds.inputs["a"], expected)
    torch.testing.assert_close(ds.inputs["a"][train].mean(0), torch.zeros(16), atol=1e-5, rtol=0)


def test_synthetic_signal_knob_sets_imbalance() -> None:
    ds = build_dataset("synthetic", n_samples=400, num_classes=2, signal=(2.0, 0.0), noise=1.0)
    y = ds.labels
    for m, informative in (("a", True), ("b", False)):
        x = ds.inputs[m]
        gap = (x[y == 0].mean(0) - x[y == 1].mean(0)).norm()
        assert (gap > 3.0) == informative


def test_synthetic_rejects_mismatched_lengths() -> None:
    with pytest.raises(ConfigError, match="equal length"):
        build_dataset("synthetic", modalities=("a", "b", "c"), dims=(4, 4), signal=(1, 1))
