"""``torchrun``: two CPU processes (gloo) with a global batch compute the same training as one process.

The encoders have no BatchNorm and no dropout (per-process statistics and draws would differ on CPU) and
IGM's mixup is off (its pairs are drawn within each process's shard); everything else is each method's
default. The two-process runs, one of them killed after an epoch and resumed, are made by one ``torchrun``
of a small script; the one-process runs in this process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from mmbalance import config
from mmbalance.experiment import train_run

NO_BATCH_STATS = [
    f"model__encoders__{m}__{k}" for m in ("audio", "accel") for k in ("batch_norm=false", "dropout=0")
]
METHODS = {
    "joint": [],
    "mla": [],
    "igm": ["strategy__mixup_alpha=0", "strategy__stage_epochs=1"],  # stage changes build projectors
    "gaal": [],
}
BASE = ["dataset__name=htad", "train__epochs=3", "train__device=cpu", "data__batch_size=64", *NO_BATCH_STATS]

SCRIPT = """
import json, sys
from mmbalance import config, distributed
from mmbalance.experiment import train_run

runs = json.loads(sys.argv[1])
for out, overrides in runs.items():
    cfg = config.resolve({}, overrides)
    if out.endswith("resumed"):
        def stop(trainer, state):
            if state.epoch == 1:
                raise KeyboardInterrupt
        try:
            train_run(cfg, out, on_epoch=stop)
        except KeyboardInterrupt:
            pass
    train_run(cfg, out)
distributed.shutdown()
"""


def overrides(method: str) -> list[str]:
    return [*BASE, f"strategy__name={method}", *METHODS[method]]


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    runs = {str(root / m): overrides(m) for m in METHODS}
    runs[str(root / "gaal-resumed")] = overrides("gaal")
    # BatchNorm statistics per process (CPU), decisions from validation: early stopping, MSLR's rates
    runs[str(root / "mslr-bn")] = ["dataset__name=htad", "strategy__name=mslr", "strategy__dynamic=true"]
    runs[str(root / "mslr-bn")] += ["train__epochs=4", "train__patience=1", "train__device=cpu"]
    script = root / "worker.py"
    script.write_text(textwrap.dedent(SCRIPT))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    done = subprocess.run(
        [*cmd, str(script), json.dumps(runs)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return root


def best_model(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "best.pt", weights_only=True)["model"]  # type: ignore[no-any-return]


def history(run: Path) -> list[dict[str, str]]:
    import csv

    with (run / "history.csv").open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("method", list(METHODS))
def test_two_processes_train_what_one_process_trains_with_the_global_batch(
    method: str, two_process_runs: Path, tmp_path: Path
) -> None:
    one = train_run(config.resolve({}, overrides(method)), tmp_path / method)
    two = json.loads((two_process_runs / method / "metrics.json").read_text())
    a, b = best_model(tmp_path / method), best_model(two_process_runs / method)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-5, rtol=1e-4), k
    assert one["best_epoch"] == two["best_epoch"]
    for split in ("val", "test"):
        assert one[split]["acc"] == pytest.approx(two[split]["acc"], abs=1e-9)
        assert one[split]["macro_f1"] == pytest.approx(two[split]["macro_f1"], abs=1e-6)
    for r1, r2 in zip(history(tmp_path / method), history(two_process_runs / method), strict=True):
        assert float(r1["val_acc"]) == float(r2["val_acc"])
        assert float(r1["train_loss"]) == pytest.approx(float(r2["train_loss"]), rel=1e-5)


def test_a_two_process_run_records_its_processes_and_resumes_to_the_same_result(
    two_process_runs: Path,
) -> None:
    saved: dict[str, Any] = yaml.safe_load((two_process_runs / "gaal" / "config.yaml").read_text())
    assert saved[config.DERIVED]["processes"] == 2
    assert saved["data"]["batch_size"] == 64  # the global batch, as configured
    a, b = best_model(two_process_runs / "gaal"), best_model(two_process_runs / "gaal-resumed")
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert not (two_process_runs / "gaal-resumed" / "last.pt").exists()
    assert len(history(two_process_runs / "gaal-resumed")) == 3


def test_commands_other_than_train_refuse_torchrun_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mmbalance.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["compare", "--datasets", "htad", "--methods", "joint", "--out", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "compare under torchrun (WORLD_SIZE=2); expected one of train" in err[0]


EVERY = """
import sys
from mmbalance import config, distributed
from mmbalance.experiment import train_run
from mmbalance.strategies import list_strategies

root = sys.argv[1]
for m in list_strategies():
    dataset = "mfeat" if m in ("daft", "mmcl", "tip", "charms") else "htad"
    extra = {"unimodal": ["strategy__modality=audio"], "tip": ["model__encoders__tabular__layers=1"]}
    extra["charms"] = ["strategy__every=1", "strategy__samples=32"]
    overrides = [f"dataset__name={dataset}", f"strategy__name={m}", "train__epochs=1", "train__device=cpu"]
    train_run(config.resolve({}, [*overrides, *extra.get(m, [])]), f"{root}/{m}")
distributed.shutdown()
"""


def test_every_strategy_trains_under_torchrun_without_a_hang(tmp_path: Path) -> None:
    """Every process takes the same collective calls in the same order for every method (a mismatch
    would hang until the timeout)."""
    from mmbalance.strategies import list_strategies

    script = tmp_path / "every.py"
    script.write_text(textwrap.dedent(EVERY))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)]
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*cmd, str(tmp_path)], capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    for m in list_strategies():
        assert (tmp_path / m / "metrics.json").exists(), m


def test_batchnorm_and_validation_decisions_stay_in_step_across_processes(two_process_runs: Path) -> None:
    """With BatchNorm on CPU each process's running statistics follow its shard; they are averaged each
    epoch and rank 0's validation metrics drive every process's decisions, so early stopping and MSLR's
    rates agree and the run ends instead of waiting in a collective."""
    run = two_process_runs / "mslr-bn"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == len(history(run)) <= 4
