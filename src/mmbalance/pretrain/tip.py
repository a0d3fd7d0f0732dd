"""TIP: tabular-image pre-training with incomplete tabular data (Du, Joshi, Hager, ..., ECCV 2024).

Three objectives, averaged: image-tabular contrastive (ITC, MMCL's :func:`~.mmcl.clip_loss` on projections
of the image features and of the SCARF-corrupted tabular ``[CLS]``), image-tabular matching (ITM: a
multimodal encoder decides whether an image and a table belong together, on the batch's pairs and on one
hard negative per image and per table) and masked tabular reconstruction (MTR: a share of the features is
replaced by ``[MASK]`` and predicted from the multimodal tokens). The tabular encoder is the
``tab_transformer`` (:mod:`mmbalance.models.tab_transformer`), whose masked attention ignores missing
features.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmbalance.errors import ConfigError, check_range
from mmbalance.models import MultimodalModel
from mmbalance.models.tab_transformer import MaskedBlock, missing_features
from mmbalance.pretrain.base import PRETRAINERS
from mmbalance.pretrain.mmcl import MMCL, clip_loss, projector, scarf_corrupt
from mmbalance.types import Batch


class FusionBlock(nn.Module):
    """Tabular tokens self-attend (missing keys masked), then cross-attend to the image tokens."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.self_block = MaskedBlock(dim, heads, 0.0)
        self.norm = nn.LayerNorm(dim)
        self.cross = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, tokens: Tensor, missing: Tensor, image: Tensor) -> Tensor:
        tokens = self.self_block(tokens, missing)
        return tokens + self.cross(self.norm(tokens), image, image, need_weights=False)[0]


class Fusion(nn.Module):
    """TIP's multimodal encoder: the image features as one token (``Linear(image_dim, dim)``) and
    ``layers`` :class:`FusionBlock`; returns the fused tabular tokens (``[CLS]`` first)."""

    def __init__(self, image_dim: int, dim: int, heads: int, layers: int) -> None:
        super().__init__()
        self.image = nn.Linear(image_dim, dim)
        self.blocks = nn.ModuleList(FusionBlock(dim, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: Tensor, missing: Tensor, image: Tensor) -> Tensor:
        img = self.image(image).unsqueeze(1)
        for block in self.blocks:
            tokens = block(tokens, missing, img)
        return self.norm(tokens)


def hard_negatives(similarity: Tensor) -> Tensor:
    """For each row ``i`` of a square ``similarity``, one column ``j ≠ i`` drawn with probability
    ``∝ softmax(similarity[i])`` over the other columns (TIP's hard negatives)."""
    eye = torch.eye(similarity.shape[0], dtype=torch.bool, device=similarity.device)
    weights = similarity.detach().float().masked_fill(eye, float("-inf")).softmax(1)
    return torch.multinomial(weights, 1).squeeze(1)


def reconstruction_mask(missing: Tensor, rate: float) -> Tensor:
    """Bool ``[B, D]``: ``round(rate·D)`` features per row drawn at random (global generator) among all,
    left out where already ``missing`` (there is no value to reconstruct)."""
    rows, width = missing.shape
    k = round(rate * width)
    order = torch.rand(rows, width, device=missing.device).argsort(dim=1)[:, :k]
    chosen = torch.zeros_like(missing).scatter_(1, order, True)
    return chosen & ~missing


@PRETRAINERS.register("tip")
class TIP(MMCL):
    """TIP pre-training of an image encoder and a ``tab_transformer`` tabular encoder:
    ``L = (L_ITC + L_ITM + L_MTR) / 3``.

    ITC: :func:`clip_loss` (``temperature``, ``weight``) between projections of the augmented image and
    of the SCARF-corrupted (``corruption``) tabular ``[CLS]``. ITM: the :class:`Fusion` encoder on the
    batch's B true pairs and 2B hard negatives (:func:`hard_negatives` from the ITC similarities, one per
    image and one per table), ``Linear(dim, 2)`` on its ``[CLS]``, cross-entropy. MTR: ``mask_rate`` of
    the features of the clean table become ``[MASK]`` (masked in attention like missing ones);
    ``Linear(dim, 1)`` on their fused tokens predicts their values, mean squared error over the masked
    features that were observed.
    """

    def __init__(
        self,
        image: str | None = None,
        tabular: str | None = None,
        temperature: float = 0.1,
        weight: float = 0.5,
        corruption: float = 0.3,
        projection_dim: int = 128,
        mask_rate: float = 0.5,
        fusion_layers: int = 2,
    ) -> None:
        super().__init__(image, tabular, temperature, weight, corruption, projection_dim)
        self.mask_rate = mask_rate
        self.fusion_layers = fusion_layers

    def modalities(self, available: Sequence[str]) -> list[str]:
        check_range("mask_rate", self.mask_rate, 0.0, 1.0)
        if not isinstance(self.fusion_layers, int) or self.fusion_layers < 1:
            raise ConfigError(f"fusion_layers={self.fusion_layers!r} is invalid; expected a positive integer")
        return super().modalities(available)

    def encoder_options(self, modality: str, available: Sequence[str]) -> dict[str, Any]:
        return {"name": "tab_transformer"} if modality == self.roles(available)[1] else {}

    def build_for(self, model: MultimodalModel, modalities: Sequence[str]) -> nn.Module:
        image, tabular = self.roles(model.modalities)
        enc = model.encoders[tabular]
        dims = {m: model.encoders[m].out_dim for m in modalities}
        heads = enc.blocks[0].attention.heads if len(enc.blocks) else 1
        return nn.ModuleDict(
            {
                "image": projector(dims[image], self.projection_dim),
                "tabular": projector(dims[tabular], self.projection_dim),
                "fusion": Fusion(dims[image], enc.dim, heads, self.fusion_layers),
                "itm": nn.Linear(enc.dim, 2),
                "mtr": nn.Linear(enc.dim, 1),
            }
        )

    def build(self, feature_dims: Mapping[str, int]) -> nn.Module:
        raise ConfigError("tip builds its modules from the model (build_for)")

    def loss(self, model: MultimodalModel, extra: nn.Module, batch: Batch, train: bool) -> Tensor:
        image, tabular = self.roles(model.modalities)
        enc = model.encoders[tabular]
        x_tab = batch.inputs[tabular].flatten(1)
        h_img = model.encoders[image](batch.inputs[image])
        corrupted = scarf_corrupt(x_tab, self.corruption) if train else x_tab
        tok, missing = enc.tokens(corrupted)
        u, t = extra["image"](h_img), extra["tabular"](enc.head(tok[:, 0]))
        itc = clip_loss(u, t, self.temperature, self.weight)
        return (itc + self._itm(extra, u, t, tok, missing, h_img) + self._mtr(enc, extra, x_tab, h_img)) / 3

    def _itm(self, extra: nn.Module, u: Tensor, t: Tensor, tok: Tensor, missing: Tensor, h: Tensor) -> Tensor:
        sim = F.normalize(u, dim=1) @ F.normalize(t, dim=1).T
        neg_tab, neg_img = hard_negatives(sim), hard_negatives(sim.T)
        tokens = torch.cat([tok, tok[neg_tab], tok])
        masks = torch.cat([missing, missing[neg_tab], missing])
        images = torch.cat([h, h, h[neg_img]])
        fused = extra["fusion"](tokens, masks, images)[:, 0]
        n = u.shape[0]
        target = torch.cat([torch.ones(n), torch.zeros(2 * n)]).long().to(u.device)
        return F.cross_entropy(extra["itm"](fused), target)

    def _mtr(self, enc: nn.Module, extra: nn.Module, x_tab: Tensor, h: Tensor) -> Tensor:
        absent = missing_features(x_tab)
        chosen = reconstruction_mask(absent, self.mask_rate)
        if not bool(chosen.any()):
            return x_tab.new_zeros(())
        tok, missing = enc.tokens(x_tab, absent | chosen)
        fused = extra["fusion"](tok, missing, h)[:, 1:]
        predicted = extra["mtr"](fused).squeeze(-1)
        return F.mse_loss(predicted[chosen], x_tab[chosen])
