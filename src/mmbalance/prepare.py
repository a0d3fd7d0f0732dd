"""``mmbalance prepare <dataset> --root PATH``: the expensive preprocessing the papers do offline (frame
extraction from video, spectrograms, tokenisation, tabular encoding), cached on disk.

A dataset module registers a step with ``@PREPARERS.register("<dataset>")``: a function
``(root: Path, force: bool, log: Callable[[str], None]) -> None`` that writes its outputs under ``root``,
skips every item already done (unless ``force``), shows progress through ``log`` and leaves no half-written
file behind (write to a temporary name, then rename). :func:`done` and :func:`mark_done` keep a marker per
finished step so a re-run after completion does nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mmbalance.errors import ConfigError
from mmbalance.registry import Registry

PREPARERS: Registry[None] = Registry("prepare step")
MARKERS = ".mmbalance-prepared"


def done(root: Path, step: str) -> bool:
    """Whether ``step`` finished under ``root`` (its marker exists)."""
    return (root / MARKERS / step).exists()


def mark_done(root: Path, step: str) -> None:
    (root / MARKERS).mkdir(parents=True, exist_ok=True)
    (root / MARKERS / step).write_text("done\n")


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
