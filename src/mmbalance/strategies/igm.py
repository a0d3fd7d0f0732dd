"""IGM: interactive multimodal learning via flat gradient modification (Yang et al., IJCAI 2025)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.optim import Optimizer

from mmbalance import distributed
from mmbalance.errors import ConfigError, check_range
from mmbalance.grad import (
    InputCovariance,
    frozen_bn_stats,
    gradients_of,
    perturbed,
    project_right_,
    write_grads_,
)
from mmbalance.metrics import METRIC_NAMES
from mmbalance.models import MultimodalModel, presence_weights
from mmbalance.strategies._igm_stages import (
    build_projectors,
    mixed_loss,
    mixup,
    modality_linears,
    stage_index,
)
from mmbalance.strategies._spectra import spectrum_rows
from mmbalance.strategies.base import Strategy
from mmbalance.strategies.registry import STRATEGIES
from mmbalance.types import Batch, ModelOutput, StepResult

_CHOICES = {
    "schedule": ("stages", "batch"),
    "sam_mode": ("paper", "released", "off"),
    "reload": ("best", "none"),
    "project_layers": ("head", "all"),
    "cov_mode": InputCovariance.MODES,
    "select_metric": METRIC_NAMES,
    "lr_schedule": ("run", "stage"),
    "fusion": ("probs", "logits"),
}


@STRATEGIES.register("igm")
class IGM(Strategy):
    """Alternating unimodal training with per-modality heads, flat gradient projection and SAM.

    IGM (Yang et al., "Interactive Multimodal Learning via Flat Gradient Modification", IJCAI 2025,
    doi 10.24963/ijcai.2025/611): alternate unimodal training, each modality with its own MLP head; the
    active modality's head weight gradients are right-multiplied by a *flat projector*
    ``P = V diag(exp(-τ (λ-λmin)/(λmax-λmin))) Vᵀ`` of the previous modality's layer-input statistics
    (a soft shrink into ``[e^{-τ}, 1]``), and the loss is smoothed with SAM (β = ``flat_ratio`` mixes the
    plain and the perturbed gradient). Fusion averages the per-modality softmax probabilities.

    ``schedule="stages"`` trains one modality per stage (``epoch_list`` lengths, or ``stage_epochs`` each;
    modalities cycle in dataset order). At each new stage the best checkpoint seen so far (by
    ``val_<select_metric>``) is reloaded, projectors are rebuilt from the previous modality over the train
    loader, and the optimizer is re-created; the learning-rate schedule carries on over the stages
    (``lr_schedule="run"``) or restarts with each (``"stage"``, as released). ``schedule="batch"``
    alternates every mini-batch and rebuilds every modality's projectors (from the modality before it in
    the cycle) at each epoch start after the first, with no reload. ``gm_modalities`` lists the modalities
    whose gradients are modified (``None``: all; ``[]``: none, the paper's "w/o GM" ablations); the others
    get no projector and train on their raw gradients.

    Test-time fusion: ``fusion="probs"`` (the paper's) averages the modalities' probabilities;
    ``"logits"`` averages their logits (the rule joint training with a ``sum`` head uses).

    Every projector built is recorded (``spectra_``, in the state): the eigenvalues of its source statistic
    and its shrink factors, per stage (or epoch) and layer; :meth:`records` gives them as ``spectra``.

    Differences from the released code (njustkmg/IJCAI25-IGM; see docs/methods/igm.md):
    ``sam_mode="paper"`` is real two-pass SAM with a global norm and exact restoration, where the code
    never restores its per-tensor perturbation and uses ρ = 1e-10 (a float32 no-op); ``"released"``
    reproduces the code's effective loss in one pass. Selection and reloading use the validation split,
    not the test split; the model is reloaded from a state copy, not rebuilt. Only shape-matched Linear
    layers get a projector; eigh replaces svd. Our head has a ReLU after every hidden layer (the
    released head has none between its last two Linears). Mixup of a padded sequence (its encoder
    declares ``mask_channel``) mixes the features only and keeps the union of the two validity masks.
    The released code builds a new scheduler with each stage's optimizer; by default ours continues the
    run's schedule.
    """

    name = "igm"
    min_modalities = 2
    head = "sum"

    def __init__(
        self,
        schedule: str = "stages",
        epoch_list: Sequence[int] | None = None,
        stage_epochs: int = 5,
        head_hidden: Sequence[int] = (256, 64),
        temperature: float = 0.4,
        flat_ratio: float = 0.3,
        rho: float = 0.05,
        sam_mode: str = "paper",
        mixup_alpha: float = 1.0,
        reload: str = "best",
        select_metric: str = "macro_f1",
        reset_optimizer: bool = True,
        lr_schedule: str = "run",
        project_layers: str = "head",
        cov_mode: str = "batch_mean",
        gm_modalities: Sequence[str] | None = None,
        fusion: str = "probs",
    ) -> None:
        self.schedule, self.epoch_list, self.stage_epochs = schedule, epoch_list, stage_epochs
        self.head_hidden, self.temperature, self.flat_ratio = head_hidden, temperature, flat_ratio
        self.rho, self.sam_mode, self.mixup_alpha = rho, sam_mode, mixup_alpha
        self.reload, self.select_metric, self.reset_optimizer = reload, select_metric, reset_optimizer
        self.lr_schedule = lr_schedule
        self.project_layers, self.cov_mode = project_layers, cov_mode
        self.gm_modalities, self.fusion = gm_modalities, fusion

    def head_config(self) -> dict[str, Any]:
        return {"name": "sum", "hidden": list(self.head_hidden)}

    @property
    def restart_schedule(self) -> bool:
        """``lr_schedule="stage"``: each stage's new optimizer starts the learning-rate schedule afresh
        (released); ``"run"``: the schedule follows the run's epochs across stages."""
        return self.lr_schedule == "stage"

    # -- lifecycle ----------------------------------------------------------------------------------
    def _validate(self) -> None:
        for key, choices in _CHOICES.items():
            if getattr(self, key) not in choices:
                raise ConfigError(f"igm {key}={getattr(self, key)!r}; expected one of {', '.join(choices)}")
        for key in ("rho", "temperature", "mixup_alpha"):
            check_range(key, getattr(self, key), 0.0)
        check_range("flat_ratio", self.flat_ratio, 0.0, 1.0)
        check_range("stage_epochs", self.stage_epochs, 1)
        lengths = self.epoch_list
        if lengths is not None and (
            len(lengths) == 0 or any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in lengths)
        ):
            raise ConfigError(
                f"igm epoch_list={self.epoch_list!r}; expected a non-empty list of integers >= 1"
            )

    def validate(self, modalities: Sequence[str]) -> None:
        super().validate(modalities)
        self._validate()
        gm = self.gm_modalities
        if gm is None:
            return
        if isinstance(gm, str) or not isinstance(gm, Sequence):
            raise ConfigError(f"igm gm_modalities={gm!r}; expected a list of modality names, or null for all")
        unknown = [m for m in gm if m not in modalities]
        if unknown:
            raise ConfigError(
                f"igm gm_modalities names {', '.join(map(repr, unknown))}; "
                f"expected modalities of the model: {', '.join(modalities)}"
            )

    def setup(
        self, model: MultimodalModel, optimizer: Optimizer, make_optimizer: Callable[[], Optimizer]
    ) -> None:
        self._validate()
        super().setup(model, optimizer, make_optimizer)
        mods = model.modalities
        self._params = {m: model.modality_parameters(m) for m in mods}
        self._layers = {m: modality_linears(model, m, self.project_layers == "all") for m in mods}
        self._masked = {m: bool(getattr(model.encoders[m], "mask_channel", False)) for m in mods}
        self.active_: str = mods[0]
        self.stage_: int = -1
        self.step_: int = 0
        self.projectors_: dict[str, dict[int, Tensor]] = {}
        self.spectra_: list[dict[str, Any]] = []  # one entry per projector factor built, in order
        self._modified = set(mods if self.gm_modalities is None else self.gm_modalities)
        self.best_state_: dict[str, Tensor] | None = None
        self.best_score_: float = float("-inf")
        self._rng = np.random.default_rng(torch.initial_seed())  # mixup draws; saved as ``rng_``

    def _stage_modality(self, stage: int) -> str:
        mods = self.model.modalities
        return mods[stage % len(mods)]

    def _projectors(
        self, sources: Mapping[str, str], loader: Any, epoch: int
    ) -> dict[str, dict[int, Tensor]]:
        """Projectors of the targets in ``gm_modalities`` (no statistics pass when there are none); their
        spectra are appended to ``spectra_``, labelled with the stage (stage schedule) and ``epoch``."""
        sources = {target: src for target, src in sources.items() if target in self._modified}
        if not sources:
            return {}
        with_encoder = self.project_layers == "all"
        projectors, spectra = build_projectors(
            self.model, sources, loader, self.temperature, with_encoder, self.cov_mode
        )
        stage = self.stage_ if self.schedule == "stages" else None
        self.spectra_ += [{**entry, "stage": stage, "epoch": epoch} for entry in spectra]
        return projectors

    def on_epoch_start(self, epoch: int, train_loader: Any) -> None:
        """Batch schedule: rebuild the projectors (from epoch 1 on). Stage schedule: on a stage change,
        reload the best checkpoint, build projectors from the previous modality, switch, reset the optimizer.
        """
        mods = self.model.modalities
        if self.schedule == "batch":
            if epoch > 0:
                previous = {m: mods[(i - 1) % len(mods)] for i, m in enumerate(mods)}
                self.projectors_ = self._projectors(previous, train_loader, epoch)
            return
        stage = stage_index(epoch, self.epoch_list, self.stage_epochs)
        if stage == self.stage_:
            return
        if self.stage_ < 0:  # the first stage: no previous modality to learn from
            self.stage_, self.active_ = stage, self._stage_modality(stage)
            return
        previous, self.stage_, self.active_ = self.active_, stage, self._stage_modality(stage)
        if self.reload == "best" and self.best_state_ is not None:
            self.model.load_state_dict(self.best_state_)
        self.projectors_ = self._projectors({self.active_: previous}, train_loader, epoch)
        if self.reset_optimizer:
            self.optimizer = self.make_optimizer()

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """Keep a copy of the model at the best validation score (stage schedule with ``reload="best"``)."""
        if self.schedule != "stages" or self.reload != "best":
            return
        key = self.select_metric if self.select_metric in metrics else f"val_{self.select_metric}"
        if key not in metrics:
            found = ", ".join(k for k in metrics if k.startswith("val_"))
            raise ConfigError(
                f"igm select_metric={self.select_metric!r} is not logged; expected one of {found}"
            )
        score = float(metrics[key])
        if score > self.best_score_:  # strictly better: ties keep the earlier checkpoint
            self.best_score_ = score
            self.best_state_ = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    # -- the step -----------------------------------------------------------------------------------
    def _modality_for_step(self) -> str:
        if self.schedule == "stages":
            return self.active_
        mods = self.model.modalities
        self.active_ = mods[self.step_ % len(mods)]
        self.step_ += 1
        return self.active_

    def training_step(self, batch: Batch, epoch: int) -> StepResult:
        m = self._modality_for_step()
        params = self._params[m]
        x, y_perm, lam = mixup(batch.inputs[m], batch.label, self.mixup_alpha, self._rng, self._masked[m])
        tilt = self.flat_ratio if self.sam_mode == "released" else 0.0

        def loss_fn() -> Tensor:
            logits = self.model.head.unimodal(m, self.model.encoders[m](x))
            return mixed_loss(logits, batch.label, y_perm, lam, tilt)

        self.optimizer.zero_grad(set_to_none=True)
        loss = loss_fn()
        grads = distributed.mean_list_(gradients_of(loss, params))  # the global batch's gradient
        if self.sam_mode == "paper" and self.rho > 0 and self.flat_ratio > 0:
            grads = self._flat_sam(m, loss_fn, params, grads)
        write_grads_(params, grads)
        logs = self._project(m)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return StepResult(loss.detach(), logs)

    def _flat_sam(
        self, m: str, loss_fn: Callable[[], Tensor], params: list[Tensor], grads: list[Tensor]
    ) -> list[Tensor]:
        """``(1-β)·∇L(θ) + β·∇L(θ+ε)`` with ``ε = ρ∇L/‖∇L‖`` (global norm); θ and BN statistics restored."""
        encoder, head = self.model.encoders[m], self.model.head
        with frozen_bn_stats(encoder), frozen_bn_stats(head), perturbed(params, grads, self.rho):
            sharp = distributed.mean_list_(gradients_of(loss_fn(), params))
        return [torch.lerp(g, s, self.flat_ratio) for g, s in zip(grads, sharp, strict=True)]

    def _project(self, m: str) -> dict[str, Tensor]:
        """Right-multiply the matched layers' weight gradients by their projectors; log the norm ratio."""
        projectors = self.projectors_.get(m)
        if not projectors:
            return {}
        raw, kept = [], []
        for i, P in projectors.items():
            grad = self._layers[m][i].weight.grad
            if grad is None:
                continue
            raw.append(grad.square().sum())
            project_right_(grad, P.to(grad.device))
            kept.append(grad.square().sum())
        if not raw:
            return {}
        before, after = torch.stack(raw).sum(), torch.stack(kept).sum()
        ratio = torch.where(before > 0, after / before.clamp_min(torch.finfo(before.dtype).tiny), 1.0)
        return {"projection_shrink": ratio.sqrt().detach()}

    # -- inference ----------------------------------------------------------------------------------
    def predict(self, out: ModelOutput) -> Tensor:
        """``log(mean_m softmax(z_m))``: its softmax is the mean of the modalities' probabilities (over the
        modalities each row has); with ``fusion="logits"`` the mean of their logits."""
        if self.fusion == "logits":
            z = torch.stack(list(out.unimodal_logits.values()))
            w = presence_weights(out.present, list(out.unimodal_logits), z[0])
            return z.mean(0) if w is None else (w.unsqueeze(-1) * z).sum(0) / w.sum(0).unsqueeze(-1)
        logp = torch.stack([F.log_softmax(z, dim=-1) for z in out.unimodal_logits.values()])
        present = presence_weights(out.present, list(out.unimodal_logits), logp[0])
        if present is None:
            return torch.logsumexp(logp, dim=0) - math.log(logp.shape[0])
        logp = logp + present.log().unsqueeze(-1)  # log 0 = -inf: an absent modality adds nothing
        return torch.logsumexp(logp, dim=0) - present.sum(0).log().unsqueeze(-1)

    # -- records and state --------------------------------------------------------------------------
    def records(self) -> dict[str, list[dict[str, Any]]]:
        """``spectra``: one row per eigenvalue of every projector built so far (see ``_spectra``)."""
        return {"spectra": spectrum_rows(self.name, self.spectra_)}

    def state_dict(self) -> dict[str, Any]:
        """Learned state: stage, active modality, step, projectors, their spectra, best checkpoint and the
        mixup RNG."""
        rng = self._rng.bit_generator.state
        return {**super().state_dict(), "spectra_": list(self.spectra_), "rng_": rng}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        state = dict(state)
        rng = state.pop("rng_", None)
        super().load_state_dict(state)
        self.spectra_ = list(self.spectra_)  # later stages append to our own list, not the caller's
        if rng is not None:
            self._rng.bit_generator.state = rng
