"""Right-multiplying projectors for the gradients of linear layers (MLA's OWM, IGM's flat projector).

A linear layer's weight gradient ``grad_W`` is ``[out, in]``; every projector here is ``[in, in]`` and
acts on the input side: ``grad_W @ P`` (``P`` is symmetric, so ``@ P`` and ``@ P.T`` agree).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from mmbalance.errors import ConfigError, check_range
from mmbalance.precision import float32_math


def _check_square(name: str, P: Tensor, dim: int | None = None) -> None:
    if P.dim() != 2 or P.shape[0] != P.shape[1] or (dim is not None and P.shape[0] != dim):
        want = "a square [n, n] matrix" if dim is None else f"[{dim}, {dim}]"
        raise ConfigError(f"{name} has shape {tuple(P.shape)}; expected {want}")


@float32_math
def owm_update(P: Tensor, r: Tensor, alpha: float, normalize: bool = True) -> Tensor:
    """One recursive-least-squares step of OWM: ``k = P rᵀ``, ``P - k kᵀ / (alpha + r k)``.

    With ``normalize`` the result is divided by its Frobenius norm. ``r`` is one input ``[n]`` or ``[1, n]``
    (MLA passes the batch mean of the layer's inputs). Returns a new tensor; ``P`` is unchanged.

    >>> owm_update(torch.eye(2), torch.tensor([1.0, 0.0]), alpha=1.0, normalize=False).tolist()
    [[0.5, 0.0], [0.0, 1.0]]
    """
    _check_square("P", P)
    if r.numel() != P.shape[0]:
        raise ConfigError(f"r has shape {tuple(r.shape)}; expected [{P.shape[0]}] or [1, {P.shape[0]}]")
    check_range("alpha", alpha, 0.0)
    col = r.reshape(-1, 1).to(P.dtype)
    k = P @ col
    updated = P - (k @ k.T) / (alpha + col.T @ k)
    return updated / torch.linalg.matrix_norm(updated) if normalize else updated


class OrthogonalProjector:
    """Stateful OWM projector ``P_`` (``[dim, dim]``, starts at the identity) for one linear layer.

    >>> proj = OrthogonalProjector(2, normalize=False)
    >>> proj.update_(torch.tensor([1.0, 0.0]), alpha=1.0)
    >>> proj.project(torch.ones(3, 2))[0].tolist()
    [0.5, 1.0]
    """

    def __init__(
        self,
        dim: int,
        normalize: bool = True,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        check_range("dim", dim, 1)
        self.dim, self.normalize = dim, normalize
        self.P_ = torch.eye(dim, device=device, dtype=dtype)

    def to(self, device: torch.device | str) -> OrthogonalProjector:
        """Move ``P_`` to ``device``; returns ``self``."""
        self.P_ = self.P_.to(device)
        return self

    @float32_math
    def update_(self, r: Tensor, alpha: float) -> None:
        """Replace ``P_`` by :func:`owm_update` of it with input ``r``."""
        self.P_ = owm_update(self.P_, r.to(self.P_.device), alpha, self.normalize)

    @float32_math
    def project(self, grad_W: Tensor) -> Tensor:
        """``grad_W @ P_.T`` for a weight gradient ``[out, dim]``."""
        if grad_W.shape[-1] != self.dim:
            raise ConfigError(f"grad_W has shape {tuple(grad_W.shape)}; expected [out, {self.dim}]")
        return grad_W @ self.P_.T.to(grad_W.dtype)

    def state_dict(self) -> dict[str, Tensor]:
        """``{"P": P_}`` (a clone)."""
        return {"P": self.P_.clone()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Load ``state["P"]`` onto ``P_``'s device and dtype."""
        _check_square('state["P"]', state["P"], self.dim)
        self.P_ = state["P"].detach().to(device=self.P_.device, dtype=self.P_.dtype).clone()


class FlatSpectrum(NamedTuple):
    """The eigen-data of a flat projector: ``P = vectors · diag(shrink) · vectorsᵀ`` (exactly ``I`` when
    ``flat``). All tensors are in the compute dtype, on the statistic's device."""

    eigenvalues: Tensor
    """The symmetrised statistic's eigenvalues ``λ``, ascending (as ``eigh`` returns them)."""
    shrink: Tensor
    """``exp(-τ (λ - λmin) / (λmax - λmin))`` in ``[e^{-τ}, 1]``: what ``P`` multiplies each eigenvector by
    (all 1 for a flat spectrum)."""
    vectors: Tensor
    """Orthonormal eigenvectors, one per column, in the order of ``eigenvalues``."""
    flat: Tensor
    """0-d bool: ``λmax - λmin ≤ eps·(|λmax| + |λmin|)``, where the projector is the identity."""

    def projector(self, dtype: torch.dtype) -> Tensor:
        """``P`` in ``dtype``: symmetrised, exactly the identity on a flat spectrum."""
        P = (self.vectors * self.shrink) @ self.vectors.T
        eye = torch.eye(P.shape[0], dtype=P.dtype, device=P.device)
        return torch.where(self.flat, eye, (P + P.T) / 2).to(dtype)


@float32_math
def flat_spectrum(
    cov: Tensor, temperature: float, eps: float = 1e-12, compute_dtype: torch.dtype = torch.float64
) -> FlatSpectrum:
    """The eigen-data :func:`flat_projector` builds its projector from (see there for the arguments).

    >>> spec = flat_spectrum(torch.diag(torch.tensor([4.0, 0.0])), temperature=0.6931471805599453)
    >>> spec.eigenvalues.tolist(), spec.shrink.tolist()
    ([0.0, 4.0], [1.0, 0.5])
    """
    _check_square("cov", cov)
    check_range("temperature", temperature, 0.0)
    sym = cov.to(compute_dtype)
    sym = (sym + sym.T) / 2
    lam, vecs = torch.linalg.eigh(sym)
    lo, hi = lam[0], lam[-1]
    flat = (hi - lo) <= eps * (hi.abs() + lo.abs())
    scaled = torch.where(flat, torch.zeros_like(lam), (lam - lo) / torch.where(flat, 1.0, hi - lo))
    return FlatSpectrum(lam, torch.exp(-temperature * scaled), vecs, flat)


@float32_math
def flat_projector(
    cov: Tensor, temperature: float, eps: float = 1e-12, compute_dtype: torch.dtype = torch.float64
) -> Tensor:
    """IGM's flat projector ``V diag(exp(-τ (λ - λmin) / (λmax - λmin))) Vᵀ`` of a covariance ``[n, n]``.

    ``cov`` is symmetrised, then decomposed with ``torch.linalg.eigh`` in ``compute_dtype`` (float64 by
    default: covariances of activations are often ill-conditioned and this runs rarely); the result has
    ``cov``'s dtype. The top direction is damped by ``e^{-τ}``, the least-excited one is kept. When
    ``λmax - λmin ≤ eps·(|λmax| + |λmin|)`` (a flat spectrum, e.g. ``cov = c·I`` or ``0``) the result is
    exactly the identity. Note that ``eigh`` synchronises a CUDA device with the host. The eigen-data
    behind it: :func:`flat_spectrum`.

    >>> flat_projector(torch.diag(torch.tensor([4.0, 0.0])), temperature=0.6931471805599453).tolist()
    [[0.5, 0.0], [0.0, 1.0]]
    """
    return flat_spectrum(cov, temperature, eps, compute_dtype).projector(cov.dtype)


@float32_math
def project_right_(grad: Tensor, P: Tensor) -> None:
    """In place ``grad.copy_(grad @ P)`` for a weight gradient ``[out, n]`` and a projector ``[n, n]``.

    >>> grad = torch.ones(1, 2)
    >>> project_right_(grad, torch.diag(torch.tensor([0.5, 1.0])))
    >>> grad.tolist()
    [[0.5, 1.0]]
    """
    _check_square("P", P)
    if grad.shape[-1] != P.shape[0]:
        raise ConfigError(f"grad has shape {tuple(grad.shape)}; expected [out, {P.shape[0]}] to match P")
    with torch.no_grad():
        grad.copy_(grad @ P.to(grad.dtype))


class InputCovariance:
    """Collect an ``[in, in]`` input statistic per ``nn.Linear`` through forward hooks, as a context manager.

    ``mode="batch_mean"`` (IGM's released behaviour) adds ``μ_bᵀμ_b`` for every batch, ``μ_b`` the batch
    mean of the layer's input (leading dims flattened): an uncentred *sum* over batches.
    ``mode="second_moment"`` gives ``Σ_i a_iᵀa_i / N`` over all ``N`` inputs seen. Accumulators live on
    the module's device in its dtype (at least float32); hooks are removed on exit, also on exception.
    The scale differs between modes, which :func:`flat_projector` ignores (it is scale-invariant).
    ``reduce`` (a mean over data-parallel processes, each holding an equal shard of every batch) is applied
    to each ``μ_b`` and, in ``second_moment`` mode, to the sums on exit: the statistic of the global batches.

    >>> lin = torch.nn.Linear(2, 1)
    >>> with InputCovariance([lin]) as stats:
    ...     _ = lin(torch.tensor([[1.0, 0.0], [3.0, 2.0]]))
    >>> stats.covariances[lin].tolist()
    [[4.0, 2.0], [2.0, 1.0]]
    """

    MODES = ("batch_mean", "second_moment")

    def __init__(
        self,
        modules: list[torch.nn.Linear],
        mode: str = "batch_mean",
        reduce: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        if mode not in self.MODES:
            raise ConfigError(f"mode={mode!r} is unknown; expected one of {', '.join(self.MODES)}")
        for i, m in enumerate(modules):
            if not isinstance(m, torch.nn.Linear):
                raise ConfigError(f"modules[{i}] is a {type(m).__name__}; expected a torch.nn.Linear")
        self.modules, self.mode = list(dict.fromkeys(modules)), mode  # a repeated module counts once
        self._sums: dict[torch.nn.Module, Tensor] = {}
        self._counts: dict[torch.nn.Module, int] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._reduce = reduce

    @property
    def covariances(self) -> dict[torch.nn.Module, Tensor]:
        """The statistic of every module (zeros for a module that saw no batch)."""
        if self.mode == "batch_mean":
            return dict(self._sums)
        return {m: s / max(self._counts[m], 1) for m, s in self._sums.items()}

    @float32_math
    def _hook(self, module: torch.nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        with torch.no_grad():
            acc = self._sums[module]
            x = inputs[0].detach().reshape(-1, acc.shape[0]).to(acc.dtype)
            if self.mode == "batch_mean":
                mu = x.mean(0, keepdim=True)
                if self._reduce is not None:
                    mu = self._reduce(mu)
                acc.add_(mu.T @ mu)
            else:
                acc.add_(x.T @ x)
                self._counts[module] += x.shape[0]

    def __enter__(self) -> InputCovariance:
        for m in self.modules:
            dtype = torch.promote_types(m.weight.dtype, torch.float32)
            self._sums[m] = torch.zeros(m.in_features, m.in_features, dtype=dtype, device=m.weight.device)
            self._counts[m] = 0
        try:
            for m in self.modules:
                self._handles.append(m.register_forward_hook(self._hook))
        except BaseException:
            self._remove()
            raise
        return self

    def _remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __exit__(self, *exc: object) -> None:
        self._remove()
        if self._reduce is not None and self.mode == "second_moment" and exc[0] is None:
            for acc in self._sums.values():
                acc.copy_(self._reduce(acc))
