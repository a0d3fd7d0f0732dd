"""What MLA and GAAL share: per-mini-batch alternation through one shared classifier.

Each batch is encoded once; then, for each modality in turn (in the strategy's ``order``, see
:mod:`mmbalance.strategies._order`), the modality's own loss on the shared head
is back-propagated into its encoder and the head, the head gradient may be modified, and the optimizer
steps. Idle encoders get no gradient (``None``), so their parameters do not move unless
``ghost_steps`` reproduces the released code's zero-filled gradients (momentum and weight-decay steps
on the idle encoder under torch 1.x).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from mmbalance.strategies._order import check_order, resolve_order
from mmbalance.strategies.base import Strategy, modality_loss
from mmbalance.strategies.diagnostics import Diagnosed
from mmbalance.types import Batch, StepResult


class Alternating(Diagnosed, Strategy):
    """Base class: ``training_step`` alternates modalities; subclasses override :meth:`modify_head_grad`.

    ``order`` (a constructor option of the subclasses) fixes the modalities' order within every batch; it
    is resolved once, on the first batch after :meth:`setup`, and never changes during the run."""

    head = "shared"
    min_modalities = 2
    ghost_steps: bool = False
    order: str | Sequence[str] = "dataset"

    def validate(self, modalities: Sequence[str]) -> None:
        super().validate(modalities)
        check_order(self.order, modalities)

    def setup(self, model: Any, optimizer: Any, make_optimizer: Any) -> None:
        super().setup(model, optimizer, make_optimizer)
        self._order: list[str] | None = None

    def step_order(self, batch: Batch) -> list[str]:
        """The modalities in the order they step (computed on the first call, then reused)."""
        if self._order is None:
            self._order = resolve_order(self.order, self.model.encoders, batch.inputs)
        return self._order

    def training_step(self, batch: Batch, epoch: int) -> StepResult:
        model, label = self.model, batch.label
        feats = model.encode(batch.inputs)
        logs = self.diagnose(model, feats, label)
        self.before_half_steps(feats, batch)
        losses, half_logs = [], []
        for i, m in enumerate(self.step_order(batch)):
            if self.ghost_steps and i > 0:  # the ghost step moved this encoder in place: forward it again
                feats[m] = model.encoders[m](batch.inputs[m])
            self.optimizer.zero_grad(set_to_none=True)
            loss = modality_loss(model.head.unimodal(m, feats[m]), batch, m)
            loss.backward()
            half_logs.append(self.modify_head_grad(m, feats, batch))
            if self.ghost_steps:
                self._zero_fill_grads()
            self.optimizer.step()
            self.after_half_step(m, i, feats, batch)
            losses.append(loss.detach())
        for k in half_logs[0]:  # half-step logs are averaged over the modalities
            logs[k] = torch.stack([h[k] for h in half_logs]).mean()
        return StepResult(torch.stack(losses).mean(), logs)

    def _zero_fill_grads(self) -> None:
        for p in self.model.parameters():
            if p.grad is None:
                p.grad = torch.zeros_like(p)

    # -- hooks for subclasses -----------------------------------------------------------------------
    def before_half_steps(self, feats: Mapping[str, Tensor], batch: Batch) -> None:
        """Called once per batch after encoding, before the first half-step."""

    def modify_head_grad(self, modality: str, feats: Mapping[str, Tensor], batch: Batch) -> dict[str, Tensor]:
        """Change the shared head's ``.grad`` for ``modality``'s half-step; return logs (0-d tensors with the
        same keys at every half-step; they are averaged over the batch's half-steps)."""
        return {}

    def after_half_step(self, modality: str, position: int, feats: dict[str, Tensor], batch: Batch) -> None:
        """Called after ``modality``'s optimizer step; ``position`` is its place in :meth:`step_order`."""
