"""Checks the baseline strategies share: how many modalities they take, flags and layer widths (the fusion
head is checked by the base :class:`~mmbalance.strategies.base.Strategy`)."""

from __future__ import annotations

from collections.abc import Sequence

from mmbalance.errors import ConfigError


def check_modality_count(method: str, modalities: Sequence[str], low: int, high: int | None = None) -> None:
    """Raise a one-line ``ConfigError`` unless ``low <= len(modalities) <= high``."""
    n = len(modalities)
    if n < low or (high is not None and n > high):
        span = f"at least {low}" if high is None else f"{low} to {high}"
        raise ConfigError(f"method {method!r} takes {span} modalities; got {n}: {list(modalities)}")


def check_bool(name: str, value: object) -> None:
    """Raise a one-line ``ConfigError`` unless ``value`` is ``True`` or ``False``."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} is invalid; expected true or false")


def check_widths(name: str, value: object) -> None:
    """Raise a one-line ``ConfigError`` unless ``value`` is a list of positive integer layer widths."""
    ok = isinstance(value, (list, tuple)) and all(
        isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in value
    )
    if not ok:
        raise ConfigError(f"{name}={value!r} is invalid; expected a list of positive integers such as [64]")
