"""Shared fixtures of the model tests: ``syncing_ops`` lists the ops of a call that wait for the device."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

SYNCING_OPS = {"nonzero", "masked_select", "_local_scalar_dense", "item", "nonzero_static"}
INDEXING_OPS = {"index", "index_put", "index_put_", "_index_put_impl_"}


class SyncRecorder(TorchDispatchMode):
    """Records the aten ops whose result waits for the device: ``.item()``-like reads, nonzero,
    masked_select, and indexing with a boolean index (its result's size depends on the data)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name = func.overloadpacket.__name__
        bool_index = name in INDEXING_OPS and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1] if i is not None
        )
        if name in SYNCING_OPS or bool_index:
            self.found.append(str(func))
        return func(*args, **(kwargs or {}))


def _syncing_ops(run: Callable[[], object]) -> list[str]:
    with SyncRecorder() as recorder:
        run()
    return recorder.found


@pytest.fixture
def syncing_ops() -> Callable[[Callable[[], object]], list[str]]:
    """``syncing_ops(run)``: the device-waiting ops recorded while ``run()`` executes (empty: none)."""
    return _syncing_ops
