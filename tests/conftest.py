"""Shared fixtures. ``MMBALANCE_TEST_DEVICE=cuda:0 pytest`` runs the suite on a GPU."""

from __future__ import annotations

import importlib.util
import os

import pytest

DEVICE = os.environ.get("MMBALANCE_TEST_DEVICE", "cpu")


@pytest.fixture
def device() -> str:
    return DEVICE


def has_package(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``realdata`` tests whose data package is missing (CI installs them; a bare clone may not)."""
    for item in items:
        marker = item.get_closest_marker("realdata")
        if marker and marker.args and not has_package(marker.args[0]):
            item.add_marker(pytest.mark.skip(reason=f"data package {marker.args[0]!r} not installed"))
