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

from torch import Tensor

from mmbalance.models.weights import match_state_dict, read_state_dict

__all__ = ["match_backbone", "read_state_dict"]


def match_backbone(
    expected: Mapping[str, Tensor], given: Mapping[str, Tensor], where: str
) -> dict[str, Tensor]:
    """``given`` without its ``fc.*`` keys and with a 3-channel ``conv1.weight`` summed to 1 channel
    when ``expected`` has 1; raises one :class:`ConfigError` line (``where`` names the file) listing the
    first missing, unexpected and wrongly shaped keys when the result does not fit ``expected``."""
    return match_state_dict(expected, given, where, "fc.", "conv1.weight", "a torchvision-format state dict")
