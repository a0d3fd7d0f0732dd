"""DOMFN: divergence-orientated multimodal fusion (Yang, Zhang, Gao, Gao, Zhu, ACM MM 2022)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from mmbalance.errors import ConfigError, check_choice, check_range
from mmbalance.models import presence_weights
from mmbalance.strategies._checks import check_modality_count, check_widths
from mmbalance.strategies.base import Strategy
from mmbalance.strategies.registry import STRATEGIES
from mmbalance.types import Batch, ModelOutput, StepResult


def penalties(probs: Tensor, reference: Tensor) -> Tensor:
    """``[M, B]`` functional penalties ``max_k (o_m,ik − r_ik)²`` of unimodal scores ``probs`` ``[M, B, C]``.

    >>> o = torch.tensor([[[0.9, 0.1]], [[0.5, 0.5]]])
    >>> [round(v, 4) for v in penalties(o, o.mean(0)).flatten().tolist()]
    [0.04, 0.04]
    """
    return (probs - reference).square().amax(dim=-1)


def fusion_gate(pen: Tensor, tau: float, gamma: float) -> Tensor:
    """``[B]`` bool: a sample is fused when every modality's ``penalty / tau < gamma``."""
    return (pen / tau < gamma).all(dim=0)


@STRATEGIES.register("domfn")
class DOMFN(Strategy):
    """Per-sample choice between multimodal fusion and the most confident unimodal branch.

    Paper: Y. Yang, J. Zhang, F. Gao, X. Gao, H. Zhu, "DOMFN: A Divergence-Orientated Multi-Modal Fusion
    Network for Resume Assessment", ACM MM 2022 (doi 10.1145/3503161.3548203). Each modality has its own
    classifier (scores ``o_m``) and a fused MLP classifier scores the concatenated features (``o_mm``;
    ``multitask`` head with ``head_hidden``). Per sample ``i``: ``ℓ_m,i``, ``ℓ_mm,i`` are cross-entropies,
    ``p_m,i = max_k (o_m,ik − r_ik)²`` with ``r`` the mean unimodal score (``reference="mean"``) or the
    fused one (``"fused"``). If ``p_m,i/τ < γ`` for every ``m`` the sample is *fused* and contributes
    ``Σ_m (½ℓ_m,i² − η p_m,i + ℓ_m,i) + ℓ_mm,i``, otherwise only ``Σ_m ℓ_m,i`` (the fused head learns
    nothing from it). The batch loss is the mean over samples (a per-sample statistic, vectorised).
    During the first :meth:`pre_training_epochs` epochs only ``Σ_m ℓ_m`` is trained: ``pre_epochs`` when
    set, else ``pre_fraction`` of the run's epoch budget rounded half up (``floor(f·epochs + ½)``; the
    release trains 30 unimodal epochs before 200 fused ones, 30/230 ≈ 0.13). Inference per sample: fused
    scores if the gate accepts, else the unimodal scores with the highest maximum; during pre-training
    (which the released code never evaluates) always the latter.

    ``scores="softmax"`` uses logits for the losses and softmax probabilities for penalties and
    confidence; ``"sigmoid"`` reproduces the released code, which squashes every output with a sigmoid
    and feeds those to the cross-entropy. Differences from the released code (njustkmg/DOMFN,
    njustkmg/MM22_DOMFN): batches instead of one optimiser step per sample (batch size 1); one optimiser
    with per-modality groups (momentum and weight decay still act on the fused head when its samples are
    rejected); ties in confidence go to the first modality (released: the previous sample's output);
    validation-based model selection. The MOSI release uses ``reference="mean"``, the resume release
    ``"fused"``. With two modalities and the mean reference both penalties are equal and at most 0.25.
    """

    name = "domfn"
    min_modalities = 2
    supported_heads: ClassVar[tuple[str, ...]] = ("multitask",)

    def __init__(
        self,
        head: str = "multitask",
        head_hidden: Sequence[int] = (64,),
        gamma: float = 0.8,
        eta: float = 0.5,
        tau: float = 0.5,
        pre_fraction: float = 0.13,
        pre_epochs: int | None = None,
        reference: str = "mean",
        scores: str = "softmax",
    ) -> None:
        self.head, self.head_hidden, self.gamma, self.eta, self.tau = head, head_hidden, gamma, eta, tau
        self.pre_fraction, self.pre_epochs = pre_fraction, pre_epochs
        self.reference, self.scores = reference, scores

    def head_config(self) -> dict[str, Any]:
        return {**super().head_config(), "hidden": list(self.head_hidden)}

    def validate(self, modalities: Sequence[str]) -> None:
        super().validate(modalities)
        check_modality_count(self.name, modalities, 2)
        for key in ("gamma", "eta"):
            check_range(key, getattr(self, key), 0.0)
        check_range("tau", self.tau, 1e-12)
        check_range("pre_fraction", self.pre_fraction, 0.0, 1.0)
        if self.pre_epochs is not None:
            check_range("pre_epochs", self.pre_epochs, 0)
        check_choice("reference", self.reference, ("mean", "fused"))
        check_choice("scores", self.scores, ("softmax", "sigmoid"))
        check_widths("head_hidden", self.head_hidden)

    def pre_training_epochs(self) -> int:
        """How many epochs train the unimodal branches alone: ``pre_epochs`` when set, else
        ``floor(pre_fraction · epochs + ½)`` of the run's budget (``epochs``, which the trainer sets)."""
        if self.pre_epochs is not None:
            return int(self.pre_epochs)
        if self.epochs is None:
            raise ConfigError(
                "domfn sizes its pre-training from the run's epochs, which are unknown here (strategy.epochs "
                "is None); expected a Trainer to set them, or set pre_epochs"
            )
        return math.floor(self.pre_fraction * self.epochs + 0.5)

    # -- pieces -------------------------------------------------------------------------------------
    def _as_logits(self, z: Tensor) -> Tensor:
        """What the cross-entropy receives: the logits, or (released) their sigmoid."""
        return torch.sigmoid(z) if self.scores == "sigmoid" else z

    def _probs(self, z: Tensor) -> Tensor:
        return torch.sigmoid(z) if self.scores == "sigmoid" else F.softmax(z, dim=-1)

    def gate(self, out: ModelOutput) -> tuple[Tensor, Tensor, Tensor]:
        """Unimodal scores ``[M, B, C]``, penalties ``[M, B]`` and the fusion gate ``[B]``."""
        probs = torch.stack([self._probs(z) for z in out.unimodal_logits.values()])
        ref = probs.mean(0) if self.reference == "mean" else self._probs(out.logits)
        pen = penalties(probs, ref)
        return probs, pen, fusion_gate(pen, self.tau, self.gamma)

    def domfn_loss(self, out: ModelOutput, label: Tensor, epoch: int) -> tuple[Tensor, dict[str, Tensor]]:
        """The batch loss (mean of the per-sample DOMFN losses) and the gate's logs."""
        uni = torch.stack(
            [
                F.cross_entropy(self._as_logits(z), label, reduction="none")
                for z in out.unimodal_logits.values()
            ]
        )  # [M, B]
        if epoch < self.pre_training_epochs():
            return uni.sum(0).mean(), {}
        _, pen, fused = self.gate(out)
        multi = F.cross_entropy(self._as_logits(out.logits), label, reduction="none")
        accepted = (0.5 * uni.square() - self.eta * pen + uni).sum(0) + multi
        per_sample = torch.where(fused, accepted, uni.sum(0))
        logs = {"domfn_fused_rate": fused.float().mean(), "domfn_penalty": pen.amax(0).mean()}
        return per_sample.mean(), {k: v.detach() for k, v in logs.items()}

    # -- the step and inference ---------------------------------------------------------------------
    def setup(self, model: Any, optimizer: Any, make_optimizer: Any) -> None:
        super().setup(model, optimizer, make_optimizer)
        self.pretraining_ = self.pre_training_epochs() > 0

    def on_epoch_start(self, epoch: int, train_loader: Any) -> None:
        self.pretraining_ = epoch < self.pre_training_epochs()

    def training_step(self, batch: Batch, epoch: int) -> StepResult:
        self.optimizer.zero_grad(set_to_none=True)
        loss, logs = self.domfn_loss(self.model(batch.inputs), batch.label, epoch)
        loss.backward()
        self.optimizer.step()
        return StepResult(loss.detach(), logs)

    def predict(self, out: ModelOutput) -> Tensor:
        """Per sample: the fused scores when the gate accepts, else the most confident modality's scores
        (always the latter while pre-training: the fused classifier has not been trained yet, and for a row
        that lacks a modality: the choice is then among the modalities it has)."""
        probs, _, fused = self.gate(out)
        fused = fused & (not self.pretraining_)
        scores = torch.stack([self._as_logits(z) for z in out.unimodal_logits.values()])  # [M, B, C]
        confidence = probs.amax(-1)  # [M, B]
        present = presence_weights(out.present, list(out.unimodal_logits), confidence[0])
        if present is not None:  # only a modality the row has can be chosen, never the fused scores
            confidence = confidence.masked_fill(present == 0, float("-inf"))
            fused = fused & (present > 0).all(0)
        best = confidence.argmax(0)  # [B]: the modality with the highest maximum score
        chosen = scores.gather(0, best[None, :, None].expand(1, *scores.shape[1:])).squeeze(0)
        return torch.where(fused[:, None], self._as_logits(out.logits), chosen)
