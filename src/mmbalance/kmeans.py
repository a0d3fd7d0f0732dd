"""Seeded k-means (Lloyd's algorithm from k-means++ seeds), as CHARMS clusters image channels.

Every random draw comes from the ``torch.Generator`` passed in, never from the global random state, so
the same points and seed give the same clusters and a training run's other random streams are untouched.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mmbalance.errors import ConfigError


def kmeans_plus_plus(points: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """``k`` initial centres ``[k, d]`` chosen among ``points`` (``[n, d]``): the first uniformly, each next
    one with probability proportional to its squared distance to the nearest centre chosen so far
    (uniformly again when every point already coincides with a centre).

    >>> kmeans_plus_plus(torch.tensor([[0.0], [10.0]]), 2, torch.Generator().manual_seed(0)).sort(0)[0]
    tensor([[ 0.],
            [10.]])
    """
    n = points.shape[0]
    chosen = [int(torch.randint(n, (1,), generator=generator))]
    nearest = (points - points[chosen[0]]).pow(2).sum(1)
    for _ in range(1, k):
        total = float(nearest.sum())
        if total > 0:
            weights = (nearest / total).double().cpu()
            index = int(torch.multinomial(weights, 1, generator=generator))
        else:
            index = int(torch.randint(n, (1,), generator=generator))
        chosen.append(index)
        nearest = torch.minimum(nearest, (points - points[index]).pow(2).sum(1))
    return points[chosen].clone()


def kmeans(
    points: Tensor, k: int, generator: torch.Generator, iterations: int = 100
) -> tuple[Tensor, Tensor]:
    """``(labels [n], centres [k, d])`` of ``points`` (``[n, d]``) in ``k`` clusters.

    Lloyd's algorithm from :func:`kmeans_plus_plus` seeds: each point goes to its nearest centre (the
    lowest index on ties), each centre moves to the mean of its points, until no label changes or after
    ``iterations`` rounds. On return every non-empty cluster's centre is the mean of its points; a cluster
    that lost all its points keeps its last centre (possible only when points coincide or ``k`` is large).

    >>> labels, _ = kmeans(torch.tensor([[0.0], [0.1], [5.0], [5.1]]), 2, torch.Generator().manual_seed(0))
    >>> bool(labels[0] == labels[1]) and bool(labels[2] == labels[3]) and bool(labels[0] != labels[2])
    True
    """
    if points.dim() != 2 or points.shape[0] == 0:
        raise ConfigError(f"k-means points have shape {tuple(points.shape)}; expected a non-empty [n, d]")
    n = points.shape[0]
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= n:
        raise ConfigError(f"k-means k={k!r} is invalid; expected an integer in [1, {n}] (the point count)")
    centres = kmeans_plus_plus(points, k, generator)
    labels = torch.full((n,), -1, dtype=torch.long, device=points.device)
    for _ in range(iterations):
        new = torch.cdist(points, centres).argmin(1)
        if torch.equal(new, labels):
            break
        labels = new
        sums = torch.zeros_like(centres).index_add_(0, labels, points)
        counts = torch.bincount(labels, minlength=k).unsqueeze(1)
        centres = torch.where(counts > 0, sums / counts.clamp_min(1).to(points.dtype), centres)
    return labels, centres
