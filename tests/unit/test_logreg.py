"""The logistic-regression row: raw features, validation-only choice of C, the run directory and its reuse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mmbalance import config
from mmbalance.errors import ConfigError
from mmbalance.experiment import build
from mmbalance.logreg import C_GRID, fit_logreg, logreg_run, raw_features, select_c
from mmbalance.metrics import accuracy
from mmbalance.probe import fit_probe

TINY = ["dataset__name=synthetic", "dataset__n_samples=90", "train__device=cpu"]


def tiny_cfg(*extra: str) -> dict:
    return config.resolve({}, [*TINY, *extra])


def test_raw_features_are_the_inputs_flattened_and_concatenated_in_dataset_order() -> None:
    s = build(tiny_cfg("dataset__dims=[3,5]"))
    rows = s.split["val"]
    x, y = raw_features(s.dataset, rows, batch_size=7)  # several batches
    expected = torch.cat([s.dataset.inputs[m][rows].flatten(1) for m in s.dataset.modalities], dim=1)
    assert x.shape == (len(rows), 8) and x.dtype == torch.float64
    torch.testing.assert_close(x, expected.double())
    assert torch.equal(y, s.dataset.labels[rows])


def test_a_linearly_separable_dataset_is_classified_perfectly() -> None:
    metrics = fit_logreg(build(tiny_cfg("dataset__noise=0.1", "dataset__signal=[1.0,1.0]")))
    assert metrics["test"]["acc"] == 1.0 and metrics["val"]["acc"] == 1.0
    assert metrics["test"]["modalities"] == {} and metrics["logreg"]["c"] in C_GRID


@pytest.mark.parametrize("seed", range(4))
def test_the_chosen_c_is_the_best_on_validation_and_its_fit_is_used(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(120, 6, generator=g, dtype=torch.float64)
    y = (x[:, 0] + 1.5 * torch.randn(120, generator=g, dtype=torch.float64) > 0).long()  # noisy labels
    train, val = (x[:80], y[:80]), (x[80:], y[80:])
    c, probe, val_acc = select_c(train, val, 2)
    assert list(val_acc) == list(C_GRID)
    for k in C_GRID:  # each score is the accuracy of that C's own fit on the validation rows
        assert val_acc[k] == accuracy(fit_probe(*train, 2, c=k).scores(val[0]), val[1])
    assert val_acc[c] == max(val_acc.values())
    assert all(val_acc[k] < val_acc[c] for k in C_GRID[: C_GRID.index(c)])  # ties go to the earlier C
    assert torch.equal(probe.weight, fit_probe(*train, 2, c=c).weight)


def test_ties_go_to_the_first_c_of_the_grid() -> None:
    x = torch.tensor([[-2.0], [-1.0], [1.0], [2.0]], dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1])
    c, _, val_acc = select_c((x, y), (x, y), 2, grid=(10.0, 0.1, 1.0))
    assert set(val_acc.values()) == {1.0} and c == 10.0
    with pytest.raises(ConfigError, match="empty grid"):
        select_c((x, y), (x, y), 2, grid=())


def test_a_run_directory_is_written_reused_and_refused_for_another_config(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = logreg_run(tiny_cfg(), out)
    assert json.loads((out / "metrics.json").read_text()) == first
    stamp = (out / "metrics.json").stat().st_mtime_ns
    assert logreg_run(tiny_cfg(), out) == first  # read back, not fitted again
    assert (out / "metrics.json").stat().st_mtime_ns == stamp
    with pytest.raises(ConfigError, match="another config") as err:
        logreg_run(tiny_cfg("train__seed=1"), out)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="another config"):
        logreg_run(tiny_cfg("dataset__noise=0.5"), out)
    with pytest.raises(ConfigError, match="another config"):
        logreg_run(tiny_cfg(), out, grid=(1.0,))
