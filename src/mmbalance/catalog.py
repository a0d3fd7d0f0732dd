"""What ``mmbalance list`` shows: every registered component with its hyperparameters and defaults."""

from __future__ import annotations

import inspect
import textwrap
from typing import Any

from mmbalance.data import DATASETS
from mmbalance.models import ENCODERS, HEADS
from mmbalance.pretrain import PRETRAINERS
from mmbalance.registry import Registry
from mmbalance.strategies import STRATEGIES

# filled in by the library, not the user
HIDDEN = {"input_shape", "condition_shape", "feature_dims", "num_classes"}


def _entries(registry: Registry[Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for name in registry.names():
        params = {
            k: ("<required>" if v is inspect.Parameter.empty else v)
            for k, v in registry.params(name).items()
            if k not in HIDDEN
        }
        factory = registry.get(name)
        doc = inspect.getdoc(factory) or ""
        out[name] = {"params": params, "summary": doc.split("\n\n")[0].replace("\n", " ")}
        heads = getattr(factory, "supported_heads", None) or (
            (getattr(factory, "head", None),) if registry is STRATEGIES else ()
        )
        if heads and heads[0] is not None:
            out[name]["heads"] = list(heads)
    return out


def catalog() -> dict[str, dict[str, dict[str, Any]]]:
    return {
        "datasets": _entries(DATASETS),
        "methods": _entries(STRATEGIES),
        "encoders": _entries(ENCODERS),
        "heads": _entries(HEADS),
        "pretraining": _entries(PRETRAINERS),  # methods of `mmbalance pretrain`
    }


def _first_sentence(text: str) -> str:
    flat = " ".join(text.replace("``", "").split())
    end = flat.find(". ")
    return flat if end < 0 else flat[: end + 1]


def format_catalog(cat: dict[str, dict[str, dict[str, Any]]], width: int = 100) -> str:
    """Each component with its parameters (``name=default``) and the first sentence of its docstring."""
    lines = []
    indent = " " * 15
    for section, entries in cat.items():
        lines.append(f"{section}:")
        for name, entry in entries.items():
            params = ", ".join(f"{k}={v!r}" for k, v in entry["params"].items()) or "(no parameters)"
            lines.append(
                textwrap.fill(params, width, initial_indent=f"  {name:<12} ", subsequent_indent=indent)
            )
            if entry.get("heads"):
                lines.append(f"{indent}heads: {', '.join(entry['heads'])}")
            if entry["summary"]:
                summary = _first_sentence(entry["summary"])
                lines.append(textwrap.fill(summary, width, initial_indent=indent, subsequent_indent=indent))
    return "\n".join(lines)
