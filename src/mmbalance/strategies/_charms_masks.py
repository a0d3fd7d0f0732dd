"""CHARMS's channel-to-attribute matching: cluster the image channels, compare each cluster with each
tabular attribute by their sample-by-sample similarity matrices, match them by optimal transport.

All functions are pure tensor math (they know no model or loop). With ``X`` an ``[N, F]`` matrix of one
group's per-sample features, its similarity matrix is ``S = X̂ X̂ᵀ`` with ``X̂ = X / ‖X‖_F`` (the released
code's normalisation), and the cost of matching attribute ``j`` with channel cluster ``c`` is
``‖S_j − S_c‖²_F``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mmbalance.kmeans import kmeans
from mmbalance.transport import transport_plan

PLAN_TOLERANCE = 1e-12
"""A plan entry above this is a match (the released code tests ``P != 0``; the LP solver may leave
round-off far below any real mass, which is at least ``1 / (J·K)`` somewhere in every row)."""


def normalised(groups: Tensor) -> Tensor:
    """``[G, N, F]`` with each group's ``[N, F]`` matrix divided by its Frobenius norm (a zero matrix stays
    zero)."""
    norms = groups.flatten(1).norm(dim=1).clamp_min(torch.finfo(groups.dtype).tiny)
    return groups / norms.view(-1, 1, 1)


def similarity_cost(attributes: Tensor, clusters: Tensor) -> Tensor:
    """``cost[j, c] = ‖S_j − S_c‖²_F`` (``[J, K]``, float64) for ``attributes`` ``[J, N, d]`` and
    ``clusters`` ``[K, N, L]``, computed as ``‖X̂_jᵀX̂_j‖² + ‖X̂_cᵀX̂_c‖² − 2‖X̂_jᵀX̂_c‖²`` (equal by
    ``‖AAᵀ‖_F = ‖AᵀA‖_F`` and ``⟨AAᵀ, BBᵀ⟩ = ‖AᵀB‖²_F``) so no ``[N, N]`` matrix is formed."""
    a, g = normalised(attributes.double()), normalised(clusters.double())
    own_a = (a.transpose(1, 2) @ a).pow(2).sum((1, 2))
    own_g = (g.transpose(1, 2) @ g).pow(2).sum((1, 2))
    cross = torch.einsum("jnd,knl->jkdl", a, g).pow(2).sum((2, 3))
    return (own_a[:, None] + own_g[None, :] - 2 * cross).clamp_min(0)


def channel_clusters(cells: Tensor, clusters: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``(labels [C], centres [K, N, L])``: k-means of the ``C`` channels of ``cells`` (``[N, C, L]``), each
    channel the point of its ``N·L`` values, into ``min(clusters, C)`` clusters; only non-empty clusters
    are kept, and ``labels`` index the kept ones."""
    n, channels, length = cells.shape
    points = cells.transpose(0, 1).reshape(channels, n * length)
    labels, centres = kmeans(points, min(clusters, channels), generator)
    used, labels = torch.unique(labels, return_inverse=True)
    return labels, centres[used].view(-1, n, length)


def masks_from_plan(plan: Tensor, labels: Tensor) -> Tensor:
    """``[J, C]`` 0/1 masks: attribute ``j`` keeps the channels of every cluster ``c`` with
    ``plan[j, c]`` above :data:`PLAN_TOLERANCE` (``labels`` gives each channel's cluster)."""
    return (plan > PLAN_TOLERANCE)[:, labels.to(plan.device)].to(torch.float32)


def attribute_masks(
    tokens: Tensor, cells: Tensor, clusters: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """``(masks [J, C], labels [C])`` for attribute embeddings ``tokens`` (``[N, J, d]``) and channel maps
    ``cells`` (``[N, C, L]``) of the same ``N`` samples: :func:`channel_clusters`, the
    :func:`similarity_cost` of every attribute and cluster, the exact optimal transport plan with uniform
    marginals, :func:`masks_from_plan`. Every attribute keeps at least one channel (its row of the plan
    has mass ``1/J`` and every kept cluster has a channel)."""
    labels, centres = channel_clusters(cells.float(), clusters, generator)
    plan = transport_plan(similarity_cost(tokens.transpose(0, 1), centres))
    return masks_from_plan(plan, labels.cpu()).to(cells.device), labels.to(cells.device)
