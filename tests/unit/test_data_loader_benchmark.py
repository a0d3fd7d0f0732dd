"""The data-loader benchmark runs end to end on tiny manifests (a smoke test: no speed or memory number is
asserted; those targets live in benchmarks/, never in tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_reports_rates_and_peak_memory(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["--rows", "150", "200", "--rate-rows", "150", "--dir", str(tmp_path / "d"), "--json", str(out)]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.data_loader", *args], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(out.read_text())
    assert set(got["results"]) == {"150", "200"} and got["peak_rss_ratio"] > 0
    for r in got["results"].values():
        assert set(r) == {
            "loader_samples_per_s_0_workers",
            "loader_samples_per_s_2_workers",
            "train_step_samples_per_s",
            "peak_rss_mb",
        }
        assert all(v > 0 for v in r.values())
    assert (tmp_path / "d" / "jpeg150" / "images" / "0.jpg").exists()
