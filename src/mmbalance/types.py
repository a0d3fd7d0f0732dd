"""Core value types. They are returned, never set as attributes during a forward pass."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass(frozen=True)
class Batch:
    """One mini-batch: a tensor per modality, the class labels, and the dataset row indices.

    Sequence modalities carry a validity mask as their last feature channel (see
    :class:`mmbalance.models.encoders.SequenceEncoder`), so every modality is one tensor.
    """

    inputs: dict[str, Tensor]
    label: Tensor
    index: Tensor | None = None

    @property
    def size(self) -> int:
        return int(self.label.shape[0])

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            {m: x.to(device, non_blocking=True) for m, x in self.inputs.items()},
            self.label.to(device, non_blocking=True),
            None if self.index is None else self.index.to(device, non_blocking=True),
        )


@dataclass(frozen=True)
class ModelOutput:
    """What :class:`~mmbalance.models.MultimodalModel` returns.

    ``features[m]`` is encoder ``m``'s output, ``logits`` the head's fused prediction and
    ``unimodal_logits[m]`` the prediction from modality ``m`` alone (how depends on the head).
    """

    features: dict[str, Tensor]
    logits: Tensor
    unimodal_logits: dict[str, Tensor]


@dataclass(frozen=True)
class StepResult:
    """What a strategy's ``training_step`` returns: detached values; the loop decides when to sync.

    ``logs`` holds scalar tensors (for example ``grad_cosine``) that the trainer averages per epoch.
    """

    loss: Tensor
    logs: dict[str, Tensor] = field(default_factory=dict)
