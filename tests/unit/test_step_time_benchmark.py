"""The step-time benchmark runs every registered strategy (a smoke test: no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mmbalance.strategies import list_strategies

ROOT = Path(__file__).resolve().parents[2]


def test_every_strategy_gets_a_ratio_to_joint(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["--steps", "1", "--warmup", "0", "--batch-size", "16", "--device", "cpu", "--json", str(out)]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.step_time", *args], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(out.read_text())["results"]
    assert set(list_strategies()) <= set(results)
    assert results["joint"]["ratio"] == 1.0
    assert all(r["step_ms"] > 0 and r["ratio"] > 0 for r in results.values())
