"""CHARMS: transferring tabular knowledge to an image classifier (Jiang et al., "Tabular Insights, Visual
Impacts: Transferring Expertise from Tables to Images", ICML 2024)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer

from mmbalance import distributed
from mmbalance.errors import ConfigError
from mmbalance.models import MultimodalModel
from mmbalance.models.channels import ChannelMaps
from mmbalance.strategies._charms_masks import attribute_masks
from mmbalance.strategies.base import Strategy, modality_loss
from mmbalance.strategies.registry import STRATEGIES
from mmbalance.types import Batch, ModelOutput, StepResult

TABULAR_MODEL = {"name": "tab_transformer", "dim": 8, "layers": 2, "heads": 8, "dropout": 0.1}
"""The tabular model, as the released FT-Transformer: tokens of width 8, 2 blocks, 8 attention heads."""


class AttributeHeads(nn.Module):
    """One ``Linear(C -> 1)`` per tabular attribute ``j`` on the masked channels ``mask_j ⊙ h``:
    ``forward(h [B, C], masks [J, C]) -> [B, J]``. A masked-out channel never reaches its attribute."""

    def __init__(self, attributes: int, channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(channels, attributes)

    def forward(self, pooled: Tensor, masks: Tensor) -> Tensor:
        return F.linear(pooled, self.linear.weight * masks.to(pooled.dtype), self.linear.bias)


@STRATEGIES.register("charms")
class CHARMS(Strategy):
    """An image classifier that absorbs the table: channel groups of the image encoder, matched to tabular
    attributes by optimal transport, learn to predict those attributes; inference reads the image alone.

    The model has the ``image`` encoder and the ``tabular`` one (``tab_transformer``, set here: tokens of
    width 8, 2 blocks, the released FT-Transformer's size), each with its own linear classifier (the
    ``sum`` head). Loss: ``CE(image) + tab_weight·CE(tabular) + attribute_weight·mean_j MSE_j``, where
    attribute ``j``'s prediction is a linear head on ``mask_j ⊙ h``, ``h`` the image encoder's pooled
    channels (:mod:`mmbalance.models.channels`). Masks start at all ones; at the start of every ``every``-th
    epoch they are recomputed on ``samples`` training rows (the first rows of that epoch's seeded
    shuffle): the channels are clustered by k-means (``clusters``, at most one per channel; seeded by
    ``seed`` and the epoch), ``cost(j, c) = ‖S_j − S_c‖²_F`` between the similarity matrices of attribute
    ``j``'s token and cluster ``c``'s maps, exact optimal transport with uniform marginals, and ``mask_j``
    is the channels of the clusters ``j`` is matched with. Test-time predictions are the image
    classifier's logits: the tabular input is not read for them. ``image``/``tabular`` as for ``daft``.

    Deviations from the released code (``RyanJJP/CHARMS: models/CHARMS.py``): the masks are computed on
    training rows, not the validation set (validation only selects the model here); every tabular
    column is a continuous attribute (MSE), one-hot columns included; the image classifier is the
    library's linear layer on the encoder's features (the released one is ``Linear(2048, 1024)`` then
    ``Linear(1024, C)``), and with an encoder that projects its pooled channels (``cnn``, ResNets with an
    ``out_dim``) the attribute heads read the pooled channels while the classifier reads the projection.
    """

    name = "charms"
    min_modalities = 2
    head = "sum"
    supported_heads: ClassVar[tuple[str, ...]] = ("sum",)

    def __init__(
        self,
        image: str | None = None,
        tabular: str | None = None,
        tab_weight: float = 0.6,
        attribute_weight: float = 0.03,
        every: int = 5,
        clusters: int = 40,
        samples: int = 512,
        seed: int = 0,
    ) -> None:
        self.image = image
        self.tabular = tabular
        self.tab_weight = tab_weight
        self.attribute_weight = attribute_weight
        self.every = every
        self.clusters = clusters
        self.samples = samples
        self.seed = seed

    # -- configuration ------------------------------------------------------------------------------
    def roles(self, available: Sequence[str]) -> tuple[str, str]:
        """``(image, tabular)`` as :func:`~mmbalance.pretrain.base.image_tabular_roles` resolves them."""
        from mmbalance.pretrain.base import image_tabular_roles  # the pre-training package imports strategies

        return image_tabular_roles("charms", self.image, self.tabular, available)

    def modalities(self, available: Sequence[str]) -> list[str]:
        """The image modality first, then the tabular one."""
        super().modalities(available)
        return list(self.roles(available))

    def encoder_options(self, modality: str, available: Sequence[str]) -> dict[str, Any]:
        return dict(TABULAR_MODEL) if modality == self.roles(available)[1] else {}

    def validate(self, modalities: Sequence[str]) -> None:
        super().validate(modalities)
        for key in ("tab_weight", "attribute_weight"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
                raise ConfigError(f"charms {key}={value!r} is invalid; expected a finite number >= 0")
        for key, least in (("every", 1), ("clusters", 1), ("samples", 2), ("seed", 0)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(f"charms {key}={value!r} is invalid; expected an integer >= {least}")

    # -- lifecycle ----------------------------------------------------------------------------------
    def setup(
        self, model: MultimodalModel, optimizer: Optimizer, make_optimizer: Callable[[], Optimizer]
    ) -> None:
        """Builds the attribute heads beside the model and adds their parameters to ``optimizer`` as the
        group ``charms_attributes`` (before any step, so checkpoints of the optimizer include them)."""
        super().setup(model, optimizer, make_optimizer)
        image, tabular = model.modalities
        if not hasattr(model.encoders[tabular], "tokens"):
            raise ConfigError(
                f"charms: the {tabular!r} encoder gives no per-attribute tokens; expected the tab_transformer"
            )
        self._maps = ChannelMaps(model.encoders[image])
        attributes = int(model.encoders[tabular].width)
        device = next(model.parameters()).device
        self._heads = AttributeHeads(attributes, self._maps.channels).to(device)
        optimizer.add_param_group({"params": list(self._heads.parameters()), "name": "charms_attributes"})
        self.masks_ = torch.ones(attributes, self._maps.channels, device=device)
        self.channel_clusters_ = torch.full((self._maps.channels,), -1, dtype=torch.long)

    def on_epoch_start(self, epoch: int, train_loader: Any) -> None:
        if epoch > 0 and epoch % self.every == 0:
            self.update_masks(epoch, train_loader)

    def update_masks(self, epoch: int, loader: Any) -> None:
        """Recompute ``masks_`` from the first ``samples`` rows ``loader`` yields (in evaluation mode,
        without gradients; the model's mode is restored)."""
        image, tabular = self.model.modalities
        device, training = self.masks_.device, self.model.training
        self.model.eval()
        cells, tokens, rows = [], [], 0
        limit = -(-self.samples // distributed.world_size())  # under torchrun: this process's share
        with torch.no_grad():
            for batch in loader:
                inputs = {m: x.to(device) for m, x in batch.inputs.items()}
                with self._maps:
                    features = self.model.encoders[image](inputs[image])
                cells.append(self._maps.cells(features).float())
                tokens.append(self.model.encoders[tabular].tokens(inputs[tabular])[0][:, 1:].float())
                rows += batch.size
                if rows >= limit:
                    break
        self.model.train(training)
        # every process's rows: the first `samples` rows of the epoch's order, as one process takes them
        tokens_all = epoch_order(torch.cat(tokens)[:limit])[: self.samples]
        cells_all = epoch_order(torch.cat(cells)[:limit])[: self.samples]
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        masks, labels = attribute_masks(tokens_all, cells_all, self.clusters, generator)
        self.masks_, self.channel_clusters_ = masks.to(device), labels.cpu()

    # -- training -----------------------------------------------------------------------------------
    def training_step(self, batch: Batch, epoch: int) -> StepResult:
        image, tabular = self.model.modalities
        self.optimizer.zero_grad(set_to_none=True)
        with self._maps:
            out = self.model(batch.inputs)
        image_loss = modality_loss(out.unimodal_logits[image], batch, image)
        tab_loss = modality_loss(out.unimodal_logits[tabular], batch, tabular)
        predicted = self._heads(self._maps.pooled(out.features[image]), self.masks_)
        target = batch.inputs[tabular].flatten(1).to(predicted.dtype)
        attribute_loss = self._attribute_loss(predicted, target, batch.has(tabular))
        loss = image_loss + self.tab_weight * tab_loss + self.attribute_weight * attribute_loss
        loss.backward()
        self.optimizer.step()
        logs = {"image_loss": image_loss, "tab_loss": tab_loss, "attribute_loss": attribute_loss}
        return StepResult(loss.detach(), {k: v.detach() for k, v in logs.items()})

    @staticmethod
    def _attribute_loss(predicted: Tensor, target: Tensor, rows: Tensor | None) -> Tensor:
        """The mean over attributes of each attribute's MSE over the rows that have the tabular input."""
        per_row = (predicted - target).pow(2).mean(1)
        if rows is None:
            return per_row.mean()
        w = rows.to(per_row.dtype)
        return (per_row * w).sum() / w.sum().clamp_min(1)

    def predict(self, out: ModelOutput) -> Tensor:
        """The image classifier's logits (the model's first modality is the image, see :meth:`modalities`)."""
        return out.unimodal_logits[next(iter(out.features))]

    # -- state --------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The masks, the channels' clusters and the attribute heads' weights (``attribute_heads_``)."""
        heads = {k: v.detach().clone() for k, v in self._heads.state_dict().items()}
        return {**super().state_dict(), "attribute_heads_": heads}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Loads the heads' weights in place (the optimizer keeps training the same parameters)."""
        rest = dict(state)
        heads = rest.pop("attribute_heads_", None)
        super().load_state_dict(rest)
        self.masks_ = self.masks_.to(next(self._heads.parameters()).device)
        if heads is not None:
            self._heads.load_state_dict(heads)


def epoch_order(rows: Tensor) -> Tensor:
    """Every process's first ``len(rows)`` rows in the epoch's order: rank ``r``'s ``i``-th row is the
    epoch's row ``r + world_size·i`` (the sharded sampler), so the gathered rows are interleaved back."""
    gathered = distributed.gather(rows)
    n = distributed.world_size()
    return gathered.view(n, len(rows), *rows.shape[1:]).transpose(0, 1).reshape(-1, *rows.shape[1:])
