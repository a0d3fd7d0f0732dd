"""Plugins: components registered by code outside the package.

A plugin is a module whose import registers components with the library's registries
(``STRATEGIES.register("name")`` and the DATASETS, ENCODERS and HEADS registries). Two ways bring it in:

* an installed distribution declares it as an entry point of a group (``mmbalance.strategies``,
  ``mmbalance.datasets``, ``mmbalance.encoders``, ``mmbalance.heads``); the registry of that kind loads
  the group once, the first time it is looked up (:func:`load_entry_points`);
* it is imported by name before a command runs: ``mmbalance --plugin MODULE`` or the comma-separated
  environment variable ``MMBALANCE_PLUGINS`` (:func:`load_plugins`).

A plugin that fails to import raises :class:`~mmbalance.errors.PluginError`, one line naming the plugin
and the underlying error.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from mmbalance.errors import PluginError

ENV_VAR = "MMBALANCE_PLUGINS"


def describe(exc: BaseException) -> str:
    """``Type: message`` on one line (whitespace, newlines included, collapsed to single spaces)."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def load_entry_points(group: str) -> None:
    """Load every entry point of ``group`` (importing its module, and the object it names if any).

    Raises :class:`PluginError` naming the entry point, its value and the error for the first one that
    fails; a ``PluginError`` raised by a nested plugin passes through unchanged.
    """
    for ep in entry_points(group=group):
        try:
            ep.load()
        except PluginError:
            raise
        except Exception as exc:  # any import-time failure of third-party code
            entry = f"plugin entry point {ep.name!r} = {ep.value!r} (group {group})"
            raise PluginError(f"{entry} failed to load: {describe(exc)}") from exc


def plugins_from_env(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The modules named in ``MMBALANCE_PLUGINS`` (comma-separated; blanks ignored), in order.

    >>> plugins_from_env({"MMBALANCE_PLUGINS": "mypkg.strategies, ./extra.py,"})
    ['mypkg.strategies', './extra.py']
    """
    return [s.strip() for s in environ.get(ENV_VAR, "").split(",") if s.strip()]


def is_file_spec(spec: str) -> bool:
    """A ``.py`` file path rather than a dotted module name."""
    return spec.endswith(".py") or "/" in spec or os.sep in spec


def import_plugin(spec: str, source: str | None = None) -> ModuleType:
    """Import ``spec``, a dotted module name importable from ``sys.path`` or a path to a ``.py`` file.

    Importing the same plugin again returns the module already imported (its registrations do not run
    twice). Any failure raises :class:`PluginError` naming ``spec``, where it came from (``source``, e.g.
    ``MMBALANCE_PLUGINS``) and the underlying error.
    """
    try:
        return _import_file(Path(spec)) if is_file_spec(spec) else importlib.import_module(spec)
    except PluginError:
        raise
    except Exception as exc:  # any import-time failure of third-party code
        hint = ""
        missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
        if missing and (spec == missing or spec.startswith(f"{missing}.")):
            hint = " (not importable from sys.path; give a path to a .py file or extend PYTHONPATH)"
        where = f" (from {source})" if source else ""
        raise PluginError(f"plugin {spec!r}{where} failed to import: {describe(exc)}{hint}") from exc


def _import_file(path: Path) -> ModuleType:
    """Import a ``.py`` file as the module named after its stem (registered in ``sys.modules``)."""
    if not path.is_file():
        raise PluginError(f"plugin file {str(path)!r} does not exist; expected a .py file or a module name")
    name = path.stem
    loaded = sys.modules.get(name)
    if loaded is not None:
        if Path(getattr(loaded, "__file__", None) or "").resolve() == path.resolve():
            return loaded
        raise PluginError(f"plugin file {str(path)!r}: module name {name!r} is taken by {loaded!r}")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"plugin file {str(path)!r} cannot be imported; expected a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_plugins(modules: Iterable[str] = (), environ: Mapping[str, str] = os.environ) -> list[ModuleType]:
    """Import the plugins named in ``MMBALANCE_PLUGINS``, then ``modules``; return the modules, in order."""
    named: list[tuple[str, str | None]] = [(spec, ENV_VAR) for spec in plugins_from_env(environ)]
    named += [(spec, None) for spec in modules]
    return [import_plugin(spec, source) for spec, source in named]
