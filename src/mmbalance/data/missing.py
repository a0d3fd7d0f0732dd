"""Missing modalities at test time: the ``--missing`` specification and the seeded feature drop.

``tabular=1.0`` removes a modality from every row; ``tabular=0.3`` removes 30 % of that modality's features
(or columns) in each row, chosen at random, and imputes them with training statistics. The choice of
features is a pure function of the seed, so every method of a comparison sees the same missing values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from mmbalance.errors import ConfigError


def parse_missing(text: str | Mapping[str, float] | None) -> dict[str, float]:
    """``"tabular=1.0,image=0.5"`` (or a mapping) as ``{"tabular": 1.0, "image": 0.5}``, each in (0, 1].

    >>> parse_missing("tabular=1,image=0.3")
    {'tabular': 1.0, 'image': 0.3}
    """
    if text is None or text == "":
        return {}
    items = text.items() if isinstance(text, Mapping) else [_pair(p) for p in str(text).split(",") if p]
    out: dict[str, float] = {}
    for m, v in items:
        try:
            frac = float(v)
        except (TypeError, ValueError):
            raise ConfigError(f"missing {m}={v!r}: expected a fraction in (0, 1], e.g. {m}=1.0") from None
        if not 0.0 < frac <= 1.0:
            raise ConfigError(f"missing {m}={v!r}: expected a fraction in (0, 1], e.g. {m}=1.0")
        out[str(m)] = frac
    return out


def _pair(part: str) -> tuple[str, str]:
    name, eq, value = part.partition("=")
    if not eq or not name.strip():
        raise ConfigError(
            f"missing setting {part!r} does not parse; expected MODALITY=FRACTION, e.g. tabular=1.0"
        )
    return name.strip(), value.strip()


def check_missing(spec: Mapping[str, float], modalities: Sequence[str]) -> None:
    """Every named modality is one the model has, and at least one modality stays whole."""
    for m in spec:
        if m not in modalities:
            raise ConfigError(f"missing names modality {m!r}; expected one of {list(modalities)}")
    if all(spec.get(m, 0.0) >= 1.0 for m in modalities):
        raise ConfigError(f"missing {missing_label(spec)} removes every modality; expected at least one left")


def missing_label(spec: Mapping[str, float]) -> str:
    """A short stable name of a setting: ``tabular=1`` (used as a column and a file name)."""
    return ",".join(f"{m}={v:g}" for m, v in spec.items())


def feature_mask(rows: int, width: int, frac: float, seed: int) -> Tensor:
    """Bool ``[rows, width]``: ``round(frac * width)`` features drawn without replacement in each row."""
    k = round(frac * width)
    g = torch.Generator().manual_seed(seed)
    order = torch.rand(rows, width, generator=g).argsort(dim=1)
    mask = torch.zeros(rows, width, dtype=torch.bool)
    mask.scatter_(1, order[:, :k], True)
    return mask


def drop_features(x: Tensor, frac: float, fill: Tensor, seed: int) -> Tensor:
    """``x`` (``[N, D]``) with a :func:`feature_mask` of its entries replaced by ``fill`` (``[D]``)."""
    mask = feature_mask(x.shape[0], x.shape[1], frac, seed).to(x.device)
    return torch.where(mask, fill.expand_as(x), x)
