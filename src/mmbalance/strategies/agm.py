"""AGM: adaptive gradient modulation with Shapley unimodal responses (Li et al., ICCV 2023)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.optim import Optimizer

from mmbalance import distributed
from mmbalance.errors import ConfigError, check_range
from mmbalance.grad import clip_if_any_exceeds_, scale_grad
from mmbalance.models import MultimodalModel
from mmbalance.strategies.base import Strategy
from mmbalance.strategies.registry import STRATEGIES
from mmbalance.types import Batch, StepResult

SCORE_CAP = -math.log(1e-8)  # a true-class probability below 1e-8 counts as 1e-8


def shapley_responses(values: Sequence[Tensor], num: int) -> list[Tensor]:
    """``z_m = φ_m + v(∅)/M`` for the game ``v(S) = values[mask(S)]`` (bit ``m`` of the mask: ``m ∈ S``).

    ``φ_m = Σ_{S ∌ m} |S|!(M−|S|−1)!/M! · (v(S ∪ {m}) − v(S))`` is the Shapley value, so ``Σ_m z_m = v(all)``.
    For two modalities ``z_a = ½(v(a,b) − v(b) + v(a))``, AGM's released formula.

    >>> v = [torch.tensor(0.0), torch.tensor(3.0), torch.tensor(5.0), torch.tensor(8.0)]  # additive game
    >>> [z.item() for z in shapley_responses(v, 2)]
    [3.0, 5.0]
    """
    responses = []
    for m in range(num):
        bit, total = 1 << m, torch.zeros_like(values[0])
        for mask in range(1 << num):
            if not mask & bit:
                size = bin(mask).count("1")
                weight = math.factorial(size) * math.factorial(num - size - 1) / math.factorial(num)
                total = total + weight * (values[mask | bit] - values[mask])
        responses.append(total + values[0] / num)
    return responses


def agm_coefficients(scores: Tensor, running: Tensor, alpha: float) -> Tensor:
    """``κ_m = exp(α·min(r̄_m − r_m, 10))`` with ``r_m = exp(2(mean_j s_j − s_m))`` from the batch scores
    and ``r̄_m`` the same from the running mean scores. For two modalities ``r_a = exp(s_b − s_a)``.

    >>> agm_coefficients(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 1.0]), 2.0).tolist()
    [1.0, 1.0]
    """
    ratio = torch.exp(2 * (scores.mean() - scores))
    target = torch.exp(2 * (running.mean() - running))
    return torch.exp(alpha * (target - ratio).clamp(max=10.0))


@STRATEGIES.register("agm")
class AGM(Strategy):
    """Joint training whose modalities' Shapley responses get gradients scaled toward their running balance.

    AGM (Li, Li, Hu, Lei, Li, Zhou, "Boosting Multi-modal Model Performance with Adaptive Gradient
    Modulation", ICCV 2023, arXiv 2308.07686). Each step: the fused logits ``T`` in training mode; then,
    in eval mode with gradients, the head's logits ``v(S)`` for every subset ``S`` of modalities, the
    others' inputs replaced by zeros (``v(all) = T``). The responses ``z_m = shapley_responses(v)`` sum
    to ``T``; the loss is ``CE(Σ_m scale_grad(z_m, κ_m), y)``. Scores
    ``s_m = mean_i min(−log softmax(z_m,i)[y_i], −log 1e-8)`` (a per-batch mean); running means ``S̄_m``
    over every step since the start (updated after the coefficients); ``κ = agm_coefficients(s, S̄,
    alpha)`` for ``modulation_starts ≤ epoch ≤ modulation_ends``, else 1 (``hold_after_window``: the last
    coefficients, as released). With ``clip``, if an element of a head weight's gradient lies outside
    ``[−1, 1]``, all gradients are clipped to norm 1. Inference: the fused logits. Logs ``agm_coeff_<m>``
    and ``agm_score_<m>``.

    Differences from the released code (lihong2303/AGM_ICCV2023, see docs/methods/agm.md): the zero-input
    passes reuse each encoder's eval-mode features (a zero input is encoded once, on one row) instead of
    re-running the whole network per subset; ``M ≥ 3`` uses exact Shapley values (the MOSEI code adds an
    interaction term) and keeps the cap of 10; the identity-module backward hooks become
    :func:`~mmbalance.grad.scale_grad`; no host synchronisation; after the window the coefficients return
    to 1 unless ``hold_after_window``.
    """

    name = "agm"
    min_modalities = 2
    supported_heads: ClassVar[tuple[str, ...]] = ("concat", "sum")

    def __init__(
        self,
        alpha: float = 1.0,
        modulation_starts: int = 0,
        modulation_ends: int = 19,
        clip: bool = True,
        hold_after_window: bool = False,
        head: str = "concat",
    ) -> None:
        self.alpha = alpha
        self.modulation_starts = modulation_starts
        self.modulation_ends = modulation_ends
        self.clip = clip
        self.hold_after_window = hold_after_window
        self.head = head

    def validate(self, modalities: Sequence[str]) -> None:
        super().validate(modalities)
        if len(modalities) < 2:
            raise ConfigError(f"agm needs >= 2 modalities; got {list(modalities)}")
        check_range("alpha", self.alpha, 0.0)
        check_range("modulation_starts", self.modulation_starts, 0)
        check_range("modulation_ends", self.modulation_ends, self.modulation_starts)
        for key in ("clip", "hold_after_window"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"{key}={getattr(self, key)!r} is invalid; expected true or false")

    def setup(
        self, model: MultimodalModel, optimizer: Optimizer, make_optimizer: Callable[[], Optimizer]
    ) -> None:
        super().setup(model, optimizer, make_optimizer)
        device = next(model.parameters()).device
        self.steps_ = 0
        self.running_ = torch.zeros(len(model.modalities), device=device)  # S̄_m
        self.last_coeff_ = torch.ones(len(model.modalities), device=device)
        self._watched = [p for p in model.head_parameters() if p.ndim >= 2]

    # -- the forward --------------------------------------------------------------------------------
    def responses(self, batch: Batch) -> list[Tensor]:
        """``z_m`` for every modality (differentiable): the Shapley responses of the subset game."""
        model, inputs = self.model, batch.inputs
        fused = model.head(model.encode(inputs))  # training mode
        was_training = model.training
        model.eval()  # the subset passes run in eval mode, with gradients, as released
        try:
            present = model.encode(inputs)
            absent = {m: enc(torch.zeros_like(inputs[m][:1])) for m, enc in model.encoders.items()}
        finally:
            model.train(was_training)
        mods, size = model.modalities, batch.size
        values = []
        for mask in range((1 << len(mods)) - 1):
            feats = {
                m: present[m] if mask >> i & 1 else absent[m].expand(size, *absent[m].shape[1:])
                for i, m in enumerate(mods)
            }
            values.append(model.head(feats))
        return shapley_responses([*values, fused], len(mods))

    def training_step(self, batch: Batch, epoch: int) -> StepResult:
        z = self.responses(batch)
        with torch.no_grad():
            ce = torch.stack([F.cross_entropy(zm.float(), batch.label, reduction="none") for zm in z])
            scores = distributed.mean_(ce.clamp(max=SCORE_CAP).mean(1))  # per (global) batch: a sample mean
            coeff = agm_coefficients(scores, self.running_, self.alpha)
            self.steps_ += 1
            self.running_ = self.running_ + (scores - self.running_) / self.steps_
        if self.modulation_starts <= epoch <= self.modulation_ends:
            self.last_coeff_ = coeff
        else:
            coeff = self.last_coeff_ if self.hold_after_window else torch.ones_like(coeff)
        out = torch.stack([scale_grad(zm, k) for zm, k in zip(z, coeff, strict=True)]).sum(0)
        loss = F.cross_entropy(out, batch.label)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip:
            grads = [p.grad for p in self.model.parameters() if p.grad is not None]
            clip_if_any_exceeds_(grads, [p.grad for p in self._watched if p.grad is not None])
        self.optimizer.step()
        mods = self.model.modalities
        logs = {f"agm_coeff_{m}": k for m, k in zip(mods, coeff, strict=True)}
        logs.update({f"agm_score_{m}": s for m, s in zip(mods, scores, strict=True)})
        return StepResult(loss.detach(), logs)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        device = next(self.model.parameters()).device
        self.running_, self.last_coeff_ = self.running_.to(device), self.last_coeff_.to(device)
