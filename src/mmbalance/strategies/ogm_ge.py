"""OGM-GE: on-the-fly gradient modulation with generalisation enhancement (Peng et al., CVPR 2022)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from mmbalance import distributed
from mmbalance.errors import ConfigError, check_choice, check_range
from mmbalance.models import MultimodalModel
from mmbalance.strategies.base import Strategy
from mmbalance.strategies.registry import STRATEGIES
from mmbalance.types import Batch, ModelOutput

PARAM_RULES: dict[str, Callable[[nn.Parameter], bool]] = {
    "encoder": lambda p: True,  # the paper: every parameter of the modality's encoder
    "weights": lambda p: p.ndim >= 2,  # weight matrices and kernels, no biases or norm scales
    "conv": lambda p: p.ndim >= 3,  # convolution kernels only (the released code: 4-D grads)
}


def confidence_scores(logits: Mapping[str, Tensor], label: Tensor) -> Tensor:
    """``[M]``: ``s_m = Σ_i softmax(z_m,i)[y_i]``, each modality's summed probability of the true class.

    Reduction: a sum over the batch's samples (one score per modality and batch), as in the paper.

    >>> z = {"a": torch.tensor([[0.0, 0.0], [0.0, 0.0]]), "b": torch.tensor([[9.0, -9.0], [9.0, -9.0]])}
    >>> confidence_scores(z, torch.tensor([0, 1])).tolist()
    [1.0, 1.0]
    """
    probs = [torch.softmax(z.detach().float(), dim=1) for z in logits.values()]
    return torch.stack([p.gather(1, label.long().unsqueeze(1)).sum() for p in probs])


def ogm_coefficients(scores: Tensor, alpha: float) -> Tensor:
    """``[M]``: ``k_m = 1 − tanh(α·ρ_m)`` if ``ρ_m > 1`` else ``1``, with ``ρ_m = s_m / mean_{j≠m} s_j``.

    For two modalities ``ρ_m = s_m / s_other`` (the paper's Eq. 10): the dominant modality gets
    ``k ∈ (0, 1)``, the other ``1``; equal scores modulate nothing. With more modalities every modality
    whose score exceeds the mean of the others' is slowed down.

    >>> [round(k, 4) for k in ogm_coefficients(torch.tensor([3.0, 1.0]), 0.5).tolist()]  # 1 − tanh(1.5)
    [0.0949, 1.0]
    """
    others = (scores.sum() - scores) / (scores.shape[0] - 1)
    ratio = scores / others
    return torch.where(ratio > 1, 1 - torch.tanh(alpha * ratio), torch.ones_like(ratio))


def modulate_(grad: Tensor, coeff: Tensor, generator: torch.Generator | None) -> None:
    """``g ← k·g + ε`` in place, ``ε ~ N(0, (std(g) + 1e-8)²)`` elementwise drawn from ``generator`` (on the
    gradient's device), with ``std`` the (unbiased) standard deviation of the gradient *before* scaling;
    ``generator=None``: ``g ← k·g`` (no noise)."""
    std = grad.std() if grad.numel() > 1 else torch.zeros((), dtype=grad.dtype, device=grad.device)
    grad.mul_(coeff.to(grad.dtype))
    if generator is not None:
        draw = torch.randn(grad.shape, generator=generator, dtype=grad.dtype, device=grad.device)
        grad.add_(draw * (std + 1e-8))


@STRATEGIES.register("ogm_ge")
class OGMGE(Strategy):
    """Joint training whose dominant modality's encoder gradients are damped, plus gradient noise.

    OGM-GE (Peng, Wei, Deng, Wang, Hu, "Balanced Multimodal Learning via On-the-fly Gradient
    Modulation", CVPR 2022, arXiv 2203.15332). After the joint backward pass, with the unimodal logits
    ``z_m`` of the head (``concat``: the modality's weight slice and ``bias / M``; ``sum``: its branch),
    ``s_m = Σ_i softmax(z_m,i)[y_i]`` (a per-batch sum) and ``k = ogm_coefficients(s, alpha)``, every
    selected encoder parameter of modality ``m`` gets ``g ← k_m·g + N(0, (std(g) + 1e-8)²)`` for epochs
    ``modulation_starts ≤ epoch ≤ modulation_ends`` (``noise=False``: OGM without GE). The fusion head
    is never modulated. The noise comes from the strategy's own generator, seeded from
    ``torch.initial_seed()`` and saved in its state. Inference: the fused logits. Logs ``ogm_coeff_<m>``,
    the applied ``k_m``.

    Differences from the released code (GeWu-Lab/OGM-GE_CVPR2022): parameters come from the model's
    encoder groups, where the released code matches names (it only works under ``DataParallel``);
    ``params="encoder"`` (the paper's rule) modulates every encoder parameter, ``params="conv"`` only
    convolution kernels as released (4-D gradients; 1-D and MLP encoders are then untouched); three or
    more modalities compare each score with the mean of the others' (the released 3-modality code
    always damps audio when neither other modality leads); the confidence loop is vectorised.
    """

    name = "ogm_ge"
    min_modalities = 2
    supported_heads: ClassVar[tuple[str, ...]] = ("concat", "sum")

    def __init__(
        self,
        alpha: float = 0.8,
        modulation_starts: int = 0,
        modulation_ends: int = 50,
        noise: bool = True,
        params: str = "encoder",
        head: str = "concat",
    ) -> None:
        self.alpha = alpha
        self.modulation_starts = modulation_starts
        self.modulation_ends = modulation_ends
        self.noise = noise
        self.params = params
        self.head = head

    def validate(self, modalities: Sequence[str]) -> None:
        super().validate(modalities)
        if len(modalities) < 2:
            raise ConfigError(f"ogm_ge needs >= 2 modalities; got {list(modalities)}")
        check_range("alpha", self.alpha, 0.0)
        check_range("modulation_starts", self.modulation_starts, 0)
        check_range("modulation_ends", self.modulation_ends, self.modulation_starts)
        check_choice("params", self.params, tuple(PARAM_RULES))
        if not isinstance(self.noise, bool):
            raise ConfigError(f"noise={self.noise!r} is invalid; expected true or false")

    def setup(
        self, model: MultimodalModel, optimizer: Optimizer, make_optimizer: Callable[[], Optimizer]
    ) -> None:
        super().setup(model, optimizer, make_optimizer)
        rule = PARAM_RULES[self.params]
        self._params = {m: [p for p in model.encoder_parameters(m) if rule(p)] for m in model.modalities}
        device = next(model.parameters()).device
        self._gen = torch.Generator(device=device).manual_seed(torch.initial_seed())  # saved as ``rng_``

    def modify_gradients(self, out: ModelOutput, batch: Batch, epoch: int) -> dict[str, Tensor]:
        mods = self.model.modalities
        if self.modulation_starts <= epoch <= self.modulation_ends:
            scores = distributed.sum_(confidence_scores(out.unimodal_logits, batch.label))  # global batch
            coeff = ogm_coefficients(scores, self.alpha)
            for m, k in zip(mods, coeff, strict=True):
                for p in self._params[m]:
                    if p.grad is not None:
                        modulate_(p.grad, k, self._gen if self.noise else None)
        else:
            coeff = torch.ones(len(mods), device=batch.label.device)
        return {f"ogm_coeff_{m}": k.detach() for m, k in zip(mods, coeff, strict=True)}

    def state_dict(self) -> dict[str, Any]:
        """The noise generator's state (``rng_``): a resumed run draws the same noise."""
        return {"rng_": self._gen.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._gen.set_state(state["rng_"].cpu())
