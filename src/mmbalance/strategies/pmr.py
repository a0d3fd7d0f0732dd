"""PMR: prototypical modal rebalance (Fan, Xu, Wang, Wang, Guo, CVPR 2023, arXiv 2211.07089)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.optim import Optimizer

from mmbalance import distributed
from mmbalance.errors import check_range
from mmbalance.models import MultimodalModel
from mmbalance.strategies._checks import check_bool, check_modality_count
from mmbalance.strategies.base import Strategy
from mmbalance.strategies.registry import STRATEGIES
from mmbalance.types import Batch, StepResult


def class_means(features: Tensor, label: Tensor, num_classes: int, fallback: Tensor) -> Tensor:
    """``[C, D]`` mean feature of each class; a class without samples keeps its row of ``fallback``.

    >>> f, y = torch.tensor([[1.0, 0.0], [3.0, 2.0], [5.0, 5.0]]), torch.tensor([0, 0, 2])
    >>> class_means(f, y, 3, torch.full((3, 2), -1.0)).tolist()
    [[2.0, 1.0], [-1.0, -1.0], [5.0, 5.0]]
    """
    sums = torch.zeros(num_classes, features.shape[1], dtype=features.dtype, device=features.device)
    sums.index_add_(0, label, features)
    counts = torch.bincount(label, minlength=num_classes).to(features.dtype).unsqueeze(1)
    return torch.where(counts > 0, sums / counts.clamp_min(1), fallback)


def prototype_logits(features: Tensor, prototypes: Tensor) -> Tensor:
    """``-‖h_i − c_k‖₂`` for every sample ``i`` and class ``k`` (``[B, C]``): PMR's non-parametric scores."""
    return -torch.cdist(features, prototypes.to(features.dtype))


def rebalance_coefficients(scores: Tensor) -> Tensor:
    """Per-modality PCE coefficient ``clip(max_j s_j / s_m − 1, 0, 1)`` from batch confidence sums ``s``.

    For two modalities with ``ρ = s_a / s_v`` this is PMR's rule: the slow modality gets
    ``clip(1/ρ − 1, 0, 1)`` (audio) or ``clip(ρ − 1, 0, 1)`` (visual), the dominant one 0.

    >>> rebalance_coefficients(torch.tensor([30.0, 20.0, 10.0])).tolist()
    [0.0, 0.5, 1.0]
    """
    return (scores.max() / scores.clamp_min(torch.finfo(scores.dtype).tiny) - 1).clamp(0.0, 1.0)


def mean_entropy(logits: Tensor) -> Tensor:
    """Batch mean of the per-sample entropy of ``softmax(logits)``."""
    logp = F.log_softmax(logits, dim=1)
    return -(logp.exp() * logp).sum(1).mean()


@STRATEGIES.register("pmr")
class PMR(Strategy):
    """Prototypical modal rebalance: accelerate the slow modality towards its class prototypes.

    Paper: Y. Fan, W. Xu, H. Wang, J. Wang, S. Guo, "PMR: Prototypical Modal Rebalance for Multimodal
    Learning", CVPR 2023 (arXiv 2211.07089). Class prototypes ``c_m,k`` (mean encoder feature of class
    ``k``) are recomputed at every epoch start from the first ``proto_fraction`` of the training batches
    (eval mode, no gradient) and smoothed ``c ← (1−μ)c_new + μ c_old`` (μ = ``momentum_coef``; not at epoch
    0). Per step, with ``d_m,ik = ‖h_m,i − c_m,k‖`` and ``s_m = Σ_i softmax(−d_m,i)[y_i]`` (a per-batch sum),
    each modality gets ``β_m = clip(max_j s_j / s_m − 1, 0, 1)`` and, inside the modulation window,
    ``L = CE(z, y) + α Σ_m β_m CE(−d_m, y) − λ·max_m β_m·H_dom`` where ``H_dom`` is the batch-mean entropy
    of the dominant modality's (largest ``s``) prototype distribution, applied during the first
    ``entropy_epochs`` epochs of the window (prototypical entropy regularisation). Inference: the fused
    head's logits. Two modalities give the paper's two-modality rule; three or more use the generalisation
    above (each modality measured against the most confident one).

    Differences from the released code (fanyunfeng-bit/Modal-Imbalance-PMR): it has no entropy term
    (``entropy_weight=0`` reproduces it) and switches the PCE coefficient on/off (``α`` or 0) instead of
    scaling it with the imbalance (``scaled=False`` reproduces it); prototypes come from the first
    ``proto_fraction`` of the epoch's batches as there, but a class absent from them keeps its previous
    prototype instead of becoming NaN; distances use ``torch.cdist``.
    """

    name = "pmr"
    min_modalities = 2
    supported_heads: ClassVar[tuple[str, ...]] = ("concat", "sum", "shared", "max", "mul")

    def __init__(
        self,
        head: str = "concat",
        alpha: float = 1.0,
        entropy_weight: float = 0.1,
        entropy_epochs: int = 10,
        momentum_coef: float = 0.2,
        proto_fraction: float = 0.1,
        modulation_starts: int = 0,
        modulation_ends: int = 100,
        scaled: bool = True,
    ) -> None:
        self.head, self.alpha, self.entropy_weight, self.entropy_epochs = (
            head,
            alpha,
            entropy_weight,
            entropy_epochs,
        )
        self.momentum_coef, self.proto_fraction = momentum_coef, proto_fraction
        self.modulation_starts, self.modulation_ends, self.scaled = modulation_starts, modulation_ends, scaled

    def validate(self, modalities: Sequence[str]) -> None:
        super().validate(modalities)
        check_modality_count(self.name, modalities, 2)
        check_range("alpha", self.alpha, 0.0)
        check_range("entropy_weight", self.entropy_weight, 0.0)
        check_range("entropy_epochs", self.entropy_epochs, 0)
        check_range("momentum_coef", self.momentum_coef, 0.0, 1.0)
        check_range("proto_fraction", self.proto_fraction, 0.0, 1.0)
        check_range("modulation_starts", self.modulation_starts, 0)
        check_range("modulation_ends", self.modulation_ends, self.modulation_starts)
        check_bool("scaled", self.scaled)

    def setup(
        self, model: MultimodalModel, optimizer: Optimizer, make_optimizer: Callable[[], Optimizer]
    ) -> None:
        super().setup(model, optimizer, make_optimizer)
        self.prototypes_: dict[str, Tensor] = {}

    # -- prototypes ---------------------------------------------------------------------------------
    @torch.no_grad()
    def on_epoch_start(self, epoch: int, train_loader: Any) -> None:
        """Recompute the prototypes from the first ``proto_fraction`` of the epoch's batches."""
        model, device = self.model, next(self.model.parameters()).device
        n_batches = max(1, int(self.proto_fraction * len(train_loader)))
        feats: dict[str, list[Tensor]] = {m: [] for m in model.modalities}
        labels: list[Tensor] = []
        was_training = model.training
        model.eval()
        for i, batch in enumerate(train_loader):
            if i >= n_batches:
                break
            batch = batch.to(device)
            for m, h in model.encode(batch.inputs).items():
                feats[m].append(h.float())
            labels.append(batch.label)
        model.train(was_training)
        label, classes = distributed.gather(torch.cat(labels)), model.head.num_classes  # every process's rows
        for m in model.modalities:
            h = distributed.gather(torch.cat(feats[m]))
            old = self.prototypes_.get(m, torch.zeros(classes, h.shape[1], device=device))
            new = class_means(h, label, classes, fallback=old)
            self.prototypes_[m] = torch.lerp(new, old, self.momentum_coef) if m in self.prototypes_ else new

    # -- the step -----------------------------------------------------------------------------------
    def training_step(self, batch: Batch, epoch: int) -> StepResult:
        self.optimizer.zero_grad(set_to_none=True)
        out = self.model(batch.inputs)
        loss, logs = self.pmr_loss(out.features, out.logits, batch.label, epoch)
        loss.backward()
        self.optimizer.step()
        return StepResult(loss.detach(), logs)

    def pmr_loss(
        self, features: Mapping[str, Tensor], fused: Tensor, label: Tensor, epoch: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The PMR objective for one batch and the logs of its coefficients."""
        mods = list(features)
        logits = {m: prototype_logits(features[m], self.prototypes_[m]) for m in mods}
        pce = torch.stack([F.cross_entropy(logits[m], label) for m in mods])
        with torch.no_grad():  # confidence sums s_m over the batch; coefficients carry no gradient
            scores = torch.stack([F.softmax(logits[m], 1).gather(1, label[:, None]).sum() for m in mods])
            distributed.sum_(scores)  # over the global batch
            coef = rebalance_coefficients(scores)
            if not self.scaled:
                coef = (coef > 0).to(coef.dtype)
        logs = {f"pmr_coef_{m}": coef[i] for i, m in enumerate(mods)}
        logs["pmr_imbalance"] = scores.max() / scores.min().clamp_min(torch.finfo(scores.dtype).tiny)
        loss = F.cross_entropy(fused, label)
        if not self.modulation_starts <= epoch <= self.modulation_ends:
            return loss, {k: torch.zeros_like(v) if k.startswith("pmr_coef") else v for k, v in logs.items()}
        loss = loss + self.alpha * (coef * pce).sum()
        if self.entropy_weight > 0 and epoch < self.modulation_starts + self.entropy_epochs:
            entropies = torch.stack([mean_entropy(logits[m]) for m in mods])
            dominant = (entropies * F.one_hot(scores.argmax(), len(mods)).to(entropies.dtype)).sum()
            loss = loss - self.entropy_weight * coef.max() * dominant
            logs["pmr_dominant_entropy"] = dominant.detach()
        return loss, logs

    # -- state --------------------------------------------------------------------------------------
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        device = next(self.model.parameters()).device
        self.prototypes_ = {m: c.to(device) for m, c in self.prototypes_.items()}
