"""Projector spectra as records: what IGM and MLA keep of each projector they build, and the rows of the
run directory's ``spectra.csv``.

A stored spectrum is a small dict of labels (plain values) and two float64 CPU tensors, so it travels in
the strategy's ``state_dict`` (and so in checkpoints loaded with ``weights_only=True``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

LABELS = ("stage", "epoch", "modality", "layer", "source")
"""The label columns of ``spectra.csv``, between ``method`` and ``index``; a missing label is empty."""


def spectrum_entry(eigenvalues: Tensor, shrink: Tensor, **labels: Any) -> dict[str, Any]:
    """``labels`` with ``eigenvalue`` and ``shrink`` (``[n]`` each, pairwise aligned) reordered so the
    eigenvalues descend, as float64 CPU tensors. Negative eigenvalues are recorded as 0: the matrices they
    come from are positive semi-definite, so a negative one is round-off. ``shrink`` is kept as it is.

    >>> e = spectrum_entry(torch.tensor([-1e-12, 4.0]), torch.tensor([1.0, 0.5]), layer="fc")
    >>> e["layer"], e["eigenvalue"].tolist(), e["shrink"].tolist()
    ('fc', [4.0, 0.0], [0.5, 1.0])
    """
    order = torch.argsort(eigenvalues.detach(), descending=True, stable=True)
    lam = eigenvalues.detach()[order].double().clamp_min(0.0).cpu()
    return {**labels, "eigenvalue": lam, "shrink": shrink.detach()[order].double().cpu()}


def spectrum_rows(method: str, entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Long-format rows, one per eigenvalue: ``method``, the :data:`LABELS`, ``index`` (0 = the largest
    eigenvalue), ``eigenvalue``, ``shrink``.

    >>> e = spectrum_entry(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 0.5]), epoch=0, layer="fc")
    >>> [(r["epoch"], r["index"], r["eigenvalue"], r["shrink"]) for r in spectrum_rows("m", [e])]
    [(0, 0, 2.0, 0.5), (0, 1, 1.0, 1.0)]
    """
    rows = []
    for entry in entries:
        labels = {k: entry.get(k) for k in LABELS}
        pairs = zip(entry["eigenvalue"].tolist(), entry["shrink"].tolist(), strict=True)
        rows += [
            {"method": method, **labels, "index": i, "eigenvalue": lam, "shrink": s}
            for i, (lam, s) in enumerate(pairs)
        ]
    return rows


def module_names(model: nn.Module) -> dict[int, str]:
    """``id(module) -> qualified name`` for every submodule of ``model`` (labels only, never selection)."""
    return {id(m): name for name, m in model.named_modules()}
