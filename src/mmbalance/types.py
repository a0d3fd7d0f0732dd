"""Core value types. They are returned, never set as attributes during a forward pass."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass(frozen=True)
class Sample:
    """One row of a dataset: a tensor per modality, the class index (``-1`` when the row has no label, as
    in a manifest to predict on), the dataset row number, and which modalities the row has.

    An absent modality's tensor is its source's fill value (what the preprocessing imputes), so every
    sample of a dataset has the same shapes; ``present[m]`` is ``False`` for it (missing keys: present).
    """

    inputs: dict[str, Tensor]
    label: int
    index: int
    present: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Batch:
    """One mini-batch: a tensor per modality, the class labels, the dataset row indices and, for the
    modalities that some row lacks, a boolean presence mask ``present[m]`` of shape ``[B]``
    (``None``: every modality is present in every row).

    Sequence modalities carry a validity mask as their last feature channel (see
    :class:`mmbalance.models.encoders.SequenceEncoder`), so every modality is one tensor.
    """

    inputs: dict[str, Tensor]
    label: Tensor
    index: Tensor | None = None
    present: dict[str, Tensor] | None = None

    @property
    def size(self) -> int:
        return int(self.label.shape[0])

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            {m: x.to(device, non_blocking=True) for m, x in self.inputs.items()},
            self.label.to(device, non_blocking=True),
            None if self.index is None else self.index.to(device, non_blocking=True),
            None if self.present is None else {m: p.to(device) for m, p in self.present.items()},
        )

    def pin_memory(self) -> Batch:
        """The batch in page-locked memory (the DataLoader calls this with ``pin_memory=True``)."""
        return Batch(
            {m: x.pin_memory() for m, x in self.inputs.items()},
            self.label.pin_memory(),
            None if self.index is None else self.index.pin_memory(),
            None if self.present is None else {m: p.pin_memory() for m, p in self.present.items()},
        )

    def has(self, modality: str) -> Tensor | None:
        """The rows that have ``modality`` (a bool mask), or ``None`` when every row has it."""
        return None if self.present is None else self.present.get(modality)


@dataclass(frozen=True)
class ModelOutput:
    """What :class:`~mmbalance.models.MultimodalModel` returns.

    ``features[m]`` is encoder ``m``'s output, ``logits`` the head's fused prediction and
    ``unimodal_logits[m]`` the prediction from modality ``m`` alone (how depends on the head).
    ``present`` is set when the model was given presence masks (evaluation with missing modalities).
    """

    features: dict[str, Tensor]
    logits: Tensor
    unimodal_logits: dict[str, Tensor]
    present: dict[str, Tensor] | None = None
    """Rows that have each modality (as :attr:`Batch.present`); fusion rules leave absent ones out."""


@dataclass(frozen=True)
class StepResult:
    """What a strategy's ``training_step`` returns: detached values; the loop decides when to sync.

    ``logs`` holds scalar tensors (for example ``grad_cosine``) that the trainer averages per epoch.
    """

    loss: Tensor
    logs: dict[str, Tensor] = field(default_factory=dict)
