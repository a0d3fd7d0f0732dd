"""Typed errors. Each message is one line that names the offending value and what was expected."""

from __future__ import annotations

from collections.abc import Iterable


class MMBalanceError(Exception):
    """Base class of every error the library raises on purpose (a user error, not a bug)."""


class ConfigError(MMBalanceError, ValueError):
    """A configuration key or value is invalid."""


class UnknownNameError(ConfigError, KeyError):
    """A name looked up in a registry, or a config key, does not exist."""

    def __init__(self, kind: str, name: object, choices: Iterable[str]) -> None:
        self.kind, self.name, self.choices = kind, name, sorted(choices)
        super().__init__(f"unknown {kind} {name!r}; expected one of: {', '.join(self.choices)}")

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class PluginError(ConfigError):
    """A plugin (an entry point, a ``--plugin`` module, one named in ``MMBALANCE_PLUGINS``) failed to load."""


class TrainingDiverged(MMBalanceError, ArithmeticError):
    """An epoch's training loss or validation outputs became NaN or infinite.

    The run stops at that epoch and keeps its last good state: nothing of the diverged epoch is recorded,
    the checkpoint of the last completed epoch (``last.pt``) stays as it was, and nothing else is written
    (no ``best.pt`` or ``metrics.json``, so the run directory is not mistaken for a finished run). The
    message names the epoch, what became non-finite and the learning rate to lower.
    """


class DataError(ConfigError):
    """Something in a user's data is wrong; the message names the file, the row and the column."""


class MissingDataError(MMBalanceError, FileNotFoundError):
    """A dataset's files are not installed; the message says the command that installs them."""


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``choices``.

    >>> check_choice("fusion", "max", ("entropy", "fixed"))
    Traceback (most recent call last):
    ...
    mmbalance.errors.ConfigError: fusion='max' is invalid; expected one of: entropy, fixed
    """
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is invalid; expected one of: {', '.join(choices)}")


def check_range(name: str, value: object, low: float | None = None, high: float | None = None) -> None:
    """Raise :class:`ConfigError` unless ``low <= value <= high`` (either bound may be ``None``).

    >>> check_range("ratio", 0.5, 0.0, 1.0)
    >>> check_range("ratio", 1.5, 0.0, 1.0)
    Traceback (most recent call last):
    ...
    mmbalance.errors.ConfigError: ratio=1.5 is out of range; expected a value in [0.0, 1.0]
    >>> check_range("ratio", "abc", 0.0, 1.0)
    Traceback (most recent call last):
    ...
    mmbalance.errors.ConfigError: ratio='abc' is invalid; expected a number
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name}={value!r} is invalid; expected a number")
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ConfigError(f"{name}={value!r} is out of range; expected a value in [{lo}, {hi}]")
