"""Shared fixtures. ``MMBALANCE_TEST_DEVICE=cuda:0 pytest`` runs the suite on a GPU."""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable, Iterable
from html.parser import HTMLParser

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


VOID_TAGS = {"meta", "img", "br", "hr", "link", "input", "source", "col", "wbr"}


class TagBalance(HTMLParser):
    """Records end tags that do not close the innermost open element (void elements aside)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag not in VOID_TAGS:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f"unexpected </{tag}>")


def assert_self_contained_html(text: str, labels: Iterable[str]) -> None:
    """A report page: no network references, scripts or stylesheets links, inline images, every label,
    balanced tags."""
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert "<script" not in text.lower() and "<link" not in text.lower()
    assert "data:image" in text or "<svg" in text
    for label in labels:
        assert label in text
    parser = TagBalance()
    parser.feed(text)
    parser.close()
    assert parser.errors == [] and parser.stack == []


@pytest.fixture
def check_html() -> Callable[[str, Iterable[str]], None]:
    return assert_self_contained_html
