"""``mmbalance --plugin MODULE`` and ``MMBALANCE_PLUGINS``: a strategy from outside the package, trained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmbalance.cli import main

TINY = ["dataset__n_samples=120", "data__batch_size=16", "model__feature_dim=8", "train__device=cpu"]


def test_a_plugin_strategy_trains_and_evaluates(
    smooth_plugin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = ["train", "--dataset", "synthetic", "--method", "smooth_joint", "--epochs", "1", "--out", str(out)]
    assert main(["--plugin", "smooth_plugin", *args, "--quiet", *TINY, "strategy__smoothing=0.2"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["method"] == "smooth_joint" and m["epochs_run"] == 1
    assert "smoothing: 0.2" in (out / "config.yaml").read_text()
    assert "smooth_joint on synthetic" in capsys.readouterr().out
    assert main(["--plugin", str(smooth_plugin), "evaluate", str(out)]) == 0  # a path works too
    assert json.loads(capsys.readouterr().out)["test"] == m["test"]


def test_list_shows_plugin_strategies(smooth_plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    assert "smooth_joint" not in capsys.readouterr().out
    assert main(["--plugin", "smooth_plugin", "list"]) == 0
    listing = capsys.readouterr().out
    assert "smooth_joint" in listing and "smoothing=0.1" in listing


def test_plugins_from_the_environment(
    smooth_plugin: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MMBALANCE_PLUGINS", "smooth_plugin")
    assert main(["list", "--json"]) == 0
    methods = json.loads(capsys.readouterr().out)["methods"]
    assert methods["smooth_joint"]["params"] == {"smoothing": 0.1, "head": "concat"}


def test_a_broken_plugin_is_one_line_and_exit_2(plugin_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (plugin_dir / "broken_plugin.py").write_text("import no_such_dependency\n")
    assert main(["--plugin", str(plugin_dir / "broken_plugin.py"), "list"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"mmbalance: error: plugin '{plugin_dir / 'broken_plugin.py'}' failed to import: "
        "ModuleNotFoundError: No module named 'no_such_dependency'\n"
    )
