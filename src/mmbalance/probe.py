"""Linear probes: how well a linear classifier separates the classes on each encoder's frozen features.

The head's per-modality logits depend on the fusion head (a weight slice, a shared classifier, a branch),
so they compare different things across methods. A probe asks the same question of every method: fit a
multinomial logistic regression on one modality's training-split features (encoder in eval mode, no
augmentation) and score it on held-out splits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from mmbalance.errors import ConfigError
from mmbalance.metrics import accuracy, macro_f1
from mmbalance.models import MultimodalModel
from mmbalance.types import Batch

__all__ = ["LinearProbe", "extract_features", "fit_probe", "linear_probe"]


@dataclass(frozen=True)
class LinearProbe:
    """A fitted probe: ``scores(x) = ((x - mean) / std) @ weight.T + bias`` (float64, on CPU)."""

    mean: Tensor
    std: Tensor
    weight: Tensor  # [C, D], in standardised feature space
    bias: Tensor  # [C]

    def scores(self, x: Tensor) -> Tensor:
        """``[N, C]`` class logits of the rows of ``x`` (``[N, D]``, any floating dtype and device)."""
        z = (x.detach().to("cpu", torch.float64) - self.mean) / self.std
        return z @ self.weight.T + self.bias


def fit_probe(
    x: Tensor, y: Tensor, num_classes: int, c: float = 1.0, max_iter: int = 1000, tol: float = 1e-6
) -> LinearProbe:
    """Fit an L2-regularised multinomial logistic regression to rows ``x`` (``[N, D]``) and labels ``y``.

    Features are standardised with the mean and population std of ``x`` (a std below 1e-12, a constant
    feature, counts as 1). With ``z`` the standardised rows, the fit minimises over ``W`` (``[C, D]``) and
    the unpenalised intercept ``b`` (``[C]``)::

        sum_i CE(softmax(W z_i + b), y_i) + ||W||_F^2 / (2 c)

    which is scikit-learn's ``LogisticRegression(C=c)`` (multinomial, lbfgs) objective. It is strictly
    convex in ``W``, so the weights are unique; the intercept is unique up to a constant added to every
    class, which no prediction sees. The solver is full-batch L-BFGS with a strong-Wolfe line search,
    in float64 on CPU from a zero start, run until the largest gradient entry of the objective divided
    by N is below ``tol`` or ``max_iter`` iterations pass: on one machine, the same inputs give
    bit-identical results.
    """
    if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ConfigError(
            f"fit_probe needs x [N, D] and y [N] with N > 0; got {tuple(x.shape)}, {tuple(y.shape)}"
        )
    if c <= 0:
        raise ConfigError(f"probe c={c} must be positive (the inverse of the L2 penalty strength)")
    x = x.detach().to("cpu", torch.float64)
    y = y.detach().to("cpu", torch.long)
    mean = x.mean(0)
    std = x.std(0, correction=0)
    std = torch.where(std < 1e-12, torch.ones_like(std), std)
    z = (x - mean) / std
    weight = torch.zeros(num_classes, x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    penalty = 1.0 / (2.0 * c * x.shape[0])  # the objective above divided by N: same minimiser, O(1) scale
    opt = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=max_iter,
        max_eval=2 * max_iter,
        tolerance_grad=tol,
        tolerance_change=1e-15,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z @ weight.T + bias, y) + penalty * weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return LinearProbe(mean, std, weight.detach(), bias.detach())


@torch.no_grad()
def extract_features(
    model: MultimodalModel, loader: Iterable[Batch], device: torch.device | str
) -> tuple[dict[str, Tensor], Tensor]:
    """``({modality: [N, D] features}, [N] labels)`` of every batch of ``loader``, on CPU.

    Runs ``model.encode`` on batches moved to ``device`` with the whole model in eval mode (dropout off,
    BatchNorm on its running statistics), then restores each submodule's own training flag. Nothing in
    the model (parameters, buffers) changes.
    """
    modes = [(mod, mod.training) for mod in model.modules()]
    model.eval()
    feats: dict[str, list[Tensor]] = {m: [] for m in model.modalities}
    labels: list[Tensor] = []
    try:
        for batch in loader:
            batch = batch.to(device)
            for m, f in model.encode(batch.inputs).items():
                feats[m].append(f.flatten(1).to("cpu", torch.float64))
            labels.append(batch.label.cpu())
    finally:
        for mod, mode in modes:
            mod.training = mode
    if not labels:
        raise ConfigError("extract_features got an empty loader; expected at least one batch")
    return {m: torch.cat(fs) for m, fs in feats.items()}, torch.cat(labels)


def linear_probe(
    model: MultimodalModel,
    train_loader: Iterable[Batch],
    eval_loaders: Mapping[str, Iterable[Batch]],
    device: torch.device | str,
    c: float = 1.0,
) -> dict[str, dict[str, dict[str, float]]]:
    """``{split: {modality: {"acc", "macro_f1"}}}``: per modality, a :func:`fit_probe` on the features
    of ``train_loader`` (use one that neither shuffles nor drops rows), scored on each of ``eval_loaders``.

    The number of classes is the model head's. The model is left exactly as it was.
    """
    num_classes = int(model.head.num_classes)
    train_x, train_y = extract_features(model, train_loader, device)
    probes = {m: fit_probe(x, train_y, num_classes, c) for m, x in train_x.items()}
    out: dict[str, dict[str, dict[str, float]]] = {}
    for split, loader in eval_loaders.items():
        xs, y = extract_features(model, loader, device)
        out[split] = {}
        for m, probe in probes.items():
            scores = probe.scores(xs[m])
            out[split][m] = {"acc": accuracy(scores, y), "macro_f1": macro_f1(scores, y)}
    return out
