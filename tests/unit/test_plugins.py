"""Plugins: entry points loaded lazily by the registries, modules imported by name or path, their errors."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

import mmbalance.plugins
from mmbalance.errors import PluginError
from mmbalance.plugins import import_plugin, load_plugins
from mmbalance.registry import Registry
from mmbalance.strategies import STRATEGIES
from mmbalance.testing import check_strategy


def write_dist(folder: Path, name: str, entry_points: str) -> None:
    """A fake installed distribution: ``<name>-0.1.dist-info`` with METADATA and entry_points.txt."""
    info = folder / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    importlib.invalidate_caches()


def write_module(folder: Path, name: str, text: str) -> None:
    (folder / f"{name}.py").write_text(text)
    importlib.invalidate_caches()


def test_strategy_entry_point_is_loaded_by_the_first_lookup(plugin_dir: Path, smooth_plugin: Path) -> None:
    write_dist(plugin_dir, "smoothdist", "[mmbalance.strategies]\nsmooth = smooth_plugin\n")
    STRATEGIES._plugins_loaded = False  # as in a fresh process (the fixture restores it)
    assert "smooth_plugin" not in sys.modules
    assert STRATEGIES.params("smooth_joint") == {"smoothing": 0.1, "head": "concat"}
    assert {"joint", "smooth_joint"} <= set(STRATEGIES.names())
    assert STRATEGIES.build("smooth_joint", smoothing=0.2).smoothing == 0.2


HOLDER = """from mmbalance.registry import Registry
THINGS = Registry("thing", entry_points="mmbalance_test.things")
SEEN_DURING_IMPORT = []
"""
THING_PLUGIN = """import holder
holder.SEEN_DURING_IMPORT.append(holder.THINGS.names())  # a lookup while the plugins are being loaded


@holder.THINGS.register("box")
def box(size: int = 3) -> dict:
    return {"size": size}
"""


def test_entry_points_load_once_even_when_a_plugin_queries_the_registry(
    plugin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(plugin_dir, "holder", HOLDER)
    write_module(plugin_dir, "thing_plugin", THING_PLUGIN)
    write_dist(plugin_dir, "thingdist", "[mmbalance_test.things]\nbox = thing_plugin:box\n")
    calls = []

    def counting(group: str) -> object:
        calls.append(group)
        return importlib.metadata.entry_points(group=group)

    monkeypatch.setattr(mmbalance.plugins, "entry_points", counting)
    holder = importlib.import_module("holder")
    assert holder.THINGS.build("box", size=4) == {"size": 4}
    assert holder.THINGS.names() == ["box"]
    holder.THINGS.check_kwargs("box", {"size": 1})
    assert calls == ["mmbalance_test.things"]
    assert holder.SEEN_DURING_IMPORT == [[]]  # saw the registry as it was, no recursion


def test_a_broken_entry_point_is_one_line_and_raised_again(plugin_dir: Path) -> None:
    write_dist(plugin_dir, "brokendist", "[mmbalance_test.broken]\nbad = no_such_plugin_module\n")
    things: Registry[object] = Registry("thing", entry_points="mmbalance_test.broken")
    expected = (
        "plugin entry point 'bad' = 'no_such_plugin_module' (group mmbalance_test.broken) failed to load: "
        "ModuleNotFoundError: No module named 'no_such_plugin_module'"
    )
    for _ in range(2):  # a failed load is not remembered as done
        with pytest.raises(PluginError) as info:
            things.names()
        assert str(info.value) == expected


def test_registering_an_existing_name_keeps_its_error(plugin_dir: Path) -> None:
    text = "from mmbalance.strategies.registry import STRATEGIES\nSTRATEGIES.register('joint')(object)\n"
    write_module(plugin_dir, "dup_plugin", text)
    with pytest.raises(PluginError, match=r"^plugin 'dup_plugin' failed to import: ValueError: "):
        import_plugin("dup_plugin")
    with pytest.raises(ValueError, match="method 'joint' is already registered"):
        import_plugin("dup_plugin")  # PluginError is a ConfigError, hence a ValueError


def test_import_plugin_by_module_name_or_file_path_registers_once(smooth_plugin: Path) -> None:
    module = import_plugin(str(smooth_plugin))
    assert STRATEGIES.get("smooth_joint") is module.SmoothJoint
    assert import_plugin(str(smooth_plugin)) is module  # no second registration
    assert import_plugin("smooth_plugin") is module


def test_plugin_import_errors_name_the_plugin_and_the_cause(plugin_dir: Path) -> None:
    write_module(plugin_dir, "raising_plugin", "raise RuntimeError('boom\\nsecond line')\n")
    with pytest.raises(PluginError) as info:
        load_plugins(["raising_plugin"])
    assert str(info.value) == "plugin 'raising_plugin' failed to import: RuntimeError: boom second line"
    assert "raising_plugin" not in sys.modules
    with pytest.raises(PluginError, match=r"'no_such_mod' \(from MMBALANCE_PLUGINS\).*not importable"):
        load_plugins([], environ={"MMBALANCE_PLUGINS": "no_such_mod"})
    missing = plugin_dir / "missing.py"
    with pytest.raises(PluginError, match=f"plugin file '{missing}' does not exist"):
        load_plugins([str(missing)])


def test_load_plugins_reads_the_environment_first(smooth_plugin: Path, plugin_dir: Path) -> None:
    write_module(plugin_dir, "second_plugin", "")
    modules = load_plugins(["second_plugin"], environ={"MMBALANCE_PLUGINS": " smooth_plugin ,"})
    assert [m.__name__ for m in modules] == ["smooth_plugin", "second_plugin"]
    assert "smooth_joint" in STRATEGIES.names()


def test_contract_suite_runs_on_a_plugin_strategy(smooth_plugin: Path) -> None:
    import_plugin("smooth_plugin")
    check_strategy(lambda: STRATEGIES.build("smooth_joint", smoothing=0.2))
