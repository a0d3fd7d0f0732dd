"""TIP downstream: a classifier on the fused image and tabular embeddings of TIP-pre-trained encoders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from mmbalance.strategies._finetune import Finetuned
from mmbalance.strategies.registry import STRATEGIES


@STRATEGIES.register("tip")
class TIP(Finetuned):
    """Linear evaluation or fine-tuning on the image features and the tabular ``[CLS]`` features of encoders
    pre-trained by ``mmbalance pretrain --method tip`` (start with ``model__init_from=RUN``).

    The tabular encoder is the ``tab_transformer`` (set here, as in pre-training): missing tabular features
    — a share of them (``--missing tabular=0.3``) or all (``tabular=1``: the features of an empty table)
    — are masked in its attention, not imputed; the ``concat`` head classifies ``[h_image; h_tabular]``.
    ``finetune="frozen"``: the encoders run in evaluation mode without gradients and only the head learns
    (TIP's linear evaluation); ``"trainable"``: cross-entropy through everything.
    ``image``/``tabular`` as in pre-training.
    """

    name = "tip"
    min_modalities = 2
    head = "concat"
    supported_heads: ClassVar[tuple[str, ...]] = ("concat",)
    wants_pretraining: ClassVar[bool] = True

    def __init__(
        self, image: str | None = None, tabular: str | None = None, finetune: str = "frozen"
    ) -> None:
        self.image = image
        self.tabular = tabular
        self.finetune = finetune

    def _roles(self, available: Sequence[str]) -> tuple[str, str]:
        from mmbalance.pretrain.tip import TIP as TIPPretrainer  # the pre-training stage imports strategies

        return TIPPretrainer(self.image, self.tabular).roles(available)

    def modalities(self, available: Sequence[str]) -> list[str]:
        super().modalities(available)
        return list(self._roles(available))

    def encoder_options(self, modality: str, available: Sequence[str]) -> dict[str, Any]:
        return {"name": "tab_transformer"} if modality == self._roles(available)[1] else {}
