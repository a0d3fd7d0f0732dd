"""Reading a torchvision-format ResNet state dict and matching it to an encoder's backbone.

A file is what ``torch.save(model.state_dict())`` writes for a torchvision ``resnet18``/``resnet50`` (or
what :meth:`mmbalance.models.resnet.ResNet.backbone_state_dict` returns). Its ``fc.*`` keys (the
classifier of the network the weights came from) are dropped; every other key must be a backbone key with
the backbone's shape, and every backbone key must be present, except the BatchNorm ``num_batches_tracked``
counters, which older torchvision files do not store. One shape difference is allowed: 3-channel
``conv1`` weights given to a 1-channel ``conv1`` (a spectrogram encoder) are summed over the input-channel
axis, so a grey image ``g`` replicated to RGB gives the same first-layer response as ``g`` alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from mmbalance.errors import ConfigError

SHOWN = 3  # offending keys named in an error line


def read_state_dict(path: str | Path, what: str) -> dict[str, Tensor]:
    """The tensors saved at ``path``; a missing or unreadable file, or one that is not a mapping of names
    to tensors, raises a one-line :class:`ConfigError` that names ``what`` and the file."""
    if not Path(path).is_file():
        raise ConfigError(f"{what} weights={str(path)!r}: no such file; expected a saved state dict")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        reason = " ".join(str(exc).split())[:200]
        raise ConfigError(f"{what} weights={str(path)!r}: not readable by torch.load ({reason})") from exc
    if not isinstance(loaded, Mapping) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in loaded.items()
    ):
        raise ConfigError(
            f"{what} weights={str(path)!r} holds a {type(loaded).__name__}; expected a state dict "
            "(a mapping of parameter names to tensors, as torch.save(model.state_dict()) writes)"
        )
    return dict(loaded)


def _names(keys: list[str]) -> str:
    more = f" (+{len(keys) - SHOWN} more)" if len(keys) > SHOWN else ""
    return ", ".join(keys[:SHOWN]) + more


def match_backbone(
    expected: Mapping[str, Tensor], given: Mapping[str, Tensor], where: str
) -> dict[str, Tensor]:
    """``given`` without its ``fc.*`` keys and with a 3-channel ``conv1.weight`` summed to 1 channel
    when ``expected`` has 1; raises one :class:`ConfigError` line (``where`` names the file) listing the
    first missing, unexpected and wrongly shaped keys when the result does not fit ``expected``."""
    out = {k: v for k, v in given.items() if not k.startswith("fc.")}
    conv, want = out.get("conv1.weight"), expected.get("conv1.weight")
    if (
        conv is not None
        and want is not None
        and conv.dim() == 4
        and conv.shape[1] == 3
        and want.shape[1] == 1
    ):
        out["conv1.weight"] = conv.sum(dim=1, keepdim=True)
    missing = [k for k in expected if k not in out and not k.endswith(".num_batches_tracked")]
    unexpected = [k for k in out if k not in expected]
    shapes = [
        f"{k} {tuple(v.shape)} (model: {tuple(expected[k].shape)})"
        for k, v in out.items()
        if k in expected and v.shape != expected[k].shape
    ]
    problems = [
        f"{label} {_names(keys)}"
        for label, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatch", shapes),
        )
        if keys
    ]
    if problems:
        raise ConfigError(f"{where}: {'; '.join(problems)}; expected a torchvision-format state dict")
    return out
