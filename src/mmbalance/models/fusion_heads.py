"""Elementwise fusion heads ``max`` and ``mul``: the MAX / MUL supervised baselines of tabular-image work.

Both project every modality's features to one common ``width``, combine the projections elementwise
(maximum, or product) and classify the result with one ``Linear``. A modality whose feature dimension
already equals ``width`` is used as it is (no projection), which is TIP's MAX: the 2048-d image feature is
projected to the 512-d tabular width and the tabular feature enters unchanged.

Modality ``m`` alone (:meth:`unimodal`) is the fused prediction of a sample that has ``m`` only: the
classifier of ``m``'s projection. With presence masks (evaluation with missing modalities) a row's absent
modalities are left out of the maximum or product, so a row that has one modality gets exactly that
modality's unimodal logits.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mmbalance.errors import ConfigError
from mmbalance.models.heads import Head, presence_weights
from mmbalance.models.registry import HEADS


class ElementwiseHead(Head):
    """Base of ``max`` and ``mul``: per-modality projections to ``width`` (default: the smallest feature
    dimension), an elementwise combination, one ``Linear`` classifier. The projections belong to their
    modality (:meth:`modality_parameters`); the classifier is shared."""

    neutral: float = 0.0  # the value an absent modality takes in the combination

    def __init__(self, feature_dims: Mapping[str, int], num_classes: int, width: int | None = None) -> None:
        super().__init__(feature_dims, num_classes)
        width = min(feature_dims.values()) if width is None else width
        if not isinstance(width, int) or isinstance(width, bool) or width < 1:
            raise ConfigError(f"head width={width!r} is invalid; expected a positive integer or null")
        self.width = width
        self.projections = nn.ModuleDict(
            {m: nn.Identity() if d == width else nn.Linear(d, width) for m, d in feature_dims.items()}
        )
        self.fc = nn.Linear(width, num_classes)

    def combine(self, stacked: Tensor) -> Tensor:
        """``[M, B, width] -> [B, width]``."""
        raise NotImplementedError

    def forward(self, features: Mapping[str, Tensor], present: Mapping[str, Tensor] | None = None) -> Tensor:
        z = torch.stack([self.projections[m](features[m]) for m in self.modalities])
        w = presence_weights(present, self.modalities, z[0])
        if w is not None:  # absent modalities take the neutral value; a row with none present fuses zeros
            z = torch.where(w.unsqueeze(-1) > 0, z, torch.full_like(z, self.neutral))
            z = torch.where(w.sum(0).unsqueeze(-1) > 0, self.combine(z), torch.zeros_like(z[0]))
            return self.fc(z)
        return self.fc(self.combine(z))

    def unimodal(self, modality: str, feature: Tensor) -> Tensor:
        return self.fc(self.projections[modality](feature))

    def modality_parameters(self, modality: str) -> list[nn.Parameter]:
        return list(self.projections[modality].parameters())


@HEADS.register("max")
class MaxHead(ElementwiseHead):
    """``Linear(max_m P_m h_m)``: the elementwise maximum of the modalities' projections to ``width``, then
    a linear classifier (TIP's MAX baseline). Absent modalities are left out of the maximum."""

    neutral = float("-inf")

    def combine(self, stacked: Tensor) -> Tensor:
        return stacked.amax(0)


@HEADS.register("mul")
class MulHead(ElementwiseHead):
    """``Linear(prod_m P_m h_m)``: the elementwise product of the modalities' projections to ``width``,
    then a linear classifier. Absent modalities are left out of the product.

    TIP's MUL multiplies a tabular MLP ladder into the image feature maps after every ResNet stage; this
    head multiplies the final features once (late fusion, like ``max``), so it works with any encoders.
    """

    neutral = 1.0

    def combine(self, stacked: Tensor) -> Tensor:
        return stacked.prod(0)
