"""``mmbalance pretrain`` → ``train model__init_from=RUN`` on tiny synthetic data."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from mmbalance import config
from mmbalance.cli import main
from mmbalance.errors import ConfigError
from mmbalance.experiment import build, load_checkpoint, train_run
from mmbalance.pretrain import PRETRAINED, init_from_run

TINY = [
    "--dataset",
    "synthetic",
    "dataset__n_samples=120",
    "data__batch_size=16",
    "model__feature_dim=8",
    "train__device=cpu",
]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pre")
    for seed in (0, 1):
        args = ["pretrain", "--epochs", "2", "--seed", str(seed), "--out", str(root / f"pre-s{seed}")]
        assert main([*args, "--quiet", *TINY, "strategy__projection_dim=4"]) == 0
    return root


def run_config(*extra: str) -> dict:
    overrides = [o for o in TINY if "=" in o] + ["dataset__name=synthetic", "strategy__name=mmcl", *extra]
    return config.resolve({}, overrides)


def test_pretrain_writes_a_run_directory(pretrained: Path) -> None:
    run = pretrained / "pre-s0"
    assert {"config.yaml", "split.json", "preprocessing.json", "history.csv", PRETRAINED} <= {
        p.name for p in run.iterdir()
    }
    with (run / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["0", "1"] and all(float(r["val_loss"]) > 0 for r in rows)
    saved = load_checkpoint(run / PRETRAINED)
    assert saved["method"] == "mmcl" and set(saved["state"]) == {"a", "b"}


def test_loaded_encoder_weights_equal_the_pretrained_ones(pretrained: Path) -> None:
    s = build(run_config(f"model__init_from={pretrained}/pre-s{{seed}}"))
    assert init_from_run(s) == ["a"]
    saved = load_checkpoint(pretrained / "pre-s0" / PRETRAINED)["state"]["a"]
    mine = s.model.encoders["a"].state_dict()
    assert saved.keys() == mine.keys() and all(torch.equal(saved[k], mine[k]) for k in saved)


def test_frozen_fine_tuning_keeps_the_pretrained_encoder_exactly(pretrained: Path, tmp_path: Path) -> None:
    cfg = run_config(f"model__init_from={pretrained}/pre-s{{seed}}", "train__epochs=2", "train__seed=1")
    train_run(cfg, tmp_path / "run")
    best = load_checkpoint(tmp_path / "run" / "best.pt")["model"]
    saved = load_checkpoint(pretrained / "pre-s1" / PRETRAINED)["state"]["a"]
    assert all(torch.equal(best[f"encoders.a.{k}"], v) for k, v in saved.items())


def test_init_from_errors_are_one_line(pretrained: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"has no pretrained\.pt; expected the directory"):
        init_from_run(build(run_config(f"model__init_from={tmp_path}")))
    with pytest.raises(ConfigError, match="rows of this run's val/test split"):
        init_from_run(build(run_config(f"model__init_from={pretrained}/pre-s1")))  # seed 0 run
    with pytest.raises(ConfigError, match="the 'a' encoder does not match the pre-trained one"):
        init_from_run(build(run_config(f"model__init_from={pretrained}/pre-s0", "model__feature_dim=16")))
    with pytest.raises(ConfigError, match=r"model\.init_from=3 is invalid"):
        run_config("model__init_from=3")


def test_pretrain_refuses_another_config_in_its_directory(pretrained: Path) -> None:
    assert main(["pretrain", "--epochs", "3", "--out", str(pretrained / "pre-s0"), "--quiet", *TINY]) == 2


def test_mmcl_without_init_from_says_its_encoder_is_random(tmp_path: Path) -> None:
    said: list[str] = []
    train_run(run_config("train__epochs=1"), tmp_path / "run", log=said.append)
    assert any("without model__init_from" in line for line in said)


def test_list_shows_the_pretraining_methods() -> None:
    from mmbalance.catalog import catalog

    assert catalog()["pretraining"]["mmcl"]["params"]["temperature"] == 0.1
