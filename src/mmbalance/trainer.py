"""The training loop. It knows no algorithm: it calls the strategy's hooks and ``training_step``.

``fit`` selects the best epoch on the validation split only and keeps that state in memory;
``evaluate`` computes fused and per-modality metrics in one pass. A ``TrainState`` holds everything a
killed run needs to resume (model, optimizer, scheduler, strategy state, RNG, history, best state).
"""

from __future__ import annotations

import copy
import math
import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from mmbalance import distributed
from mmbalance.errors import ConfigError, TrainingDiverged
from mmbalance.metrics import MetricAccumulator
from mmbalance.models import MultimodalModel
from mmbalance.precision import autocast
from mmbalance.strategies import Strategy
from mmbalance.types import Batch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_deterministic(on: bool) -> None:
    """Ask PyTorch for deterministic kernels (``train.deterministic``; ``compare`` turns it on).

    On: ``torch.use_deterministic_algorithms(True)`` (an op without a deterministic kernel raises instead
    of running), cuDNN in deterministic mode without autotuning, and ``CUBLAS_WORKSPACE_CONFIG`` set as
    cuBLAS needs it (when not already set). Off: PyTorch's defaults. A CPU run is repeatable either way on
    the same machine, torch build and thread count; on a GPU only the deterministic mode makes it so.
    """
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on)
    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = False


@torch.no_grad()
def evaluate(
    model: MultimodalModel,
    strategy: Strategy,
    loader: Iterable[Batch],
    device: torch.device,
    precision: str = "fp32",
) -> dict[str, Any]:
    """``{"acc", "macro_f1", "map", "auroc", "modalities": {m: {...}}}`` over the whole loader.

    The forward and the strategy's fusion run under the autocast of ``precision``
    (:func:`mmbalance.precision.autocast`); metrics are computed from float32 scores.

    Raises :class:`TrainingDiverged` if a fused score or a per-modality logit is NaN or infinite (one
    check, after the last batch).
    """
    model.eval()
    fused = MetricAccumulator()
    per_mod: dict[str, MetricAccumulator] = {m: MetricAccumulator() for m in model.modalities}
    finite = torch.ones((), dtype=torch.bool, device=device)  # stays on the device: no per-batch sync
    for batch in loader:
        batch = batch.to(device)
        with autocast(device, precision):
            out = model(batch.inputs) if batch.present is None else model(batch.inputs, batch.present)
            scores = strategy.predict(out).float()  # logits: softmax is applied once
        fused.update(scores, batch.label)
        finite &= scores.isfinite().all()
        for m, logits in out.unimodal_logits.items():
            rows = batch.has(m)  # a modality is scored on the rows that have it
            logits, label = (logits, batch.label) if rows is None else (logits[rows], batch.label[rows])
            if len(label):
                per_mod[m].update(logits.float(), label)
            finite &= logits.isfinite().all()
    if not bool(finite):
        raise TrainingDiverged("the model's outputs are NaN or infinite")
    result: dict[str, Any] = fused.compute()
    result["modalities"] = {m: acc.compute() for m, acc in per_mod.items() if acc.scores}
    return result


def flat_metrics(prefix: str, metrics: dict[str, Any]) -> dict[str, float]:
    """``{"val_acc": .., "val_image_acc": ..}`` from the nested ``evaluate`` result."""
    row = {f"{prefix}_{k}": v for k, v in metrics.items() if k != "modalities"}
    for m, sub in metrics.get("modalities", {}).items():
        row.update({f"{prefix}_{m}_{k}": v for k, v in sub.items()})
    return row


@dataclass
class TrainState:
    """Everything that changes during ``fit``; saved each epoch so a killed run can resume."""

    epoch: int = 0
    best_epoch: int = -1
    best_score: float = float("-inf")
    best_model: dict[str, Any] | None = None
    best_strategy: dict[str, Any] | None = None  # the strategy's learned state at the best epoch
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0
    stale_epochs: int = 0


def make_scheduler(cfg: dict[str, Any], optimizer: Optimizer, epochs: int) -> LRScheduler | None:
    """The configured scheduler over ``optimizer``, at the start of its schedule (``None``: constant rate)."""
    if cfg["name"] == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, cfg["step_size"], cfg["gamma"])
    if cfg["name"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    return None


def continue_schedule(new: LRScheduler, old: LRScheduler) -> None:
    """Move ``old``'s position onto ``new``, a scheduler of the same kind over a replacement optimizer.

    ``new`` takes ``old``'s state (epoch count, base rates) and its optimizer's groups take the rates
    ``old``'s optimizer holds now. StepLR and CosineAnnealingLR compute each rate from the group's current
    one (their chainable form), so both are needed: afterwards ``new`` yields exactly the rates ``old``
    would have, as one scheduler over the whole run.
    """
    groups, before = new.optimizer.param_groups, old.optimizer.param_groups
    if len(groups) != len(before):
        raise ValueError(
            f"the replacement optimizer has {len(groups)} parameter groups; the one it replaces had "
            f"{len(before)}, so the learning-rate schedule cannot continue"
        )
    new.load_state_dict(copy.deepcopy(old.state_dict()))
    for group, prev in zip(groups, before, strict=True):
        group["lr"], group["initial_lr"] = prev["lr"], prev["initial_lr"]


def follow_optimizer(
    scheduler: LRScheduler | None, strategy: Strategy, cfg: dict[str, Any], epochs: int
) -> LRScheduler | None:
    """The scheduler for ``strategy.optimizer``: ``scheduler`` while it drives that optimizer; after the
    strategy replaced it, a new scheduler that continues ``scheduler``'s schedule (the rates of one
    scheduler over all epochs), or starts afresh if the strategy's ``restart_schedule`` says so."""
    if scheduler is None or scheduler.optimizer is strategy.optimizer:
        return scheduler
    new = make_scheduler(cfg, strategy.optimizer, epochs)
    if new is not None and not strategy.restart_schedule:
        continue_schedule(new, scheduler)
    return new


@dataclass
class Trainer:
    """Runs epochs of ``strategy.training_step`` and validation; the loop is algorithm-free."""

    model: MultimodalModel
    strategy: Strategy
    make_optimizer: Callable[[], Optimizer]
    scheduler_cfg: dict[str, Any]
    device: torch.device
    epochs: int
    select_metric: str = "acc"
    patience: int = 0
    on_epoch: Callable[[Trainer, TrainState], None] | None = None
    progress: bool = False
    precision: str = "fp32"
    """``"bf16"``: every ``training_step`` and evaluation runs under bfloat16 autocast (parameters,
    gradients and optimizer state stay float32); see :mod:`mmbalance.precision`."""

    def __post_init__(self) -> None:
        self.model.to(self.device)
        optimizer = self.make_optimizer()  # the strategy owns it (and may replace it): strategy.optimizer
        self.scheduler = make_scheduler(self.scheduler_cfg, optimizer, self.epochs)
        self.strategy.epochs = self.epochs  # the run's budget, read by strategies that size stages from it
        self.strategy.setup(self.model, optimizer, self.make_optimizer)
        self.state = TrainState()
        # under torchrun: every backward leaves the gradients of the global batch (see mmbalance.distributed)
        distributed.average_gradients(self._trained_parameters())

    def _trained_parameters(self) -> list[torch.nn.Parameter]:
        """The model's parameters and any others the strategy's optimizer trains, each once."""
        params = {id(p): p for p in self.model.parameters()}
        for group in self.strategy.optimizer.param_groups:
            params.update({id(p): p for p in group["params"]})
        return list(params.values())

    # -- checkpointing ------------------------------------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        """Everything to resume, as tensors and plain values (loadable with ``weights_only=True``)."""
        name, keys, pos, has_gauss, gauss = np.random.get_state()
        return {
            "model": self.model.state_dict(),
            "optimizer": self.strategy.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "strategy": self.strategy.state_dict(),
            "state": {f.name: getattr(self.state, f.name) for f in fields(self.state)},
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
                "numpy": [
                    name,
                    torch.from_numpy(keys.astype(np.int64)),
                    int(pos),
                    int(has_gauss),
                    float(gauss),
                ],
                "python": random.getstate(),
            },
        }

    def restore(self, ckpt: dict[str, Any]) -> None:
        """Load :meth:`checkpoint` output (tensors may be on the CPU; they move to the model's device)."""
        self.model.load_state_dict(ckpt["model"])
        self.strategy.load_state_dict(ckpt["strategy"])
        self.strategy.optimizer.load_state_dict(ckpt["optimizer"])
        self._sync_scheduler()
        if self.scheduler is not None and ckpt["scheduler"] is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        self.state = TrainState(**ckpt["state"])
        rng = ckpt["rng"]
        torch.set_rng_state(rng["torch"].cpu())
        cuda = rng.get("cuda")
        if cuda is not None and self.device.type == "cuda":
            if isinstance(cuda, list):  # checkpoints of earlier versions held every visible GPU's state
                torch.cuda.set_rng_state_all([r.cpu() for r in cuda])
            else:  # this device's (under torchrun: rank 0's, the state every rank's device also had)
                torch.cuda.set_rng_state(cuda.cpu(), self.device)
        name, keys, pos, has_gauss, gauss = rng["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
        random.setstate(tuple(v if not isinstance(v, list) else tuple(v) for v in rng["python"]))

    def _sync_scheduler(self) -> None:
        """A strategy may replace its optimizer (stage changes); the scheduler follows it."""
        self.scheduler = follow_optimizer(self.scheduler, self.strategy, self.scheduler_cfg, self.epochs)

    # -- the loop -----------------------------------------------------------------------------------
    def train_epoch(self, loader: Any, epoch: int) -> dict[str, float]:
        self.model.train()
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        self.strategy.on_epoch_start(epoch, loader)
        self._sync_scheduler()
        totals: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}
        for batch in loader:
            with autocast(self.device, self.precision):
                result = self.strategy.training_step(batch.to(self.device), epoch)
            for k, v in {"train_loss": result.loss, **result.logs}.items():
                totals[k] = totals.get(k, 0) + v.detach().float()
                counts[k] = counts.get(k, 0) + 1
        distributed.average_buffers(self.model)  # every process evaluates the same running statistics
        lr = float(self.strategy.optimizer.param_groups[0]["lr"])  # the rate this epoch trained with
        if self.scheduler is not None:
            self.scheduler.step()
        # Each log is averaged over the steps that reported it (and over the processes: one all-reduce per
        # epoch); one host sync per key and epoch.
        keys = list(totals)
        summed = distributed.mean_list_([totals[k] for k in keys])  # every process took the same steps
        return {**{k: float(v) / counts[k] for k, v in zip(keys, summed, strict=True)}, "lr": lr}

    def stopped_early(self) -> bool:
        return bool(self.patience) and self.state.stale_epochs >= self.patience

    def fit(self, train_loader: Any, val_loader: Any) -> TrainState:
        """Train up to ``epochs`` epochs (fewer with ``patience``), keeping the best validation state.

        An epoch whose training loss or validation outputs are NaN or infinite raises
        :class:`TrainingDiverged` before anything of it is recorded: ``state`` (best state included) and
        whatever ``on_epoch`` saved stay at the last completed epoch.
        """
        bar = _progress(self.epochs, self.state.epoch, self.progress)
        while self.state.epoch < self.epochs and not self.stopped_early():  # also right after a resume
            epoch, start = self.state.epoch, time.perf_counter()
            row = {"epoch": float(epoch), **self.train_epoch(train_loader, epoch)}
            train_seconds = time.perf_counter() - start
            if not math.isfinite(row["train_loss"]):
                raise self._diverged(epoch, f"the training loss became {row['train_loss']}")
            val = self._validate(val_loader, epoch)
            row.update(flat_metrics("val", val))
            row["train_seconds"], row["seconds"] = train_seconds, time.perf_counter() - start
            self.strategy.on_epoch_end(epoch, row)
            self._record(row, val[self.select_metric], train_seconds)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(val_acc=f"{val['acc']:.3f}", best=self.state.best_epoch)
            if self.on_epoch is not None:
                self.on_epoch(self, self.state)
        if bar is not None:
            bar.close()
        return self.state

    def _record(self, row: dict[str, float], score: float, train_seconds: float) -> None:
        st = self.state
        st.history.append(row)
        st.train_seconds += train_seconds
        if math.isfinite(score) and score > st.best_score:  # strictly better: ties keep the earlier epoch
            st.best_score, st.best_epoch, st.stale_epochs = score, st.epoch, 0
            st.best_model = copy.deepcopy(self.model.state_dict())
            st.best_strategy = copy.deepcopy(self.strategy.state_dict())
        else:
            st.stale_epochs += 1
        st.epoch += 1

    def _validate(self, val_loader: Any, epoch: int) -> dict[str, Any]:
        """``evaluate`` on validation; non-finite outputs are divergence, a NaN selection score before any
        finite one is a metric undefined on this split (the built-in metrics are NaN on finite outputs
        only when the validation labels leave them undefined, as AUROC with one class: no later epoch
        would do better)."""
        try:
            val = evaluate(self.model, self.strategy, val_loader, self.device, self.precision)
        except TrainingDiverged:
            raise self._diverged(epoch, "the validation outputs became NaN or infinite") from None
        val = distributed.broadcast_object(val)  # under torchrun: rank 0's, so every process decides alike
        score = val[self.select_metric]
        if not math.isfinite(score) and self.state.best_epoch < 0:
            raise ConfigError(
                f"train.select_metric={self.select_metric!r} is {score} on the validation split in epoch "
                f"{epoch} although the model's outputs are finite; expected a metric defined there, e.g. acc"
            )
        return val

    def _diverged(self, epoch: int, what: str) -> TrainingDiverged:
        """The one-line error for epoch ``epoch``: what became non-finite, what is kept, what to lower."""
        group = self.strategy.optimizer.param_groups[0]
        lr = group.get("initial_lr", group["lr"])  # the configured rate, before any schedule
        kept = (
            f"the checkpoint of epoch {epoch - 1} is kept" if epoch else "no epoch completed, so none is kept"
        )
        return TrainingDiverged(
            f"training diverged in epoch {epoch}: {what}; {kept}; "
            f"try a lower learning rate than optim__lr={lr:g}"
        )


def _progress(total: int, done: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, desc="epochs", leave=False, dynamic_ncols=True)
