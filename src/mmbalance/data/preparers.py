"""The registry of ``mmbalance prepare`` steps and their done-markers (see :mod:`mmbalance.prepare`).

A dataset module registers a step with ``@PREPARERS.register("<dataset>")``: a function
``(root: Path, force: bool, log: Callable[[str], None]) -> None`` that writes its outputs under ``root``,
skips every item already done (unless ``force``), shows progress through ``log`` and leaves no half-written
file behind (write to a temporary name, then rename). :func:`done` and :func:`mark_done` keep a marker per
finished step so a re-run after completion does nothing.
"""

from __future__ import annotations

from pathlib import Path

from mmbalance.registry import Registry

PREPARERS: Registry[None] = Registry("prepare step")
MARKERS = ".mmbalance-prepared"


def done(root: Path, step: str) -> bool:
    """Whether ``step`` finished under ``root`` (its marker exists)."""
    return (root / MARKERS / step).exists()


def mark_done(root: Path, step: str) -> None:
    (root / MARKERS).mkdir(parents=True, exist_ok=True)
    (root / MARKERS / step).write_text("done\n")
