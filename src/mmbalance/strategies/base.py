"""``Strategy``: the one extension point. A strategy owns what happens to one training batch.

Two override depths:

* **Depth 1** — keep the default :meth:`Strategy.training_step` (joint training: one forward, the loss,
  one backward, ``optimizer.step()``) and override :meth:`loss` and/or :meth:`modify_gradients`
  (gradient modulation methods live there).
* **Depth 2** — multi-pass methods (SAM, alternating methods) override :meth:`training_step` entirely.

Optional hooks: :meth:`validate`, :meth:`setup`, :meth:`on_epoch_start`, :meth:`on_epoch_end`,
:meth:`predict` (test-time fusion), :meth:`state_dict`/:meth:`load_state_dict` (learned state, attributes
ending in ``_``), :meth:`records` (tables for the run directory).

Records: ``records()`` returns ``{name: rows}`` (rows are dicts of plain values); at the end of a run the
run directory receives each non-empty table as ``<name>.csv`` (IGM and MLA write ``spectra``, their
projectors' eigenvalues and shrink factors). They are computed from the strategy's state as training
left it, so whatever they need that accumulates during training is learned state (in
:meth:`state_dict`): a killed and resumed run writes the same tables.
Constructors take keyword hyperparameters with defaults and store them unchanged; the trainer never asks
a strategy its name. ``head`` chooses the fusion head the model is built with, one of
``supported_heads`` (``None``: any registered head); the base :meth:`validate` checks it, so a strategy
that overrides ``validate`` calls ``super().validate(modalities)`` first. :meth:`modalities` may restrict
which of the dataset's modalities the model gets. A strategy may replace ``self.optimizer``
(with ``make_optimizer()``, e.g. at a stage change); ``restart_schedule`` says what the learning-rate
schedule then does. ``epochs`` is the run's epoch budget: the trainer sets it before :meth:`setup` (a
strategy that sizes a stage as a fraction of the run reads it there; ``None`` outside a trainer).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.optim import Optimizer

from mmbalance.errors import ConfigError
from mmbalance.models import HEADS, MultimodalModel
from mmbalance.types import Batch, ModelOutput, StepResult


def modality_loss(logits: Tensor, batch: Batch, modality: str) -> Tensor:
    """Cross-entropy of ``modality``'s logits over the rows that have that modality (their mean; 0 when no
    row has it): a row without the modality adds nothing to the modality's own loss."""
    rows = batch.has(modality)
    if rows is None:
        return F.cross_entropy(logits, batch.label)
    w = rows.to(logits.dtype)
    return (F.cross_entropy(logits, batch.label, reduction="none") * w).sum() / w.sum().clamp_min(1)


class Strategy:
    """Base class of training strategies; the default step is joint training on the fused logits."""

    name: ClassVar[str] = ""
    min_modalities: ClassVar[int] = 1
    head: str = "concat"
    supported_heads: ClassVar[tuple[str, ...] | None] = None
    """The fusion heads the method runs on (``mmbalance list`` shows them); ``None``: any registered one."""
    restart_schedule: bool = False
    """When the strategy replaces its optimizer, ``False``: the learning-rate schedule continues with the
    run's epochs (the rates one scheduler over the whole run gives); ``True``: it starts afresh."""
    epochs: int | None = None
    """The run's epoch budget, set by the trainer before :meth:`setup` (``None`` until then)."""

    def __init__(self, head: str = "concat") -> None:
        self.head = head

    # -- configuration ------------------------------------------------------------------------------
    def hyperparameters(self) -> dict[str, Any]:
        """The constructor arguments as stored (what the run's config records)."""
        import inspect

        return {k: getattr(self, k) for k in inspect.signature(type(self).__init__).parameters if k != "self"}

    def head_config(self) -> dict[str, Any]:
        """The fusion head the model is built with (``{"name": ..., **options}``)."""
        self.check_head()
        return {"name": self.head}

    def check_head(self) -> None:
        """Raise a one-line ``ConfigError`` naming the method, the head and the supported ones unless
        ``head`` is in ``supported_heads`` (with ``None``: unless it is a registered head)."""
        if self.supported_heads is None:
            HEADS.get(self.head)  # one-line error for an unknown head
        elif self.head not in self.supported_heads:
            raise ConfigError(
                f"method {self.name!r} does not support head={self.head!r}; expected one of: "
                f"{', '.join(self.supported_heads)}"
            )

    def encoder_options(self, modality: str, available: Sequence[str]) -> dict[str, Any]:
        """Encoder options the strategy sets for ``modality`` (of the dataset's ``available`` ones) over the
        dataset's default and the user's (none by default; DAFT conditions the image encoder on the
        tabular input)."""
        return {}

    def modalities(self, available: Sequence[str]) -> list[str]:
        """The modalities the model is built with (all of them by default)."""
        if len(available) < self.min_modalities:
            raise ConfigError(
                f"method {self.name!r} needs >= {self.min_modalities} modalities; "
                f"dataset has {list(available)}"
            )
        return list(available)

    def validate(self, modalities: Sequence[str]) -> None:
        """Check the hyperparameters against the modalities the model gets; raise one-line ``ConfigError``s.

        Called when a run is built, before anything is trained or written, and again by :meth:`setup`. The
        base checks the head (:meth:`check_head`); an override calls ``super().validate(modalities)``.
        """
        self.check_head()

    # -- lifecycle hooks ----------------------------------------------------------------------------
    def setup(
        self, model: MultimodalModel, optimizer: Optimizer, make_optimizer: Callable[[], Optimizer]
    ) -> None:
        """Called once before training; learned state (attributes ending in ``_``) is created here."""
        self.validate(model.modalities)
        self.model, self.optimizer, self.make_optimizer = model, optimizer, make_optimizer

    def on_epoch_start(self, epoch: int, train_loader: Any) -> None:
        """Called before each training epoch, with the loader (stage changes, statistics passes)."""

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """Called after each epoch's validation with the logged metrics."""

    # -- depth 1 ------------------------------------------------------------------------------------
    def training_step(self, batch: Batch, epoch: int) -> StepResult:
        self.optimizer.zero_grad(set_to_none=True)
        out = self.model(batch.inputs)
        loss = self.loss(out, batch)
        loss.backward()
        logs = self.modify_gradients(out, batch, epoch) or {}
        self.optimizer.step()
        return StepResult(loss.detach(), logs)

    def loss(self, out: ModelOutput, batch: Batch) -> Tensor:
        return F.cross_entropy(out.logits, batch.label)

    def modify_gradients(self, out: ModelOutput, batch: Batch, epoch: int) -> dict[str, Tensor] | None:
        """Change ``.grad`` of the model's parameters between backward and step; may return logs."""
        return None

    # -- inference ----------------------------------------------------------------------------------
    def predict(self, out: ModelOutput) -> Tensor:
        """Fused class scores as logits (``softmax`` of them gives the probabilities)."""
        return out.logits

    # -- records ------------------------------------------------------------------------------------
    def records(self) -> dict[str, list[dict[str, Any]]]:
        """Tables for the run directory, ``{name: rows}`` (none by default); see the module docstring."""
        return {}

    # -- state --------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for k, v in state.items():
            if not k.endswith("_"):
                raise ConfigError(
                    f"strategy state key {k!r} is not learned state (expected a name ending in _)"
                )
            setattr(self, k, v.clone() if isinstance(v, torch.Tensor) else v)
