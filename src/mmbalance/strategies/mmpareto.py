"""MMPareto: multimodal learning with innocent unimodal assistance (Wei & Hu, ICML 2024, arXiv 2405.17730)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from mmbalance import distributed
from mmbalance.errors import check_choice, check_range
from mmbalance.grad import (
    cosine,
    flatten,
    gradients_of,
    pareto_weights,
    rescale_to_sum,
    unflatten,
    write_grads_,
)
from mmbalance.strategies._checks import check_modality_count
from mmbalance.strategies.base import Strategy
from mmbalance.strategies.registry import STRATEGIES
from mmbalance.types import Batch, StepResult


@STRATEGIES.register("mmpareto")
class MMPareto(Strategy):
    """Multitask training whose encoder gradients are Pareto integrations of the multimodal and unimodal ones.

    Paper: Y. Wei, D. Hu, "MMPareto: Boosting Multimodal Learning with Innocent Unimodal Assistance",
    ICML 2024 (arXiv 2405.17730). Losses: ``L_mm = CE(z, y)`` of the fused head and ``L_m = CE(z_m, y)`` of
    each modality's own classifier (``multitask`` head). For each modality's encoder parameters ``θ_m``
    (one flat vector), with ``g₁ = ∇_θm L_mm`` and ``g₂ = ∇_θm L_m``: weights ``(½, ½)`` if
    ``cos(g₁, g₂) > 0``, else the min-norm weights of the segment ``[g₁, g₂]``; the encoder gradient is
    ``γ·d·max(1, ‖g₁ + g₂‖/‖d‖)`` with ``d = 2(w₁g₁ + w₂g₂)`` (:func:`mmbalance.grad.pareto_combine`), so it
    never has a negative inner product with ``g₁`` or ``g₂``. Head parameters get the plain gradient of
    ``L_mm + Σ_m L_m``. Gradients are those of the batch-mean losses (per-batch statistics). Inference: the
    fused head only. Two backward passes per step.

    ``rescale="global"`` rescales each encoder's gradient as one vector (the rule stated per encoder);
    ``"tensor"`` rescales every parameter tensor by its own norms, as the released code does, which can
    leave a (small) conflict in the full encoder gradient. Differences from the released code
    (GeWu-Lab/MMPareto_ICML2024): parameters are grouped by the model's explicit encoder groups (not
    names containing ``audio``/``visual``/``head``); exact min-norm weights (the released solver clips to
    0.001/0.999 only for degenerate zero gradients); two backward passes instead of four; any number of
    modalities; the released StepLR is never stepped (a scheduler here is the trainer's and does step).
    """

    name = "mmpareto"
    min_modalities = 2
    supported_heads: ClassVar[tuple[str, ...]] = ("multitask", "concat", "max", "mul")

    def __init__(self, head: str = "multitask", gamma: float = 1.5, rescale: str = "global") -> None:
        self.head, self.gamma, self.rescale = head, gamma, rescale

    def validate(self, modalities: Sequence[str]) -> None:
        super().validate(modalities)
        check_modality_count(self.name, modalities, 2)
        check_range("gamma", self.gamma, 0.0)
        check_choice("rescale", self.rescale, ("global", "tensor"))

    def training_step(self, batch: Batch, epoch: int) -> StepResult:
        self.optimizer.zero_grad(set_to_none=True)
        loss, logs = self.pareto_gradients(batch)
        self.optimizer.step()
        return StepResult(loss, logs)

    def pareto_gradients(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """Write the MMPareto gradients into ``.grad`` of every parameter; return the summed loss and logs."""
        model, label = self.model, batch.label
        feats = model.encode(batch.inputs)
        out = model.outputs(feats)
        loss_mm = F.cross_entropy(out.logits, label)
        loss_uni = torch.stack([F.cross_entropy(z, label) for z in out.unimodal_logits.values()]).sum()
        encoders = {m: model.encoder_parameters(m) for m in model.modalities}
        params = [p for group in encoders.values() for p in group] + model.head_parameters()
        g_mm = distributed.mean_list_(gradients_of(loss_mm, params, retain_graph=True))  # global batch's
        g_uni = distributed.mean_list_(gradients_of(loss_uni, params))
        n_enc = sum(len(group) for group in encoders.values())
        head_grads = [a + b for a, b in zip(g_mm[n_enc:], g_uni[n_enc:], strict=True)]
        new_grads, logs, start = [], {}, 0
        for m, group in encoders.items():
            mm, uni = g_mm[start : start + len(group)], g_uni[start : start + len(group)]
            start += len(group)
            grads, weights, cos = self._combine(group, mm, uni)
            new_grads += grads
            logs[f"pareto_cos_{m}"], logs[f"pareto_w_mm_{m}"] = cos, weights[0]
        write_grads_(params, new_grads + head_grads)
        return (loss_mm + loss_uni).detach(), {k: v.detach() for k, v in logs.items()}

    def _combine(
        self, group: list[Tensor], mm: list[Tensor], uni: list[Tensor]
    ) -> tuple[list[Tensor], Tensor, Tensor]:
        """One encoder: weights and cosine from the flat gradients, rescaling globally or per tensor."""
        flat_mm, flat_uni = flatten(mm, group), flatten(uni, group)
        w = pareto_weights(flat_mm, flat_uni).to(flat_mm.dtype)
        cos = cosine(flat_mm, flat_uni)
        if self.rescale == "global":
            direction = 2 * (w[0] * flat_mm + w[1] * flat_uni)
            return unflatten(rescale_to_sum(direction, flat_mm, flat_uni, self.gamma), group), w, cos
        grads = [
            rescale_to_sum(2 * (w[0] * a + w[1] * b), a, b, self.gamma) for a, b in zip(mm, uni, strict=True)
        ]
        return grads, w, cos
