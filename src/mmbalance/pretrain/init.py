"""``model.init_from``: a ``train`` run starts from the encoders of a pre-training run directory."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmbalance.checkpoints import load_checkpoint
from mmbalance.errors import ConfigError
from mmbalance.pretrain.base import PRETRAINED


def init_from_run(s: Any, log: Callable[[str], None] | None = None) -> list[str]:
    """Load the pre-trained encoders named by ``model.init_from`` of a built setup ``s`` into its model
    (``{seed}`` in the path is replaced by the run's seed); returns the modalities loaded.

    Every encoder of the model that the pre-training run saved is loaded (strictly: the same encoder and
    the same parameter shapes); one-line ``ConfigError`` when the directory is no finished pre-training
    run, was pre-trained on another dataset, shares no modality with the model, holds an encoder of other
    shapes, or trained on rows of this run's validation or test split.
    """

    template = s.config["model"].get("init_from")
    if not template:
        return []
    run = Path(str(template).replace("{seed}", str(s.config["train"]["seed"])))
    if not (run / PRETRAINED).exists():
        raise ConfigError(
            f"model.init_from={run} has no {PRETRAINED}; "
            "expected the directory of a finished `mmbalance pretrain`"
        )
    saved = load_checkpoint(run / PRETRAINED)
    _check_provenance(run, s)
    common = [m for m in s.model.modalities if m in saved["state"]]
    if not common:
        raise ConfigError(
            f"model.init_from={run} holds encoders of {list(saved['state'])}; this run's model has "
            f"{s.model.modalities}"
        )
    for m in common:
        name, theirs = s.config["model"]["encoders"][m]["name"], saved["encoders"][m]["name"]
        try:
            if name != theirs:
                raise RuntimeError(f"encoder {name!r} here, {theirs!r} there")
            s.model.encoders[m].load_state_dict(saved["state"][m])
        except RuntimeError as exc:
            reason = " ".join(str(exc).split())[:160]
            raise ConfigError(
                f"model.init_from={run}: the {m!r} encoder does not match the pre-trained one ({reason})"
            ) from exc
    if log:
        log(f"initialised the {', '.join(common)} encoder(s) from {run}")
    return common


def _check_provenance(run: Path, s: Any) -> None:
    """The pre-training run used this dataset and none of this run's val/test rows for training."""
    import yaml

    pre_cfg = yaml.safe_load((run / "config.yaml").read_text())
    if pre_cfg["dataset"] != s.config["dataset"]:
        raise ConfigError(
            f"model.init_from={run} was pre-trained on dataset {pre_cfg['dataset'].get('name')!r} with other "
            "options; expected this run's dataset and options"
        )
    pre_train = set(json.loads((run / "split.json").read_text())["train"])
    held_out = {int(i) for k in ("val", "test") for i in s.split[k].tolist()}
    leaked = pre_train & held_out
    if leaked:
        raise ConfigError(
            f"model.init_from={run} pre-trained on {len(leaked)} rows of this run's val/test split; "
            "pre-train with this run's seed and split (init_from may contain {seed})"
        )
