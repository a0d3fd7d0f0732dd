"""Run configuration: nested mappings that map 1:1 onto constructors, defaults, and ``a__b=value`` overrides.

Sections: ``dataset`` and ``strategy`` (``name`` plus the builder's keyword arguments), ``model``
(``feature_dim``, per-modality ``encoders`` overriding the dataset's defaults), ``optim``, ``scheduler``,
``data`` (batch size, split ratios, loader workers) and ``train`` (epochs, seed, device, selection metric,
determinism, precision).

A run directory's ``config.yaml`` holds every value the run used (:func:`mmbalance.experiment.full_config`)
plus a ``resolved`` section of derived facts (the fusion head, the device actually used, versions); that
section is output only and is dropped when the file is read back as a config.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from mmbalance.data import DATASETS
from mmbalance.errors import ConfigError, UnknownNameError, check_range
from mmbalance.metrics import METRIC_NAMES
from mmbalance.models import ENCODERS
from mmbalance.precision import check_precision
from mmbalance.strategies import STRATEGIES

DEFAULTS: dict[str, Any] = {
    "dataset": {"name": "mfeat"},
    "strategy": {"name": "joint"},
    "model": {"feature_dim": 128, "encoders": {}},
    "optim": {"name": "adam", "lr": 1e-3, "weight_decay": 1e-4, "momentum": 0.9},
    "scheduler": {"name": "none", "step_size": 10, "gamma": 0.1},
    "data": {
        "batch_size": 64,
        "split": [0.6, 0.2, 0.2],
        "eval_batch_size": 512,
        "num_workers": 0,
        "pin_memory": False,
        "cache_features": False,
    },
    "train": {
        "epochs": 30,
        "seed": 0,
        "device": "auto",
        "select_metric": "acc",
        "patience": 0,
        "deterministic": False,
        "precision": "fp32",
    },
}
OPTIONAL: dict[str, tuple[str, ...]] = {"model": ("init_from",)}
"""Keys a config may have without a default (absent from configs that do not use them, so the configs and
hashes of existing runs do not change): ``model.init_from``, a ``mmbalance pretrain`` run directory whose
encoders the model starts from (``{seed}`` in it is replaced by the run's seed)."""
DERIVED = "resolved"  # the output-only section of a run's config.yaml
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("none", "step", "cosine")
SELECT_METRICS = METRIC_NAMES
DEVICES = ("auto", "cpu", "cuda", "mps")


YAML11_WORDS = {w for word in ("yes", "no", "on", "off") for w in (word, word.title(), word.upper())}


def parse_value(text: str) -> Any:
    """Parse an override value: numbers (``1e-3`` included), booleans (``true``, ``false``), null, lists, or
    a plain string. YAML 1.1's other boolean words stay strings, so ``strategy__sam_mode=off`` means "off".

    >>> parse_value("1e-3"), parse_value("[16, 32]"), parse_value("sum"), parse_value("none")
    (0.001, [16, 32], 'sum', 'none')
    >>> parse_value("off"), parse_value("false")
    ('off', False)
    """
    if text.strip() in YAML11_WORDS:
        return text.strip()
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(config: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``section__key[__sub]=value`` overrides to a copy of ``config``."""
    config = copy.deepcopy(config)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} has no '='; expected KEY=VALUE such as strategy__head=sum")
        key, _, text = item.partition("=")
        path = key.split("__")
        if path[0] not in DEFAULTS:
            raise UnknownNameError("config section", path[0], DEFAULTS)
        node = config
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {key!r}: {part!r} is not a section")
        node[path[-1]] = parse_value(text)
    return config


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in update.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _check_keys(section: str, given: Mapping[str, Any], allowed: Iterable[str]) -> None:
    allowed = set(allowed)
    for k in given:
        if k not in allowed:
            raise UnknownNameError(f"key in section {section!r}:", k, allowed)


def _check_choice(key: str, value: Any, choices: Iterable[str]) -> None:
    if value not in choices:
        raise UnknownNameError(key, value, choices)


def _check_sections(config: Mapping[str, Any]) -> None:
    for section, value in config.items():
        if section in DEFAULTS and not isinstance(value, Mapping):
            raise ConfigError(
                f"config section {section!r} is {value!r}; expected a mapping of keys, "
                f"e.g. {section}: {{{next(iter(DEFAULTS[section]))}: ...}}"
            )


def resolve(config: Mapping[str, Any] | None = None, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Defaults, then ``config``, then overrides; validated. Returns a plain dict with every section.

    An encoder override without a ``name`` (``model__encoders__image__channels=[16,32]``) is merged into the
    dataset's default encoder for that modality when the run is built; one with another ``name`` replaces it.
    """
    config = {k: v for k, v in (config or {}).items() if k != DERIVED}
    _check_sections(config)
    cfg = apply_overrides(_merge(DEFAULTS, config), overrides)
    _check_keys("config", cfg, DEFAULTS)
    for section in ("model", "optim", "scheduler", "data", "train"):
        _check_keys(section, cfg[section], [*DEFAULTS[section], *OPTIONAL.get(section, ())])
    init = cfg["model"].get("init_from")
    if init is not None and (not isinstance(init, str) or not init):
        raise ConfigError(f"model.init_from={init!r} is invalid; expected the directory of a pretrain run")
    for section, registry in (("dataset", DATASETS), ("strategy", STRATEGIES)):
        kwargs = {k: v for k, v in cfg[section].items() if k != "name"}
        registry.check_kwargs(cfg[section]["name"], kwargs)
    if not isinstance(cfg["model"]["encoders"], Mapping):
        raise ConfigError(f"model.encoders={cfg['model']['encoders']!r}; expected a mapping of modalities")
    for m, enc in cfg["model"]["encoders"].items():
        if not isinstance(enc, Mapping):
            raise ConfigError(f"model.encoders.{m}={enc!r}; expected a mapping such as {{name: cnn}}")
        if "name" in enc:
            ENCODERS.check_kwargs(enc["name"], {k: v for k, v in enc.items() if k != "name"}, ("out_dim",))
    _check_choice("optimizer", cfg["optim"]["name"], OPTIMIZERS)
    _check_choice("scheduler", cfg["scheduler"]["name"], SCHEDULERS)
    _check_choice("select_metric", cfg["train"]["select_metric"], SELECT_METRICS)
    _check_choice("device", str(cfg["train"]["device"]).split(":")[0], DEVICES)
    check_precision(cfg["train"]["precision"])
    _check_positive(cfg)
    return cfg


def _check_positive(cfg: Mapping[str, Any]) -> None:
    for key, value in (
        ("train.epochs", cfg["train"]["epochs"]),
        ("data.batch_size", cfg["data"]["batch_size"]),
        ("data.eval_batch_size", cfg["data"]["eval_batch_size"]),
        ("model.feature_dim", cfg["model"]["feature_dim"]),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{key}={value!r} is invalid; expected a positive integer")
    if not isinstance(cfg["train"]["seed"], int):
        raise ConfigError(f"train.seed={cfg['train']['seed']!r} is invalid; expected an integer")
    check_range("optim.lr", cfg["optim"]["lr"], 0.0)
    check_range("optim.weight_decay", cfg["optim"]["weight_decay"], 0.0)
    if not isinstance(cfg["train"]["deterministic"], bool):
        raise ConfigError(
            f"train.deterministic={cfg['train']['deterministic']!r} is invalid; expected true or false"
        )
    workers = cfg["data"]["num_workers"]
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise ConfigError(
            f"data.num_workers={workers!r} is invalid; expected an integer >= 0 (0: read in the main process)"
        )
    cache = cfg["data"]["cache_features"]
    if not isinstance(cache, (bool, str)) or cache == "":
        raise ConfigError(
            f"data.cache_features={cache!r} is invalid; expected true, false or a folder for the cache"
        )
    if not isinstance(cfg["data"]["pin_memory"], bool):
        raise ConfigError(f"data.pin_memory={cfg['data']['pin_memory']!r} is invalid; expected true or false")
    patience = cfg["train"]["patience"]
    if not isinstance(patience, int) or isinstance(patience, bool) or patience < 0:
        raise ConfigError(
            f"train.patience={patience!r} is invalid; expected an integer >= 0 (0: no early stop)"
        )
    split = cfg["data"]["split"]
    if not isinstance(split, list) or len(split) != 3:
        raise ConfigError(f"data.split={split!r} is invalid; expected [train, val, test] ratios")
    for name, ratio in zip(("train", "val", "test"), split, strict=True):
        check_range(f"data.split {name} ratio", ratio, 0.0, 1.0)
        if ratio <= 0:
            raise ConfigError(f"data.split {name} ratio={ratio!r} is invalid; every split needs a ratio > 0")


def plain(value: Any) -> Any:
    """Tuples as lists, mappings as dicts, all the way down: what YAML and JSON can hold.

    >>> plain({"hidden": (256, 64), "ratios": None})
    {'hidden': [256, 64], 'ratios': None}
    """
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def as_overrides(cfg: Mapping[str, Any], skip: Iterable[str] = ()) -> list[str]:
    """A config as ``section__key=value`` overrides (values in YAML flow form), leaving out the sections in
    ``skip``: how a config file becomes the shared settings of every run of a comparison.

    >>> as_overrides({"optim": {"lr": 0.01}, "model": {"encoders": {"a": {"name": "mlp", "hidden": [8]}}}})
    ['optim__lr=0.01', 'model__encoders__a__name=mlp', 'model__encoders__a__hidden=[8]']
    """
    import json

    out: list[str] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping) and value:
            for k, v in value.items():
                walk(f"{prefix}__{k}" if prefix else str(k), v)
        else:
            text = value if isinstance(value, str) else json.dumps(plain(value))
            out.append(f"{prefix}={text}")

    for section, value in cfg.items():
        if section not in skip and section != DERIVED:
            walk(section, value)
    return out


def dump(cfg: Mapping[str, Any]) -> str:
    return yaml.safe_dump(plain(cfg), sort_keys=False)


def load_file(path: str | Path) -> dict[str, Any]:
    """A YAML config file as a mapping; one clear line if it cannot be read or is not a mapping."""
    try:
        with open(path) as f:
            cfg = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError(
            f"config file {path}: not readable as YAML ({type(exc).__name__}: {reason})"
        ) from exc
    if not isinstance(cfg, dict):
        raise ConfigError(f"config file {path} holds a {type(cfg).__name__}; expected a mapping of sections")
    return cfg
