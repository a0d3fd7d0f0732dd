"""One training run from a resolved config, and the run directory it writes.

Run directory: ``config.yaml`` (fully resolved), ``split.json``, ``history.csv`` (one row per epoch),
``best.pt`` (the best-validation model and its config), ``metrics.json`` and, while the run is in
progress, ``last.pt`` (all training state; a re-run of the same command resumes from it).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mmbalance import config as config_mod
from mmbalance.data import BatchLoader, MultimodalDataset, build_dataset, stratified_split
from mmbalance.errors import ConfigError
from mmbalance.models import MultimodalModel, build_model
from mmbalance.probe import linear_probe
from mmbalance.strategies import Strategy, build_strategy
from mmbalance.trainer import Trainer, TrainState, evaluate, seed_everything


@dataclass
class Setup:
    """Everything built from a config: dataset (standardised), split, strategy and model."""

    config: dict[str, Any]
    dataset: MultimodalDataset
    split: dict[str, torch.Tensor]
    strategy: Strategy
    model: MultimodalModel
    device: torch.device


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name!r} but this torch build sees no CUDA device; use cpu or auto")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"train.device={name!r} but MPS is not available here; use cpu or auto")
    return device


def build(cfg: Mapping[str, Any], split: Mapping[str, list[int]] | None = None) -> Setup:
    """Build dataset, split, strategy and model from a resolved config (``split`` reuses a saved one)."""
    cfg = dict(cfg)
    seed_everything(cfg["train"]["seed"])
    dataset = build_dataset(**cfg["dataset"])
    strategy = build_strategy(**cfg["strategy"])
    modalities = strategy.modalities(dataset.modalities)
    if split is None:
        parts = stratified_split(dataset.labels, cfg["data"]["split"], cfg["train"]["seed"])
    else:
        parts = {k: torch.tensor(v, dtype=torch.long) for k, v in split.items()}
    dataset.standardize_(parts["train"])
    encoders = {m: dict(dataset.default_encoders[m]) for m in modalities}
    for m, enc in cfg["model"]["encoders"].items():
        if m not in dataset.modalities:
            raise ConfigError(f"model.encoders names modality {m!r}; dataset has {dataset.modalities}")
        if m in encoders:
            encoders[m] = dict(enc) if enc["name"] != encoders[m]["name"] else {**encoders[m], **enc}
    model = build_model(
        encoders,
        {m: dataset.input_shape(m) for m in modalities},
        dataset.num_classes,
        strategy.head_config(),
        cfg["model"]["feature_dim"],
    )
    return Setup(cfg, dataset, parts, strategy, model, resolve_device(str(cfg["train"]["device"])))


def parameter_groups(model: MultimodalModel) -> list[dict[str, Any]]:
    """One optimizer group per modality (its encoder and head branch) and one for the shared head, each
    named, so per-modality settings (learning rates, modulation) can address them."""
    groups = [{"params": model.modality_parameters(m), "name": m} for m in model.modalities]
    shared = model.shared_parameters()
    return groups + ([{"params": shared, "name": "shared"}] if shared else [])


def make_optimizer_factory(
    model: MultimodalModel, cfg: Mapping[str, Any]
) -> Callable[[], torch.optim.Optimizer]:
    """A function that builds a fresh optimizer over ``model`` (strategies may re-create it per stage)."""

    def make() -> torch.optim.Optimizer:
        groups, lr, wd = parameter_groups(model), float(cfg["lr"]), float(cfg["weight_decay"])
        if cfg["name"] == "sgd":
            return torch.optim.SGD(groups, lr=lr, momentum=float(cfg["momentum"]), weight_decay=wd)
        if cfg["name"] == "adamw":
            return torch.optim.AdamW(groups, lr=lr, weight_decay=wd)
        return torch.optim.Adam(groups, lr=lr, weight_decay=wd)

    return make


def loaders(s: Setup) -> dict[str, BatchLoader]:
    d, seed = s.config["data"], s.config["train"]["seed"]
    n_train = len(s.split["train"])
    return {
        "train": BatchLoader(
            s.dataset,
            s.split["train"],
            d["batch_size"],
            shuffle=True,
            seed=seed,
            drop_last=n_train > d["batch_size"],
        ),
        "val": BatchLoader(s.dataset, s.split["val"], d["eval_batch_size"]),
        "test": BatchLoader(s.dataset, s.split["test"], d["eval_batch_size"]),
    }


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Rows to CSV; the columns are the union of the rows' keys in first-seen order (missing: empty)."""
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def make_trainer(s: Setup, epochs: int | None = None, **options: Any) -> Trainer:
    """A :class:`Trainer` for a built setup, with the config's optimizer, scheduler and selection."""
    cfg = s.config
    options.setdefault("select_metric", cfg["train"]["select_metric"])
    options.setdefault("patience", cfg["train"]["patience"])
    return Trainer(
        s.model,
        s.strategy,
        make_optimizer_factory(s.model, cfg["optim"]),
        cfg["scheduler"],
        s.device,
        cfg["train"]["epochs"] if epochs is None else epochs,
        **options,
    )


def train_run(
    cfg: Mapping[str, Any], out: str | Path, progress: bool = False, log: Any = None
) -> dict[str, Any]:
    """Train one run into ``out`` (resuming from ``out/last.pt`` if present) and return its metrics."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = config_mod.resolve(cfg)
    _check_same_config(out, cfg)
    if (out / "metrics.json").exists():  # finished with this very config: nothing to do
        if log:
            log(f"{out} is finished; its metrics are reused (use a new --out to train again)")
        return json.loads((out / "metrics.json").read_text())
    s = build(cfg)
    (out / "config.yaml").write_text(config_mod.dump(cfg))
    (out / "split.json").write_text(json.dumps({k: v.tolist() for k, v in s.split.items()}))
    ld = loaders(s)
    trainer = make_trainer(s, on_epoch=lambda t, st: _on_epoch(out, t, st), progress=progress)
    if (out / "last.pt").exists():
        trainer.restore(torch.load(out / "last.pt", weights_only=False))
        if log:
            log(f"resuming {out} at epoch {trainer.state.epoch}")
    state = trainer.fit(ld["train"], ld["val"])
    metrics = _finish(out, s, state, ld)
    (out / "last.pt").unlink(missing_ok=True)
    return metrics


def _check_same_config(out: Path, cfg: Mapping[str, Any]) -> None:
    """Refuse to resume or overwrite a run directory that was written with another config."""
    old = out / "config.yaml"
    started = (out / "last.pt").exists() or (out / "metrics.json").exists()
    if started and old.exists():
        import yaml

        if yaml.safe_load(old.read_text()) != yaml.safe_load(config_mod.dump(cfg)):
            raise ConfigError(f"{out} holds a run with another config; use a new --out directory")


def _on_epoch(out: Path, trainer: Trainer, state: TrainState) -> None:
    write_csv(out / "history.csv", state.history)
    tmp = out / "last.pt.tmp"
    torch.save(trainer.checkpoint(), tmp)
    tmp.replace(out / "last.pt")  # atomic: a kill never leaves a half-written checkpoint


def _finish(out: Path, s: Setup, state: TrainState, ld: Mapping[str, BatchLoader]) -> dict[str, Any]:
    assert state.best_model is not None and state.best_strategy is not None
    s.model.load_state_dict(state.best_model)
    s.strategy.load_state_dict(state.best_strategy)
    val = evaluate(s.model, s.strategy, ld["val"], s.device)
    test = evaluate(s.model, s.strategy, ld["test"], s.device)  # the one read of the test split
    probe = _probe(s, ld)
    best = {
        "config": s.config,
        "model": state.best_model,
        "strategy": state.best_strategy,
        "standardization": s.dataset.stats_,  # train-split mean and std: enough to predict on new data
        "class_names": s.dataset.class_names,
    }
    torch.save(best, out / "best.pt")

    metrics = {
        "method": s.config["strategy"]["name"],
        "dataset": s.config["dataset"]["name"],
        "seed": s.config["train"]["seed"],
        "best_epoch": state.best_epoch,
        "epochs_run": state.epoch,
        "train_seconds": round(state.train_seconds, 3),
        "val": val,
        "test": test,
        "probe": probe,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def _probe(s: Setup, ld: Mapping[str, BatchLoader]) -> dict[str, Any]:
    """Linear probes of the encoders' features (:func:`mmbalance.probe.linear_probe`), fitted on the
    whole training split in order (no shuffling, no dropped rows), scored on val and test."""
    train = BatchLoader(s.dataset, s.split["train"], s.config["data"]["eval_batch_size"])
    return linear_probe(s.model, train, {"val": ld["val"], "test": ld["test"]}, s.device)


def evaluate_run(run_dir: str | Path) -> dict[str, Any]:
    """Re-evaluate a finished run from ``best.pt`` and its saved split (val and test)."""
    run_dir = Path(run_dir)
    if not (run_dir / "best.pt").exists():
        raise ConfigError(f"{run_dir} has no best.pt; expected the directory of a finished `mmbalance train`")
    ckpt = torch.load(run_dir / "best.pt", weights_only=False)
    s = build(ckpt["config"], json.loads((run_dir / "split.json").read_text()))
    make_trainer(s)  # moves the model to the device and sets the strategy up, as in training
    s.model.load_state_dict(ckpt["model"])
    s.strategy.load_state_dict(ckpt["strategy"])
    ld = loaders(s)
    return {k: evaluate(s.model, s.strategy, ld[k], s.device) for k in ("val", "test")}
