"""Linear probes: the fit equals scikit-learn's logistic regression; the model is never changed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmbalance.data import BatchLoader
from mmbalance.errors import ConfigError
from mmbalance.probe import extract_features, fit_probe, linear_probe
from mmbalance.strategies import build_strategy
from mmbalance.testing import TinyProblem, run_steps, tiny_problem


def blobs(n: int, d: int, classes: int, spread: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian clusters around random centres ``spread`` apart, in float32 like encoder outputs."""
    g = torch.Generator().manual_seed(seed)
    centres = spread * torch.randn(classes, d, generator=g)
    y = torch.arange(n) % classes
    return centres[y] + torch.randn(n, d, generator=g), y


def test_separable_features_are_classified_perfectly() -> None:
    x, y = blobs(90, 5, 3, spread=20.0, seed=0)
    probe = fit_probe(x[:60], y[:60], 3)
    assert (probe.scores(x).argmax(1) == y).all()


def test_fit_equals_scikit_learn_logistic_regression() -> None:
    logistic_regression = pytest.importorskip("sklearn.linear_model").LogisticRegression
    x, y = blobs(200, 8, 4, spread=0.7, seed=1)  # overlapping classes: the penalty matters
    x = 3.0 * x + 2.0  # off-centre and scaled: the probe's standardisation is part of the model
    probe = fit_probe(x, y, 4, c=1.0, tol=1e-10)
    z = ((x - x.mean(0)) / x.std(0, correction=0)).double().numpy()
    ref = logistic_regression(C=1.0, tol=1e-12, max_iter=10_000).fit(z, y.numpy())
    np.testing.assert_allclose(probe.weight.numpy(), ref.coef_, atol=1e-6)
    proba = torch.softmax(probe.scores(x), 1).numpy()
    np.testing.assert_allclose(proba, ref.predict_proba(z), atol=1e-6)
    assert 0.5 < (proba.argmax(1) == y.numpy()).mean() < 1.0  # not a degenerate, separable case


def test_smaller_c_shrinks_the_weights() -> None:
    x, y = blobs(120, 6, 3, spread=1.0, seed=2)
    norms = [float(fit_probe(x, y, 3, c=c).weight.norm()) for c in (0.01, 1.0, 100.0)]
    assert norms[0] < norms[1] < norms[2]


def test_fit_is_deterministic_and_ignores_constant_features() -> None:
    x, y = blobs(100, 4, 3, spread=1.0, seed=3)
    x = torch.cat([x, torch.zeros(100, 2)], dim=1)  # dead ReLU units: zero variance
    a, b = fit_probe(x, y, 3), fit_probe(x, y, 3)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    assert torch.isfinite(a.weight).all() and not a.weight[:, 4:].any()


@pytest.mark.parametrize(
    ("x", "y", "c"),
    [
        (torch.zeros(3), torch.zeros(3), 1.0),
        (torch.zeros(3, 2), torch.zeros(2), 1.0),
        (torch.zeros(3, 2), torch.zeros(3), 0.0),
    ],
)
def test_bad_inputs_are_one_line_errors(x: torch.Tensor, y: torch.Tensor, c: float) -> None:
    with pytest.raises(ConfigError) as err:
        fit_probe(x, y.long(), 2, c=c)
    assert "\n" not in str(err.value) and ("got" in str(err.value) or "c=0.0" in str(err.value))


def trained_problem(device: str, head: str = "concat") -> tuple[TinyProblem, BatchLoader, BatchLoader]:
    """A tiny two-modality model after a few training steps, and train / held-out loaders."""
    p = tiny_problem(lambda: build_strategy("joint", head=head), device=device)
    run_steps(p, steps=4)
    rows = torch.arange(len(p.dataset), device=device)
    return p, BatchLoader(p.dataset, rows[:32], 8), BatchLoader(p.dataset, rows[32:], 8)


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_linear_probe_leaves_parameters_buffers_and_modes_unchanged(device: str) -> None:
    p, train, held_out = trained_problem(device)
    p.model.train()
    p.model.encoders["b"].eval()  # a mixed state must come back as it was, module by module
    before, modes = snapshot(p.model), [m.training for m in p.model.modules()]
    result = linear_probe(p.model, train, {"val": held_out, "test": held_out}, device)
    after = snapshot(p.model)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert [m.training for m in p.model.modules()] == modes
    assert set(result) == {"val", "test"} and set(result["test"]) == {"a", "b"}
    for sub in result["test"].values():
        assert set(sub) == {"acc", "macro_f1"} and 0.0 <= sub["acc"] <= 1.0
    assert result["val"] == result["test"]


def test_features_are_the_encoders_in_eval_mode(device: str) -> None:
    p, train, _ = trained_problem(device)
    p.model.train()
    feats, labels = extract_features(p.model, train, device)
    p.model.eval()
    with torch.no_grad():
        expected = p.model.encode({m: x[:32] for m, x in p.dataset.inputs.items()})
    assert torch.equal(labels, p.dataset.labels[:32].cpu())
    for m in ("a", "b"):
        torch.testing.assert_close(feats[m], expected[m].cpu().double(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("head", ["concat", "shared", "sum"])
def test_probe_does_not_depend_on_the_head(device: str, head: str) -> None:
    p, train, held_out = trained_problem(device, head)
    first = linear_probe(p.model, train, {"test": held_out}, device)
    head_before = [q.detach().clone() for q in p.model.head.parameters()]
    torch.manual_seed(123)
    for module in p.model.head.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    assert not all(torch.equal(a, b) for a, b in zip(head_before, p.model.head.parameters(), strict=True))
    assert linear_probe(p.model, train, {"test": held_out}, device) == first
