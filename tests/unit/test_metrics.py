"""The torch metrics against scikit-learn on random inputs (ties, absent classes, edge shapes)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score

from mmbalance.errors import ConfigError
from mmbalance.metrics import (
    MetricAccumulator,
    accuracy,
    auroc,
    classification_metrics,
    macro_f1,
    mean_average_precision,
)

TOL = 1e-6


def _random_case(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ``scores [N, C]`` and ``target [N]``; some seeds tie scores or leave classes out of target."""
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 301, (1,), generator=g))
    c = int(torch.randint(2, 13, (1,), generator=g))
    scores = torch.randn(n, c, generator=g, dtype=torch.float64)
    kind = seed % 4
    if kind == 1:  # heavy ties
        scores = torch.round(scores * 10) / 10
    elif kind == 2:  # only a subset of the classes appears in the target
        k = int(torch.randint(1, c + 1, (1,), generator=g))
        classes = torch.randperm(c, generator=g)[:k]
        target = classes[torch.randint(0, k, (n,), generator=g)]
        return scores, target
    elif kind == 3:  # probabilities, rounded to create ties, with informative scores
        target = torch.randint(0, c, (n,), generator=g)
        scores = torch.softmax(scores + 1.5 * torch.nn.functional.one_hot(target, c), dim=1)
        return torch.round(scores * 10) / 10, target
    return scores, torch.randint(0, c, (n,), generator=g)


def _sk_metrics(scores: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Reference values from scikit-learn, averaging AP / AUROC over the qualifying classes only."""
    s, t = scores.numpy(), target.numpy()
    n, c = s.shape
    pred = s.argmax(axis=1)
    aps, aucs = [], []
    for k in range(c):
        y = (t == k).astype(int)
        if y.sum() > 0:
            aps.append(average_precision_score(y, s[:, k]))
        if 0 < y.sum() < n:
            aucs.append(roc_auc_score(y, s[:, k]))
    return {
        "acc": accuracy_score(t, pred),
        "macro_f1": f1_score(t, pred, average="macro", zero_division=0),
        "map": float(np.mean(aps)),
        "auroc": float(np.mean(aucs)) if aucs else math.nan,
    }


def _assert_close(got: float, want: float) -> None:
    if math.isnan(want):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(want, abs=TOL)


@pytest.mark.parametrize("seed", range(120))
def test_each_metric_matches_sklearn(seed: int) -> None:
    scores, target = _random_case(seed)
    want = _sk_metrics(scores, target)
    _assert_close(accuracy(scores, target), want["acc"])
    _assert_close(macro_f1(scores, target), want["macro_f1"])
    _assert_close(mean_average_precision(scores, target), want["map"])
    _assert_close(auroc(scores, target), want["auroc"])


@pytest.mark.parametrize("seed", range(20))
def test_float32_inputs_match_sklearn(seed: int) -> None:
    scores, target = _random_case(seed)
    scores = scores.float()
    want = _sk_metrics(scores, target)
    got = classification_metrics(scores, target, probs=True)
    for key in want:
        _assert_close(got[key], want[key])


@pytest.mark.parametrize("seed", range(10))
def test_classification_metrics_applies_softmax_to_logits(seed: int) -> None:
    scores, target = _random_case(seed)
    want = _sk_metrics(torch.softmax(scores, dim=1), target)
    got = classification_metrics(scores, target)
    assert list(got) == ["acc", "macro_f1", "map", "auroc"]
    for key in want:
        _assert_close(got[key], want[key])


@pytest.mark.parametrize("c", [2, 3, 7, 12])
@pytest.mark.parametrize("probs", [False, True])
def test_perfect_predictions_score_one(c: int, probs: bool) -> None:
    target = torch.arange(3 * c) % c
    scores = torch.nn.functional.one_hot(target, c).double()
    scores = scores if probs else 5.0 * scores
    assert classification_metrics(scores, target, probs=probs) == {
        "acc": 1.0,
        "macro_f1": 1.0,
        "map": 1.0,
        "auroc": 1.0,
    }


@pytest.mark.parametrize("seed", range(15))
def test_binary_matches_sklearn_binary_auc(seed: int) -> None:
    g = torch.Generator().manual_seed(1000 + seed)
    n = int(torch.randint(2, 200, (1,), generator=g))
    target = torch.randint(0, 2, (n,), generator=g)
    target[0], target[1] = 0, 1  # both classes present
    logit = torch.round(torch.randn(n, generator=g, dtype=torch.float64) + target, decimals=1)
    scores = torch.stack([-logit, logit], dim=1)
    want = _sk_metrics(scores, target)
    _assert_close(auroc(scores, target), want["auroc"])
    _assert_close(auroc(scores, target), roc_auc_score(target.numpy(), logit.numpy()))
    _assert_close(mean_average_precision(scores, target), want["map"])
    _assert_close(macro_f1(scores, target), want["macro_f1"])


def test_all_tied_scores() -> None:
    target = torch.tensor([0, 1, 1, 2, 0, 1])
    scores = torch.full((6, 3), 0.25, dtype=torch.float64)
    want = _sk_metrics(scores, target)
    _assert_close(mean_average_precision(scores, target), want["map"])
    _assert_close(auroc(scores, target), 0.5)


def test_single_sample_and_single_class_target() -> None:
    scores = torch.tensor([[0.3, 0.7]])
    target = torch.tensor([1])
    assert accuracy(scores, target) == 1.0
    assert mean_average_precision(scores, target) == 1.0
    assert math.isnan(auroc(scores, target))
    # Every sample of one class: no class has both a positive and a negative.
    assert math.isnan(auroc(torch.randn(5, 3), torch.zeros(5, dtype=torch.long)))


@pytest.mark.parametrize("seed", range(10))
def test_accumulator_equals_one_shot(seed: int) -> None:
    scores, target = _random_case(seed)
    acc = MetricAccumulator()
    for s, t in zip(scores.split(17), target.split(17), strict=True):
        acc.update(s.requires_grad_(), t)
    assert all(not s.requires_grad for s in acc.scores)
    assert acc.compute() == classification_metrics(scores, target)
    acc.reset()
    acc.update(scores[:5], target[:5])
    assert acc.compute() == classification_metrics(scores[:5], target[:5])


def test_accumulator_errors() -> None:
    acc = MetricAccumulator()
    with pytest.raises(ConfigError, match="before any update"):
        acc.compute()
    acc.update(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ConfigError, match="classes"):
        acc.update(torch.randn(4, 5), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ConfigError, match="disagree on N"):
        acc.update(torch.randn(4, 3), torch.tensor([0, 1]))
    acc.update(torch.randn(2, 3), torch.tensor([0, 3]))  # values are checked at compute time
    with pytest.raises(ConfigError, match=r"\[0, 3\)"):
        acc.compute()


@pytest.mark.parametrize("fn", [accuracy, macro_f1, mean_average_precision, auroc, classification_metrics])
@pytest.mark.parametrize(
    ("scores", "target", "match"),
    [
        (torch.randn(4, 3), torch.tensor([0, 1, 2, 3]), r"\[0, 3\).*got \[0, 3\]"),
        (torch.randn(4, 3), torch.tensor([0, -1, 2, 1]), r"got \[-1, 2\]"),
        (torch.randn(4, 3), torch.tensor([0, 1, 2]), r"disagree on N.*\(4, 3\).*\(3,\)"),
        (torch.randn(4), torch.tensor([0, 1, 2, 1]), "shape"),
        (torch.randn(4, 3), torch.tensor([[0, 1, 2, 1]]), "shape"),
        (torch.randn(4, 3), torch.tensor([0.0, 1.0, 2.0, 1.0]), "integer"),
        (torch.randn(0, 3), torch.zeros(0, dtype=torch.long), "at least one"),
        (torch.tensor([[0.1, math.nan]]), torch.tensor([0]), "NaN"),
    ],
)
def test_invalid_input_raises_config_error(fn, scores, target, match) -> None:
    with pytest.raises(ConfigError, match=match):
        fn(scores, target)
