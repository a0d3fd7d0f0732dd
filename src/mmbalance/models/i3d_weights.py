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

from mmbalance.models.weights import match_state_dict

STEM = "Conv3d_1a_7x7"


def match_trunk(expected: dict[str, Tensor], given: dict[str, Tensor], where: str) -> dict[str, Tensor]:
    """``given`` without ``logits.*`` and with a 3-channel stem summed to 1 channel where ``expected`` has
    1; one :class:`ConfigError` line listing the first missing, unexpected and misshapen keys otherwise."""
    return match_state_dict(
        expected, given, where, "logits.", f"{STEM}.conv3d.weight", "a state dict of the PyTorch I3D port"
    )
