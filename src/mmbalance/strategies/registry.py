"""The strategy registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmbalance.registry import Registry

if TYPE_CHECKING:
    from mmbalance.strategies.base import Strategy

STRATEGIES: Registry[Strategy] = Registry("method", entry_points="mmbalance.strategies")
