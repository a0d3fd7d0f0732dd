"""``mmbalance pretrain --method tip`` → ``train --method tip model__init_from=RUN`` → evaluation with
missing tabular features, on tiny synthetic data (modality ``a`` plays the image, ``b`` the table)."""

from __future__ import annotations

from pathlib import Path

import torch

from mmbalance import config
from mmbalance.cli import main
from mmbalance.experiment import build, evaluate_run, load_checkpoint, train_run
from mmbalance.pretrain import PRETRAINED, init_from_run

TINY = ["dataset__n_samples=120", "data__batch_size=16", "model__feature_dim=8", "train__device=cpu"]


def test_tip_pretrain_train_round_trip_with_missing_tabular_features(tmp_path: Path) -> None:
    pre = tmp_path / "pre-s0"
    args = ["pretrain", "--method", "tip", "--dataset", "synthetic", "--epochs", "2", "--seed", "0"]
    assert main([*args, "--out", str(pre), "--quiet", *TINY, "strategy__projection_dim=4"]) == 0
    saved = load_checkpoint(pre / PRETRAINED)
    assert saved["method"] == "tip" and saved["encoders"]["b"]["name"] == "tab_transformer"
    assert {"fusion", "itm", "mtr"} <= {k.split(".")[0] for k in saved["extra"]}

    cfg = config.resolve(
        {},
        [
            *TINY,
            "dataset__name=synthetic",
            "strategy__name=tip",
            f"model__init_from={tmp_path}/pre-s{{seed}}",
        ],
    )
    s = build(cfg)
    assert init_from_run(s) == ["a", "b"]
    mine = s.model.encoders["b"].state_dict()
    assert all(torch.equal(mine[k], v) for k, v in saved["state"]["b"].items())

    run = tmp_path / "run"
    train_run({**cfg, "train": {**cfg["train"], "epochs": 2}}, run)
    best = load_checkpoint(run / "best.pt")["model"]  # frozen fine-tuning keeps the encoders exactly
    assert all(torch.equal(best[f"encoders.b.{k}"], v) for k, v in saved["state"]["b"].items())
    for spec in ({"b": 0.5}, {"b": 1.0}):
        assert 0.0 <= evaluate_run(run, missing=spec)["test"]["acc"] <= 1.0
