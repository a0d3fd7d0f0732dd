"""Loss landscapes around a trained model along filter-normalised random directions.

Li, Xu, Taylor, Studer and Goldstein, "Visualizing the Loss Landscape of Neural Nets", NeurIPS 2018. A random
Gaussian direction is rescaled filter by filter to the norms of the model's own filters, so that the
plotted distances are relative to each layer's scale (which ReLU and BatchNorm networks are invariant to)
and landscapes of different models are comparable. The losses are cross-entropies averaged over a fixed set
of batches, with the model in eval mode (BatchNorm uses its running statistics, dropout is off): the
``fused`` loss scores ``strategy.predict``'s logits, and each modality's loss its unimodal logits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from mmbalance.errors import ConfigError, check_range
from mmbalance.grad.curvature import Objective
from mmbalance.models import MultimodalModel
from mmbalance.strategies import Strategy
from mmbalance.types import Batch

COORDINATES = ("alpha", "beta")


def trainable(model: MultimodalModel) -> list[torch.nn.Parameter]:
    """The parameters the landscape and the sharpness move: every one that requires a gradient (a frozen
    backbone stays where it is)."""
    return [p for p in model.parameters() if p.requires_grad]


def filter_normalized_direction(params: Sequence[Tensor], generator: torch.Generator) -> list[Tensor]:
    """A random direction, one tensor per parameter, filter-normalised as in Li et al. (2018).

    A parameter with two or more dimensions is drawn standard Gaussian (on the CPU with ``generator``, so the
    direction does not depend on the device) and each of its filters (its slices along the first dimension:
    the row of a linear layer's weight that makes one output unit, the kernel of one output channel of a
    convolution) is rescaled to the norm of the same filter of the parameter; a zero filter stays zero.
    Parameters with one dimension or none (biases, BatchNorm scales and shifts, scalars) get a zero
    direction, as in the paper's experiments, so they keep the checkpoint's values across the landscape.

    >>> w = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
    >>> d = filter_normalized_direction([w, torch.ones(2)], torch.Generator().manual_seed(0))
    >>> [round(n, 5) for n in d[0].norm(dim=1).tolist()], d[1].tolist()
    ([5.0, 1.0], [0.0, 0.0])
    """
    out = []
    for p in params:
        if p.dim() <= 1:
            out.append(torch.zeros_like(p, memory_format=torch.contiguous_format))
            continue
        d = torch.randn(p.shape, generator=generator, dtype=torch.float64)
        w = p.detach().to("cpu", torch.float64).reshape(p.shape[0], -1)
        scale = w.norm(dim=1) / d.reshape(p.shape[0], -1).norm(dim=1).clamp_min(torch.finfo(d.dtype).tiny)
        out.append((d * scale.reshape(-1, *([1] * (p.dim() - 1)))).to(p.device, p.dtype))
    return out


def axis(points: int, span: float) -> list[float]:
    """``points`` evenly spaced coordinates from ``-span`` to ``span``; the middle one is exactly 0.

    >>> axis(5, 1.0)
    [-1.0, -0.5, 0.0, 0.5, 1.0]
    """
    if isinstance(points, bool) or not isinstance(points, int) or points < 3 or points % 2 == 0:
        raise ConfigError(f"points={points!r} is invalid; expected an odd integer >= 3 (the grid holds 0)")
    check_range("span", span, 0.0)
    if span == 0:
        raise ConfigError("span=0 is out of range; expected a positive number")
    half = (points - 1) // 2
    return [span * (i - half) / half for i in range(points)]


def _terms(model: MultimodalModel, strategy: Strategy, batches: Sequence[Batch]) -> Iterator[dict]:
    """Per batch: each loss's cross-entropy summed over the batch and divided by the number of samples."""
    total = sum(b.size for b in batches)
    for b in batches:
        out = model(b.inputs)
        logits = {"fused": strategy.predict(out), **out.unimodal_logits}
        yield {k: F.cross_entropy(z.float(), b.label, reduction="sum") / total for k, z in logits.items()}


@torch.no_grad()
def subset_losses(model: MultimodalModel, strategy: Strategy, batches: Sequence[Batch]) -> dict[str, float]:
    """``{"fused": ..., <modality>: ...}``: the mean cross-entropy over all samples of ``batches``, in eval
    mode (the model is left in eval mode)."""
    model.eval()
    sums: dict[str, Tensor] = {}
    for term in _terms(model, strategy, batches):
        sums = {k: sums.get(k, 0) + v for k, v in term.items()}
    return {k: float(v) for k, v in sums.items()}


def fused_objective(model: MultimodalModel, strategy: Strategy, batches: Sequence[Batch]) -> Objective:
    """The fused loss of :func:`subset_losses` as a :data:`~mmbalance.grad.curvature.Objective` (one term per
    batch, with gradients), for the curvature functions. Call it with the model in eval mode."""

    def objective() -> Iterator[Tensor]:
        with torch.enable_grad():
            for term in _terms(model, strategy, batches):
                yield term["fused"]

    return objective


def surface(
    model: MultimodalModel,
    strategy: Strategy,
    batches: Sequence[Batch],
    directions: Sequence[Sequence[Tensor]],
    grid: Sequence[Sequence[float]],
    on_point: Callable[[int], None] | None = None,
) -> list[dict[str, float]]:
    """The losses at ``θ + Σ_i c_i d_i`` for each coordinate tuple ``c`` of ``grid`` (one per direction
    ``d_i`` in ``directions``; named ``alpha``, ``beta``): one row ``{alpha, [beta,] fused, <m>...}`` per
    point. ``θ`` is restored bit-exactly afterwards, also on error; at ``c = 0`` the row equals
    :func:`subset_losses` at ``θ``. ``on_point(i)`` is called after the ``i``-th point (progress)."""
    if len(directions) > len(COORDINATES):
        raise ConfigError(f"{len(directions)} directions given; expected at most {len(COORDINATES)}")
    params = trainable(model)
    saved = [p.detach().clone() for p in params]
    rows = []
    try:
        for i, coords in enumerate(grid):
            with torch.no_grad():
                for j, (p, s) in enumerate(zip(params, saved, strict=True)):
                    step = sum(
                        (c * d[j] for c, d in zip(coords, directions, strict=True)), torch.zeros_like(s)
                    )
                    p.copy_(s if all(c == 0 for c in coords) else s + step)
            names = dict(zip(COORDINATES, (float(c) for c in coords), strict=False))
            rows.append({**names, **subset_losses(model, strategy, batches)})
            if on_point is not None:
                on_point(i)
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved, strict=True):
                p.copy_(s)
    return rows
