"""ReconBoost: alternating boosting with modality reconcilement (Hua et al., ICML 2024, arXiv 2405.09321)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.optim import Optimizer

from mmbalance.errors import check_range
from mmbalance.models import MultimodalModel, presence_weights
from mmbalance.strategies._checks import check_bool, check_modality_count, check_widths
from mmbalance.strategies.base import Strategy
from mmbalance.strategies.registry import STRATEGIES
from mmbalance.types import Batch, ModelOutput, StepResult


def reconcile_loss(logits: Tensor, others: Tensor, label: Tensor, weight1: float, weight2: float) -> Tensor:
    """Batch mean of ``(w₁ − w₂·q_y)·CE(f, y) / C`` with ``q = softmax(others)`` (the other learners).

    A sample the other modalities already classify confidently (large ``q_y``) weighs less: the gradient
    of the KL-based reconcilement regulariser, as a per-sample weight on the cross-entropy.
    """
    q_y = F.softmax(others, dim=1).gather(1, label[:, None]).squeeze(1)
    weights = weight1 - weight2 * q_y
    return (weights * F.cross_entropy(logits, label, reduction="none")).mean() / logits.shape[1]


@STRATEGIES.register("reconboost")
class ReconBoost(Strategy):
    """Alternating stages: one modality learns against the others' ensemble, then a joint correction.

    Paper: C. Hua, Q. Xu, S. Bao, Z. Yang, Q. Huang, "ReconBoost: Boosting Can Achieve Modality
    Reconcilement", ICML 2024 (arXiv 2405.09321). Every learner is ``f_m = H(φ_m(x_m))`` with one shared
    head ``H`` (``boost`` head: an MLP with ``head_hidden``) and the ensemble is ``F = β·Σ_m f_m`` over the
    modalities trained so far (``β`` learnable, starting at ``boost_rate``). Stage ``s`` trains modality
    ``s mod M`` (dataset order): ``epochs_per_stage`` epochs of phase 1 on
    ``(w₁ − w₂·q_y)·CE(f_m, y)/C`` with ``q = softmax(F_−m)`` (the other trained learners, no gradient,
    eval mode; uniform when there is none) plus ``α·MSE(softmax(f_m), softmax(f_prev))`` against the
    learner of the previous stage (memory consolidation, gradient into ``f_m`` only), updating ``φ_m``
    and ``H``; then ``correct_epochs`` epochs of phase 2 (global rectification) on ``CE(F, y)``, updating
    every trained encoder, ``H`` and ``β``. The optimizer is re-created at every phase
    (``reset_optimizer``). Inference: ``F`` over the modalities trained so far (the current one included).

    Differences from the released code (huacong/ReconBoost): its memory-consolidation term detaches both
    arguments, so it has no gradient (``alpha=0`` reproduces that); the other learners' forwards run in
    eval mode (released: train mode under ``no_grad``, moving their BatchNorm statistics); before any
    other learner exists ``q`` is uniform (released: a constant expanded to one column, so ``q_y = 1``);
    encoders start from scratch (released: ``--use_pretrain`` loads unimodal checkpoints); selection on
    the validation split; evaluation after every epoch, not only after every stage; any number of
    modalities (cyclic order).
    """

    name = "reconboost"
    min_modalities = 2
    supported_heads: ClassVar[tuple[str, ...]] = ("boost",)

    def __init__(
        self,
        head: str = "boost",
        head_hidden: Sequence[int] = (256,),
        boost_rate: float = 1.0,
        epochs_per_stage: int = 4,
        correct_epochs: int = 4,
        weight1: float = 5.0,
        weight2: float = 1.0,
        alpha: float = 0.5,
        reset_optimizer: bool = True,
    ) -> None:
        self.head, self.head_hidden, self.boost_rate = head, head_hidden, boost_rate
        self.epochs_per_stage, self.correct_epochs = epochs_per_stage, correct_epochs
        self.weight1, self.weight2, self.alpha, self.reset_optimizer = (
            weight1,
            weight2,
            alpha,
            reset_optimizer,
        )

    def head_config(self) -> dict[str, Any]:
        return {**super().head_config(), "hidden": list(self.head_hidden), "boost_rate": self.boost_rate}

    def validate(self, modalities: Sequence[str]) -> None:
        super().validate(modalities)
        check_modality_count(self.name, modalities, 2)
        check_range("epochs_per_stage", self.epochs_per_stage, 1)
        check_range("correct_epochs", self.correct_epochs, 0)
        for key in ("weight1", "weight2", "alpha", "boost_rate"):
            check_range(key, getattr(self, key), 0.0)
        check_widths("head_hidden", self.head_hidden)
        check_bool("reset_optimizer", self.reset_optimizer)

    def setup(
        self, model: MultimodalModel, optimizer: Optimizer, make_optimizer: Callable[[], Optimizer]
    ) -> None:
        super().setup(model, optimizer, make_optimizer)
        self.stage_, self.phase_ = 0, 1

    # -- schedule -----------------------------------------------------------------------------------
    def position(self, epoch: int) -> tuple[int, int]:
        """``(stage, phase)`` of an epoch: phase 1 for the first ``epochs_per_stage`` epochs of a stage."""
        stage, offset = divmod(epoch, self.epochs_per_stage + self.correct_epochs)
        return stage, 1 if offset < self.epochs_per_stage else 2

    def trained(self, stage: int) -> list[str]:
        """Modalities trained in stages ``0..stage`` (dataset order): the learners of the ensemble."""
        mods = self.model.modalities
        return [m for i, m in enumerate(mods) if i <= stage]

    def on_epoch_start(self, epoch: int, train_loader: Any) -> None:
        """Move to the epoch's stage and phase; a new phase gets a fresh optimizer."""
        stage, phase = self.position(epoch)
        if (stage, phase) != (self.stage_, self.phase_) and self.reset_optimizer:
            self.optimizer = self.make_optimizer()
        self.stage_, self.phase_ = stage, phase

    # -- the step -----------------------------------------------------------------------------------
    def _learner(self, m: str, batch: Batch) -> Tensor:
        return self.model.head.unimodal(m, self.model.encoders[m](batch.inputs[m]))

    @torch.no_grad()
    def _frozen_learners(self, mods: Sequence[str], batch: Batch, like: Tensor) -> Tensor:
        """``Σ_m f_m`` of ``mods`` in eval mode without gradient (zeros shaped like ``like`` for none)."""
        encoders = [self.model.encoders[m] for m in mods]
        modes = [e.training for e in encoders]
        for e in encoders:
            e.eval()
        total = sum((self._learner(m, batch) for m in mods), torch.zeros_like(like))
        for e, mode in zip(encoders, modes, strict=True):
            e.train(mode)
        return total

    def training_step(self, batch: Batch, epoch: int) -> StepResult:
        stage, phase = self.position(epoch)
        self.optimizer.zero_grad(set_to_none=True)
        loss, logs = self.phase_one_loss(stage, batch) if phase == 1 else self.phase_two_loss(stage, batch)
        loss.backward()
        self.optimizer.step()
        logs["boost_rate"] = self.model.head.boost_rate.detach().clone()
        return StepResult(loss.detach(), logs)

    def phase_one_loss(self, stage: int, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        mods = self.model.modalities
        active = mods[stage % len(mods)]
        logits = self._learner(active, batch)
        others = self._frozen_learners([m for m in self.trained(stage) if m != active], batch, logits)
        ensemble = self.model.head.boost_rate.detach() * others  # zeros (uniform q) before any other learner
        loss = reconcile_loss(logits, ensemble, batch.label, self.weight1, self.weight2)
        logs = {"reconboost_q_y": F.softmax(ensemble, 1).gather(1, batch.label[:, None]).mean().detach()}
        if self.alpha > 0 and stage > 0:
            previous = self._frozen_learners([mods[(stage - 1) % len(mods)]], batch, logits)
            loss = loss + self.alpha * F.mse_loss(F.softmax(logits, 1), F.softmax(previous, 1))
        return loss, logs

    def phase_two_loss(self, stage: int, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        learners = torch.stack([self._learner(m, batch) for m in self.trained(stage)]).sum(0)
        return F.cross_entropy(self.model.head.boost_rate * learners, batch.label), {}

    # -- inference ----------------------------------------------------------------------------------
    def predict(self, out: ModelOutput) -> Tensor:
        """``β·Σ_m f_m`` over the modalities trained so far (all of them once every stage has run)."""
        mods = self.trained(self.stage_)
        learners = torch.stack([out.unimodal_logits[m] for m in mods])
        present = presence_weights(out.present, mods, learners[0])  # absent modalities add nothing
        total = learners.sum(0) if present is None else (present.unsqueeze(-1) * learners).sum(0)
        return self.model.head.boost_rate * total
