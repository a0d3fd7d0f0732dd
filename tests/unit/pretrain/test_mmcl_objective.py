"""MMCL's objective: the CLIP loss and SCARF corruption."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from mmbalance.errors import ConfigError
from mmbalance.pretrain import PRETRAINERS
from mmbalance.pretrain.mmcl import clip_loss, scarf_corrupt


def embeddings(n: int = 5, d: int = 7, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)


@pytest.mark.parametrize("weight", [0.5, 0.2, 1.0])
def test_clip_loss_is_symmetric_in_its_two_modalities(weight: float) -> None:
    u, t = embeddings()
    torch.testing.assert_close(clip_loss(u, t, 0.1, weight), clip_loss(t, u, 0.1, 1 - weight))


def test_clip_loss_of_aligned_orthonormal_pairs_has_its_closed_form_and_is_minimal() -> None:
    n, tau = 4, 0.1
    u = torch.eye(n, 6, dtype=torch.float64)
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + n - 1))
    assert clip_loss(u, u, tau).item() == pytest.approx(expected, rel=1e-5)
    for perm in itertools.permutations(range(n)):
        if list(perm) != list(range(n)):
            assert clip_loss(u, u[list(perm)], tau) > clip_loss(u, u, tau)


def test_clip_loss_decreases_as_the_pairs_align() -> None:
    u, t = embeddings()
    losses = [clip_loss(u, (1 - a) * t + a * u).item() for a in (0.0, 0.5, 0.9, 1.0)]
    assert losses == sorted(losses, reverse=True)


def test_clip_loss_ignores_the_embeddings_norms() -> None:
    u, t = embeddings()
    scale = torch.rand(u.shape[0], 1) + 0.5
    torch.testing.assert_close(clip_loss(u * scale, t * 3.0), clip_loss(u, t))


def test_scarf_replaces_the_given_share_of_each_row_from_the_same_column() -> None:
    torch.manual_seed(0)
    rows, width, rate = 50, 10, 0.3
    x = torch.arange(rows * width, dtype=torch.float32).reshape(rows, width)  # every value distinct
    y = scarf_corrupt(x, rate)
    for j in range(width):  # each value comes from its own column: the column's empirical marginal
        assert set(y[:, j].tolist()) <= set(x[:, j].tolist())
    changed = (y != x).sum(1)
    assert changed.max() <= round(rate * width) and changed.sum() > 0.8 * rows * round(rate * width)
    assert torch.equal(scarf_corrupt(x, 0.0), x)


def test_bad_options_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match="temperature=0 is invalid"):
        PRETRAINERS.build("mmcl", temperature=0).modalities(["image", "tabular"])
    with pytest.raises(ConfigError, match=r"corruption=1\.5 is out of range"):
        PRETRAINERS.build("mmcl", corruption=1.5).modalities(["image", "tabular"])
    with pytest.raises(ConfigError, match="mmcl image and tabular are both 'image'"):
        PRETRAINERS.build("mmcl").modalities(["image"])
