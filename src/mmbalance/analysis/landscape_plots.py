"""Figures of loss landscapes: the 1-D line plot and the 2-D contour plots (matplotlib, imported lazily)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from mmbalance.plots import COLORS, DASHES, _figure

Rows = Sequence[Mapping[str, float]]


def loss_names(rows: Rows) -> list[str]:
    """The loss columns of landscape rows (``fused`` first, then the modalities), without coordinates.

    >>> loss_names([{"alpha": 0.0, "beta": 0.0, "fused": 1.0, "image": 2.0}])
    ['fused', 'image']
    """
    return [k for k in rows[0] if k not in ("alpha", "beta")] if rows else []


def _positive(rows: Rows) -> bool:
    return all(v > 0 and math.isfinite(v) for r in rows for k, v in r.items() if k not in ("alpha", "beta"))


def line_figure(rows: Rows, title: str = "") -> Any:
    """Loss against ``alpha``: fused (solid) and each modality (dashed styles); log scale when positive."""
    fig, (ax,) = _figure()
    alphas = [r["alpha"] for r in rows]
    for j, name in enumerate(loss_names(rows)):
        style = {"lw": 2.0} if name == "fused" else {"lw": 1.3, "ls": DASHES[(j - 1) % len(DASHES)]}
        ax.plot(alphas, [r[name] for r in rows], color=COLORS[j % len(COLORS)], label=name, **style)
    if rows and _positive(rows):
        ax.set_yscale("log")
    ax.axvline(0.0, color="#444", lw=0.8)
    ax.set_xlabel("alpha (filter-normalised direction)")
    ax.set_ylabel("cross-entropy")
    ax.set_title(title or "1-D loss landscape", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def contour_figure(rows: Rows, title: str = "") -> Any:
    """One filled contour panel per loss over (``alpha``, ``beta``), in log10 when every value is positive;
    the trained model sits at the cross in the middle."""
    names = loss_names(rows)
    fig, axes = _figure(max(1, len(names)), width=4.2 * max(1, len(names)), height=3.8)
    alphas = sorted({r["alpha"] for r in rows})
    betas = sorted({r["beta"] for r in rows})
    at = {(r["alpha"], r["beta"]): r for r in rows}
    log = _positive(rows)
    for ax, name in zip(axes, names, strict=False):
        z = [[at[(a, b)][name] for a in alphas] for b in betas]
        z = [[math.log10(v) for v in row] for row in z] if log else z
        filled = ax.contourf(alphas, betas, z, levels=20, cmap="viridis")
        ax.contour(alphas, betas, z, levels=10, colors="white", linewidths=0.4)
        fig.colorbar(filled, ax=ax, label="log10 cross-entropy" if log else "cross-entropy")
        ax.plot([0.0], [0.0], marker="+", color="#d62728", markersize=12, mew=2)
        ax.set_title(name, fontsize=11)
        ax.set_xlabel("alpha")
        ax.set_ylabel("beta")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig
