"""The order in which alternating strategies (MLA, GAAL) step their modalities within a batch.

``order`` is ``"dataset"`` (the dataset's modality order), ``"cost"`` (ascending forward cost of the
encoders, so the most expensive encoder steps last) or an explicit list of every modality. The cost is
the number of floating-point operations PyTorch's ``FlopCounterMode`` counts (matrix products,
convolutions, attention) in one eval-mode forward of one sample: a function of the model and the input
shape only, so the same config steps in the same order on every machine, whatever its speed or load.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from mmbalance.errors import ConfigError

ORDERS = ("dataset", "cost")


def check_order(order: object, modalities: Sequence[str]) -> None:
    """Raise a one-line :class:`ConfigError` unless ``order`` is one of :data:`ORDERS` or a permutation of
    ``modalities``."""
    if isinstance(order, str) and order in ORDERS:
        return
    if isinstance(order, (list, tuple)) and sorted(map(str, order)) == sorted(modalities):
        return
    raise ConfigError(
        f"order={order!r} is invalid; expected dataset, cost or a list of each modality once, "
        f"e.g. {list(reversed(modalities))}"
    )


def forward_flops(encoder: nn.Module, x: Tensor) -> int:
    """Floating-point operations of ``encoder(x[:1])`` in eval mode, without gradients.

    Every submodule's mode is restored and nothing else changes: no parameter, no BatchNorm statistic, no
    random-number state (eval mode draws no dropout masks).

    >>> forward_flops(nn.Linear(6, 8), torch.zeros(5, 6))  # one sample: 6 · 8 multiply-adds, 2 FLOPs each
    96
    """
    modes = {module: module.training for module in encoder.modules()}
    encoder.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            encoder(x[:1])
    finally:
        for module, training in modes.items():
            module.training = training
    return int(counter.get_total_flops())


def resolve_order(
    order: str | Sequence[str], encoders: Mapping[str, nn.Module], inputs: Mapping[str, Tensor]
) -> list[str]:
    """The modalities in the order they step: ``encoders``' order (``"dataset"``), ascending
    :func:`forward_flops` on ``inputs`` with ties in ``encoders``' order (``"cost"``), or ``order`` itself."""
    if order == "dataset":
        return list(encoders)
    if order == "cost":
        flops = {m: forward_flops(enc, inputs[m]) for m, enc in encoders.items()}
        return sorted(encoders, key=lambda m: flops[m])  # sorted is stable: ties keep the dataset order
    return [str(m) for m in order]
