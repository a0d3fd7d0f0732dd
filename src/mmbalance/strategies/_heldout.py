"""Rows of the training split held out of the loss, for strategies that need a held-out estimate
(Gradient Blending's overfitting measure, MSES's per-modality losses).

A row is held out by a pure function of its dataset row id (``Batch.index``): ``frac(id / φ) < fraction``
(Fibonacci hashing). The same rows are held out in every epoch, run and device, without a host
synchronisation; consecutive ids are spread evenly, so every block of rows holds out about ``fraction``
of itself. Held-out rows still pass through the training forward (their inputs enter BatchNorm batch
statistics) but contribute nothing to the loss: their labels never reach a gradient.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

from mmbalance import distributed
from mmbalance.errors import ConfigError
from mmbalance.models import MultimodalModel
from mmbalance.types import Batch

_GOLDEN = 0x9E3779B9  # round(2**32 / φ)
_SPAN = 2**32
FUSED = "fused"  # the key of the fused head beside the modalities' keys


def heldout_rows(index: Tensor, fraction: float) -> Tensor:
    """Boolean ``[B]``: which rows (by dataset row id) are held out.

    >>> heldout_rows(torch.arange(10), 0.2).nonzero().flatten().tolist()
    [0, 5]
    """
    return (index.long() * _GOLDEN) % _SPAN < round(fraction * _SPAN)


def row_ids(batch: Batch) -> Tensor:
    """``batch.index``; a one-line error when the loader gives no row ids."""
    if batch.index is None:
        raise ConfigError(
            "holding out training rows needs Batch.index (dataset row ids); the loader gives None"
        )
    return batch.index


def training_rows(batch: Batch, fraction: float) -> Tensor:
    """Float ``[B]``: 1 for rows that train, 0 for held-out rows."""
    return (~heldout_rows(row_ids(batch), fraction)).float()


def masked_mean(values: Tensor, weight: Tensor) -> Tensor:
    """``Σ w·v / max(Σ w, 1)``: the mean over the rows of weight 1 (0 when there are none).

    >>> masked_mean(torch.tensor([1.0, 5.0, 3.0]), torch.tensor([1.0, 0.0, 1.0])).item()
    2.0
    """
    return (values * weight).sum() / weight.sum().clamp_min(1.0)


def head_logits(model: MultimodalModel, batch: Batch) -> dict[str, Tensor]:
    """Every modality's unimodal logits and the fused logits (key ``"fused"``) of one forward."""
    out = model(batch.inputs)
    return {**out.unimodal_logits, FUSED: out.logits}


def _only_heldout(batch: Batch, held: Tensor) -> Batch | None:
    keep = held.nonzero().flatten()  # a host sync: this runs between epochs, not in a training step
    if keep.numel() == 0:
        return None
    return Batch({m: x[keep] for m, x in batch.inputs.items()}, batch.label[keep], row_ids(batch)[keep])


@torch.no_grad()
def head_losses(
    model: MultimodalModel, loader: Iterable[Batch], fraction: float, heldout_only: bool = False
) -> dict[str, Tensor]:
    """Mean cross-entropy per head over the training rows and the held-out rows of ``loader``.

    Returns ``{"train": [K], "heldout": [K]}`` in head order (``model.modalities``, then ``"fused"``): each
    a per-sample mean over all the loader's rows of that part (not a mean of batch means). Runs in eval mode
    and restores the model's mode. ``heldout_only`` forwards the held-out rows only and returns
    ``{"heldout": [K]}``. Raises :class:`ConfigError` when a part has no rows.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    names = ("heldout",) if heldout_only else ("train", "heldout")
    sums = torch.zeros(len(names), len(model.modalities) + 1, device=device)
    counts = torch.zeros(len(names), 1, device=device)
    try:
        for batch in loader:
            batch = batch.to(device)
            held = heldout_rows(row_ids(batch), fraction)
            if heldout_only:
                sub = _only_heldout(batch, held)
                if sub is None:
                    continue
                batch, parts = sub, torch.ones(1, sub.size, device=device)
            else:
                parts = torch.stack([~held, held]).float()  # [2, B]
            logits = head_logits(model, batch).values()
            ce = torch.stack([F.cross_entropy(z.float(), batch.label, reduction="none") for z in logits])
            sums += parts @ ce.T  # [parts, K]
            counts += parts.sum(1, keepdim=True)
    finally:
        model.train(was_training)
    distributed.sum_(sums)  # every process's rows
    distributed.sum_(counts)
    if bool((counts == 0).any()):
        found = ", ".join(f"{int(c)} {n}" for n, c in zip(names, counts.flatten().tolist(), strict=True))
        raise ConfigError(f"holdout={fraction} leaves {found} rows; expected every part non-empty")
    return dict(zip(names, sums / counts, strict=True))
