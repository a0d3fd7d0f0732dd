"""A feature cache for frozen backbones: embed each input once, reuse it every epoch and across runs.

A frozen encoder (``freeze=true``) with a ``trunk(x)`` method (``resnet18``, ``resnet50``, ``hf_text``)
computes the same trunk features for the same input every time, so they can be kept: ``model.cache_features``
(``true`` for ``~/.cache/mmbalance/features``, or a folder) makes :func:`attach` wrap the trunk. Each row of
an input batch is keyed by a hash of its bytes; rows seen before are looked up, the others computed and
stored. The store is one file per backbone, named by a hash of the backbone's class, input shape and
frozen weights, so another run with the same backbone and data reuses it and a different backbone never
does. An augmented input is a new input (a miss, computed as usual): the cache pays off for inputs that
repeat, i.e. with augmentation off or on the evaluation splits. Trainable parts after the trunk (the
projection to ``out_dim``) still train.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn


class FeatureCache:
    """Trunk features of one frozen backbone, keyed by input row, persisted to ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.store: dict[str, Tensor] = _read_store(path)
        self.new = 0
        self.hits = 0
        self.misses = 0
        atexit.register(self.flush)

    def __call__(self, trunk: Any, x: Tensor) -> Tensor:
        keys = [hashlib.sha1(row.cpu().contiguous().numpy().tobytes()).hexdigest() for row in x]
        missing = [i for i, k in enumerate(keys) if k not in self.store]
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        if missing:
            with torch.no_grad():
                fresh = trunk(x[missing]).detach().cpu()
            for i, f in zip(missing, fresh, strict=True):
                self.store[keys[i]] = f.clone()
            self.new += len(missing)
            if self.new >= 4096:
                self.flush()
        return torch.stack([self.store[k] for k in keys]).to(x.device)

    def flush(self) -> None:
        """Write the store (atomically) if it grew since the last write: merged with what another process
        (a parallel run, another torchrun rank) wrote there meanwhile, through a temporary file of this
        process's own, so concurrent writers never mix their bytes."""
        if not self.new:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        on_disk = _read_store(self.path)
        self.store = {**on_disk, **self.store}
        fd, name = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name + ".", suffix=".tmp")
        os.close(fd)
        torch.save(self.store, name)
        os.replace(name, self.path)
        self.new = 0


def _read_store(path: Path) -> dict[str, Tensor]:
    """The features kept at ``path`` (none when the file is missing or unreadable: it is rebuilt)."""
    if not path.exists():
        return {}
    try:
        return torch.load(path, weights_only=True)  # type: ignore[no-any-return]
    except Exception:  # a cache: a damaged file is recomputed, never fatal
        warnings.warn(f"feature cache {path} is unreadable; its features are computed again", stacklevel=2)
        return {}


def backbone_key(encoder: nn.Module, input_shape: tuple[int, ...], precision: str = "fp32") -> str:
    """A hash of what determines a frozen trunk's output: its class, the input shape, the precision and its
    frozen weights and buffers (not the trainable projection after it, so every seed shares the store)."""
    h = hashlib.sha256(f"{type(encoder).__name__}{tuple(input_shape)}{precision}".encode())
    trainable = {n for n, p in encoder.named_parameters() if p.requires_grad}
    for name, t in sorted(encoder.state_dict().items()):
        if name in trainable:
            continue
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def cacheable(encoder: nn.Module) -> bool:
    conditioned = getattr(encoder, "condition", None) is not None  # its trunk also reads another input
    return (
        bool(getattr(encoder, "freeze", False))
        and callable(getattr(encoder, "trunk", None))
        and not conditioned
    )


def attach(
    encoder: nn.Module, folder: Path, input_shape: tuple[int, ...], precision: str = "fp32"
) -> FeatureCache:
    """Route ``encoder.trunk`` through a :class:`FeatureCache` in ``folder`` (the encoder's parameters and
    state-dict names are unchanged)."""
    cache = FeatureCache(folder / f"{backbone_key(encoder, input_shape, precision)}.pt")
    trunk = encoder.trunk
    encoder.trunk = lambda x: cache(trunk, x)  # type: ignore[method-assign]
    encoder.feature_cache = cache
    return cache
