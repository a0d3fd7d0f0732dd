"""MSES: modality-specific early stopping (Fujimori et al., ACPR 2019)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.optim import Optimizer

from mmbalance.errors import ConfigError, check_choice, check_range
from mmbalance.models import MultimodalModel
from mmbalance.strategies._heldout import head_losses, masked_mean, training_rows
from mmbalance.strategies.base import Strategy
from mmbalance.strategies.registry import STRATEGIES
from mmbalance.types import Batch, ModelOutput, StepResult


@STRATEGIES.register("mses")
class MSES(Strategy):
    """Multitask training in which each modality's branch stops on its own held-out loss.

    MSES (Fujimori et al., "Modality-Specific Learning Rate Control for Multimodal Classification",
    ACPR 2019): a multimodal classifier and one classifier per modality are trained together (head
    ``multitask``); the loss is ``CE(z_fused) + aux_weight·Σ_m CE(z_m)`` averaged over the training rows.
    After every epoch ``t`` (evaluated at the start of epoch ``t + 1``) each running modality's unimodal
    loss ``ℓ_m(t)`` is measured on the rows held out of the training split (a ``holdout`` fraction chosen
    by row id; per-sample mean, eval mode) and smoothed as ``L̃_m(t) = smoothing·ℓ_m(t−1) +
    (1 − smoothing)·ℓ_m(t)`` (``L̃_m(0) = ℓ_m(0)``). When ``L̃_m`` reaches a new minimum, the branch
    (encoder and the modality's own head parameters, with buffers) is saved; when it has not improved for
    more than ``patience`` epochs, the branch is stopped: restored to its best state (``restore="branch"``),
    its parameters set to ``requires_grad=False`` with no gradient (so no optimizer, with momentum or
    weight decay, moves them) and its encoder kept in eval mode (BatchNorm statistics frozen). A shared
    multimodal classifier keeps training. Inference: the fused logits. Logs ``mses_active_<m>`` and
    ``mses_loss_<m>`` (the smoothed held-out loss).

    Deviations from the AGM repository's implementation (lihong2303/AGM_ICCV2023, the de-facto reference;
    ``head="sum", aux_weight=0`` is its model and loss; see docs/methods/mses.md): stopping there
    multiplies gradients by 0, which momentum and weight decay ignore; it reloads the whole model (rolling
    back the other modalities too) from a checkpoint that is never written when the first epoch stays
    best; it monitors the test set; it exits when every branch has stopped (here the remaining epochs
    change nothing but a shared head).
    """

    name = "mses"
    min_modalities = 2
    supported_heads: ClassVar[tuple[str, ...]] = ("multitask", "sum")

    def __init__(
        self,
        patience: int = 80,
        smoothing: float = 0.6,
        holdout: float = 0.1,
        aux_weight: float = 1.0,
        restore: str = "branch",
        head: str = "multitask",
    ) -> None:
        self.patience = patience
        self.smoothing = smoothing
        self.holdout = holdout
        self.aux_weight = aux_weight
        self.restore = restore
        self.head = head

    def validate(self, modalities: Sequence[str]) -> None:
        super().validate(modalities)
        if len(modalities) < 2:
            raise ConfigError(f"mses needs >= 2 modalities; got {list(modalities)}")
        if isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 0:
            raise ConfigError(f"patience={self.patience!r} is invalid; expected an integer >= 0")
        check_range("smoothing", self.smoothing, 0.0, 1.0)
        check_range("holdout", self.holdout, 0.0, 1.0)
        if not 0.0 < self.holdout < 1.0:
            raise ConfigError(f"holdout={self.holdout} is invalid; expected 0 < holdout < 1")
        check_range("aux_weight", self.aux_weight, 0.0)
        check_choice("restore", self.restore, ("branch", "none"))

    def setup(
        self, model: MultimodalModel, optimizer: Optimizer, make_optimizer: Callable[[], Optimizer]
    ) -> None:
        super().setup(model, optimizer, make_optimizer)
        mods = model.modalities
        self.stopped_ = dict.fromkeys(mods, False)
        self.best_loss_ = dict.fromkeys(mods, math.inf)
        self.best_epoch_ = dict.fromkeys(mods, -1)
        self.last_loss_: dict[str, float | None] = dict.fromkeys(mods, None)  # raw ℓ_m(t−1)
        self.smoothed_ = dict.fromkeys(mods, math.nan)
        self.best_branch_: dict[str, dict[str, Any]] = {}
        self._apply_stops()

    # -- monitoring ---------------------------------------------------------------------------------
    def on_epoch_start(self, epoch: int, train_loader: Any) -> None:
        if epoch > 0 and not all(self.stopped_.values()):
            self.monitor(epoch - 1, head_losses(self.model, train_loader, self.holdout, heldout_only=True))
        self._apply_stops()

    def monitor(self, epoch: int, losses: Mapping[str, Tensor]) -> None:
        """Update every running modality with the held-out losses after ``epoch`` (``losses["heldout"]``
        in head order); save improved branches and stop those past their patience."""
        for i, m in enumerate(self.model.modalities):
            if self.stopped_[m]:
                continue
            raw, last = float(losses["heldout"][i]), self.last_loss_[m]
            smooth = raw if last is None else self.smoothing * last + (1.0 - self.smoothing) * raw
            self.last_loss_[m], self.smoothed_[m] = raw, smooth
            if smooth < self.best_loss_[m]:
                self.best_loss_[m], self.best_epoch_[m] = smooth, epoch
                if self.restore == "branch":
                    self.best_branch_[m] = self._branch_state(m)
            elif epoch - self.best_epoch_[m] > self.patience:
                self._stop(m)

    def _branch_state(self, m: str) -> dict[str, Any]:
        encoder = {k: v.detach().clone() for k, v in self.model.encoders[m].state_dict().items()}
        return {
            "encoder": encoder,
            "head": [p.detach().clone() for p in self.model.head.modality_parameters(m)],
        }

    def _stop(self, m: str) -> None:
        saved = self.best_branch_.get(m)
        if saved is not None:
            self.model.encoders[m].load_state_dict(saved["encoder"])
            with torch.no_grad():
                for p, v in zip(self.model.head.modality_parameters(m), saved["head"], strict=True):
                    p.copy_(v)
        self.stopped_[m] = True
        self._apply_stops()

    def _apply_stops(self) -> None:
        """Freeze every stopped branch: no gradient, no optimizer update, encoder in eval mode."""
        for m, stopped in self.stopped_.items():
            if stopped:
                for p in self.model.modality_parameters(m):
                    p.requires_grad_(False)
                    p.grad = None
                self.model.encoders[m].eval()
        self._trainable = any(p.requires_grad for p in self.model.parameters())
        device = next(self.model.parameters()).device
        self._logs = {}
        for m in self.model.modalities:
            self._logs[f"mses_active_{m}"] = torch.tensor(float(not self.stopped_[m]), device=device)
            if not math.isnan(self.smoothed_[m]):
                self._logs[f"mses_loss_{m}"] = torch.tensor(self.smoothed_[m], device=device)

    # -- the step -----------------------------------------------------------------------------------
    def training_step(self, batch: Batch, epoch: int) -> StepResult:
        if self._trainable:
            return super().training_step(batch, epoch)
        with torch.no_grad():  # every branch stopped and nothing shared: nothing left to train
            loss = self.loss(self.model(batch.inputs), batch)
        return StepResult(loss, dict(self._logs))

    def loss(self, out: ModelOutput, batch: Batch) -> Tensor:
        """``CE(z_fused) + aux_weight·Σ_m CE(z_m)`` per sample, averaged over the training (not held-out)
        rows."""
        ce = F.cross_entropy(out.logits, batch.label, reduction="none")
        if self.aux_weight:
            uni = [F.cross_entropy(z, batch.label, reduction="none") for z in out.unimodal_logits.values()]
            ce = ce + self.aux_weight * torch.stack(uni).sum(0)
        return masked_mean(ce, training_rows(batch, self.holdout))

    def modify_gradients(self, out: ModelOutput, batch: Batch, epoch: int) -> dict[str, Tensor]:
        return dict(self._logs)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self._apply_stops()
