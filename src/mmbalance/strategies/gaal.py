"""GAAL: gradient-aligned alternating learning (Huang & Yang, ICME 2026, arXiv 2604.01579)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor

from mmbalance import distributed
from mmbalance.errors import ConfigError, check_choice, check_range
from mmbalance.grad import (
    cosine,
    flatten,
    frozen_bn_stats,
    gradients_of,
    project_to_cone,
    unflatten,
    write_grads_,
)
from mmbalance.precision import autocast_off
from mmbalance.strategies.alternating import Alternating
from mmbalance.strategies.registry import STRATEGIES
from mmbalance.types import Batch


def hard_sample_loss(logits: Tensor, label: Tensor, ratio: float) -> Tensor:
    """Cross-entropy over the ``k = max(1, floor(ratio·B))`` samples of highest predictive entropy (``B``:
    the global batch; under torchrun the rows are selected among every process's rows).

    >>> logits = torch.tensor([[5.0, 0.0], [0.1, 0.0], [0.0, 0.9]])  # row 1 is the least certain
    >>> label = torch.tensor([0, 1, 1])
    >>> torch.allclose(hard_sample_loss(logits, label, 0.5), F.cross_entropy(logits[1:2], label[1:2]))
    True
    """
    k = max(1, int(ratio * logits.shape[0] * distributed.world_size()))  # of the global batch
    logp = torch.log_softmax(logits, dim=1)
    entropy = -(logp.exp() * logp).sum(1)
    if not distributed.active():
        hard = entropy.topk(k).indices
        return F.cross_entropy(logits[hard], label[hard])
    # Under torchrun: the k hardest rows of the global batch; this process's share of their mean, scaled so
    # that the average over the processes (the gradient reduction) is that mean.
    mine = distributed.global_top_k(entropy, k).to(logits.dtype)
    ce = F.cross_entropy(logits, label, reduction="none")
    return (ce * mine).sum() * distributed.world_size() / k


@STRATEGIES.register("gaal")
class GAAL(Alternating):
    """Alternating learning through a shared classifier with uncertainty-based gradient surgery.

    Each mini-batch, modalities take turns. For modality ``m``'s half-step, the reference is the shared
    head's gradient of the cross-entropy over the *other* modalities' hardest samples (the ``ratio``
    fraction with the highest predictive entropy; ``ratios`` sets it per modality, the paper's λ^I, λ^T).
    If ``m``'s head gradient ``g`` conflicts with a reference (``<g, r> < 0``), it is replaced by the
    projection onto the cone of the references, ``g + Rᵀv`` with ``v`` the solution of GEM's dual QP
    with lower bound ``margin`` (ε) and ridge ``eps`` (δ) — a closed form for one reference. The
    encoder's gradient is not modified. Fusion at test time averages the shared head's logits.

    Options: ``ref_features="fresh"`` recomputes the features of a modality after its update (under
    ``no_grad``, training mode, BatchNorm running statistics left untouched) before they serve as a
    reference, as the released code's re-forward does;
    ``"stale"`` reuses the pre-update features (one encoder forward less). The modality that steps last
    serves as no later reference, so it is never re-forwarded: ``order="cost"`` steps the encoders in
    ascending forward cost, so the most expensive one goes last (``"dataset"``: the dataset's order; or a
    list of the modalities). ``ghost_steps=True``
    reproduces the released code under torch 1.x: idle encoders hold zero gradients, so the optimizer
    still applies weight decay and momentum to them at every half-step (the paper draws them frozen),
    and every re-forward updates BatchNorm running statistics a second time per batch, as there.

    Deviations from the released code: the reference gradient is taken on the head only (the released
    code back-propagates it through the other encoder and discards it); the projection is the exact closed
    form on the device instead of a CPU QP solver; λ, ε and δ are configurable (hard-coded there);
    training data are shuffled; 3+ modalities use every other modality as a reference.
    """

    name = "gaal"

    def __init__(
        self,
        ratio: float = 0.5,
        ratios: Mapping[str, float] | None = None,
        margin: float = 0.75,
        eps: float = 1e-3,
        ref_features: str = "fresh",
        ghost_steps: bool = False,
        order: str | Sequence[str] = "dataset",
    ) -> None:
        self.ratio = ratio
        self.ratios = ratios
        self.margin = margin
        self.eps = eps
        self.ref_features = ref_features
        self.ghost_steps = ghost_steps
        self.order = order

    def validate(self, modalities: Sequence[str]) -> None:
        super().validate(modalities)
        check_choice("ref_features", self.ref_features, ("fresh", "stale"))
        check_range("margin", self.margin, 0.0)
        check_range("eps", self.eps, 0.0)
        if not isinstance(self.ghost_steps, bool):
            raise ConfigError(f"ghost_steps={self.ghost_steps!r} is invalid; expected true or false")
        ratios = self.ratios or {}
        if not isinstance(ratios, Mapping) or set(ratios) - set(modalities):
            raise ConfigError(
                f"ratios={self.ratios!r} is invalid; expected a mapping from modalities "
                f"{list(modalities)} to fractions, e.g. {{{modalities[0]}: 0.5}}"
            )
        for m in modalities:
            check_range(f"ratio of {m}", self.ratio_of(m), 0.0, 1.0)

    def ratio_of(self, modality: str) -> float:
        return (self.ratios or {}).get(modality, self.ratio)  # type: ignore[no-any-return]

    def before_half_steps(self, feats: Mapping[str, Tensor], batch: Batch) -> None:
        self._ref_feats = {m: f.detach() for m, f in feats.items()}

    def _reference(self, modality: str, label: Tensor) -> Tensor:
        head = self.model.head_parameters()
        loss = hard_sample_loss(
            self.model.head.unimodal(modality, self._ref_feats[modality]), label, self.ratio_of(modality)
        )
        return flatten(distributed.mean_list_(gradients_of(loss, head)), head)

    def modify_head_grad(self, modality: str, feats: Mapping[str, Tensor], batch: Batch) -> dict[str, Tensor]:
        head = self.model.head_parameters()
        others = [m for m in self.model.modalities if m != modality]
        with torch.enable_grad():
            refs = torch.stack([self._reference(m, batch.label) for m in others])
        g = flatten([p.grad for p in head], head)
        with autocast_off():  # float32 products, as project_to_cone computes them
            fired = (refs @ g < 0).any()  # some reference conflicts: the projection below fires
        write_grads_(head, unflatten(project_to_cone(g, refs, self.margin, self.eps), head))
        return {"surgery_rate": fired.float(), "grad_cosine_ref": cosine(g, refs.mean(0))}

    def after_half_step(self, modality: str, position: int, feats: dict[str, Tensor], batch: Batch) -> None:
        """``fresh``: re-forward the modality just updated (not the last one), in training mode like the
        batch's first forward that every other reference comes from, but without touching BatchNorm running
        statistics, so each encoder's statistics move once per batch; ``ghost_steps`` keeps the released
        second update of the statistics."""
        last = position == len(self.model.modalities) - 1
        if self.ref_features != "fresh" or last:
            return
        encoder = self.model.encoders[modality]
        with torch.no_grad(), nullcontext() if self.ghost_steps else frozen_bn_stats(encoder):
            self._ref_feats[modality] = encoder(batch.inputs[modality])
