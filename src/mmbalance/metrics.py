"""Classification metrics in pure torch: accuracy, macro F1, mean average precision and macro ROC AUC.

Every function takes ``scores`` of shape ``[N, C]`` and integer class indices ``target`` of shape ``[N]``,
works on whatever device the tensors live on, and returns a Python float (one host sync per metric).
The results match scikit-learn's ``accuracy_score``, ``f1_score(average="macro", zero_division=0)``,
``average_precision_score`` and ``roc_auc_score`` (one-vs-rest, macro over the qualifying classes).

:class:`MetricAccumulator` collects batches without syncing and computes everything once at the end; its
per-batch tensors can later be gathered across processes before :meth:`MetricAccumulator.compute`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mmbalance.errors import ConfigError

__all__ = [
    "METRIC_NAMES",
    "MetricAccumulator",
    "accuracy",
    "auroc",
    "classification_metrics",
    "macro_f1",
    "mean_average_precision",
]


METRIC_NAMES = ("acc", "macro_f1", "map", "auroc")
"""The keys of :func:`classification_metrics`, in order."""


def _check_shapes(scores: Tensor, target: Tensor) -> None:
    """Raise :class:`ConfigError` unless ``scores`` is ``[N, C]`` and ``target`` is an integer ``[N]``."""
    if scores.ndim != 2:
        raise ConfigError(f"scores must have shape [N, C]; got shape {tuple(scores.shape)}")
    if target.ndim != 1:
        raise ConfigError(f"target must have shape [N]; got shape {tuple(target.shape)}")
    if target.dtype.is_floating_point or target.dtype.is_complex or target.dtype == torch.bool:
        raise ConfigError(f"target must hold integer class indices; got dtype {target.dtype}")
    if scores.shape[0] != target.shape[0]:
        raise ConfigError(
            f"scores and target disagree on N: scores {tuple(scores.shape)}, target {tuple(target.shape)}"
        )


def _validate(scores: Tensor, target: Tensor) -> None:
    """Check shapes, emptiness and the range of the target values (syncs once with the device)."""
    _check_shapes(scores, target)
    n, c = scores.shape
    if n == 0 or c == 0:
        raise ConfigError(f"metrics need at least one sample and one class; got scores {tuple(scores.shape)}")
    lo, hi = int(target.min()), int(target.max())
    if lo < 0 or hi >= c:
        raise ConfigError(
            f"target values must lie in [0, {c}) for scores {tuple(scores.shape)}; got [{lo}, {hi}]"
        )
    if scores.dtype.is_floating_point and bool(torch.isnan(scores).any()):
        raise ConfigError(f"scores {tuple(scores.shape)} contain NaN")


def _onehot(target: Tensor, num_classes: int) -> Tensor:
    """``[N, C]`` float64 one-hot matrix of ``target``."""
    out = torch.zeros(target.shape[0], num_classes, dtype=torch.float64, device=target.device)
    return out.scatter_(1, target.long().unsqueeze(1), 1.0)


def accuracy(scores: Tensor, target: Tensor) -> float:
    """Top-1 accuracy: the fraction of rows whose argmax equals the target (first index wins on ties).

    >>> accuracy(torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), torch.tensor([0, 1, 1]))
    0.6666666666666666
    """
    _validate(scores, target)
    return (scores.argmax(dim=1) == target).double().mean().item()


def macro_f1(scores: Tensor, target: Tensor) -> float:
    """Unweighted mean of the per-class F1 of the argmax predictions.

    The classes averaged over are those present in ``target`` or in the predictions (scikit-learn's default
    labels); a class with no true positive scores 0 (``zero_division=0``).

    >>> macro_f1(torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), torch.tensor([0, 1, 1]))
    0.6666666666666666
    """
    _validate(scores, target)
    c = scores.shape[1]
    pred = scores.argmax(dim=1)
    target = target.long()
    tp = torch.bincount(target[pred == target], minlength=c).double()
    n_pred = torch.bincount(pred, minlength=c).double()
    n_true = torch.bincount(target, minlength=c).double()
    denom = n_pred + n_true
    present = denom > 0
    f1 = 2.0 * tp[present] / denom[present]
    return f1.mean().item()


def _average_precision_per_class(scores: Tensor, onehot: Tensor) -> Tensor:
    """``[C]`` one-vs-rest average precision ``Σ (R_k − R_{k−1}) P_k`` over distinct score thresholds.

    Rows with equal scores in a column form one threshold, so ties are scored as one step (like
    scikit-learn). Columns without positives give NaN.
    """
    n = scores.shape[0]
    values, order = torch.sort(scores.double(), dim=0, descending=True, stable=True)
    y = torch.gather(onehot, 0, order)
    tp = torch.cumsum(y, dim=0)
    # A threshold ends at row i when the next sorted value differs (or i is the last row).
    last = torch.ones_like(values, dtype=torch.bool)
    last[:-1] = values[:-1] != values[1:]
    ranks = torch.arange(1, n + 1, dtype=torch.float64, device=scores.device).unsqueeze(1)
    # tp at the previous threshold: running max of tp at threshold rows, shifted down by one row.
    tp_at_thresholds = torch.where(last, tp, torch.zeros_like(tp))
    prev = torch.zeros_like(tp)
    prev[1:] = torch.cummax(tp_at_thresholds, dim=0).values[:-1]
    steps = torch.where(last, (tp - prev) * tp / ranks, torch.zeros_like(tp))
    return steps.sum(dim=0) / onehot.sum(dim=0)


def mean_average_precision(scores: Tensor, target: Tensor) -> float:
    """Mean over classes of the one-vs-rest average precision of column ``scores[:, c]``.

    Equal to the mean of scikit-learn's ``average_precision_score(target == c, scores[:, c])`` (the
    non-interpolated AP, with tied scores forming one threshold). Classes without a positive in ``target``
    have no defined AP and are skipped.

    >>> scores = torch.tensor([[0.9, 0.1], [0.5, 0.5], [0.5, 0.5]])  # tied rows form one threshold
    >>> round(mean_average_precision(scores, torch.tensor([0, 0, 1])), 6)
    0.666667
    """
    _validate(scores, target)
    onehot = _onehot(target, scores.shape[1])
    ap = _average_precision_per_class(scores, onehot)
    return ap[onehot.sum(dim=0) > 0].mean().item()


def _auroc_per_class(scores: Tensor, onehot: Tensor) -> Tensor:
    """``[C]`` one-vs-rest ROC AUC by the Mann–Whitney rank formula, with average ranks for ties.

    Columns without both a positive and a negative give NaN.
    """
    n = scores.shape[0]
    values, order = torch.sort(scores.double(), dim=0, stable=True)
    y = torch.gather(onehot, 0, order)
    idx = torch.arange(n, device=scores.device).unsqueeze(1).expand_as(values)
    first = torch.ones_like(values, dtype=torch.bool)
    first[1:] = values[1:] != values[:-1]
    last = torch.ones_like(values, dtype=torch.bool)
    last[:-1] = values[:-1] != values[1:]
    # Index of the first / last row of each row's run of equal values.
    start = torch.cummax(torch.where(first, idx, torch.zeros_like(idx)), dim=0).values
    end_rev = torch.where(last, idx, torch.full_like(idx, n - 1)).flip(0)
    end = torch.cummin(end_rev, dim=0).values.flip(0)
    avg_rank = (start + end).double() / 2.0 + 1.0  # 1-based average rank of the tie group
    n_pos = onehot.sum(dim=0)
    n_neg = n - n_pos
    rank_sum = (y * avg_rank).sum(dim=0)
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def auroc(scores: Tensor, target: Tensor) -> float:
    """Macro one-vs-rest ROC AUC of the columns of ``scores``.

    Per class equal to scikit-learn's ``roc_auc_score(target == c, scores[:, c])``; averaged over the
    classes that have at least one positive and one negative in ``target``. NaN when no class qualifies.

    >>> scores = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    >>> auroc(scores, torch.tensor([0, 1, 1]))
    1.0
    >>> auroc(scores[:1], torch.tensor([0]))
    nan
    """
    _validate(scores, target)
    onehot = _onehot(target, scores.shape[1])
    n_pos = onehot.sum(dim=0)
    ok = (n_pos > 0) & (n_pos < scores.shape[0])
    if not bool(ok.any()):
        return float("nan")
    return _auroc_per_class(scores, onehot)[ok].mean().item()


def classification_metrics(scores: Tensor, target: Tensor, probs: bool = False) -> dict[str, float]:
    """All metrics at once: ``{"acc", "macro_f1", "map", "auroc"}``.

    Accuracy and F1 use the argmax of ``scores``. AP and AUROC rank each class's column, which depends on
    whether ``scores`` are logits or probabilities; they are computed on probabilities, so pass
    ``probs=True`` when ``scores`` already are, otherwise a softmax over classes is applied first.

    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.5]])
    >>> m = classification_metrics(logits, torch.tensor([0, 1, 1]))
    >>> sorted(m), round(m["acc"], 4)
    (['acc', 'auroc', 'macro_f1', 'map'], 0.6667)
    """
    _validate(scores, target)
    p = scores.double() if probs else torch.softmax(scores.double(), dim=1)
    return {
        "acc": accuracy(scores, target),
        "macro_f1": macro_f1(scores, target),
        "map": mean_average_precision(p, target),
        "auroc": auroc(p, target),
    }


class MetricAccumulator:
    """Collects ``(scores, target)`` batches on their device and computes :func:`classification_metrics`.

    >>> acc = MetricAccumulator(probs=True)
    >>> acc.update(torch.tensor([[0.9, 0.1], [0.2, 0.8]]), torch.tensor([0, 1]))
    >>> acc.update(torch.tensor([[0.6, 0.4]]), torch.tensor([1]))
    >>> round(acc.compute()["acc"], 4)
    0.6667
    """

    def __init__(self, probs: bool = False) -> None:
        self.probs = probs
        self.scores: list[Tensor] = []
        self.targets: list[Tensor] = []

    def update(self, scores: Tensor, target: Tensor) -> None:
        """Append a detached batch (shape checks only; values are checked in :meth:`compute`)."""
        _check_shapes(scores, target)
        if self.scores and scores.shape[1] != self.scores[0].shape[1]:
            raise ConfigError(
                f"batch has {scores.shape[1]} classes; earlier batches had {self.scores[0].shape[1]}"
            )
        self.scores.append(scores.detach())
        self.targets.append(target.detach())

    def compute(self) -> dict[str, float]:
        """Metrics over every batch since the last :meth:`reset`."""
        if not self.scores:
            raise ConfigError("MetricAccumulator.compute() called before any update()")
        return classification_metrics(torch.cat(self.scores), torch.cat(self.targets), probs=self.probs)

    def reset(self) -> None:
        """Forget all batches."""
        self.scores.clear()
        self.targets.clear()
