"""Training strategies: the registry and the ``Strategy`` extension point."""

from __future__ import annotations

from typing import Any

from mmbalance.strategies import agm as _agm  # noqa: F401  (registers)
from mmbalance.strategies import charms as _charms  # noqa: F401  (registers)
from mmbalance.strategies import daft as _daft  # noqa: F401  (registers)
from mmbalance.strategies import domfn as _domfn  # noqa: F401  (registers)
from mmbalance.strategies import gaal as _gaal  # noqa: F401  (registers)
from mmbalance.strategies import gblending as _gblending  # noqa: F401  (registers)
from mmbalance.strategies import igm as _igm  # noqa: F401  (registers)
from mmbalance.strategies import joint as _joint  # noqa: F401  (registers)
from mmbalance.strategies import mla as _mla  # noqa: F401  (registers)
from mmbalance.strategies import mmcl as _mmcl  # noqa: F401  (registers)
from mmbalance.strategies import mmpareto as _mmpareto  # noqa: F401  (registers)
from mmbalance.strategies import mses as _mses  # noqa: F401  (registers)
from mmbalance.strategies import mslr as _mslr  # noqa: F401  (registers)
from mmbalance.strategies import ogm_ge as _ogm_ge  # noqa: F401  (registers)
from mmbalance.strategies import pmr as _pmr  # noqa: F401  (registers)
from mmbalance.strategies import reconboost as _reconboost  # noqa: F401  (registers)
from mmbalance.strategies import smv as _smv  # noqa: F401  (registers)
from mmbalance.strategies import tip as _tip  # noqa: F401  (registers)
from mmbalance.strategies.base import Strategy
from mmbalance.strategies.registry import STRATEGIES


def list_strategies() -> list[str]:
    return STRATEGIES.names()


def build_strategy(name: str, **kwargs: Any) -> Strategy:
    return STRATEGIES.build(name, **kwargs)


__all__ = ["STRATEGIES", "Strategy", "build_strategy", "list_strategies"]
