"""DAFT: the dynamic affine feature-map transform (Pölsterl, Wolf, Navab, Wachinger, MICCAI 2021)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from torch.optim import Optimizer

from mmbalance.errors import ConfigError
from mmbalance.models import MultimodalModel
from mmbalance.strategies.joint import Joint
from mmbalance.strategies.registry import STRATEGIES


@STRATEGIES.register("daft")
class DAFT(Joint):
    """An image classifier whose last CNN block is scaled and shifted per channel from the tabular input.

    ``image`` and ``tabular`` name the two modalities (default: ``image`` and ``tabular`` when the dataset
    has them, else its first and second). The model has one encoder, ``image``'s, built with
    ``condition=tabular``
    (:mod:`mmbalance.models.daft`): a DAFT block on the input of its last block computes ``[Δα; β]`` from
    the pooled feature map and the tabular vector, ``F' = (1 + Δα) ⊙ F + β``; pooled features go to a linear
    classifier; cross-entropy, one step (joint training). Tabular data enter only through DAFT, as in the
    paper; at test time an absent tabular input is its imputed value (the training mean).

    Deviations from the released code (``ai-med/DAFT``, 3-D ResNet; ``siyi-wind/TIP: models/DAFT.py``, 2-D):
    the block sits before the last ``Conv -> BN -> ReLU`` of the library's CNN (or the last ``Linear`` of an
    MLP) instead of inside a residual block; the scale is ``1 + Δα`` (the released MLP with bias, shifted).
    """

    name = "daft"
    min_modalities = 2
    supported_heads: ClassVar[tuple[str, ...]] = ("concat",)

    def __init__(self, image: str | None = None, tabular: str | None = None) -> None:
        self.image = image
        self.tabular = tabular

    def roles(self, available: Sequence[str]) -> tuple[str, str]:
        """``(image, tabular)``: the names given, else ``image``/``tabular`` when the dataset has them, else
        its first and second modality."""
        from mmbalance.pretrain.base import image_tabular_roles  # the pre-training package imports strategies

        return image_tabular_roles("daft", self.image, self.tabular, available)

    def modalities(self, available: Sequence[str]) -> list[str]:
        """The image modality alone (the tabular one conditions its encoder)."""
        return [self.roles(available)[0]]

    def encoder_options(self, modality: str, available: Sequence[str]) -> dict[str, Any]:
        image, tabular = self.roles(available)
        return {"condition": tabular} if modality == image else {}

    def setup(
        self, model: MultimodalModel, optimizer: Optimizer, make_optimizer: Callable[[], Optimizer]
    ) -> None:
        super().setup(model, optimizer, make_optimizer)
        image = model.modalities[0]
        if getattr(model.encoders[image], "condition", None) is None:
            raise ConfigError(
                f"daft: the {image!r} encoder has no condition; expected one built with the options of "
                "encoder_options() (an encoder with a condition option: cnn, mlp, resnet18 or resnet50)"
            )
