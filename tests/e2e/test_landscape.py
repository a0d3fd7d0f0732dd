"""``mmbalance landscape`` and ``compare --sharpness`` end to end on tiny synthetic runs."""

from __future__ import annotations

import csv
import json
import math
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from mmbalance.analysis.landscape_run import read_sharpness
from mmbalance.analysis.sharpness import SharpnessSettings
from mmbalance.cli import main

TINY = ["dataset__n_samples=120", "data__batch_size=16", "model__feature_dim=8", "train__device=cpu"]
PNG = b"\x89PNG\r\n\x1a\n"
KEYS = {"hessian_max_eig", "rho_sharpness", "loss", "worst_loss", "hessian_iterations", "hessian_converged"}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("landscape") / "run"
    args = ["train", "--dataset", "synthetic", "--method", "joint", "--epochs", "2", "--quiet"]
    assert main([*args, "--out", str(out), *TINY]) == 0
    return out


def test_landscape_writes_csvs_pngs_and_sharpness(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Path(shutil.copytree(run, tmp_path / "run"))
    assert main(["landscape", str(run), "--points", "3", "--samples", "32", "--seed", "1"]) == 0
    captured = capsys.readouterr()
    folder = run / "landscape"
    line, plane = read_csv(folder / "landscape_1d.csv"), read_csv(folder / "landscape_2d.csv")
    assert list(line[0]) == ["alpha", "fused", "a", "b"] and [r["alpha"] for r in line] == [
        "-1.0",
        "0.0",
        "1.0",
    ]
    assert list(plane[0]) == ["alpha", "beta", "fused", "a", "b"] and len(plane) == 9
    assert all(math.isfinite(float(v)) for r in line + plane for v in r.values())
    sharp = json.loads((folder / "sharpness.json").read_text())
    assert json.loads(captured.out) == sharp  # stdout carries the result, stderr the progress
    assert set(sharp) >= KEYS and sharp["samples"] == 32 and sharp["settings"]["seed"] == 1
    assert float(line[1]["fused"]) == pytest.approx(sharp["loss"], rel=1e-5)  # the origin is the checkpoint
    assert float(plane[4]["fused"]) == pytest.approx(sharp["loss"], rel=1e-5)
    assert sharp["rho_sharpness"] >= 0 and sharp["rho_step_norm"] <= 0.05 * (1 + 1e-6)
    assert "1-D: 3 points" in captured.err and "2-D: 9/9 points" in captured.err
    pytest.importorskip("matplotlib")
    for name in ("landscape_1d.png", "landscape_2d.png"):
        assert (folder / name).read_bytes().startswith(PNG)


def test_landscape_out_option_and_errors(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "elsewhere"
    args = ["landscape", str(run), "--out", str(out), "--points", "3", "--samples", "16", "--quiet"]
    assert main(args) == 0
    assert (out / "landscape_1d.csv").is_file() and (out / "sharpness.json").is_file()
    assert not (run / "landscape").exists()
    capsys.readouterr()
    assert main(["landscape", str(run), "--points", "4"]) == 2
    assert "points=4" in capsys.readouterr().err
    assert main(["landscape", str(tmp_path), "--points", "3"]) == 2
    assert "has no best.pt" in capsys.readouterr().err


def test_compare_with_sharpness_adds_columns_and_reuses_them(
    tmp_path: Path, check_html: Callable[[str, Iterable[str]], None]
) -> None:
    pytest.importorskip("matplotlib")
    root = tmp_path / "report"
    args = ["compare", "--datasets", "synthetic", "--methods", "joint", "--seeds", "2", "--epochs", "1"]
    assert main([*args, "--out", str(root), "--sharpness", "--quiet", *TINY]) == 0
    results = read_csv(root / "results.csv")
    assert all(float(r["hessian_max_eig"]) > 0 and float(r["rho_sharpness"]) >= 0 for r in results)
    (summary,) = read_csv(root / "summary.csv")
    values = [float(r["hessian_max_eig"]) for r in results]
    assert float(summary["hessian_max_eig_mean"]) == pytest.approx(sum(values) / 2)
    assert float(summary["rho_sharpness_std"]) >= 0
    assert "| λ_max | ρ-sharpness |" in (root / "summary.md").read_text()
    check_html((root / "report.html").read_text(), ["<th>λ_max</th>", "<th>ρ-sharpness</th>"])
    saved = root / "runs" / "synthetic" / "joint" / "seed0" / "landscape" / "sharpness.json"
    assert read_sharpness(saved.parent.parent, SharpnessSettings()) is not None
    assert read_sharpness(saved.parent.parent, SharpnessSettings(rho=0.1)) is None
    before = saved.stat().st_mtime_ns
    assert main([*args, "--out", str(root), "--sharpness", "--quiet", *TINY]) == 0
    assert saved.stat().st_mtime_ns == before  # read back, not measured again
    assert read_csv(root / "results.csv") == results
