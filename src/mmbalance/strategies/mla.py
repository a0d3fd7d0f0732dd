"""MLA: multimodal learning with alternating unimodal adaptation (Zhang et al., CVPR 2024, 2311.10707)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from mmbalance import distributed
from mmbalance.errors import ConfigError, check_choice, check_range
from mmbalance.grad import OrthogonalProjector
from mmbalance.models import presence_weights
from mmbalance.strategies._spectra import module_names, spectrum_entry, spectrum_rows
from mmbalance.strategies.alternating import Alternating
from mmbalance.strategies.registry import STRATEGIES
from mmbalance.types import Batch, ModelOutput


def entropy_gated_logits(logits: Mapping[str, Tensor], present: Tensor | None = None) -> Tensor:
    """Per-sample fusion ``Σ_m w_m·z_m`` with ``w_m ∝ exp(max_m' H_m' − H_m)`` (H: predictive entropy).

    A modality that is more certain about a sample gets more weight for that sample.

    >>> z = {"a": torch.tensor([[4.0, 0.0]]), "b": torch.tensor([[0.0, 0.1]])}
    >>> entropy_gated_logits(z)[0, 0] > 2.0  # the confident modality "a" dominates
    tensor(True)
    """
    stacked = torch.stack(list(logits.values()))  # [M, B, C]
    logp = torch.log_softmax(stacked, dim=-1)
    entropy = -torch.special.xlogy(logp.exp(), logp.exp()).sum(-1)  # [M, B]; 0·log 0 = 0, never NaN
    if present is not None:  # [M, B] presence weights: an absent modality gets weight 0
        absent = present == 0
        top = entropy.masked_fill(absent, float("-inf")).max(0).values
        weights = torch.softmax((top - entropy).masked_fill(absent, float("-inf")), dim=0)
    else:
        weights = torch.softmax(entropy.max(0).values - entropy, dim=0)  # normalised exp(max H - H)
    return (weights.unsqueeze(-1) * stacked).sum(0)


@STRATEGIES.register("mla")
class MLA(Alternating):
    """Alternating unimodal learning through one shared head with orthogonal gradient projection.

    Every mini-batch, each modality in turn takes a step on its own loss through the shared linear head.
    From the second unimodal update of the run on, the head weight's gradient ``G`` is projected with an
    OWM / recursive-least-squares projector ``P`` that accumulates the batch-mean head inputs of every
    update so far (including the current one): ``k = P rᵀ; P ← P − k kᵀ/(α + r k); P ← P/‖P‖_F;
    G ← G Pᵀ`` with ``α = 0.1^(1 + b/n)`` for batch ``b`` of ``n`` per epoch — the update the released code
    describes. The bias is not projected. Test-time fusion: ``fusion="entropy"`` weights each modality's
    logits per sample by its certainty; ``"fixed"`` uses ``fusion_weights`` (equal by default).
    ``order`` sets the modalities' order within a batch (``"dataset"``, ``"cost"`` or a list; it changes
    which modality's features the projector accumulates first, not the cost of a step).

    At the end of every epoch the spectrum of ``P`` is recorded (``spectra_``, in the state; not with
    ``projection="none"``): ``P`` is symmetric positive semi-definite with eigenvalues in ``[0, 1]``, and
    ``G Pᵀ`` multiplies each of its eigenvectors by its eigenvalue, so the eigenvalue is also the shrink
    factor. :meth:`records` gives them as ``spectra``.

    Deviations from the released code: its projection never runs (a parameter-name filter that matches
    nothing) — that behaviour is ``projection="none"``, plain alternation; the projector's size follows the
    head instead of a hard-coded 512; entropy gating is per sample, where the released code computes one
    weight per batch (a softmax over the batch dimension); idle encoders get no ghost momentum steps.
    """

    name = "mla"

    def __init__(
        self,
        projection: str = "owm",
        fusion: str = "entropy",
        fusion_weights: Mapping[str, float] | None = None,
        normalize: bool = True,
        order: str | Sequence[str] = "dataset",
    ) -> None:
        self.projection = projection
        self.fusion = fusion
        self.fusion_weights = fusion_weights
        self.normalize = normalize
        self.order = order

    def validate(self, modalities: Sequence[str]) -> None:
        super().validate(modalities)
        check_choice("projection", self.projection, ("owm", "none", "identity"))
        check_choice("fusion", self.fusion, ("entropy", "fixed"))
        weights = self.fusion_weights
        if weights is not None and (not isinstance(weights, Mapping) or set(weights) != set(modalities)):
            raise ConfigError(
                f"fusion_weights={weights!r} is invalid; expected one weight per modality {list(modalities)}"
            )
        for m, w in (weights or {}).items():
            check_range(f"fusion weight of {m}", w, 0.0)

    def setup(self, model: Any, optimizer: Any, make_optimizer: Any) -> None:
        super().setup(model, optimizer, make_optimizer)
        weight = model.head.fc.weight
        self.projector_ = OrthogonalProjector(weight.shape[1], self.normalize, device=weight.device)
        self.updates_, self.batch_, self.per_epoch_ = 0, 0, 1
        self.spectra_: list[dict[str, Any]] = []
        self._layer = module_names(model)[id(model.head.fc)]

    def on_epoch_start(self, epoch: int, train_loader: Any) -> None:
        self.batch_, self.per_epoch_ = 0, max(1, len(train_loader))

    def before_half_steps(self, feats: Mapping[str, Tensor], batch: Batch) -> None:
        self._alpha = 0.1 ** (1 + self.batch_ / self.per_epoch_)
        self.batch_ += 1

    def modify_head_grad(self, modality: str, feats: Mapping[str, Tensor], batch: Batch) -> dict[str, Tensor]:
        """``projection="identity"`` keeps ``P = I`` (a test hook: it must equal plain alternation)."""
        grad = self.model.head.fc.weight.grad
        first, self.updates_ = self.updates_ == 0, self.updates_ + 1
        if self.projection == "none" or first:
            return {"projection_shrink": torch.ones((), device=grad.device)}
        if self.projection == "owm":
            mean = distributed.mean(feats[modality].detach().float().mean(0))  # the global batch's mean
            self.projector_.update_(mean, self._alpha)
        raw = grad.norm()
        grad.copy_(self.projector_.project(grad))
        return {"projection_shrink": grad.norm() / raw.clamp_min(1e-12)}

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """Record the spectrum of ``P`` as the epoch's updates left it (float64 ``eigvalsh``, clamped to
        ``[0, 1]``: values outside are float32 round-off)."""
        if self.projection == "none":
            return
        P = self.projector_.P_.double()
        lam = torch.linalg.eigvalsh((P + P.T) / 2).clamp(0.0, 1.0)
        self.spectra_.append(spectrum_entry(lam, lam, epoch=epoch, layer=self._layer, source=self._layer))

    def records(self) -> dict[str, list[dict[str, Any]]]:
        """``spectra``: one row per eigenvalue of ``P`` at the end of every epoch so far."""
        return {"spectra": spectrum_rows(self.name, self.spectra_)}

    def predict(self, out: ModelOutput) -> Tensor:
        """Weighted mean of the modalities' logits (entropy gate or fixed weights) over the modalities each
        row has."""
        mods = list(out.unimodal_logits)
        present = presence_weights(out.present, mods, next(iter(out.unimodal_logits.values())))
        if self.fusion == "entropy":
            return entropy_gated_logits(out.unimodal_logits, present)
        given = self.fusion_weights or {m: 1.0 for m in mods}
        w = torch.tensor([float(given[m]) for m in mods], device=out.logits.device)[:, None]  # [M, 1]
        w = w if present is None else w * present
        z = torch.stack([out.unimodal_logits[m] for m in mods])
        return (w.unsqueeze(-1) * z).sum(0) / w.sum(0).clamp_min(1e-12).unsqueeze(-1)

    def state_dict(self) -> dict[str, Any]:
        counters = {k: getattr(self, k) for k in ("updates_", "batch_", "per_epoch_", "diag_calls_")}
        return {"projector_": self.projector_.state_dict(), "spectra_": list(self.spectra_), **counters}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.projector_.load_state_dict(state["projector_"])
        self.spectra_ = list(state.get("spectra_", []))  # absent from checkpoints of earlier versions
        for k in ("updates_", "batch_", "per_epoch_", "diag_calls_"):
            setattr(self, k, int(state[k]))
