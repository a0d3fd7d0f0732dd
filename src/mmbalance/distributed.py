"""Multi-process training with ``torch.distributed`` (``torchrun``), and the reductions strategies use.

Data-parallel training here means: ``N`` processes, each with a full copy of the model and an equal shard
of every global batch (``data.batch_size`` stays the global batch), compute **the same update as one
process on the global batch**. Every reduction below makes one quantity global:

* gradients: each parameter's ``.grad`` is averaged over the processes as soon as a backward accumulates
  it (:func:`average_gradients`); gradients returned by ``torch.autograd.grad`` are averaged by the strategy
  with :func:`mean_list_`. A shard's loss is a mean over its rows, so the average over equal shards is the
  global batch's mean-loss gradient. Reading a gradient after a backward therefore always sees the global
  one, which is what gradient-surgery and projection methods need;
* statistics of a batch or of an epoch (a batch's mean features, confidence sums, covariances, prototypes,
  hard-sample selection) through :func:`mean_`, :func:`sum_`, :func:`gather` and :func:`global_top_k`.

Every function is a no-op (returns its input) in a single process, so one-process runs compute exactly
what they computed before. Draws that are per sample (dropout, mixup pairs) are made per process: the same
distribution, not the same draws as one process.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from mmbalance.errors import ConfigError


def active() -> bool:
    """Whether this process is one of several in an initialised process group."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def is_main() -> bool:
    """Rank 0 (or a single process): the one that writes files and prints."""
    return rank() == 0


def launched() -> bool:
    """Whether ``torchrun`` (or another launcher setting ``WORLD_SIZE``) started several processes."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def launched_rank() -> int:
    """This process's global rank as the launcher set it (``RANK``; 0 without one), known before the
    process group is joined."""
    return int(os.environ.get("RANK", "0"))


def init_from_env(device: str) -> str:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ...) and
    return the device this process trains on: ``cuda:LOCAL_RANK`` with NCCL when ``device`` asks for CUDA
    (``cuda`` or ``auto`` with a GPU), else ``cpu`` with gloo. Without a launcher it returns ``device``."""
    if active():  # joined by an earlier run of this process
        return _local_device(device)
    if not launched():
        return device
    if _wants_cuda(device) and not torch.cuda.is_available():
        raise ConfigError(f"train.device={device!r} under torchrun, but torch sees no CUDA device")
    dist.init_process_group(backend="nccl" if _wants_cuda(device) else "gloo")
    return _local_device(device)


def _wants_cuda(device: str) -> bool:
    return device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())


def _local_device(device: str) -> str:
    """``cuda:LOCAL_RANK`` (made current) when ``device`` asks for CUDA, else ``cpu``."""
    if not _wants_cuda(device):
        return "cpu"
    local = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local)
    return f"cuda:{local}"


def local_batch_size(global_batch: int) -> int:
    """This process's share of ``global_batch`` rows; they must split evenly."""
    n = world_size()
    if global_batch % n:
        raise ConfigError(
            f"data.batch_size={global_batch} does not split evenly across {n} processes; "
            f"expected a multiple of {n}"
        )
    return global_batch // n


def barrier() -> None:
    if active():
        dist.barrier()


def sum_(t: Tensor) -> Tensor:
    """``t`` summed over the processes, in place; returned."""
    if active():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def mean_(t: Tensor) -> Tensor:
    """``t`` averaged over the processes, in place; returned (integer tensors are not supported)."""
    if active():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t.div_(dist.get_world_size())
    return t


def mean(t: Tensor) -> Tensor:
    """``t`` averaged over the processes, as a new tensor that keeps no autograd history."""
    return mean_(t.detach().clone()) if active() else t


def mean_list_(tensors: Sequence[Tensor]) -> list[Tensor]:
    """Average every tensor of ``tensors`` over the processes (one flat all-reduce); returned as a list."""
    tensors = list(tensors)
    if not active() or not tensors:
        return tensors
    flat = torch.cat([t.detach().reshape(-1).float() for t in tensors])
    mean_(flat)
    out, start = [], 0
    for t in tensors:
        out.append(flat[start : start + t.numel()].view_as(t).to(t.dtype))
        start += t.numel()
    return out


def gather(t: Tensor) -> Tensor:
    """The processes' ``t`` concatenated along dim 0 in rank order (equal shapes on every process)."""
    if not active():
        return t
    parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, t.detach().contiguous())
    return torch.cat(parts)


def global_top_k(values: Tensor, k: int) -> Tensor:
    """A mask over this process's rows of ``values``: ``True`` where the row is among the ``k`` largest of
    the global batch (every process's rows, gathered in rank order)."""
    everyone = gather(values.detach())
    chosen = torch.zeros(len(everyone), dtype=torch.bool, device=values.device)
    chosen[everyone.topk(k).indices] = True
    start = rank() * len(values)
    return chosen[start : start + len(values)]


def average_gradients(params: Iterable[torch.nn.Parameter]) -> list[object]:
    """Average each parameter's gradient over the processes whenever a backward accumulates into it.

    Exact for repeated backwards too: a gradient already averaged is the same on every process, and the
    average of ``a + b_r`` is ``a + mean(b_r)``. Returns the hook handles (nothing in a single process).
    """
    if not active():
        return []

    def hook(p: Tensor) -> None:
        if p.grad is not None:
            mean_(p.grad)

    return [p.register_post_accumulate_grad_hook(hook) for p in params if p.requires_grad]


def broadcast_parameters(module: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every process (same start whatever each seeded)."""
    if not active():
        return
    for t in [*module.parameters(), *module.buffers()]:
        dist.broadcast(t.data, src=0)


def prepare_model(model: torch.nn.Module, device: torch.device) -> torch.device:
    """Ready ``model`` for data-parallel training on ``device``: BatchNorm layers synchronised across the
    processes on CUDA (:func:`sync_batchnorm_`; SyncBatchNorm refuses CPU tensors, so on CPU each process
    normalises its shard with its own statistics, see :func:`average_buffers`), moved to ``device``, and
    rank 0's parameters and buffers copied to every process. Returns ``device``."""
    if device.type == "cuda":
        sync_batchnorm_(model)
    model.to(device)
    broadcast_parameters(model)
    return device


def shutdown() -> None:
    """Leave the process group (at the end of a ``torchrun`` command)."""
    if active():
        dist.destroy_process_group()


PLAIN_BATCHNORM = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)


def sync_batchnorm_(module: torch.nn.Module) -> torch.nn.Module:
    """Replace every plain ``BatchNorm1d/2d/3d`` inside ``module`` by a ``torch.nn.SyncBatchNorm`` with the
    same parameters and statistics; returned. Subclasses with their own forward (the sequence encoder's
    masked BatchNorm, which leaves padded frames out) are kept: they normalise per process."""
    for name, child in module.named_children():
        if type(child) in PLAIN_BATCHNORM:
            setattr(module, name, torch.nn.SyncBatchNorm.convert_sync_batchnorm(child))
        else:
            sync_batchnorm_(child)
    return module


def average_buffers(module: torch.nn.Module) -> None:
    """Average ``module``'s floating-point buffers (BatchNorm running statistics) over the processes, so
    every process evaluates the same model: on CPU, or with a BatchNorm that is not synchronised, each
    process's running statistics follow its own shard."""
    if not active():
        return
    for buf in module.buffers():
        if buf.is_floating_point():
            mean_(buf.data)


def broadcast_object(value: Any) -> Any:
    """Rank 0's ``value`` on every process (``value`` itself in one process): decisions taken from it
    (model selection, early stopping, a strategy's epoch hooks) are then the same everywhere."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
