"""The columns of the summary tables that comparisons, sweeps, the HTML report and the plots share (one
entry per dataset and method, each metric as ``<key>_mean`` and ``<key>_std``). Below all of them: it imports
nothing of mmbalance."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def modality_columns(entries: Iterable[Mapping[str, Any]], sort: bool = False) -> list[tuple[str, str]]:
    """``(header, key)`` of the per-modality columns of a summary table, modality by modality:
    ``<m> acc %`` (the head's own logits for m, key ``test_<m>_acc``) and, where some entry has it,
    ``<m> probe %`` (the linear probe of m's encoder, key ``test_<m>_probe_acc``).

    Modalities come in first-seen order, or sorted by name when ``sort``.
    """
    entries = list(entries)
    found = [k[5:-9] for e in entries for k in e if k.startswith("test_") and k.endswith("_acc_mean")]
    names = set(found)
    mods = [m for m in dict.fromkeys(found) if m and not (m.endswith("_probe") and m[:-6] in names)]
    columns = []
    for m in sorted(mods) if sort else mods:
        columns.append((f"{m} acc %", f"test_{m}_acc"))
        if any(f"test_{m}_probe_acc_mean" in e for e in entries):
            columns.append((f"{m} probe %", f"test_{m}_probe_acc"))
    return columns
