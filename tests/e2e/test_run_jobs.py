"""``--jobs N --devices ...`` of compare, sweep and tune: runs trained in worker processes give the metrics of
the same runs trained one at a time with the same threads; a failed run is one line and the others are kept;
bad values are one line before anything runs."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from mmbalance.cli import main
from mmbalance.parallel import device_of, threads_per_job

TINY = ["dataset__n_samples=120", "data__batch_size=16", "model__feature_dim=8", "train__device=cpu"]
LABELS = ["unimodal-a", "unimodal-b", "joint"]
TIMES = {"train_seconds", "seconds"}  # wall-clock columns: the only ones that may differ


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """One torch thread in this process and in every worker (which reads OMP_NUM_THREADS)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def compare(out: Path, *extra: str) -> int:
    args = [
        "compare",
        "--datasets",
        "synthetic",
        "--methods",
        "unimodal,joint",
        "--seeds",
        "1",
        "--epochs",
        "2",
    ]
    return main([*args, "--out", str(out), "--quiet", *extra, *TINY])


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def without_times(row: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in row.items() if k not in TIMES}


@pytest.fixture(scope="module")
def one_at_a_time(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("jobs") / "one"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        assert compare(out, "--jobs", "1") == 0
        torch.set_num_threads(before)
    return out


def test_two_jobs_give_the_metrics_of_one_at_a_time(one_at_a_time: Path, tmp_path: Path) -> None:
    assert compare(tmp_path / "two", "--jobs", "2", "--devices", "cpu") == 0
    one, two = read_csv(one_at_a_time / "results.csv"), read_csv(tmp_path / "two" / "results.csv")
    assert [r["method"] for r in two] == LABELS  # plan order, whatever order the runs finished in
    assert [without_times(r) for r in two] == [without_times(r) for r in one]
    for label in LABELS:
        runs = [root / "runs" / "synthetic" / label / "seed0" for root in (one_at_a_time, tmp_path / "two")]
        histories = [[without_times(r) for r in read_csv(run / "history.csv")] for run in runs]
        assert histories[0] == histories[1]
        metrics = [json.loads((run / "metrics.json").read_text()) for run in runs]
        assert metrics[0]["test"] == metrics[1]["test"] and metrics[0]["probe"] == metrics[1]["probe"]


def test_a_failed_run_is_one_line_and_the_others_are_kept(
    one_at_a_time: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = Path(shutil.copytree(one_at_a_time, tmp_path / "report"))
    runs = root / "runs" / "synthetic"
    (runs / "unimodal-a" / "seed0" / "metrics.json").unlink()  # trains again
    (runs / "joint" / "seed0" / "metrics.json").unlink()
    (runs / "joint" / "seed0" / "last.pt").write_bytes(b"not a checkpoint")  # fails when it resumes
    assert main(["compare", "--datasets", "synthetic", "--methods", "unimodal,joint", "--seeds", "1",
                 "--epochs", "2", "--out", str(root), "--jobs", "2", *TINY]) == 2  # fmt: skip
    err = capsys.readouterr().err.splitlines()
    failed = [line for line in err if "joint seed 0: failed" in line]
    assert len(failed) == 1 and str(runs / "joint" / "seed0") in failed[0] and "checkpoint" in failed[0]
    assert err[-1].startswith("mmbalance: error: 1 of 3 runs failed")
    assert (runs / "unimodal-a" / "seed0" / "metrics.json").exists()  # the other run finished
    assert any(line.endswith("unimodal-b seed 0: done, reused") for line in err)


def test_sweep_runs_its_grid_with_jobs(tmp_path: Path) -> None:
    args = ["sweep", "--dataset", "synthetic", "--param", "optim__lr=1e-3,1e-2", "--seeds", "1"]
    assert main([*args, "--epochs", "1", "--out", str(tmp_path / "sw"), "--jobs", "2", "--quiet", *TINY]) == 0
    assert [r["value"] for r in read_csv(tmp_path / "sw" / "sweep.csv")] == ["1e-3", "1e-2"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--devices", "gpu0"], "--devices 'gpu0' is invalid; expected cpu or cuda:N"),
        (["--jobs", "0"], "--jobs=0; expected a positive number"),
        (["--device", "cpu", "--devices", "cpu"], "expected one of them"),
    ],
)
def test_bad_parallel_options_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], expected: str
) -> None:
    assert compare(tmp_path / "out", *extra) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA devices")
def test_cuda_devices_without_cuda_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert compare(tmp_path / "out", "--jobs", "2", "--devices", "cuda:0,cuda:1") == 2
    err = capsys.readouterr().err.strip()
    assert "--devices cuda:0 but this torch build sees no CUDA device" in err and len(err.splitlines()) == 1


def test_tune_runs_its_trials_in_worker_processes(tmp_path: Path) -> None:
    optuna = pytest.importorskip("optuna")
    out = tmp_path / "study"
    args = ["tune", "--dataset", "synthetic", "--space", "optim__lr=loguniform(1e-3,1e-2)", "--trials", "3"]
    assert main([*args, "--epochs", "1", "--out", str(out), "--jobs", "2", "--quiet", *TINY]) == 0
    study = optuna.load_study(study_name="study", storage=f"sqlite:///{out / 'study.db'}")
    complete = {t.number for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert len(complete) == 3 and {int(p.name) for p in (out / "trials").iterdir()} == complete
    assert len({t.params["optim__lr"] for t in study.trials if t.number in complete}) == 3


def test_workers_share_the_cpus_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr("mmbalance.parallel.usable_cpus", lambda: 8)
    assert [threads_per_job(n) for n in (1, 2, 3, 16)] == [8, 4, 2, 1]
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads_per_job(4) is None  # the workers inherit the user's setting
    assert [device_of(slot, ["cuda:0", "cuda:1"]) for slot in range(4)] == ["cuda:0", "cuda:1"] * 2
    assert device_of(3, []) is None


def die(device: str | None) -> None:
    """A run whose worker process is killed (as by the out-of-memory killer)."""
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def test_a_killed_worker_is_one_line_error() -> None:
    from mmbalance.errors import MMBalanceError
    from mmbalance.parallel import run_parallel

    with pytest.raises(MMBalanceError, match="a worker process of --jobs died"):
        run_parallel([(die, ())], 1, [], lambda *a: None)


def test_the_cpu_share_follows_this_process_affinity(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from mmbalance.parallel import usable_cpus

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert usable_cpus() == 4
