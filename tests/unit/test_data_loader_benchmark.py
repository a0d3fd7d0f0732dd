"""The data-loader benchmark runs end to end on a tiny manifest (its numbers are not checked: speed targets
live in benchmarks/, never in tests)."""

from __future__ import annotations

from pathlib import Path

from benchmarks import data_loader


def test_benchmark_measures_loader_and_step_rates(tmp_path: Path) -> None:
    path = data_loader.manifest(tmp_path, 70)
    assert path.exists() and (path.parent / "images" / "0.jpg").exists()
    assert data_loader.loader_rate(path, 0, 70) > 0
    assert data_loader.step_rate(path, steps=1) > 0
