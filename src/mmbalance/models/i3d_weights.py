"""Matching a state dict of the PyTorch I3D port (``InceptionI3d``) to the ``i3d`` encoder's trunk.

The port's files hold the trunk under the names :class:`~mmbalance.models.i3d.I3D` uses plus its
classifier ``logits.*``, which is dropped. Every other key must be a trunk key with the trunk's shape and
every trunk key must be present, except the BatchNorm ``num_batches_tracked`` counters, which the
published files (saved by old PyTorch versions) lack. One shape difference is allowed: a 3-channel stem
given to a 1-channel network (depth) is summed over the colour axis, so a grey frame replicated to RGB
gives the same first-layer response as the grey frame alone.
"""

from __future__ import annotations

from torch import Tensor

from mmbalance.errors import ConfigError

STEM = "Conv3d_1a_7x7"
SHOWN = 3  # offending keys named in an error line


def _names(keys: list[str]) -> str:
    return ", ".join(keys[:SHOWN]) + (f" (+{len(keys) - SHOWN} more)" if len(keys) > SHOWN else "")


def match_trunk(expected: dict[str, Tensor], given: dict[str, Tensor], where: str) -> dict[str, Tensor]:
    """``given`` without ``logits.*`` and with a 3-channel stem summed to 1 channel where ``expected`` has
    1; one :class:`ConfigError` line listing the first missing, unexpected and misshapen keys otherwise."""
    out = {k: v for k, v in given.items() if not k.startswith("logits.")}
    stem, want = out.get(f"{STEM}.conv3d.weight"), expected.get(f"{STEM}.conv3d.weight")
    if (
        stem is not None
        and want is not None
        and stem.dim() == 5
        and stem.shape[1] == 3
        and want.shape[1] == 1
    ):
        out[f"{STEM}.conv3d.weight"] = stem.sum(dim=1, keepdim=True)
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
        raise ConfigError(f"{where}: {'; '.join(problems)}; expected a state dict of the PyTorch I3D port")
    return out
