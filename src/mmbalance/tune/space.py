"""The search space of ``mmbalance tune``: ``KEY=uniform(a,b)``, ``loguniform(a,b)``, ``int(a,b)`` and
``choice(x,y,...)`` over config override keys, parsed into :class:`Dimension` values that ask an Optuna
trial for a value and turn it back into a ``KEY=VALUE`` override.

Every malformed text is refused with one :class:`~mmbalance.errors.ConfigError` line that quotes it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mmbalance.config import parse_value
from mmbalance.errors import ConfigError

KINDS = ("uniform", "loguniform", "int", "choice")
GRAMMAR = "KEY=uniform(a,b), loguniform(a,b), int(a,b) or choice(x,y,...), e.g. strategy__margin=uniform(0,1)"
_FORM = re.compile(r"^\s*([A-Za-z_]\w*)\s*=\s*([A-Za-z_]\w*)\s*\((.*)\)\s*$", re.DOTALL)


@dataclass(frozen=True)
class Dimension:
    """One searched config key. ``values`` holds ``(low, high)`` (both included) or the choices."""

    key: str
    kind: str
    values: tuple[Any, ...]

    def __str__(self) -> str:
        """The canonical text, which :func:`parse_dimension` reads back to an equal dimension.

        >>> str(parse_dimension(" optim__lr = loguniform( 1e-4 , 1e-2 ) "))
        'optim__lr=loguniform(0.0001,0.01)'
        """
        return f"{self.key}={self.kind}({','.join(_text(v) for v in self.values)})"

    def suggest(self, trial: Any) -> Any:
        """A value from ``trial`` (an ``optuna.Trial``), recorded as the trial's parameter ``key``."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.values))
        low, high = self.values
        if self.kind == "int":
            return trial.suggest_int(self.key, low, high)
        return trial.suggest_float(self.key, low, high, log=self.kind == "loguniform")

    def override(self, value: Any) -> str:
        """``KEY=VALUE`` that sets ``value`` exactly (``config.parse_value`` reads it back unchanged).

        >>> parse_dimension("strategy__margin=uniform(0,1)").override(0.1 + 0.2)
        'strategy__margin=0.30000000000000004'
        """
        return f"{self.key}={_text(value)}"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def parse_dimension(text: str) -> Dimension:
    """Parse one ``--space`` text; raise :class:`ConfigError` (one line) when it is not in the grammar.

    >>> parse_dimension("strategy__head=choice(sum, concat)")
    Dimension(key='strategy__head', kind='choice', values=('sum', 'concat'))
    >>> parse_dimension("optim__lr=normal(0,1)")
    Traceback (most recent call last):
    ...
    mmbalance.errors.ConfigError: --space 'optim__lr=normal(0,1)': unknown distribution 'normal' \
(expected one of: uniform, loguniform, int, choice); expected KEY=uniform(a,b), loguniform(a,b), int(a,b) \
or choice(x,y,...), e.g. strategy__margin=uniform(0,1)
    """
    match = _FORM.match(text)
    if not match:
        raise _error(text, "not of the form KEY=KIND(ARGS)")
    key, kind, body = match.groups()
    if kind not in KINDS:
        raise _error(text, f"unknown distribution {kind!r} (expected one of: {', '.join(KINDS)})")
    args = [a.strip() for a in body.split(",")]
    if any(not a for a in args):
        raise _error(text, "an argument is empty")
    if kind == "choice":
        return Dimension(key, kind, _choices(text, args))
    if len(args) != 2:
        raise _error(text, f"{kind} takes 2 arguments (low, high), got {len(args)}")
    low, high = (_bound(text, a, integer=kind == "int") for a in args)
    if not low < high:
        raise _error(text, f"low={args[0]} must be below high={args[1]}")
    if kind == "loguniform" and low <= 0:
        raise _error(text, f"loguniform needs low > 0, got {args[0]}")
    return Dimension(key, kind, (low, high))


def _bound(text: str, arg: str, integer: bool) -> int | float:
    try:
        value = int(arg) if integer else float(arg)
    except ValueError:
        raise _error(text, f"{arg!r} is not {'an integer' if integer else 'a number'}") from None
    if not math.isfinite(value):
        raise _error(text, f"{arg!r} is not a finite number")
    return value


def _choices(text: str, args: Sequence[str]) -> tuple[Any, ...]:
    values = tuple(parse_value(a) for a in args)
    for arg, value in zip(args, values, strict=True):
        if any(c in arg for c in "[]{}"):
            raise _error(text, f"choice {arg!r} is not a number or a word (lists cannot be searched)")
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise _error(text, f"choice {arg!r} is a {type(value).__name__}; expected a number or a word")
        if isinstance(value, float) and not math.isfinite(value):
            raise _error(text, f"choice {arg!r} is not a finite number")
    if len(values) < 2:
        raise _error(text, "choice needs at least 2 values (set a single value as KEY=VALUE)")
    if len({json.dumps(v) for v in values}) < len(values):
        raise _error(text, "a choice is repeated")
    return values


def _error(text: str, problem: str) -> ConfigError:
    return ConfigError(f"--space {' '.join(text.split())!r}: {problem}; expected {GRAMMAR}")


def parse_space(texts: Iterable[str], reserved: dict[str, str] | None = None) -> tuple[Dimension, ...]:
    """Every ``--space`` text parsed, in order; a key given twice, or one in ``reserved`` (key: the option
    that sets it), is refused.

    >>> [d.key for d in parse_space(["optim__lr=loguniform(1e-4,1e-2)", "strategy__margin=uniform(0,1)"])]
    ['optim__lr', 'strategy__margin']
    """
    dims = tuple(parse_dimension(t) for t in texts)
    if not dims:
        raise ConfigError(f"mmbalance tune needs at least one --space; expected {GRAMMAR}")
    seen: set[str] = set()
    for d in dims:
        if d.key in (reserved or {}):
            raise ConfigError(f"--space {d.key} cannot be searched; set it with {(reserved or {})[d.key]}")
        if d.key in seen:
            raise ConfigError(f"--space {d.key} is given twice; expected each key once")
        seen.add(d.key)
    return dims
