"""The pre-training stage: its run directory and its loop (``model.init_from``: :mod:`.init`).

Run directory: ``config.yaml`` (every value used; ``strategy`` holds the pre-training method and its
hyperparameters, ``resolved.stage`` is ``pretrain``), ``split.json`` and ``preprocessing.json`` (as a
training run's: pre-training reads the training split only, and validation rows for its loss curve),
``history.csv`` (epoch, train_loss, val_loss, lr, seconds) and ``pretrained.pt`` (the encoders' configs
and states, the method's projectors). A finished directory with the same config is reused.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mmbalance import config as config_mod
from mmbalance.errors import ConfigError
from mmbalance.pretrain.base import PRETRAINED, PRETRAINERS, Pretrainer


def resolve_pretrain(
    cfg: Mapping[str, Any], overrides: Iterable[str] = ()
) -> tuple[dict[str, Any], Pretrainer]:
    """The resolved config (``strategy`` names the pre-training method, with every hyperparameter) and
    the method; one-line errors for unknown methods, options and values."""
    raw = config_mod.apply_overrides({k: v for k, v in cfg.items() if k != config_mod.DERIVED}, overrides)
    method = dict(raw.pop("strategy", None) or {})
    name = method.pop("name", "mmcl")
    resolved = config_mod.resolve(raw)
    PRETRAINERS.check_kwargs(name, method)
    pre = PRETRAINERS.build(name, **method)
    resolved["strategy"] = {"name": name, **pre.hyperparameters()}
    return config_mod.plain(resolved), pre  # type: ignore[return-value]


def _optimizer(params: list[nn.Parameter], cfg: Mapping[str, Any]) -> torch.optim.Optimizer:
    lr, wd = float(cfg["lr"]), float(cfg["weight_decay"])
    if cfg["name"] == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=float(cfg["momentum"]), weight_decay=wd)
    return (torch.optim.AdamW if cfg["name"] == "adamw" else torch.optim.Adam)(params, lr=lr, weight_decay=wd)


def pretrain_run(
    cfg: Mapping[str, Any],
    out: str | Path,
    overrides: Iterable[str] = (),
    log: Callable[[str], None] | None = None,
) -> list[dict[str, float]]:
    """Pre-train into ``out`` and return the history (one row per epoch)."""
    from mmbalance.data import BatchLoader
    from mmbalance.experiment import PREPROCESSING, build, loaders, write_csv
    from mmbalance.trainer import make_scheduler

    out = Path(out)
    resolved, pre = resolve_pretrain(cfg, overrides)
    s = build({**resolved, "strategy": {"name": "joint"}})
    mods = pre.modalities(s.dataset.modalities)
    options = {m: pre.encoder_options(m, s.dataset.modalities) for m in mods}
    if any(options.values()):  # the method's encoders (TIP's tabular transformer): build again with them
        given = resolved["model"]["encoders"]
        encoders = {**given, **{m: {**given.get(m, {}), **o} for m, o in options.items() if o}}
        s = build(
            {**resolved, "model": {**resolved["model"], "encoders": encoders}, "strategy": {"name": "joint"}}
        )
    full = {**s.config, "strategy": resolved["strategy"]}
    if (out / PRETRAINED).exists():
        _check_same_config(out, full)
        if log:
            log(f"{out} is finished; its pre-trained encoders are reused")
        return json.loads((out / "history.json").read_text())  # type: ignore[no-any-return]
    model, device = s.model.to(s.device), s.device
    extra = pre.build_for(model, mods).to(device)
    params = [p for m in mods for p in model.encoder_parameters(m)] + list(extra.parameters())
    optimizer = _optimizer(params, full["optim"])
    epochs = int(full["train"]["epochs"])
    scheduler = make_scheduler(full["scheduler"], optimizer, epochs)
    out.mkdir(parents=True, exist_ok=True)
    derived = {"stage": "pretrain", "modalities": mods, "device": str(device)}
    (out / "config.yaml").write_text(config_mod.dump({**full, config_mod.DERIVED: derived}))
    (out / "split.json").write_text(json.dumps({k: v.tolist() for k, v in s.split.items()}))
    (out / PREPROCESSING).write_text(json.dumps(s.dataset.preprocessing()))
    ld, history = loaders(s), []
    batch = int(full["data"]["batch_size"])  # the validation loss with as many negatives as in training
    val = BatchLoader(s.dataset, s.split["val"], batch, drop_last=len(s.split["val"]) > batch)
    for epoch in range(epochs):
        start = time.perf_counter()
        ld["train"].set_epoch(epoch)
        train_loss = _epoch(pre, model, extra, ld["train"], device, optimizer)
        seconds = time.perf_counter() - start
        val_loss = _epoch(pre, model, extra, val, device, None)
        history.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": round(seconds, 3),
            }
        )
        if scheduler is not None:
            scheduler.step()
        write_csv(out / "history.csv", history)
        if log:
            log(f"pretrain epoch {epoch}: train loss {train_loss:.4f}, val loss {val_loss:.4f}")
    saved = {
        "method": full["strategy"]["name"],
        "encoders": {m: full["model"]["encoders"][m] for m in mods},
        "state": {m: model.encoders[m].state_dict() for m in mods},
        "extra": extra.state_dict(),
    }
    torch.save(saved, out / PRETRAINED)
    (out / "history.json").write_text(json.dumps(history))
    return history


def _check_same_config(out: Path, full: Mapping[str, Any]) -> None:
    import yaml

    from mmbalance.experiment import _comparable, config_diff

    diff = config_diff(_comparable(yaml.safe_load((out / "config.yaml").read_text())), _comparable(full))
    if diff:
        raise ConfigError(
            f"{out} holds a pre-training run with another config (differs in {', '.join(diff[:4])}); "
            "use a new --out directory"
        )


def _epoch(
    pre: Pretrainer,
    model: nn.Module,
    extra: nn.Module,
    loader: Any,
    device: torch.device,
    optimizer: torch.optim.Optimizer | None,
) -> float:
    """One pass: a training epoch with ``optimizer``, else the loss without corruption, under ``no_grad``."""
    train = optimizer is not None
    model.train(train)
    extra.train(train)
    total, rows = torch.zeros((), device=device), 0
    with torch.set_grad_enabled(train):
        for batch in loader:
            batch = batch.to(device)
            if batch.size < 2:  # a contrastive loss needs negatives
                continue
            loss = pre.loss(model, extra, batch, train)  # type: ignore[arg-type]
            if optimizer is not None:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            total += loss.detach() * batch.size
            rows += batch.size
    value = float(total) / max(rows, 1)
    if value != value or value in (float("inf"), float("-inf")):
        from mmbalance.errors import TrainingDiverged

        raise TrainingDiverged(f"pre-training loss is {value}")
    return value
