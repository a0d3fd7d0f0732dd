"""MMCL: image-tabular contrastive pre-training (Hager, Menten, Rueckert, CVPR 2023)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmbalance.errors import ConfigError, check_range
from mmbalance.models import MultimodalModel
from mmbalance.pretrain.base import PRETRAINERS, Pretrainer, image_tabular_roles
from mmbalance.types import Batch


def clip_loss(image: Tensor, tabular: Tensor, temperature: float = 0.1, weight: float = 0.5) -> Tensor:
    """CLIP's loss of paired embeddings ``[B, D]`` (row ``i`` of each is one subject).

    ``S = u tᵀ / τ`` with ``u``, ``t`` the L2-normalised rows; ``L = w·CE(S, I) + (1 − w)·CE(Sᵀ, I)``: each
    image must pick its own tabular row among the batch's and each tabular row its own image.

    >>> u = torch.eye(3)
    >>> bool(clip_loss(u, u) < clip_loss(u, u.roll(1, 0)))
    True
    """
    u, t = F.normalize(image, dim=1), F.normalize(tabular, dim=1)
    logits = u @ t.T / temperature
    target = torch.arange(logits.shape[0], device=logits.device)
    return weight * F.cross_entropy(logits, target) + (1 - weight) * F.cross_entropy(logits.T, target)


def scarf_corrupt(x: Tensor, rate: float) -> Tensor:
    """SCARF corruption of ``x`` (``[B, D]``): in each row, ``round(rate·D)`` features chosen at random
    are replaced by that feature's value in a random row of the batch (a draw from the feature's empirical
    marginal over the batch). Uses the global torch generator (seeded by the run).

    >>> x = torch.arange(12.0).reshape(3, 4)
    >>> torch.equal(scarf_corrupt(x, 0.0), x)
    True
    """
    rows, width = x.shape
    k = round(rate * width)
    if k == 0:
        return x
    chosen = torch.rand(rows, width, device=x.device).argsort(dim=1)[:, :k]
    mask = torch.zeros(rows, width, dtype=torch.bool, device=x.device).scatter_(1, chosen, True)
    donors = torch.randint(0, rows, (rows, width), device=x.device)
    return torch.where(mask, x.gather(0, donors), x)


def projector(dim: int, out: int) -> nn.Module:
    """SimCLR's projection head: ``Linear(dim, dim) -> ReLU -> Linear(dim, out)``."""
    return nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, out))


@PRETRAINERS.register("mmcl")
class MMCL(Pretrainer):
    """CLIP-style contrastive pre-training of an image encoder and a tabular encoder on the same subjects.

    Each encoder's features go through its projector (``Linear -> ReLU -> Linear`` to ``projection_dim``);
    :func:`clip_loss` (``temperature`` τ, ``weight`` λ) pulls a subject's image and tabular embeddings
    together and pushes the batch's other pairs apart. During training the tabular view is SCARF-corrupted
    (:func:`scarf_corrupt`, ``corruption`` of the features) and the image view is the dataset's training
    augmentation. Afterwards the image encoder is fine-tuned or linearly evaluated (method ``mmcl`` of
    ``mmbalance train``), image-only at test time.

    ``image``/``tabular`` default to the modalities of those names, else the dataset's first and second.
    """

    def __init__(
        self,
        image: str | None = None,
        tabular: str | None = None,
        temperature: float = 0.1,
        weight: float = 0.5,
        corruption: float = 0.3,
        projection_dim: int = 128,
    ) -> None:
        self.image = image
        self.tabular = tabular
        self.temperature = temperature
        self.weight = weight
        self.corruption = corruption
        self.projection_dim = projection_dim

    def roles(self, available: Sequence[str]) -> tuple[str, str]:
        return image_tabular_roles("mmcl", self.image, self.tabular, available)

    def modalities(self, available: Sequence[str]) -> list[str]:
        check_range("temperature", self.temperature, 0.0)
        if self.temperature <= 0:
            raise ConfigError(f"temperature={self.temperature!r} is invalid; expected a value > 0")
        check_range("weight", self.weight, 0.0, 1.0)
        check_range("corruption", self.corruption, 0.0, 1.0)
        if not isinstance(self.projection_dim, int) or self.projection_dim < 1:
            raise ConfigError(
                f"projection_dim={self.projection_dim!r} is invalid; expected a positive integer"
            )
        return list(self.roles(available))

    def build(self, feature_dims: Mapping[str, int]) -> nn.Module:
        return nn.ModuleDict({m: projector(d, self.projection_dim) for m, d in feature_dims.items()})

    def loss(self, model: MultimodalModel, extra: nn.Module, batch: Batch, train: bool) -> Tensor:
        image, tabular = self.roles(model.modalities)
        x_tab = batch.inputs[tabular]
        if train:
            x_tab = scarf_corrupt(x_tab.flatten(1), self.corruption).view_as(x_tab)
        u = extra[image](model.encoders[image](batch.inputs[image]))
        t = extra[tabular](model.encoders[tabular](x_tab))
        return clip_loss(u, t, self.temperature, self.weight)
