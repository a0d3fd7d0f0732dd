"""Seeded k-means: separated clusters are recovered, centres are their means, the seed decides everything."""

from __future__ import annotations

import pytest
import torch

from mmbalance.errors import ConfigError
from mmbalance.kmeans import kmeans, kmeans_plus_plus


def blobs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three tight blobs of 20 points far apart in 2-D, and each point's blob."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[0.0, 0.0], [50.0, 0.0], [0.0, 50.0]])
    truth = torch.arange(3).repeat_interleave(20)
    return centres[truth] + 0.5 * torch.randn(60, 2, generator=g), truth


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_separated_clusters_are_recovered_with_their_means(seed: int) -> None:
    points, truth = blobs(seed)
    labels, centres = kmeans(points, 3, torch.Generator().manual_seed(seed))
    assert sorted(labels.unique().tolist()) == [0, 1, 2]
    for blob in range(3):
        (label,) = labels[truth == blob].unique().tolist()  # one label per blob ...
        assert bool((truth[labels == label] == blob).all())  # ... and one blob per label
        torch.testing.assert_close(centres[label], points[truth == blob].mean(0))


def test_the_same_seed_gives_the_same_clusters_and_the_global_stream_is_untouched() -> None:
    points = torch.randn(40, 5, generator=torch.Generator().manual_seed(0))
    state = torch.get_rng_state()
    a = kmeans(points, 4, torch.Generator().manual_seed(7))
    b = kmeans(points, 4, torch.Generator().manual_seed(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(torch.get_rng_state(), state)


def test_as_many_clusters_as_distinct_points_gives_each_point_its_own() -> None:
    points = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    labels, centres = kmeans(points, 4, torch.Generator().manual_seed(0))
    assert sorted(labels.tolist()) == [0, 1, 2, 3]
    torch.testing.assert_close(centres[labels], points)


def test_seeding_coincident_points_falls_back_to_uniform_draws() -> None:
    points = torch.zeros(5, 3)
    assert torch.equal(kmeans_plus_plus(points, 3, torch.Generator().manual_seed(0)), torch.zeros(3, 3))
    labels, _ = kmeans(points, 3, torch.Generator().manual_seed(0))
    assert labels.unique().numel() == 1  # one cluster holds them all; the others are empty


@pytest.mark.parametrize("k", [0, 5, 2.0, True])
def test_a_bad_cluster_count_is_a_one_line_error(k: object) -> None:
    with pytest.raises(ConfigError, match=r"k-means k=.*expected an integer in \[1, 4\]"):
        kmeans(torch.randn(4, 2), k, torch.Generator())  # type: ignore[arg-type]
