"""One training run from a resolved config, and the run directory it writes.

Run directory: ``config.yaml`` (every value the run used, see :func:`full_config`, plus a ``resolved``
section: head, modalities, device actually used, versions), ``split.json``, ``history.csv`` (one row per
epoch), ``best.pt`` (the best-validation model and its config), ``metrics.json``, the strategy's records
(``<name>.csv``, e.g. ``spectra.csv``, with ``<name>.png`` where a figure exists and matplotlib is
installed; see :func:`write_records`) and, while the run is in
progress, ``last.pt`` (all training state; a re-run of the same command resumes from it). Nothing is
written before the whole run has been built and validated. Checkpoints hold tensors and plain values only
and are loaded with ``weights_only=True`` onto the CPU first, so a run directory from elsewhere cannot
execute code and a GPU run can be evaluated or resumed on a CPU-only machine.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mmbalance import config as config_mod
from mmbalance import distributed
from mmbalance.checkpoints import load_checkpoint
from mmbalance.data import DATASETS, BatchLoader, MultimodalDataset, build_dataset, stratified_split
from mmbalance.data.missing import check_missing
from mmbalance.errors import ConfigError
from mmbalance.models import ENCODERS, MultimodalModel, build_model, parameter_groups
from mmbalance.probe import linear_probe
from mmbalance.strategies import STRATEGIES, Strategy, build_strategy
from mmbalance.trainer import Trainer, TrainState, evaluate, seed_everything, set_deterministic

PREPROCESSING = "preprocessing.json"  # the dataset's fit on the train split, replayed by evaluate and predict
CONDITIONING = ("condition", "film_reduction")  # encoder options spelled out only when a condition is set
LOADING_ONLY = ("num_workers", "pin_memory", "cache_features")  # how inputs are read and embedded, not which


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
        raise ConfigError(f"train.device={name!r} but this torch build sees no CUDA device; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"train.device={name!r} but MPS is not available here; use --device cpu or auto")
    return device


def encoder_configs(
    given: Mapping[str, Mapping[str, Any]],
    dataset: MultimodalDataset,
    modalities: Sequence[str],
    feature_dim: int,
) -> dict[str, dict[str, Any]]:
    """Each used modality's encoder config with every option spelled out: the dataset's default, updated by
    ``given`` (merged when ``given`` names no encoder or the same one, replaced when it names another)."""
    out = {}
    for m in given:
        if m not in dataset.modalities:
            raise ConfigError(f"model.encoders names modality {m!r}; expected one of {dataset.modalities}")
    for m in modalities:
        default, enc = dict(dataset.default_encoders[m]), dict(given.get(m, {}))
        merged = {**default, **enc} if enc.get("name", default["name"]) == default["name"] else enc
        options = {k: v for k, v in merged.items() if k != "name"}
        ENCODERS.check_kwargs(merged["name"], options, ("out_dim",))
        params = ENCODERS.params(merged["name"])
        skip = {"input_shape", "condition_shape"}  # the model fills these in
        if merged.get("condition") is None:  # an unconditioned encoder's config stays as it was
            skip |= set(CONDITIONING)
        full = {k: v for k, v in params.items() if k not in skip and v is not inspect.Parameter.empty}
        out[m] = config_mod.plain({"name": merged["name"], **full, "out_dim": feature_dim, **options})
    return out


def strategy_encoder_options(
    given: Mapping[str, Mapping[str, Any]],
    strategy: Strategy,
    modalities: Sequence[str],
    available: Sequence[str],
) -> dict[str, dict[str, Any]]:
    """``given`` (``model.encoders``) with the options the strategy sets on its modalities' encoders
    (:meth:`Strategy.encoder_options`, e.g. DAFT's ``condition``) merged in; the strategy's win."""
    out = {m: dict(v) for m, v in given.items()}
    for m in modalities:
        options = strategy.encoder_options(m, available)
        if options:
            out[m] = {**out.get(m, {}), **options}
    return out


def full_config(cfg: Mapping[str, Any], strategy: Strategy, encoders: Mapping[str, Any]) -> dict[str, Any]:
    """``cfg`` with every default spelled out: the dataset's and the strategy's keyword arguments and the
    encoders' options. Building from it gives the same run; it is what ``config.yaml`` records."""
    full = copy.deepcopy(dict(cfg))
    ds = dict(cfg["dataset"])
    params = DATASETS.params(ds["name"])
    full["dataset"] = {
        "name": ds["name"],
        **{k: v for k, v in params.items() if v is not inspect.Parameter.empty},
    }
    full["dataset"].update(ds)
    full["strategy"] = {"name": cfg["strategy"]["name"], **strategy.hyperparameters()}
    full["model"] = {**full["model"], "encoders": dict(encoders)}
    return config_mod.plain(full)  # type: ignore[no-any-return]


def config_hash(cfg: Mapping[str, Any]) -> str:
    """12 hex digits that identify a config up to its seed and device (runs of one setting share it)."""
    same = _comparable(cfg)
    same["train"].pop("seed")
    return hashlib.sha256(json.dumps(same, sort_keys=True).encode()).hexdigest()[:12]


def build(
    cfg: Mapping[str, Any],
    split: Mapping[str, list[int]] | None = None,
    preprocessing: Mapping[str, Any] | None = None,
) -> Setup:
    """Build dataset, split, strategy and model from a resolved config (``split`` reuses a saved split,
    ``preprocessing`` a saved fit of the dataset's preprocessing instead of fitting it on the train rows).

    ``Setup.config`` is the :func:`full_config`. Raises :class:`ConfigError` before anything is trained or
    written when a value is invalid.
    """
    cfg = dict(cfg)
    set_deterministic(cfg["train"]["deterministic"])
    seed_everything(cfg["train"]["seed"])
    dataset = build_dataset(**cfg["dataset"])
    strategy = build_strategy(**cfg["strategy"])
    modalities = strategy.modalities(dataset.modalities)
    strategy.validate(modalities)
    device = resolve_device(str(cfg["train"]["device"]))
    if split is not None:
        parts = {k: torch.tensor(v, dtype=torch.long) for k, v in split.items()}
    else:
        parts = dataset.split() or stratified_split(
            dataset.labels, cfg["data"]["split"], cfg["train"]["seed"]
        )
    for k, rows in parts.items():
        if len(rows) == 0:
            raise ConfigError(
                f"the {k} split is empty ({len(dataset)} rows, split {cfg['data']['split']}); expected rows "
                "in train, val and test: use more rows or another data.split"
            )
    if preprocessing is None:
        dataset.fit(parts["train"], {k: parts[k] for k in ("val", "test")})
    else:
        dataset.load_preprocessing(dict(preprocessing))
    feature_dim = cfg["model"]["feature_dim"]
    given = strategy_encoder_options(cfg["model"]["encoders"], strategy, modalities, dataset.modalities)
    encoders = encoder_configs(given, dataset, modalities, feature_dim)
    model = build_model(
        encoders,
        {m: dataset.input_shape(m) for m in dataset.modalities},  # conditioned encoders read others
        dataset.num_classes,
        strategy.head_config(),
        feature_dim,
    )
    return Setup(full_config(cfg, strategy, encoders), dataset, parts, strategy, model, device)


def attach_feature_caches(s: Setup, log: Any = None) -> None:
    """With ``data.cache_features``, cache the trunk features of every frozen backbone whose training inputs
    are not augmented (:mod:`mmbalance.models.feature_cache`); say which modalities are cached or not."""
    setting = s.config["data"]["cache_features"]
    if not setting:
        return
    from mmbalance.models.feature_cache import attach, cacheable

    folder = Path("~/.cache/mmbalance/features" if setting is True else str(setting)).expanduser()
    augments = getattr(s.dataset, "augments", lambda m: False)
    for m, enc in s.model.encoders.items():
        if not cacheable(enc):
            continue
        if augments(m):
            if log:
                log(f"feature cache: {m} is augmented in training, so its features are computed every time")
            continue
        attach(enc, folder, tuple(s.dataset.input_shape(m)), s.config["train"]["precision"])
        if log:
            log(f"feature cache: {m}'s frozen backbone features are kept in {folder}")


def pretrained_encoders(s: Setup) -> dict[str, bool]:
    """Per modality, whether its encoder started from pretrained weights (a backbone given ``weights`` or a
    local model directory) rather than random initialisation."""
    return {m: bool(getattr(enc, "pretrained", False)) for m, enc in s.model.encoders.items()}


def random_backbones(s: Setup) -> list[str]:
    """Modalities whose encoder can load pretrained weights but was given none (the run says so)."""
    return [
        m
        for m, enc in s.config["model"]["encoders"].items()
        if "weights" in ENCODERS.params(enc["name"]) and not getattr(s.model.encoders[m], "pretrained", False)
    ]


def resolved_facts(s: Setup) -> dict[str, Any]:
    """The derived ``resolved`` section of ``config.yaml``: what the config implies on this machine."""
    from mmbalance import __version__

    return config_mod.plain(  # type: ignore[no-any-return]
        {
            "head": s.strategy.head_config(),
            "modalities": s.model.modalities,
            "inputs": s.model.input_modalities,  # with those a conditioned encoder reads (DAFT's tabular)
            "device": str(s.device),
            "processes": distributed.world_size(),  # torchrun processes; the global batch is data.batch_size
            "pretrained": pretrained_encoders(s),
            "config_hash": config_hash(s.config),
            "torch": str(torch.__version__),
            "mmbalance": __version__,
        }
    )


def check_runs(configs: Sequence[Mapping[str, Any]]) -> None:
    """Build every config (dataset, strategy values, encoders, model, the strategy's setup) without training
    or writing anything: a compare or sweep fails on its first bad value before its first run starts."""
    for cfg in configs:
        make_trainer(build(config_mod.resolve(cfg)))


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


def loaders(s: Setup, dataset: Any = None) -> dict[str, BatchLoader]:
    """Train (shuffled by seed and epoch, augmented), val and test loaders; ``dataset`` replaces the
    setup's for val and test (a copy with missing modalities). Under ``torchrun`` the train loader gives
    this process its shard of each global batch; every process evaluates the whole val and test splits."""
    d, seed = s.config["data"], s.config["train"]["seed"]
    n_train = len(s.split["train"])
    evaluated = s.dataset if dataset is None else dataset
    io = {"num_workers": d["num_workers"], "pin_memory": d["pin_memory"]}
    return {
        "train": BatchLoader(  # under torchrun, this process's shard of every global batch
            s.dataset.train_view(seed),
            s.split["train"],
            distributed.local_batch_size(d["batch_size"]),
            shuffle=True,
            seed=seed,
            drop_last=n_train > d["batch_size"],
            rank=distributed.rank(),
            world_size=distributed.world_size(),
            **io,
        ),
        "val": BatchLoader(evaluated, s.split["val"], d["eval_batch_size"], **io),
        "test": BatchLoader(evaluated, s.split["test"], d["eval_batch_size"], **io),
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
    options.setdefault("precision", cfg["train"]["precision"])
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
    cfg: Mapping[str, Any],
    out: str | Path,
    progress: bool = False,
    log: Any = None,
    on_epoch: Callable[[Trainer, TrainState], None] | None = None,
) -> dict[str, Any]:
    """Train one run into ``out`` (resuming from ``out/last.pt`` if present) and return its metrics.

    A finished run with the same config is reused (its metrics are returned); a run directory that holds
    another config is refused. The run is built and validated before anything is written. ``on_epoch``
    is called after each epoch, once that epoch's checkpoint and history are saved: an exception it raises
    (``optuna.TrialPruned``, say) stops the run and leaves ``out`` resumable at that epoch.
    """
    out = Path(out)
    cfg = config_mod.resolve(cfg)
    local_device = distributed.init_from_env(str(cfg["train"]["device"]))  # as given without torchrun
    s = build(cfg)
    if distributed.active():
        s.device = distributed.prepare_model(s.model, torch.device(local_device))
    main = distributed.is_main()
    log, progress = (log, progress) if main else (None, False)  # one process speaks and writes

    def epoch_done(t: Trainer, st: TrainState) -> None:
        if main:
            _on_epoch(out, t, st)
        distributed.barrier()  # the epoch's checkpoint is on disk before any process goes on
        if on_epoch is not None:
            on_epoch(t, st)

    trainer = make_trainer(s, on_epoch=epoch_done, progress=progress)
    check_run_dir(out, s.config)
    check_same_data(out, s)
    if (out / "metrics.json").exists():  # finished with this very config: nothing to do
        if log:
            log(f"{out} is finished; its metrics are reused (use a new --out to train again)")
        return json.loads((out / "metrics.json").read_text())  # type: ignore[no-any-return]
    if s.config["model"].get("init_from"):
        from mmbalance.pretrain.init import init_from_run

        init_from_run(s, log)  # before the first epoch; a resumed run then loads last.pt over it
    elif getattr(s.strategy, "wants_pretraining", False) and log:
        log(
            f"method {s.config['strategy']['name']!r} without model__init_from: "
            "its encoders start from random weights"
        )
    attach_feature_caches(s, log)
    if log and random_backbones(s) and not s.config["model"].get("init_from"):
        names = ", ".join(f"{m} ({s.config['model']['encoders'][m]['name']})" for m in random_backbones(s))
        log(
            f"no pretrained weights for {names}: randomly initialised (give model__encoders__M__weights=PATH)"
        )
    distributed.barrier()  # every process has read the run directory before rank 0 writes to it
    if main:
        out.mkdir(parents=True, exist_ok=True)
        facts = resolved_facts(s)
        (out / "config.yaml").write_text(config_mod.dump({**s.config, config_mod.DERIVED: facts}))
        (out / "split.json").write_text(json.dumps({k: v.tolist() for k, v in s.split.items()}))
        (out / PREPROCESSING).write_text(json.dumps(s.dataset.preprocessing()))
    ld = loaders(s)
    distributed.barrier()  # every process sees the same last.pt (or none)
    if (out / "last.pt").exists():
        trainer.restore(load_checkpoint(out / "last.pt"))
        if log:
            log(f"resuming {out} at epoch {trainer.state.epoch}")
    state = trainer.fit(ld["train"], ld["val"])
    # rank 0 evaluates, probes and writes the best state; the others take its metrics (same model)
    metrics = distributed.broadcast_object(_finish(out, s, state, ld) if main else None)
    if main:
        flush_feature_caches(s.model)
        (out / "last.pt").unlink(missing_ok=True)
    distributed.barrier()
    return metrics


def _comparable(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """A config as compared for resume and reuse: derived facts and the device do not count."""
    same = {k: v for k, v in cfg.items() if k != config_mod.DERIVED}
    same["train"] = {k: v for k, v in same["train"].items() if k != "device"}
    same["data"] = {k: v for k, v in same["data"].items() if k not in LOADING_ONLY}
    return config_mod.plain(same)  # type: ignore[no-any-return]


def config_diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested configs.

    >>> config_diff({"train": {"epochs": 1, "seed": 0}}, {"train": {"epochs": 5, "seed": 0}})
    ['train.epochs']
    """
    if not (isinstance(a, Mapping) and isinstance(b, Mapping)):
        return [] if a == b else [prefix or "(root)"]
    keys = list(dict.fromkeys([*a, *b]))
    return [d for k in keys for d in config_diff(a.get(k), b.get(k), f"{prefix}{'.' if prefix else ''}{k}")]


def check_run_dir(out: Path, cfg: Mapping[str, Any]) -> None:
    """Refuse to resume or reuse a run directory that was written with another config (``cfg`` is a
    :func:`full_config`; the device may differ). A directory whose run has not finished an epoch is free."""
    old = out / "config.yaml"
    started = (out / "last.pt").exists() or (out / "metrics.json").exists()
    if started and old.exists():
        import yaml

        saved = _comparable(yaml.safe_load(old.read_text()))
        diff = [k for k in config_diff(saved, _comparable(cfg)) if not _new_default(k, saved, cfg)]
        if diff:
            raise ConfigError(
                f"{out} holds a run with another config (differs in {', '.join(diff[:4])}); "
                "use a new --out directory or remove that one"
            )


def check_same_data(out: Path, s: Setup) -> None:
    """Refuse to resume or reuse a run whose data changed (a manifest edited since: the saved split and
    preprocessing belong to other rows)."""
    saved = out / PREPROCESSING
    started = (out / "last.pt").exists() or (out / "metrics.json").exists()
    if not (started and saved.exists()):
        return
    old = json.loads(saved.read_text()).get("fingerprint")
    new = getattr(s.dataset, "fingerprint", lambda: None)()
    if old is not None and old != new:
        raise ConfigError(
            f"{out} holds a run trained on other data (the manifest changed since); use a new --out directory"
        )


def _lookup(cfg: Any, dotted: str) -> tuple[bool, Any]:
    node = cfg
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _new_default(dotted: str, saved: Mapping[str, Any], cfg: Mapping[str, Any]) -> bool:
    """Whether ``dotted`` is an option added since ``saved`` was written (absent there) whose value in
    ``cfg`` is its default: options are added with the earlier behaviour as their default, so such a run
    is the same run."""
    if _lookup(saved, dotted)[0]:
        return False
    _, value = _lookup(cfg, dotted)
    parts = dotted.split(".")
    if parts[0] in ("strategy", "dataset") and len(parts) == 2:
        params = (STRATEGIES if parts[0] == "strategy" else DATASETS).params(cfg[parts[0]]["name"])
        return parts[1] in params and config_mod.plain(params[parts[1]]) == value
    if parts[:2] == ["model", "encoders"] and len(parts) == 4:
        params = ENCODERS.params(cfg["model"]["encoders"][parts[2]]["name"])
        return parts[3] in params and config_mod.plain(params[parts[3]]) == value
    found, default = _lookup(config_mod.DEFAULTS, dotted)
    return found and default == value


def _on_epoch(out: Path, trainer: Trainer, state: TrainState) -> None:
    write_csv(out / "history.csv", state.history)
    tmp = out / "last.pt.tmp"
    torch.save(trainer.checkpoint(), tmp)
    tmp.replace(out / "last.pt")  # atomic: a kill never leaves a half-written checkpoint
    flush_feature_caches(trainer.model)


def flush_feature_caches(model: torch.nn.Module) -> None:
    """Write every attached feature cache that grew (each epoch, and when the run ends)."""
    for enc in getattr(model, "encoders", {}).values():
        cache = getattr(enc, "feature_cache", None)
        if cache is not None:
            cache.flush()


def write_records(out: Path, strategy: Strategy) -> list[Path]:
    """Each non-empty table of ``strategy.records()`` as ``out/<name>.csv``, plus ``out/<name>.png`` where
    :data:`mmbalance.plots.RECORD_FIGURES` has a figure for it and matplotlib is installed; returns the
    files written. A name that is no identifier, or ``history``, is refused."""
    import importlib.util

    written = []
    for name, rows in strategy.records().items():
        if not name.isidentifier() or name == "history":
            raise ConfigError(f"strategy record {name!r}; expected an identifier other than 'history'")
        if not rows:
            continue
        write_csv(out / f"{name}.csv", rows)
        written.append(out / f"{name}.csv")
        from mmbalance import plots

        figure = plots.RECORD_FIGURES.get(name)
        if figure is not None and importlib.util.find_spec("matplotlib") is not None:
            written.append(plots.save_png(figure(rows), out / f"{name}.png"))
    return written


def _finish(out: Path, s: Setup, state: TrainState, ld: Mapping[str, BatchLoader]) -> dict[str, Any]:
    """Write the strategy's records, evaluate the best state on val and test, probe the encoders, and save
    ``best.pt`` and ``metrics.json``."""
    if state.best_model is None or state.best_strategy is None:  # Trainer.fit raises before this happens
        raise ConfigError(f"{out}: no epoch had a finite validation {s.config['train']['select_metric']}")
    write_records(out, s.strategy)  # the strategy as training left it, before the best state is loaded
    s.model.load_state_dict(state.best_model)
    s.strategy.load_state_dict(state.best_strategy)
    precision = s.config["train"]["precision"]
    val = evaluate(s.model, s.strategy, ld["val"], s.device, precision)
    test = evaluate(s.model, s.strategy, ld["test"], s.device, precision)  # the one read of the test split
    probe = _probe(s, ld)
    best = {
        "config": s.config,
        "model": state.best_model,
        "strategy": state.best_strategy,
        "class_names": s.dataset.class_names,
    }
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
    torch.save(best, out / "best.pt")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def _probe(s: Setup, ld: Mapping[str, BatchLoader]) -> dict[str, Any]:
    """Linear probes of the encoders' features (:func:`mmbalance.probe.linear_probe`), fitted on the
    whole training split in order (no shuffling, no dropped rows), scored on val and test."""
    train = BatchLoader(s.dataset, s.split["train"], s.config["data"]["eval_batch_size"])
    return linear_probe(s.model, train, {"val": ld["val"], "test": ld["test"]}, s.device)


def load_run(run_dir: str | Path, device: str | None = None) -> Setup:
    """A finished run rebuilt from its directory: config, split and preprocessing as saved, the best model
    and strategy state loaded, on ``device`` (the run's configured device when ``None``)."""
    run_dir = Path(run_dir)
    if not (run_dir / "best.pt").exists():
        raise ConfigError(f"{run_dir} has no best.pt; expected the directory of a finished `mmbalance train`")
    ckpt = load_checkpoint(run_dir / "best.pt")
    cfg = copy.deepcopy(ckpt["config"])
    if device is not None:
        cfg["train"]["device"] = device
    saved = run_dir / PREPROCESSING
    prep = json.loads(saved.read_text()) if saved.exists() else None  # older runs: refit on the same split
    s = build(config_mod.resolve(cfg), json.loads((run_dir / "split.json").read_text()), prep)
    make_trainer(s)  # moves the model to the device and sets the strategy up, as in training
    s.model.load_state_dict(ckpt["model"])
    s.strategy.load_state_dict(ckpt["strategy"])
    return s


def evaluate_run(
    run_dir: str | Path, device: str | None = None, missing: Mapping[str, float] | None = None
) -> dict[str, Any]:
    """Re-evaluate a finished run from ``best.pt`` and its saved split and preprocessing (val and test), on
    ``device``; ``missing`` (``{modality: fraction}``, see :mod:`mmbalance.data.missing`) evaluates with
    modalities absent or partly missing at test time."""
    s = load_run(run_dir, device)
    spec = dict(missing or {})
    check_missing(spec, s.model.input_modalities)
    dataset = s.dataset.with_missing(spec, s.config["train"]["seed"]) if spec else None
    ld = loaders(s, dataset)
    precision = s.config["train"]["precision"]
    return {k: evaluate(s.model, s.strategy, ld[k], s.device, precision) for k in ("val", "test")}
