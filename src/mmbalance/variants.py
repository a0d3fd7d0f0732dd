"""Method variants of ``mmbalance compare``: ``igm[sam_mode=off,temperature=0]`` as one labelled method.

A variant is a registered method followed by bracketed ``KEY=VALUE`` options of that method. It becomes the
overrides ``strategy__name=<method>`` and ``strategy__KEY=VALUE`` (the values parse as every override does,
:func:`mmbalance.config.parse_value`), applied after the comparison's shared overrides; ``KEY`` may name a
nested option (``gaal[ratios__image=0.1]``). The label is kept as written, and :func:`run_dir_name` derives
its run directory's name from it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from mmbalance.errors import ConfigError, UnknownNameError

SAFE = re.compile(r"[A-Za-z0-9_.-]+")  # a path component that needs no quoting on any file system
LOWER = re.compile(r"[a-z0-9_.-]+")  # ... and that no case-insensitive file system confuses with another
HASH_CHARS, MAX_NAME = 10, 120


@dataclass(frozen=True)
class Variant:
    """A parsed ``--methods`` entry: its label as written, the method, and its options in written order."""

    label: str
    method: str
    options: tuple[tuple[str, str], ...] = ()

    def overrides(self) -> tuple[str, ...]:
        """``strategy__name=<method>`` then one ``strategy__KEY=VALUE`` per option."""
        return (f"strategy__name={self.method}", *(f"strategy__{k}={v}" for k, v in self.options))


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split ``text`` at each ``sep`` outside brackets; parts are stripped and empty parts dropped.

    >>> split_top("joint,igm[sam_mode=off,temperature=0], mla")
    ['joint', 'igm[sam_mode=off,temperature=0]', 'mla']
    """
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth < 0:
            raise ConfigError(f"{text!r} has an unmatched ']'; expected METHOD[KEY=VALUE,...]")
        if char == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise ConfigError(f"{text!r} has an unclosed '['; expected METHOD[KEY=VALUE,...]")
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_variant(label: str) -> Variant:
    """Parse ``METHOD`` or ``METHOD[KEY=VALUE,...]`` (syntax only; :func:`check_variant` checks the names).

    >>> v = parse_variant("igm[sam_mode=off, temperature=0]")
    >>> v.label, v.method, v.options
    ('igm[sam_mode=off, temperature=0]', 'igm', (('sam_mode', 'off'), ('temperature', '0')))
    """
    label = label.strip()
    method, bracket, rest = label.partition("[")
    method = method.strip()
    if not method or (bracket and not rest.endswith("]")) or "]" in method:
        raise ConfigError(f"method {label!r} is invalid; expected METHOD or METHOD[KEY=VALUE,...]")
    options: dict[str, str] = {}
    try:
        items = split_top(rest[:-1]) if bracket else []
    except ConfigError as exc:
        raise ConfigError(f"method {label!r}: {exc}") from exc
    for item in items:
        key, eq, value = (s.strip() for s in item.partition("="))
        if not eq or not key or not value:
            raise ConfigError(f"option {item!r} of method {label!r} is invalid; expected KEY=VALUE")
        if key in options:
            raise ConfigError(f"option {key!r} is given twice in method {label!r}")
        options[key] = value
    if bracket and not options:
        raise ConfigError(f"method {label!r} has empty brackets; expected METHOD[KEY=VALUE,...]")
    return Variant(label, method, tuple(options.items()))


def check_variant(variant: Variant) -> None:
    """One line naming the label if its method is not registered or does not take one of its options."""
    from mmbalance.strategies import STRATEGIES

    STRATEGIES.get(variant.method)  # "unknown method 'nope'; expected one of: ..."
    top = {k.split("__")[0]: None for k, _ in variant.options}  # ratios__image checks ratios
    try:
        STRATEGIES.check_kwargs(variant.method, top)
    except UnknownNameError as exc:
        raise ConfigError(f"method {variant.label!r}: {exc}") from exc


def run_dir_name(label: str) -> str:
    """The run directory name of a label: deterministic, safe as one path component, distinct per label.

    A plain name (letters, digits, ``_.-``) is kept; ``METHOD[K=V,...]`` becomes ``METHOD+K=V+...``. When
    that is not an exact spelling of the label in lower-case letters, digits and ``_.-`` (spaces, capitals,
    other characters in a value; a long name), unsafe characters become ``_`` and ``+`` and the first
    characters of the label's SHA-256 are appended, so two labels never share a directory, not even on a
    case-insensitive file system.

    >>> run_dir_name("joint"), run_dir_name("igm[sam_mode=off,temperature=0]")
    ('joint', 'igm+sam_mode=off+temperature=0')
    >>> run_dir_name("igm[head_hidden=[64, 32]]")
    'igm+head_hidden=_64__32_+8eb0527494'
    """
    if SAFE.fullmatch(label) and label.strip("."):
        return label
    variant = parse_variant(label)
    parts = [variant.method, *(f"{k}={v}" for k, v in variant.options)]
    name = "+".join(re.sub(r"[^A-Za-z0-9_.=-]", "_", p) for p in parts)
    exact = (
        label == f"{variant.method}[{','.join(parts[1:])}]"
        and SAFE.fullmatch(variant.method) is not None
        and all(LOWER.fullmatch(k) and LOWER.fullmatch(v) for k, v in variant.options)
        and len(name) <= MAX_NAME
    )
    return name if exact else f"{name[:MAX_NAME]}+{hashlib.sha256(label.encode()).hexdigest()[:HASH_CHARS]}"
