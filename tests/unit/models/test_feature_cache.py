"""The feature cache of frozen backbones: same outputs, each input embedded once, reused across runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mmbalance.models import build_encoder
from mmbalance.models.feature_cache import attach, backbone_key, cacheable


def frozen(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_encoder("resnet18", (3, 16, 16), 8, freeze=True).eval()


def counting(enc: torch.nn.Module) -> list[int]:
    calls: list[int] = []
    inner = enc.trunk

    def trunk(x: torch.Tensor) -> torch.Tensor:
        calls.append(len(x))
        return inner(x)

    enc.trunk = trunk
    return calls


def test_cached_outputs_equal_the_uncached_and_each_row_is_embedded_once(tmp_path: Path) -> None:
    x = torch.randn(6, 3, 16, 16)
    enc, plain = frozen(), frozen()
    calls = counting(enc)
    cache = attach(enc, tmp_path, (3, 16, 16))
    with torch.no_grad():
        first, again = enc(x), enc(x[[5, 0, 2]])
        mixed = enc(torch.cat([x[:2], torch.randn(1, 3, 16, 16)]))
    torch.testing.assert_close(first, plain(x))
    torch.testing.assert_close(again, plain(x)[[5, 0, 2]])
    assert calls == [6, 1] and cache.hits == 5 and cache.misses == 7  # only the new row was computed
    assert mixed.shape == (3, 8)


def test_another_run_reuses_the_stored_features_and_another_backbone_does_not(tmp_path: Path) -> None:
    x = torch.randn(4, 3, 16, 16)
    enc = frozen()
    attach(enc, tmp_path, (3, 16, 16))
    with torch.no_grad():
        enc(x)
    enc.feature_cache.flush()
    same, other = frozen(), frozen(seed=1)
    calls_same, calls_other = counting(same), counting(other)
    attach(same, tmp_path, (3, 16, 16))
    attach(other, tmp_path, (3, 16, 16))
    with torch.no_grad():
        torch.testing.assert_close(same(x), frozen()(x))
        other(x)
    assert calls_same == [] and calls_other == [4]
    assert backbone_key(frozen(), (3, 16, 16)) != backbone_key(frozen(seed=1), (3, 16, 16))


def test_only_frozen_backbones_with_a_trunk_are_cacheable() -> None:
    assert cacheable(frozen())
    assert not cacheable(build_encoder("resnet18", (3, 16, 16), 8))
    assert not cacheable(build_encoder("mlp", (5,), 8))


def test_a_training_run_caches_a_frozen_backbone(tmp_path: Path) -> None:
    from mmbalance.cli import main

    args = ["train", "--dataset", "mfeat", "--method", "joint", "--epochs", "2", "--out", str(tmp_path / "r")]
    over = [
        "model__encoders__image__name=resnet18",
        "model__encoders__image__freeze=true",
        "data__split=[0.1, 0.1, 0.8]",
        "data__batch_size=50",
        f"data__cache_features={tmp_path / 'cache'}",
        "train__device=cpu",
        "--quiet",
    ]
    assert main([*args, *over]) == 0
    stored = list((tmp_path / "cache").glob("*.pt"))
    assert len(stored) == 1
    from mmbalance.data import build_dataset

    distinct = {row.numpy().tobytes() for row in build_dataset("mfeat").inputs["image"]}
    assert len(torch.load(stored[0], weights_only=True)) == len(distinct)  # every distinct image, once


def test_a_flush_keeps_what_another_process_wrote_meanwhile(tmp_path: Path) -> None:
    from mmbalance.models.feature_cache import FeatureCache

    path = tmp_path / "store.pt"
    mine, theirs = FeatureCache(path), FeatureCache(path)  # e.g. two torchrun ranks or parallel runs
    trunk = lambda x: x * 2  # noqa: E731
    mine(trunk, torch.tensor([[1.0]]))
    theirs(trunk, torch.tensor([[5.0]]))
    theirs.flush()
    mine.flush()
    assert len(FeatureCache(path).store) == 2
    assert not list(tmp_path.glob("*.tmp"))


def test_an_unreadable_store_is_recomputed_with_a_warning(tmp_path: Path) -> None:
    from mmbalance.models.feature_cache import FeatureCache

    path = tmp_path / "store.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="unreadable"):
        cache = FeatureCache(path)
    assert cache.store == {}
