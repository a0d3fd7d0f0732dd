"""The step-time benchmark runs every registered strategy (a smoke test: no timing is asserted), and its
memory measure counts the bytes a call holds at its peak."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import torch

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
    assert results["joint"]["ratio"] == 1.0 and results["joint"]["peak_mem_ratio"] == 1.0
    assert all(r["step_ms"] > 0 and r["ratio"] > 0 for r in results.values())
    assert all(r["peak_mem_bytes"] > 0 and r["peak_mem_ratio"] > 0 for r in results.values())


def test_the_resnet18_audio_visual_setting_runs_and_skips_what_does_not_apply(tmp_path: Path) -> None:
    out = tmp_path / "av.json"
    args = ["--setting", "resnet18-av", "--av-size", "16", "--methods", "gaal,mla,tip", "--json", str(out)]
    args += ["--steps", "1", "--warmup", "0", "--batch-size", "4", "--device", "cpu"]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.step_time", *args], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    saved = json.loads(out.read_text())
    assert saved["setting"] == "resnet18-av"
    assert {"joint", "gaal", "mla", "gaal (order=cost)"} <= set(saved["results"])
    assert "tip" not in saved["results"] and "skipped tip:" in proc.stdout  # a tabular-image method


def test_the_precision_benchmark_runs_both_precisions() -> None:
    args = [
        "--steps",
        "1",
        "--warmup",
        "0",
        "--batch-size",
        "16",
        "--device",
        "cpu",
        "--methods",
        "joint,mla",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.precision", *args], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines() if line.split()[:1] in (["joint"], ["mla"])]
    assert len(rows) == 2 and all(len(r) == 7 and float(r[3]) > 0 and float(r[6]) > 0 for r in rows)


def load_memory_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_memory", ROOT / "benchmarks" / "memory.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_peak_bytes_is_the_most_memory_held_at_once(device: str) -> None:
    peak_bytes = load_memory_module().peak_bytes
    held = torch.ones(4096, device=device)  # allocated before: not counted

    def call() -> None:
        a = torch.empty(1000, device=device)
        b = torch.empty(2000, device=device)  # peak: a and b, 3000 floats
        del a
        c = torch.empty(500, device=device)  # reuses a's room: b and c are 2500 floats
        del b, c

    assert peak_bytes(call, torch.device(device)) == 3000 * 4
    assert peak_bytes(held.clone, torch.device(device)) == 4096 * 4
