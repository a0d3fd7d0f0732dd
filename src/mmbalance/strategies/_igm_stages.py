"""Helpers of the IGM strategy: the stage schedule, mixup, the (released) loss and the flat projectors.

Pure functions of their arguments (the projector pass reads a model and a loader, and changes neither).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmbalance import distributed
from mmbalance.grad import InputCovariance, flat_spectrum
from mmbalance.models import MultimodalModel
from mmbalance.strategies._spectra import module_names, spectrum_entry
from mmbalance.types import Batch


def stage_index(epoch: int, epoch_list: Sequence[int] | None, stage_epochs: int) -> int:
    """The stage that ``epoch`` belongs to: stages last ``epoch_list[k]`` epochs (the list repeats past its
    end), or ``stage_epochs`` each when ``epoch_list`` is ``None``.

    >>> [stage_index(e, [2, 3], 5) for e in range(7)]
    [0, 0, 1, 1, 1, 2, 2]
    >>> [stage_index(e, None, 2) for e in range(5)]
    [0, 0, 1, 1, 2]
    """
    if epoch_list is None:
        return epoch // stage_epochs
    cycles, rest = divmod(epoch, sum(epoch_list))
    stage = cycles * len(epoch_list)
    for length in epoch_list:
        if rest < length:
            break
        rest -= length
        stage += 1
    return stage


def mixup(
    x: Tensor, y: Tensor, alpha: float, rng: np.random.Generator, mask_channel: bool = False
) -> tuple[Tensor, Tensor, float | None]:
    """``(λx + (1-λ)x[π], y[π], λ)`` with ``λ ~ Beta(α, α)`` and a permutation ``π`` drawn from ``rng`` on the
    host (no device sync; the same draws on every device); ``(x, y, None)`` when ``alpha == 0`` or ``x``
    is not floating point.

    ``mask_channel``: ``x`` is a padded sequence ``[B, T, F + 1]`` whose last channel is 1 on real frames
    and 0 on padding. Only the features are mixed, each clip's padded frames counting as zeros, and the
    mask becomes the union of the two clips' masks: every frame real in either clip stays real and holds
    ``λx + (1-λ)x[π]``, so the input is still a λ : 1-λ blend, as the loss assumes. The draws from ``rng``
    are the same with or without ``mask_channel``.

    >>> x, y_perm, lam = mixup(torch.ones(4, 2), torch.arange(4), 0.0, np.random.default_rng(0))
    >>> lam is None and torch.equal(y_perm, torch.arange(4))
    True
    >>> clips = torch.tensor([[[2.0, 1.0], [0.0, 0.0]], [[4.0, 1.0], [6.0, 1.0]]])  # 1 and 2 real frames
    >>> mixed, _, lam = mixup(clips, torch.arange(2), 1.0, np.random.default_rng(0), mask_channel=True)
    >>> round(lam, 3), [[round(v, 3) for v in frame] for frame in mixed[0].tolist()]  # π swaps the clips
    (0.702, [[2.595, 1.0], [1.785, 1.0]])
    """
    if alpha == 0 or not x.is_floating_point():
        return x, y, None
    lam = float(rng.beta(alpha, alpha))
    perm = torch.from_numpy(rng.permutation(x.shape[0])).to(x.device)
    if not mask_channel:
        return lam * x + (1 - lam) * x[perm], y[perm], lam
    mask = x[..., -1:]
    frames = x[..., :-1] * mask  # padded frames hold zeros
    mixed = lam * frames + (1 - lam) * frames[perm]
    return torch.cat([mixed, torch.maximum(mask, mask[perm])], dim=-1), y[perm], lam


def mixed_loss(logits: Tensor, y: Tensor, y_perm: Tensor, lam: float | None, tilt: float = 0.0) -> Tensor:
    """``mean_i[((1-β)λ + β)·CE(z_i, y_i) + (1-β)(1-λ)·CE(z_i, y_π(i))]`` with ``β = tilt``.

    ``tilt = 0`` is plain mixup; ``tilt = flat_ratio`` is the loss the released IGM code optimises (its SAM
    term with ρ ≈ 0 adds ``β·CE(z, y)`` on the un-permuted labels). ``lam = None`` gives ``CE(z, y)``.

    >>> z, y = torch.zeros(2, 2), torch.tensor([0, 1])
    >>> round(mixed_loss(z, y, y.flip(0), 0.25, tilt=0.3).item(), 4)  # log 2
    0.6931
    """
    if lam is None:
        return F.cross_entropy(logits, y)
    own = (1 - tilt) * lam + tilt
    return own * F.cross_entropy(logits, y) + (1 - tilt) * (1 - lam) * F.cross_entropy(logits, y_perm)


def modality_linears(model: MultimodalModel, modality: str, with_encoder: bool) -> list[nn.Linear]:
    """The ``nn.Linear`` layers of ``modality``'s head branch (and, ``with_encoder``, of its encoder), in
    module order; membership comes from the model's explicit parameter groups, never from names."""
    group = model.modality_parameters(modality) if with_encoder else model.head.modality_parameters(modality)
    ids = {id(p) for p in group}
    return [m for m in model.modules() if isinstance(m, nn.Linear) and id(m.weight) in ids]


@torch.no_grad()
def input_covariances(
    model: MultimodalModel, layers: Mapping[str, Sequence[nn.Linear]], loader: Iterable[Batch], mode: str
) -> dict[nn.Module, Tensor]:
    """One eval-mode pass over ``loader`` running each modality in ``layers`` (its encoder, then its head
    branch) and collecting :class:`InputCovariance` statistics of the listed layers. The model's
    train/eval mode is restored afterwards; no parameter or buffer changes."""
    modules = [layer for group in layers.values() for layer in group]
    if not modules:
        return {}
    device, was_training = next(model.parameters()).device, model.training
    model.eval()
    try:
        with InputCovariance(modules, mode=mode, reduce=distributed.mean) as stats:  # global batches
            for batch in loader:
                for m in layers:
                    model.head.unimodal(m, model.encoders[m](batch.inputs[m].to(device)))
    finally:
        model.train(was_training)
    return stats.covariances


def build_projectors(
    model: MultimodalModel,
    sources: Mapping[str, str],
    loader: Iterable[Batch],
    temperature: float,
    with_encoder: bool,
    mode: str = "batch_mean",
) -> tuple[dict[str, dict[int, Tensor]], list[dict[str, Any]]]:
    """``({target: {i: P}}, spectra)``: for every target modality, a flat projector for its ``i``-th Linear
    layer (in :func:`modality_linears` order) built from the input statistics of the source modality
    ``sources[target]``. A layer is matched to every source layer with the same weight shape (the
    released rule); several matches give the product of their projectors; unmatched layers get none.

    ``spectra`` holds one :func:`~mmbalance.strategies._spectra.spectrum_entry` per target layer and
    matched source layer: the eigenvalues of the source statistic and the shrink factors of its projector,
    labelled ``modality`` (the target), ``layer`` (the target layer) and ``source`` (the source layer).
    """
    pairs: dict[str, dict[int, list[nn.Linear]]] = {}
    targets: dict[str, list[nn.Linear]] = {}
    needed: dict[str, list[nn.Linear]] = {}
    for target, source in sources.items():
        src = modality_linears(model, source, with_encoder)
        tgt = targets[target] = modality_linears(model, target, with_encoder)
        matches = {i: [s for s in src if s.weight.shape == t.weight.shape] for i, t in enumerate(tgt)}
        pairs[target] = {i: ms for i, ms in matches.items() if ms}
        used = {id(s) for ms in pairs[target].values() for s in ms}
        needed.setdefault(source, [])
        needed[source] += [s for s in src if id(s) in used and s not in needed[source]]
    covs = input_covariances(model, {s: ls for s, ls in needed.items() if ls}, loader, mode)
    spectra = {layer: flat_spectrum(cov, temperature) for layer, cov in covs.items()}
    flat = {layer: spec.projector(covs[layer].dtype) for layer, spec in spectra.items()}
    names = module_names(model)
    result: dict[str, dict[int, Tensor]] = {}
    records: list[dict[str, Any]] = []
    for target, matched in pairs.items():
        result[target] = {}
        for i, layers in matched.items():
            P = flat[layers[0]]
            for extra in layers[1:]:
                P = P @ flat[extra]
            result[target][i] = P
            for s in layers:
                labels = {"modality": target, "layer": names[id(targets[target][i])], "source": names[id(s)]}
                records.append(spectrum_entry(spectra[s].eigenvalues, spectra[s].shrink, **labels))
    return result, records
