"""Shared fixtures. ``MMBALANCE_TEST_DEVICE=cuda:0 pytest`` runs the suite on a GPU."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from html.parser import HTMLParser
from pathlib import Path

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


SMOOTH_PLUGIN = '''"""A strategy that lives outside the package: joint training with label smoothing."""

from torch import Tensor
import torch.nn.functional as F

from mmbalance import Batch, ModelOutput, Strategy
from mmbalance.strategies.registry import STRATEGIES


@STRATEGIES.register("smooth_joint")
class SmoothJoint(Strategy):
    """Joint training on the fused logits with a label-smoothed cross-entropy."""

    name = "smooth_joint"

    def __init__(self, smoothing: float = 0.1, head: str = "concat") -> None:
        self.smoothing = smoothing
        self.head = head

    def loss(self, out: ModelOutput, batch: Batch) -> Tensor:
        return F.cross_entropy(out.logits, batch.label, label_smoothing=self.smoothing)
'''


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder outside the package, first on ``sys.path``. Afterwards every registry has its components
    and its entry-point flag back, and the modules imported from the folder are forgotten."""
    from mmbalance.data import DATASETS
    from mmbalance.models import ENCODERS, HEADS
    from mmbalance.strategies import STRATEGIES

    folder = tmp_path / "plugins"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delenv("MMBALANCE_PLUGINS", raising=False)
    saved = [(reg, dict(reg._items), reg._plugins_loaded) for reg in (DATASETS, ENCODERS, HEADS, STRATEGIES)]
    yield folder
    for reg, items, loaded in saved:
        reg._items.clear()
        reg._items.update(items)
        reg._plugins_loaded = loaded
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(folder)):
            del sys.modules[name]


@pytest.fixture
def smooth_plugin(plugin_dir: Path) -> Path:
    """``smooth_plugin.py`` in ``plugin_dir``: registers the ``smooth_joint`` strategy when imported."""
    path = plugin_dir / "smooth_plugin.py"
    path.write_text(SMOOTH_PLUGIN)
    importlib.invalidate_caches()
    return path
