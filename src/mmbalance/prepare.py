"""``mmbalance prepare <dataset> --root PATH``: the expensive preprocessing the papers do offline (frame
extraction from video, spectrograms, tokenisation, tabular encoding), cached on disk.

A dataset module registers its step in :data:`mmbalance.data.preparers.PREPARERS` (the registry lives in
the data package, below the dataset modules that fill it); :func:`prepare` runs one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mmbalance.data.preparers import MARKERS, PREPARERS, done, mark_done
from mmbalance.errors import ConfigError

__all__ = ["MARKERS", "PREPARERS", "done", "mark_done", "prepare"]


def prepare(name: str, root: str | Path, force: bool = False, log: Callable[[str], None] = print) -> None:
    """Run dataset ``name``'s preparation under ``root`` (one-line error for an unknown name or root)."""
    import mmbalance.data  # noqa: F401  (registers the datasets and their steps)

    root = Path(root).expanduser()
    if not root.is_dir():
        raise ConfigError(
            f"--root {root} is not a directory; expected the folder the dataset was unpacked in"
        )
    step = PREPARERS.get(name)
    step(root=root, force=force, log=log)
