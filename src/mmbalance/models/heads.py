"""Fusion heads. Each maps a dict of features to fused logits and gives every modality's own logits.

A head is built as ``build(feature_dims={modality: dim}, num_classes=C)``. ``modality_parameters(m)``
lists the head parameters that belong to modality ``m`` alone (empty when every parameter is shared).

``forward(features, present=None)``: with presence masks (``{m: bool[B]}``, evaluation with missing
modalities) a head that fuses per-modality logits (``sum``, ``shared``, ``boost``) leaves a row's absent
modalities out; a head on concatenated features (``concat``, ``multitask``) sees the absent modality's
features of its imputed input (the source's fill value: the training mean for standardised features).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from mmbalance.errors import ConfigError
from mmbalance.models.registry import HEADS


def presence_weights(
    present: Mapping[str, Tensor] | None, modalities: Sequence[str], like: Tensor
) -> Tensor | None:
    """``[M, B]`` float weights, 1 where modality ``m`` is present in row ``b`` and 0 where it is absent,
    on ``like``'s device and dtype; ``None`` when ``present`` is ``None`` (every row has every modality).
    A row that has no modality at all gets weight 1 everywhere: it is predicted from every modality's
    imputed input rather than from nothing.

    >>> presence_weights({"b": torch.tensor([True, False])}, ["a", "b"], torch.zeros(2, 3)).tolist()
    [[1.0, 1.0], [1.0, 0.0]]
    >>> none = {"a": torch.tensor([False]), "b": torch.tensor([False])}
    >>> presence_weights(none, ["a", "b"], torch.zeros(1)).tolist()
    [[1.0], [1.0]]
    """
    if not present:
        return None
    rows = like.shape[0]
    ones = torch.ones(rows, dtype=like.dtype, device=like.device)
    w = torch.stack([present[m].to(like) if m in present else ones for m in modalities])
    return torch.where(w.sum(0, keepdim=True) > 0, w, torch.ones_like(w))  # a row with none: use all


class Head(nn.Module):
    """Base class: ``forward(features) -> fused logits``; ``unimodal(m, f) -> logits of m alone``."""

    def __init__(self, feature_dims: Mapping[str, int], num_classes: int) -> None:
        super().__init__()
        self.modalities, self.num_classes = list(feature_dims), num_classes

    def unimodal(self, modality: str, feature: Tensor) -> Tensor:
        raise NotImplementedError

    def modality_parameters(self, modality: str) -> list[nn.Parameter]:
        return []


@HEADS.register("concat")
class ConcatHead(Head):
    """``Linear(concat(features))``. Modality ``m`` alone uses its slice of the weight and ``bias / M``
    (the weight-slice view OGM-GE uses), so the fused logits are the sum of the unimodal ones."""

    def __init__(self, feature_dims: Mapping[str, int], num_classes: int) -> None:
        super().__init__(feature_dims, num_classes)
        self.fc = nn.Linear(sum(feature_dims.values()), num_classes)
        offsets, start = {}, 0
        for m, d in feature_dims.items():
            offsets[m] = (start, start + d)
            start += d
        self.slices = offsets

    def forward(self, features: Mapping[str, Tensor], present: Mapping[str, Tensor] | None = None) -> Tensor:
        return self.fc(torch.cat([features[m] for m in self.modalities], dim=1))

    def unimodal(self, modality: str, feature: Tensor) -> Tensor:
        lo, hi = self.slices[modality]
        return feature @ self.fc.weight[:, lo:hi].T + self.fc.bias / len(self.modalities)


def _branch(in_dim: int, hidden: Sequence[int], num_classes: int) -> nn.Module:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(in_dim, h), nn.ReLU()]
        in_dim = h
    layers.append(nn.Linear(in_dim, num_classes))
    return nn.Sequential(*layers)


@HEADS.register("sum")
class SumHead(Head):
    """One classifier per modality (``Linear``, or an MLP with ``hidden`` widths); fused logits are
    their sum."""

    def __init__(self, feature_dims: Mapping[str, int], num_classes: int, hidden: Sequence[int] = ()) -> None:
        super().__init__(feature_dims, num_classes)
        self.branches = nn.ModuleDict({m: _branch(d, hidden, num_classes) for m, d in feature_dims.items()})

    def forward(self, features: Mapping[str, Tensor], present: Mapping[str, Tensor] | None = None) -> Tensor:
        z = torch.stack([self.unimodal(m, features[m]) for m in self.modalities])
        w = presence_weights(present, self.modalities, z[0])
        return z.sum(0) if w is None else (w.unsqueeze(-1) * z).sum(0)

    def unimodal(self, modality: str, feature: Tensor) -> Tensor:
        return self.branches[modality](feature)

    def modality_parameters(self, modality: str) -> list[nn.Parameter]:
        return list(self.branches[modality].parameters())


@HEADS.register("shared")
class SharedHead(Head):
    """One ``Linear`` classifier applied to every modality's features; fused logits are their mean.
    All feature dimensions must be equal."""

    def __init__(self, feature_dims: Mapping[str, int], num_classes: int) -> None:
        super().__init__(feature_dims, num_classes)
        dims = set(feature_dims.values())
        if len(dims) != 1:
            raise ConfigError(f"shared head needs equal feature dims; got {dict(feature_dims)}")
        self.fc = nn.Linear(dims.pop(), num_classes)

    def forward(self, features: Mapping[str, Tensor], present: Mapping[str, Tensor] | None = None) -> Tensor:
        z = torch.stack([self.fc(features[m]) for m in self.modalities])
        w = presence_weights(present, self.modalities, z[0])
        return z.mean(0) if w is None else (w.unsqueeze(-1) * z).sum(0) / w.sum(0).clamp_min(1).unsqueeze(-1)

    def unimodal(self, modality: str, feature: Tensor) -> Tensor:
        return self.fc(feature)


@HEADS.register("multitask")
class MultitaskHead(Head):
    """A fused classifier on the concatenated features plus one linear classifier per modality.

    The fused logits come from ``fused`` (a ``Linear``, or an MLP with ``hidden`` widths, on the
    concatenation in modality order); modality ``m`` alone is scored by its own ``Linear``. The fused and
    the unimodal classifiers share no parameter: each modality owns its classifier and the fused one is
    the shared group. This is the multi-head model of MMPareto, G-Blending and DOMFN.
    """

    def __init__(self, feature_dims: Mapping[str, int], num_classes: int, hidden: Sequence[int] = ()) -> None:
        super().__init__(feature_dims, num_classes)
        self.fused = _branch(sum(feature_dims.values()), hidden, num_classes)
        self.branches = nn.ModuleDict({m: nn.Linear(d, num_classes) for m, d in feature_dims.items()})

    def forward(self, features: Mapping[str, Tensor], present: Mapping[str, Tensor] | None = None) -> Tensor:
        return self.fused(torch.cat([features[m] for m in self.modalities], dim=1))

    def unimodal(self, modality: str, feature: Tensor) -> Tensor:
        return self.branches[modality](feature)

    def modality_parameters(self, modality: str) -> list[nn.Parameter]:
        return list(self.branches[modality].parameters())


@HEADS.register("boost")
class BoostHead(Head):
    """One classifier shared by every modality and a learnable scale: fused logits ``β·Σ_m f(h_m)``.

    ``f`` is a ``Linear`` or an MLP with ``hidden`` widths (ReconBoost's common head is one hidden layer of
    256); ``β`` (``boost_rate``, a 0-d parameter) starts at ``boost_rate``. ``unimodal(m, h)`` is ``f(h)``
    without ``β``. All feature dimensions must be equal; every parameter is shared.
    """

    def __init__(
        self,
        feature_dims: Mapping[str, int],
        num_classes: int,
        hidden: Sequence[int] = (256,),
        boost_rate: float = 1.0,
    ) -> None:
        super().__init__(feature_dims, num_classes)
        dims = set(feature_dims.values())
        if len(dims) != 1:
            raise ConfigError(f"boost head needs equal feature dims; got {dict(feature_dims)}")
        self.classifier = _branch(dims.pop(), hidden, num_classes)
        self.boost_rate = nn.Parameter(torch.tensor(float(boost_rate)))

    def forward(self, features: Mapping[str, Tensor], present: Mapping[str, Tensor] | None = None) -> Tensor:
        z = torch.stack([self.classifier(features[m]) for m in self.modalities])
        w = presence_weights(present, self.modalities, z[0])
        return self.boost_rate * (z.sum(0) if w is None else (w.unsqueeze(-1) * z).sum(0))

    def unimodal(self, modality: str, feature: Tensor) -> Tensor:
        return self.classifier(feature)
