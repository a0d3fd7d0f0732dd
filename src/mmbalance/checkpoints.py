"""Reading the checkpoints this library writes (``last.pt``, ``best.pt``, a pre-training run's weights)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from mmbalance.errors import ConfigError


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint of this library, on the CPU, without unpickling arbitrary objects."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)  # type: ignore[no-any-return]
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise ConfigError(
            f"{path} is not a checkpoint that loads safely (tensors and plain values only): {reason}"
        ) from exc
