"""The pre-training method interface and its registry."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from mmbalance.models import MultimodalModel
from mmbalance.registry import Registry
from mmbalance.types import Batch


class Pretrainer:
    """Base class of pre-training methods. Constructors take keyword hyperparameters with defaults and store
    them unchanged (what the run's ``config.yaml`` records under ``strategy``)."""

    def hyperparameters(self) -> dict[str, Any]:
        params = inspect.signature(type(self).__init__).parameters
        return {k: getattr(self, k) for k in params if k != "self"}

    def modalities(self, available: Sequence[str]) -> list[str]:
        """The modalities whose encoders are pre-trained (and saved)."""
        raise NotImplementedError

    def build(self, feature_dims: Mapping[str, int]) -> nn.Module:
        """The method's own modules (projectors), trained with the encoders and saved beside them."""
        raise NotImplementedError

    def loss(self, model: MultimodalModel, extra: nn.Module, batch: Batch, train: bool) -> Tensor:
        """The unsupervised loss of one batch (``train``: with the training-time corruption)."""
        raise NotImplementedError


PRETRAINERS: Registry[Pretrainer] = Registry("pre-training method")
PRETRAINED = "pretrained.pt"  # the file of a pre-training run directory that holds the encoders
