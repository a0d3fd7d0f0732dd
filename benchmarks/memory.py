"""Peak working memory of one call: the most tensor memory it holds at once beyond what was allocated
when it started.

On CUDA this is ``torch.cuda.max_memory_allocated`` (after a reset) minus ``memory_allocated`` at the
start. On the CPU, PyTorch's profiler records every allocation and free of its CPU allocator with a
timestamp (``profile_memory=True``); the running sum of those byte counts, in time order, is the memory
allocated since the start, and its maximum is the peak. Both count tensor storage only (not Python
objects, not allocator caches), so the two devices measure the same thing.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import accumulate

import torch
from torch.profiler import ProfilerActivity, profile


def peak_bytes(fn: Callable[[], object], device: torch.device) -> int:
    """Peak bytes of tensor memory ``fn()`` allocates above what was allocated when it was called."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - start)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = prof.profiler.kineto_results.events()  # type: ignore[union-attr]
    cpu = sorted(
        (e for e in events if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU),
        key=lambda e: e.start_ns(),
    )
    return max([0, *accumulate(e.nbytes() for e in cpu)])
