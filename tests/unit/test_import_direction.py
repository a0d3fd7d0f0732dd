"""Imports point one way: the command line (``mmbalance.cli``) stands on the library, and no library module
imports the command line, at module level or lazily inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import mmbalance

PACKAGE = Path(mmbalance.__file__).parent
CLI = "mmbalance.cli"
# `python -m mmbalance` is the command itself, so it may start the command line
ENTRY_POINTS = {"mmbalance.__main__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(text: str, package: str) -> set[str]:
    """Every module an ``import`` or ``from ... import`` anywhere in ``text`` names (in functions too),
    relative ones resolved against ``package``; ``from X import Y`` counts as ``X`` and ``X.Y``, since
    ``Y`` may be a submodule."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = parts[: len(parts) - node.level + 1] if node.level else []
            origin = ".".join([*base, *([node.module] if node.module else [])])
            out.add(origin)
            out.update(f"{origin}.{alias.name}" for alias in node.names)
    return out


def imports_of(path: Path) -> set[str]:
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    return imported_modules(path.read_text(encoding="utf-8"), package)


def is_cli(module: str) -> bool:
    return module == CLI or module.startswith(CLI + ".")


def library_files() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if not is_cli(module_name(p))]


def test_the_finder_sees_lazy_relative_and_package_imports() -> None:
    text = (
        "import os\n"
        "def f():\n    from ..cli import common\n"
        "class C:\n    def g(self):\n        import mmbalance.cli.run\n"
        "from mmbalance import cli\n"
    )
    found = imported_modules(text, "mmbalance.strategies")
    assert {"mmbalance.cli.common", "mmbalance.cli.run", "mmbalance.cli"} <= found
    assert sum(is_cli(m) for m in imported_modules("from . import cli\n", "mmbalance")) == 1
    assert not any(is_cli(m) for m in imported_modules("from .compare import plan\n", "mmbalance"))
    assert not is_cli("mmbalance.client")


def test_no_library_module_imports_the_command_line() -> None:
    offenders = sorted(
        f"{module_name(p)} imports {m}"
        for p in library_files()
        if module_name(p) not in ENTRY_POINTS
        for m in imports_of(p)
        if is_cli(m)
    )
    assert not offenders, "the library must not import the command line: " + "; ".join(offenders)


def test_the_command_line_is_a_package_of_command_groups() -> None:
    from mmbalance.cli import build_parser

    groups = {p.stem for p in (PACKAGE / "cli").glob("*.py")}
    assert {"common", "run", "compare", "sweep", "tune", "prepare", "landscape", "pretrain"} <= groups
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(commands) == {
        "train",
        "evaluate",
        "predict",
        "landscape",
        "list",
        "compare",
        "sweep",
        "plot",
        "pretrain",
        "prepare",
        "tune",
    }
