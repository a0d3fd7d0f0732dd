"""Joint training and single-modality training."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from torch import Tensor

from mmbalance.errors import ConfigError
from mmbalance.strategies.base import Strategy
from mmbalance.strategies.diagnostics import Diagnosed
from mmbalance.strategies.registry import STRATEGIES
from mmbalance.types import Batch, ModelOutput


@STRATEGIES.register("joint")
class Joint(Diagnosed, Strategy):
    """Joint (late-fusion) training: cross-entropy of the fused logits, one backward, one step.

    ``head`` is ``concat`` (a linear layer on the concatenated features), ``sum`` (the sum of per-modality
    linear classifiers), ``shared`` (one classifier applied to every modality, logits averaged),
    ``multitask``, or ``max``/``mul`` (elementwise maximum / product of projected features). It logs
    the gradient-conflict diagnostic of :mod:`mmbalance.strategies.diagnostics` to compare methods.
    """

    name = "joint"
    supported_heads: ClassVar[tuple[str, ...]] = ("concat", "sum", "shared", "multitask", "max", "mul")

    def __init__(self, head: str = "concat") -> None:
        self.head = head

    def modify_gradients(self, out: ModelOutput, batch: Batch, epoch: int) -> dict[str, Tensor]:
        return self.diagnose(self.model, out.features, batch.label)


@STRATEGIES.register("unimodal")
class Unimodal(Strategy):
    """Train and evaluate one modality alone (its encoder and a linear classifier).

    ``modality=None`` is only valid for single-modality datasets; ``mmbalance compare`` expands
    ``unimodal`` into one run per modality.
    """

    name = "unimodal"

    head = "sum"

    def __init__(self, modality: str | None = None) -> None:
        self.modality = modality

    def modalities(self, available: Sequence[str]) -> list[str]:
        if self.modality is None and len(available) == 1:
            return list(available)
        if self.modality not in available:
            raise ConfigError(
                f"unimodal modality={self.modality!r}; expected one of {list(available)} "
                "(set it with strategy__modality=NAME)"
            )
        return [self.modality]
