"""Several runs at once (``--jobs N --devices ...`` of compare, sweep and tune): each run trains in a worker
process of its own (the ``spawn`` start method), so torch's thread setting and CUDA state are per process.

Worker ``k`` of ``N`` trains on ``devices[k % len(devices)]`` and uses :func:`threads_per_job` torch threads
(the machine's CPUs split between the workers, unless ``OMP_NUM_THREADS`` says otherwise), so a run gives
the same metrics as when trained alone with that many threads. Results are read back from the run
directories as for runs trained one at a time. A worker ignores Ctrl-C (the command stops them itself, and
an unfinished run resumes from its last epoch's checkpoint) and exits if the command that started it dies.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from mmbalance.errors import ConfigError, MMBalanceError

DEVICE = re.compile(r"cpu|cuda:\d+")


def parse_devices(text: str | None) -> list[str]:
    """``--devices``: ``cpu`` or ``cuda:N``, comma-separated; each CUDA device must be visible. Empty when
    ``text`` is empty (the runs keep the device their config names)."""
    names = [t.strip() for t in (text or "").split(",") if t.strip()]
    for name in names:
        if not DEVICE.fullmatch(name):
            raise ConfigError(f"--devices {name!r} is invalid; expected cpu or cuda:N, comma-separated")
    cuda = [int(n[5:]) for n in names if n.startswith("cuda:")]
    if cuda:
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"--devices cuda:{cuda[0]} but this torch build sees no CUDA device; use cpu")
        count = torch.cuda.device_count()
        if max(cuda) >= count:
            raise ConfigError(f"--devices cuda:{max(cuda)} but only cuda:0..cuda:{count - 1} are visible")
    return names


def check_jobs(jobs: int) -> None:
    if jobs < 1:
        raise ConfigError(f"--jobs={jobs}; expected a positive number of runs at once")


def threads_per_job(jobs: int) -> int | None:
    """Torch threads of each of ``jobs`` workers: ``max(1, cpus // jobs)``; ``None`` (torch's own setting,
    inherited from the environment) when ``OMP_NUM_THREADS`` is set."""
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    return max(1, usable_cpus() // jobs)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, e.g. a container's share), else the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def device_of(slot: int, devices: Sequence[str]) -> str | None:
    """The device of worker ``slot`` (round-robin over ``devices``; ``None`` without devices)."""
    return devices[slot % len(devices)] if devices else None


def _start_worker(threads: int | None, plugins: Sequence[str], parent: int) -> None:
    """In each worker: ignore Ctrl-C, set torch's threads, load the command's plugins, watch the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    from mmbalance.plugins import load_plugins

    load_plugins(plugins)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)  # the command was killed: stop rather than train a run it will start again

    threading.Thread(target=watch, daemon=True).start()


def _call(fn: Callable[..., Any], args: tuple[Any, ...], device: str | None) -> tuple[bool, Any]:
    """``(True, fn(*args, device))``, or ``(False, "Type: message")``: errors come back as one line."""
    try:
        return True, fn(*args, device)
    except Exception as exc:
        return False, f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def run_parallel(
    calls: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]],
    jobs: int,
    devices: Sequence[str],
    on_done: Callable[[int, bool, Any, str | None], None],
    plugins: Sequence[str] = (),
) -> None:
    """Run each ``fn(*args, device)`` of ``calls`` in one of ``jobs`` worker processes (``fn`` importable at
    module level, ``args`` picklable); ``on_done(index, ok, result or error line, device)`` is called in
    this process as each finishes. Each worker loads ``plugins`` (the ``--plugin`` modules; those of
    ``MMBALANCE_PLUGINS`` it finds in the environment). Ctrl-C stops the workers and re-raises."""
    context = multiprocessing.get_context("spawn")
    init = (threads_per_job(jobs), list(plugins), os.getpid())
    pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker, initargs=init)
    queue, free = list(enumerate(calls)), list(range(jobs))
    pending: dict[Future[Any], tuple[int, int, str | None]] = {}
    try:
        while queue or pending:
            while queue and free:
                slot, (index, (fn, args)) = free.pop(0), queue.pop(0)
                device = device_of(slot, devices)
                pending[pool.submit(_call, fn, args, device)] = (slot, index, device)
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                slot, index, device = pending.pop(future)
                free.append(slot)
                try:
                    outcome = future.result()
                except BrokenProcessPool:  # a worker was killed (out of memory, a signal): no result
                    raise MMBalanceError(
                        "a worker process of --jobs died (killed or out of memory); the finished runs are "
                        "kept: re-run the same command to resume the others"
                    ) from None
                on_done(index, *outcome, device)
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown()


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and end the workers (their runs resume from their last checkpoint)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # shutdown forgets them
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()


def status(message: str) -> None:
    """A status line on stderr (what the workers of ``tune --jobs`` print per trial)."""
    print(message, file=sys.stderr, flush=True)
