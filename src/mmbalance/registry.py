"""A small typed registry: a decorator that refuses duplicates, ``names()``, ``build()``, ``params()``.

Registration happens by explicit import in each package's ``__init__``; nothing scans the file system.
A registry may also name an entry-point group: the plugins installed under it are imported once, the
first time the registry is looked up (see :mod:`mmbalance.plugins`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from mmbalance.errors import ConfigError, UnknownNameError
from mmbalance.plugins import load_entry_points

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories (classes or functions) of one kind of component.

    >>> widgets: Registry[object] = Registry("widget")
    >>> @widgets.register("box")
    ... def make_box(size: int = 3) -> dict:
    ...     return {"size": size}
    >>> widgets.build("box", size=4)
    {'size': 4}
    >>> widgets.params("box")
    {'size': 3}
    """

    def __init__(self, kind: str, entry_points: str | None = None) -> None:
        self.kind = kind
        self.entry_points = entry_points
        self._items: dict[str, Callable[..., T]] = {}
        self._plugins_loaded = entry_points is None

    def _load_plugins(self) -> None:
        """Import the entry points of the group once, before the first lookup.

        The flag is set before importing, so a plugin that queries this registry while it is imported sees
        the components registered so far instead of recursing; after a failure it is cleared, so the next
        lookup raises the same error rather than silently missing the plugin.
        """
        if self._plugins_loaded or self.entry_points is None:
            return
        self._plugins_loaded = True
        try:
            load_entry_points(self.entry_points)
        except BaseException:
            self._plugins_loaded = False
            raise

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = factory
            return factory

        return decorator

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._items)

    def get(self, name: str) -> Callable[..., T]:
        self._load_plugins()
        if name not in self._items:
            raise UnknownNameError(self.kind, name, self._items)
        return self._items[name]

    def params(self, name: str) -> dict[str, Any]:
        """The keyword parameters of ``name``'s factory with their defaults (``inspect.Parameter.empty``
        for required ones)."""
        sig = inspect.signature(self.get(name))
        return {
            p.name: p.default
            for p in sig.parameters.values()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"
        }

    def check_kwargs(self, name: str, kwargs: dict[str, Any], extra: tuple[str, ...] = ()) -> None:
        """Raise a one-line error for any key of ``kwargs`` that ``name`` does not accept."""
        allowed = set(self.params(name)) | set(extra)
        for key in kwargs:
            if key not in allowed:
                raise UnknownNameError(f"parameter of {self.kind} {name!r}:", key, allowed)

    def build(self, name: str, **kwargs: Any) -> T:
        factory = self.get(name)
        self.check_kwargs(name, kwargs)
        try:
            return factory(**kwargs)
        except TypeError as exc:  # a wrong type or a missing required argument
            raise ConfigError(f"cannot build {self.kind} {name!r} from {kwargs}: {exc}") from exc
