"""MMCL downstream: an image classifier on a contrastively pre-trained encoder (Hager et al., CVPR 2023)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from mmbalance.errors import check_choice
from mmbalance.strategies._finetune import Finetuned
from mmbalance.strategies.registry import STRATEGIES


@STRATEGIES.register("mmcl")
class MMCL(Finetuned):
    """Linear evaluation or fine-tuning of an image encoder pre-trained by ``mmbalance pretrain --method
    mmcl``; image-only at training and test time.

    Start from the pre-training run with ``model__init_from=RUN`` (``{seed}`` in it becomes the run's seed,
    so ``compare`` pairs every seed with its own pre-training). ``finetune="frozen"`` (MMCL's linear
    evaluation, TIP's DVM config): the encoder runs in evaluation mode without gradients and only the
    linear classifier learns; ``"trainable"``: cross-entropy through the whole image model. Without
    ``init_from`` the encoder starts from random weights (a random-feature probe, or image-only
    supervised training). ``image`` defaults to the modality named ``image``, else the dataset's first.

    Deviation from the released code (``paulhager/MMCL-Tabular-Imaging``): the downstream optimizer,
    schedule and selection are this library's (the released evaluator returns its optimizer before building
    the scheduler, so fine-tuning runs at a constant rate); selection is on validation accuracy.
    """

    name = "mmcl"
    head = "concat"
    supported_heads: ClassVar[tuple[str, ...]] = ("concat",)
    wants_pretraining: ClassVar[bool] = True  # train logs a warning without model.init_from

    def __init__(self, image: str | None = None, finetune: str = "frozen") -> None:
        self.image = image
        self.finetune = finetune

    def modalities(self, available: Sequence[str]) -> list[str]:
        names = list(available)
        image = self.image or ("image" if "image" in names else names[0])
        check_choice("image", image, tuple(names))
        return [image]
