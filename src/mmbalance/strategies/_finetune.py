"""What the downstream stages of pre-training methods (``mmcl``, ``tip``) share: frozen or trainable
encoders."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from mmbalance.errors import check_choice
from mmbalance.strategies.base import Strategy
from mmbalance.types import Batch, StepResult


class Finetuned(Strategy):
    """``finetune="trainable"``: joint training of every parameter; ``"frozen"``: the encoders stay as
    pre-trained (eval mode: no normalisation statistics move, no dropout) and only the head trains, the
    linear evaluation of the papers."""

    finetune: str = "frozen"

    def validate(self, modalities: Sequence[str]) -> None:
        super().validate(modalities)
        check_choice("finetune", self.finetune, ("frozen", "trainable"))

    def training_step(self, batch: Batch, epoch: int) -> StepResult:
        if self.finetune == "trainable":
            return super().training_step(batch, epoch)
        self.optimizer.zero_grad(set_to_none=True)
        self.model.encoders.eval()
        with torch.no_grad():
            feats = self.model.encode(batch.inputs)
        loss = F.cross_entropy(self.model.outputs(feats).logits, batch.label)
        loss.backward()
        self.optimizer.step()
        return StepResult(loss.detach())
