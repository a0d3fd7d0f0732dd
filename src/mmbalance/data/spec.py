"""The ``--modalities`` value: which columns of a manifest make which modality, read as what.

``image=image:photo,tabular=columns:age,sex,bp,text=text:notes`` is a comma-separated list in which a new
modality starts at ``NAME=``; its kind is ``image:COL``,
``frames:COL`` (a folder of frame images), ``audio:COL``, ``text:COL``, ``features:COL``
(one ``.npy`` path per row) or ``columns:C1,C2,...`` (the following items without ``=`` are more columns).
The parsed form is the YAML form of the ``dataset.modalities`` option::

    {"image": {"kind": "image", "column": "photo"}, "tabular": {"kind": "columns", "columns": ["age", ...]}}

where each modality may carry more options of its source (``size``, ``categorical``, ``max_length``...).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mmbalance.errors import ConfigError

KINDS = ("image", "frames", "audio", "text", "columns", "features")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_modalities(text: str) -> dict[str, dict[str, Any]]:
    """Parse a ``--modalities`` value (see the module docstring); one clear line if it does not parse.

    >>> parse_modalities("image=image:photo,tab=columns:age,sex")
    {'image': {'kind': 'image', 'column': 'photo'}, 'tab': {'kind': 'columns', 'columns': ['age', 'sex']}}
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(
            f"--modalities {text!r} is empty; expected e.g. image=image:photo,tabular=columns:age,bp"
        )
    out: dict[str, dict[str, Any]] = {}
    last: str | None = None
    for item in text.split(","):
        item = item.strip()
        if "=" in item:
            name, _, rest = item.partition("=")
            name = name.strip()
            if not _NAME.match(name):
                raise ConfigError(
                    f"--modalities: {name!r} is not a modality name; expected letters, digits "
                    f"and _ (in {text!r})"
                )
            if name in out:
                raise ConfigError(f"--modalities names modality {name!r} twice; expected each once")
            kind, colon, column = rest.partition(":")
            kind, column = kind.strip(), column.strip()
            if not colon or kind not in KINDS or not column:
                raise ConfigError(
                    f"--modalities: {item!r} does not parse; expected NAME=KIND:COLUMN with KIND one of "
                    f"{', '.join(KINDS)}"
                )
            out[name] = (
                {"kind": kind, "columns": [column]} if kind == "columns" else {"kind": kind, "column": column}
            )
            last = name
        else:
            if last is None or out[last]["kind"] != "columns" or not item:
                raise ConfigError(
                    f"--modalities: {item!r} follows no columns:... list; expected NAME=KIND:COLUMN "
                    f"(only columns: takes more comma-separated columns)"
                )
            out[last]["columns"].append(item)
    return out


def format_modalities(spec: Mapping[str, Mapping[str, Any]]) -> str:
    """The ``--modalities`` text of a parsed spec (its kind and columns; other options are not shown)."""
    parts = []
    for name, m in spec.items():
        cols = m["columns"] if m["kind"] == "columns" else [m["column"]]
        parts.append(f"{name}={m['kind']}:{','.join(cols)}")
    return ",".join(parts)


def normalise_modalities(spec: str | Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A spec given as text or as a mapping, checked and in mapping form."""
    if isinstance(spec, str):
        return parse_modalities(spec)
    if not isinstance(spec, Mapping) or not spec:
        raise ConfigError(
            f"dataset.modalities={spec!r}; expected a mapping such as "
            "{image: {kind: image, column: photo}}"
        )
    out = {}
    for name, m in spec.items():
        if not isinstance(m, Mapping) or m.get("kind") not in KINDS:
            raise ConfigError(
                f"dataset.modalities.{name}={m!r}; expected a mapping with kind one of {', '.join(KINDS)}"
            )
        key = "columns" if m["kind"] == "columns" else "column"
        value = m.get(key)
        ok = (
            isinstance(value, list) and value and all(isinstance(c, str) for c in value)
            if key == "columns"
            else (isinstance(value, str) and value)
        )
        if not ok:
            want = "a list of column names" if key == "columns" else "a column name"
            raise ConfigError(f"dataset.modalities.{name}.{key}={value!r}; expected {want}")
        out[str(name)] = dict(m)
    return out
