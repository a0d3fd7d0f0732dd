"""SMV: sample-level modality valuation (Wei, Feng, Wang, Hu, CVPR 2024, arXiv 2309.06255)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import product
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from mmbalance import distributed
from mmbalance.errors import ConfigError, check_range
from mmbalance.models import MultimodalModel
from mmbalance.strategies._checks import check_modality_count
from mmbalance.strategies.base import Strategy
from mmbalance.strategies.registry import STRATEGIES
from mmbalance.types import Batch, StepResult

MAX_MODALITIES = 8
"""SMV evaluates the head on all ``2^M`` coalitions of modalities."""


def shapley_matrix(num_modalities: int) -> Tensor:
    """``[M, 2^M]`` matrix ``A`` with ``φ = A v`` for coalition values ``v[S]`` (bit ``m`` set: ``m ∈ S``).

    ``A[m, S∪{m}] += w(S)`` and ``A[m, S] -= w(S)`` with ``w(S) = |S|!(M−|S|−1)!/M!`` for ``S ∌ m``.

    >>> shapley_matrix(2).tolist()  # columns: {}, {a}, {b}, {a, b}
    [[-0.5, 0.5, -0.5, 0.5], [-0.5, -0.5, 0.5, 0.5]]
    """
    m_count, a = num_modalities, torch.zeros(num_modalities, 2**num_modalities, dtype=torch.float64)
    for m, s in product(range(m_count), range(2**m_count)):
        if s >> m & 1:
            continue
        size = bin(s).count("1")
        w = math.factorial(size) * math.factorial(m_count - size - 1) / math.factorial(m_count)
        a[m, s | 1 << m] += w
        a[m, s] -= w
    return a


def coalition_values(model: MultimodalModel, features: Mapping[str, Tensor], label: Tensor) -> Tensor:
    """``[2^M, B]`` values ``v(S) = |S|·1[argmax head(h_S) = y]``; ``h_S``: features outside ``S`` zeroed."""
    rows = [torch.zeros_like(label, dtype=torch.float32)]  # the empty coalition is worth 0
    for s in range(1, 2 ** len(features)):
        kept = {m: f if s >> i & 1 else torch.zeros_like(f) for i, (m, f) in enumerate(features.items())}
        correct = model.head(kept).argmax(1) == label
        rows.append(correct.float() * bin(s).count("1"))
    return torch.stack(rows)


def copy_counts(values: Tensor) -> Tensor:
    """Extra copies per sample and modality from its Shapley value ``φ`` (a fair share is 1):
    ``φ ≥ 1``: 0, ``0.4 < φ < 1``: 1, ``−0.1 < φ ≤ 0.4``: 2, ``φ ≤ −0.1``: 3.

    >>> copy_counts(torch.tensor([1.5, 1.0, 0.5, 0.0, -0.5])).tolist()
    [0, 0, 1, 2, 3]
    """
    return (values < 1).long() + (values <= 0.4).long() + (values <= -0.1).long()


@STRATEGIES.register("smv")
class SMV(Strategy):
    """Sample-level modality valuation: extra training of each sample's low-contribution modality.

    Paper: Y. Wei, R. Feng, Z. Wang, D. Hu, "Enhancing Multimodal Cooperation via Sample-level Modality
    Valuation", CVPR 2024 (arXiv 2309.06255). From epoch ``warmup_epochs`` on, every epoch starts with a
    valuation pass over the training loader (eval mode, no gradient): per sample, the coalition value
    ``v(S) = |S|·1[correct]`` of the fused head on features with the modalities outside ``S`` zeroed gives
    Shapley values ``φ_m`` (a per-sample statistic; a fair share is 1, and ``Σ_m φ_m = M·1[correct]``).
    A sample whose ``φ_m < 1`` gets 1–3 extra copies (:func:`copy_counts`) in which only modality ``m`` is
    kept (the other encoders' outputs zeroed before the head). The loss is the mean cross-entropy over the
    batch enlarged by these copies; inference is the plain fused head.

    Differences from the released code (GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation,
    ``sample_level.py``): the copies join their original's batch (weighted by multiplicity) instead of
    being appended to the dataset and reshuffled, so an epoch keeps its number of steps (the released
    epochs grow by the number of copies) and encoders run once per original; 3+ modalities use the
    ``M``-player Shapley value with ``v(S) = |S|·1[correct]`` (the released code is two-player) and keep
    only the valued modality in a copy; the modality-level variant is not implemented.
    """

    name = "smv"
    min_modalities = 2
    supported_heads: ClassVar[tuple[str, ...]] = ("concat", "sum")

    def __init__(self, head: str = "concat", warmup_epochs: int = 5) -> None:
        self.head, self.warmup_epochs = head, warmup_epochs

    def validate(self, modalities: Sequence[str]) -> None:
        super().validate(modalities)
        check_modality_count(self.name, modalities, 2, MAX_MODALITIES)
        check_range("warmup_epochs", self.warmup_epochs, 0)

    def setup(self, model: Any, optimizer: Any, make_optimizer: Any) -> None:
        super().setup(model, optimizer, make_optimizer)
        self.copies_: Tensor | None = None  # [rows, M] extra copies per dataset row and kept modality
        self.values_: Tensor | None = None  # [M] mean Shapley value over the training set

    @torch.no_grad()
    def on_epoch_start(self, epoch: int, train_loader: Any) -> None:
        """From ``warmup_epochs`` on, value every training sample and set its copies for this epoch."""
        if epoch < self.warmup_epochs:
            self.copies_ = self.values_ = None
            return
        model, device = self.model, next(self.model.parameters()).device
        A = shapley_matrix(len(model.modalities)).to(device)
        rows, phis = [], []
        was_training = model.training
        model.eval()
        for batch in train_loader:
            batch = batch.to(device)
            rows.append(self._index(batch))
            phis.append((A @ coalition_values(model, model.encode(batch.inputs), batch.label).double()).T)
        model.train(was_training)
        index, phi = distributed.gather(torch.cat(rows)), distributed.gather(torch.cat(phis))  # all rows
        self.copies_ = torch.zeros(int(index.max()) + 1, phi.shape[1], dtype=torch.long, device=device)
        self.copies_[index] = copy_counts(phi)
        self.values_ = phi.mean(0).float()

    def _index(self, batch: Batch) -> Tensor:
        if batch.index is None:
            raise ConfigError("smv needs dataset row ids (Batch.index); got a batch without them")
        return batch.index

    def training_step(self, batch: Batch, epoch: int) -> StepResult:
        self.optimizer.zero_grad(set_to_none=True)
        feats = self.model.encode(batch.inputs)
        logits = self.model.head(feats)
        if self.copies_ is None:
            loss, logs = F.cross_entropy(logits, batch.label), {}
        else:
            loss, logs = self.enlarged_loss(feats, logits, batch.label, self.copies_[self._index(batch)])
        loss.backward()
        self.optimizer.step()
        return StepResult(loss.detach(), logs)

    def enlarged_loss(
        self, feats: Mapping[str, Tensor], logits: Tensor, label: Tensor, copies: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Mean CE over the batch and ``copies[i, m]`` copies of sample ``i`` keeping modality ``m`` only."""
        total = F.cross_entropy(logits, label, reduction="sum")
        for j, m in enumerate(feats):
            only = {k: f if k == m else torch.zeros_like(f) for k, f in feats.items()}
            ce = F.cross_entropy(self.model.head(only), label, reduction="none")
            total = total + (copies[:, j].to(ce.dtype) * ce).sum()
        extra = copies.sum()
        logs = {"smv_extra": extra.float() / label.shape[0]}
        if self.values_ is not None:
            logs.update({f"smv_value_{m}": self.values_[j] for j, m in enumerate(feats)})
        return total / (label.shape[0] + extra), logs

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        device = next(self.model.parameters()).device
        self.copies_ = None if self.copies_ is None else self.copies_.to(device)
        self.values_ = None if self.values_ is None else self.values_.to(device)
