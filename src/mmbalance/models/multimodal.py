"""``MultimodalModel``: one encoder per modality and a fusion head, with explicit parameter groups."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from mmbalance.types import ModelOutput


class MultimodalModel(nn.Module):
    """``forward(inputs) -> ModelOutput`` with fused and per-modality logits.

    Parameter groups are explicit (never chosen by substring of a name):
    ``encoder_parameters(m)``, ``modality_parameters(m)`` (encoder plus the head parameters that belong to
    ``m`` alone), ``head_parameters()`` and ``shared_parameters()`` (head parameters no modality owns).
    """

    def __init__(self, encoders: Mapping[str, nn.Module], head: nn.Module) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict(dict(encoders))
        self.head = head

    @property
    def modalities(self) -> list[str]:
        return list(self.encoders)

    @property
    def input_modalities(self) -> list[str]:
        """The modalities whose inputs the model reads: its own, then those a conditioned encoder reads
        (``encoder.condition``, e.g. the tabular input of a DAFT image encoder)."""
        conditions = [getattr(enc, "condition", None) for enc in self.encoders.values()]
        return list(dict.fromkeys([*self.modalities, *(c for c in conditions if c)]))

    def encode(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Each encoder's features; a conditioned encoder also receives its condition's input."""
        out = {}
        for m, enc in self.encoders.items():
            condition = getattr(enc, "condition", None)
            out[m] = enc(inputs[m]) if condition is None else enc(inputs[m], inputs[condition])
        return out

    def outputs(
        self, features: dict[str, Tensor], present: Mapping[str, Tensor] | None = None
    ) -> ModelOutput:
        """Head outputs for already-computed features (used by strategies that encode once); ``present``
        (``{m: bool[B]}``) leaves absent modalities out of the fusion, as the head defines it."""
        uni = {m: self.head.unimodal(m, f) for m, f in features.items()}
        fused = self.head(features) if present is None else self.head(features, present)
        return ModelOutput(features, fused, uni, None if present is None else dict(present))

    def forward(
        self, inputs: Mapping[str, Tensor], present: Mapping[str, Tensor] | None = None
    ) -> ModelOutput:
        return self.outputs(self.encode(inputs), present)

    def encoder_parameters(self, modality: str) -> list[nn.Parameter]:
        """The trainable parameters of ``modality``'s encoder: a frozen backbone (``freeze=true``) is in no
        group, so no strategy differentiates it and no optimizer decays it."""
        return [p for p in self.encoders[modality].parameters() if p.requires_grad]

    def modality_parameters(self, modality: str) -> list[nn.Parameter]:
        return self.encoder_parameters(modality) + self.head.modality_parameters(modality)

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.head.parameters())

    def shared_parameters(self) -> list[nn.Parameter]:
        owned = {id(p) for m in self.modalities for p in self.head.modality_parameters(m)}
        return [p for p in self.head.parameters() if id(p) not in owned]


def parameter_groups(model: MultimodalModel) -> list[dict[str, Any]]:
    """One optimizer group per modality (its encoder and head branch) and one for the shared head, each
    named, so per-modality settings (learning rates, modulation) can address them. Every parameter is in
    exactly one group."""
    groups: list[dict[str, Any]] = [
        {"params": model.modality_parameters(m), "name": m} for m in model.modalities
    ]
    shared = model.shared_parameters()
    return groups + ([{"params": shared, "name": "shared"}] if shared else [])
