"""The pre-training method interface and its registry."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from mmbalance.errors import ConfigError
from mmbalance.models import MultimodalModel
from mmbalance.registry import Registry
from mmbalance.types import Batch


def image_tabular_roles(
    method: str, image: str | None, tabular: str | None, available: Sequence[str]
) -> tuple[str, str]:
    """``(image, tabular)`` modality names of an image–tabular method: the names given, else ``image`` and
    ``tabular`` when the dataset has them, else its first and second modality; one-line ``ConfigError``
    naming ``method`` for a name the dataset lacks or one modality in both roles."""
    names = list(available)
    image = image or ("image" if "image" in names else names[0])
    rest = [m for m in names if m != image]
    tabular = tabular or ("tabular" if "tabular" in rest else (rest or [image])[0])
    for key, value in (("image", image), ("tabular", tabular)):
        if value not in names:
            raise ConfigError(f"{method} {key}={value!r}; expected one of {names} (set strategy__{key}=NAME)")
    if image == tabular:
        raise ConfigError(f"{method} image and tabular are both {image!r}; expected two modalities")
    return image, tabular


class Pretrainer:
    """Base class of pre-training methods. Constructors take keyword hyperparameters with defaults and store
    them unchanged (what the run's ``config.yaml`` records under ``strategy``)."""

    def hyperparameters(self) -> dict[str, Any]:
        params = inspect.signature(type(self).__init__).parameters
        return {k: getattr(self, k) for k in params if k != "self"}

    def modalities(self, available: Sequence[str]) -> list[str]:
        """The modalities whose encoders are pre-trained (and saved)."""
        raise NotImplementedError

    def encoder_options(self, modality: str, available: Sequence[str]) -> dict[str, Any]:
        """Encoder options the method sets for ``modality`` over the dataset's default (none by default;
        TIP's tabular encoder is the ``tab_transformer``); the downstream strategy sets the same."""
        return {}

    def build_for(self, model: MultimodalModel, modalities: Sequence[str]) -> nn.Module:
        """The method's own modules for ``model`` (default: :meth:`build` of the encoders' widths)."""
        return self.build({m: model.encoders[m].out_dim for m in modalities})

    def build(self, feature_dims: Mapping[str, int]) -> nn.Module:
        """The method's own modules (projectors), trained with the encoders and saved beside them."""
        raise NotImplementedError

    def loss(self, model: MultimodalModel, extra: nn.Module, batch: Batch, train: bool) -> Tensor:
        """The unsupervised loss of one batch (``train``: with the training-time corruption)."""
        raise NotImplementedError


PRETRAINERS: Registry[Pretrainer] = Registry("pre-training method")
PRETRAINED = "pretrained.pt"  # the file of a pre-training run directory that holds the encoders
