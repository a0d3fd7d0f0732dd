"""Pretrained weights for the backbones: reading a saved state dict and matching it to a network.

A file is what ``torch.save(model.state_dict())`` writes. :func:`match_state_dict` drops the classifier of
the network the weights came from, sums a 3-channel stem to 1 channel where the encoder takes one channel
(a grey image replicated to RGB then gives the same first-layer response as the grey image alone), and
requires every other key with the encoder's shape and every encoder key, except the BatchNorm
``num_batches_tracked`` counters that older files do not store.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

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


def match_state_dict(
    expected: Mapping[str, Tensor],
    given: Mapping[str, Tensor],
    where: str,
    classifier: str,
    stem: str,
    kind: str,
) -> dict[str, Tensor]:
    """``given`` without its ``classifier`` keys (a prefix such as ``"fc."``) and with a 3-channel ``stem``
    weight summed to 1 channel when ``expected`` has 1; raises one :class:`ConfigError` line (``where``
    names the file, ``kind`` the format expected) listing the first missing, unexpected and wrongly shaped
    keys when the result does not fit ``expected``."""
    out = {k: v for k, v in given.items() if not k.startswith(classifier)}
    conv, want = out.get(stem), expected.get(stem)
    if (
        conv is not None
        and want is not None
        and conv.dim() == want.dim()
        and conv.shape[1] == 3
        and want.shape[1] == 1
    ):
        out[stem] = conv.sum(dim=1, keepdim=True)
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
        raise ConfigError(f"{where}: {'; '.join(problems)}; expected {kind}")
    return out


def load_parts(owner: nn.Module, parts: list[str] | tuple[str, ...], matched: Mapping[str, Tensor]) -> None:
    """Load a :func:`match_state_dict` result into ``owner``'s submodules named ``parts`` (only
    ``num_batches_tracked`` counters may be absent)."""
    for part in parts:
        prefix = f"{part}."
        sub = {k[len(prefix) :]: v for k, v in matched.items() if k.startswith(prefix)}
        getattr(owner, part).load_state_dict(sub, strict=False)


def keep_batchnorm_frozen(module: nn.Module) -> None:
    """Put every BatchNorm layer of a frozen trunk back in eval mode (after ``train()``), so its running
    statistics never move."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
