"""Two ``python -m mmbalance tune`` processes on one study: on the default SQLite file, and on a PostgreSQL
server this module starts itself (initdb and pg_ctl into a temporary folder, as the ``postgres`` user when
run as root). The PostgreSQL case skips, saying why, only where its binaries or driver are missing."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import mmbalance

optuna = pytest.importorskip("optuna")

TRIALS = 4
TINY = ["dataset__n_samples=120", "data__batch_size=16", "model__feature_dim=8", "train__device=cpu"]
SPACE = ["--space", "optim__lr=loguniform(1e-3,1e-2)", "--space", "strategy__head=choice(sum,concat)"]


def postgres_bin() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: on the PATH, or where Debian installs the server."""
    found = shutil.which("initdb")
    folders = [Path(found).parent] if found else []
    folders += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return next((f for f in folders if (f / "initdb").exists() and (f / "pg_ctl").exists()), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL server on a free local port, trusted local logins, removed afterwards."""
    pytest.importorskip("psycopg", reason="the PostgreSQL driver is missing: pip install 'psycopg[binary]'")
    folder = postgres_bin()
    if folder is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; install the postgresql package")
    user: dict[str, int] = {}
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the PostgreSQL server as")
        user = {"user": entry.pw_uid, "group": entry.pw_gid}
    root = Path(tempfile.mkdtemp(prefix="mmbalance-pg-", dir="/tmp" if user else None))  # one it can reach
    if user:
        os.chown(root, user["user"], user["group"])
    data, port = root / "data", free_port()

    def run(*cmd: str) -> None:
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=root, timeout=60, **user)
        assert done.returncode == 0, f"{' '.join(cmd)} failed: {done.stderr or done.stdout}"

    try:
        run(str(folder / "initdb"), "-D", str(data), "-U", "mmbalance", "--auth=trust", "--no-sync")
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(str(folder / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", options, "-w", "start")
        yield f"postgresql+psycopg://mmbalance@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            run(str(folder / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def two_workers(out: Path, *storage: str) -> list[str]:
    """Start two workers at once on one study (each with its own sampler seed); their outputs."""
    cmd = [sys.executable, "-m", "mmbalance", "tune", "--dataset", "synthetic", *SPACE, *storage]
    cmd += ["--trials", str(TRIALS), "--epochs", "1", "--out", str(out), "--quiet", *TINY]
    src = str(Path(mmbalance.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [*cmd, "--sampler-seed", str(i)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (_, stderr) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, stderr.decode()
    return [stdout.decode() for stdout, _ in outputs]


def check_one_study(out: Path, storage: str, name: str) -> None:
    """Exactly ``TRIALS`` complete trials, each trained once in its own directory; any other trial is one
    that found the budget taken when it started (a race between the workers) and trained nothing."""
    study = optuna.load_study(study_name=name, storage=storage)
    complete = {t.number for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert len(complete) == TRIALS
    for t in study.trials:
        if t.number not in complete:
            assert t.state == optuna.trial.TrialState.FAIL and t.user_attrs["error"].startswith("not run:")
    assert {int(p.name) for p in (out / "trials").iterdir()} == complete
    assert all((out / "trials" / str(n) / "metrics.json").exists() for n in complete)
    assert (out / "best.yaml").exists()


def test_two_workers_share_one_sqlite_study(tmp_path: Path) -> None:
    outputs = two_workers(tmp_path / "study")
    assert all(o.startswith("study 'study': ") for o in outputs)  # done, or done but one still running
    check_one_study(tmp_path / "study", f"sqlite:///{tmp_path / 'study' / 'study.db'}", "study")


def test_two_workers_share_one_postgresql_study(tmp_path: Path, postgres_url: str) -> None:
    two_workers(tmp_path / "study", "--storage", postgres_url, "--study", "pg")
    check_one_study(tmp_path / "study", postgres_url, "pg")
