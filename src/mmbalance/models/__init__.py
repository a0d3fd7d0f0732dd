"""Encoders, fusion heads and the multimodal model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from mmbalance.errors import ConfigError
from mmbalance.models import encoders as _encoders  # noqa: F401  (registers)
from mmbalance.models import fusion_heads as _fusion_heads  # noqa: F401  (registers)
from mmbalance.models import heads as _heads  # noqa: F401  (registers)
from mmbalance.models import i3d as _i3d  # noqa: F401  (registers)
from mmbalance.models import resnet as _resnet  # noqa: F401  (registers)
from mmbalance.models import sequence as _sequence  # noqa: F401  (registers)
from mmbalance.models import tab_transformer as _tab_transformer  # noqa: F401  (registers)
from mmbalance.models import text as _text  # noqa: F401  (registers)
from mmbalance.models.heads import Head, presence_weights
from mmbalance.models.multimodal import MultimodalModel, parameter_groups
from mmbalance.models.registry import ENCODERS, HEADS


def list_encoders() -> list[str]:
    return ENCODERS.names()


def list_heads() -> list[str]:
    return HEADS.names()


def build_encoder(name: str, input_shape: Sequence[int], out_dim: int, **kwargs: Any) -> nn.Module:
    return ENCODERS.build(name, input_shape=tuple(input_shape), out_dim=out_dim, **kwargs)


def build_head(name: str, feature_dims: Mapping[str, int], num_classes: int, **kwargs: Any) -> Head:
    return HEADS.build(name, feature_dims=dict(feature_dims), num_classes=num_classes, **kwargs)  # type: ignore[return-value]


def build_model(
    encoders: Mapping[str, Mapping[str, Any]],
    input_shapes: Mapping[str, Sequence[int]],
    num_classes: int,
    head: Mapping[str, Any],
    feature_dim: int = 128,
) -> MultimodalModel:
    """Build a model from configs.

    ``encoders[m] = {"name": ..., **options}`` and ``head = {"name": ..., **options}``. An encoder with a
    ``condition`` option (DAFT, :mod:`mmbalance.models.daft`) gets that modality's ``input_shapes`` entry
    as ``condition_shape``.
    """
    built = {}
    for m, cfg in encoders.items():
        opts = {k: v for k, v in cfg.items() if k != "name"}
        opts.setdefault("out_dim", feature_dim)
        if opts.get("condition") is not None:
            if opts["condition"] not in input_shapes:
                raise ConfigError(
                    f"encoder of {m!r}: condition={opts['condition']!r}; expected one of {list(input_shapes)}"
                )
            opts["condition_shape"] = input_shapes[opts["condition"]]
        built[m] = build_encoder(cfg["name"], input_shapes[m], **opts)
    dims = {m: enc.out_dim for m, enc in built.items()}
    head_opts = {k: v for k, v in head.items() if k != "name"}
    return MultimodalModel(built, build_head(head["name"], dims, num_classes, **head_opts))


__all__ = [
    "ENCODERS",
    "HEADS",
    "Head",
    "MultimodalModel",
    "build_encoder",
    "build_head",
    "build_model",
    "list_encoders",
    "list_heads",
    "parameter_groups",
    "presence_weights",
]
