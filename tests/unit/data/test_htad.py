from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

import mmbalance.data.htad as htad_module
from mmbalance.data import packages
from mmbalance.data.base import stratified_split
from mmbalance.data.registry import DATASETS
from mmbalance.errors import ConfigError, MissingDataError

HAVE_REAL = importlib.util.find_spec("multiviewstacking") is not None
realdata = pytest.mark.skipif(not HAVE_REAL, reason="needs multiviewstacking==0.7.5 (--no-deps)")
README = "HTAD\n\nTerms of use\n\nFake terms: research and educational purposes only.\n\nContact:\n\nx\n"


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """A htad.csv in the real format (latin-1, header, class column), columns of both views interleaved."""
    rng = np.random.default_rng(0)
    names = rng.choice(["watch_tv", "sweep", "eat_chips"], size=400)
    audio = rng.normal(50.0, 10.0, size=(400, 4)) * np.array([1, 2, 3, 4])
    accel = rng.normal(0.0, 0.5, size=(400, 2))
    header = ["v2_meanX", "class", "v1_mfcc1", "v1_mfcc2", "v2_sdX", "v1_mfcc3", "v1_mfcc4"]
    with open(tmp_path / "htad.csv", "w", encoding="latin-1", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i in range(400):
            w.writerow([accel[i, 0], names[i], *audio[i, :2], accel[i, 1], *audio[i, 2:]])
    (tmp_path / "HTAD Readme.txt").write_text(README, encoding="latin-1")
    monkeypatch.setattr(htad_module, "_data_dir", lambda: tmp_path)
    return {"names": names, "audio": audio, "accel": accel, "dir": tmp_path}


def test_columns_by_prefix_and_sorted_classes(fake: dict[str, object]) -> None:
    ds = DATASETS.build("htad")
    assert ds.class_names == ["eat_chips", "sweep", "watch_tv"] and ds.num_classes == 3
    expected = torch.tensor([ds.class_names.index(n) for n in fake["names"]])  # type: ignore[attr-defined]
    assert torch.equal(ds.labels, expected)
    np.testing.assert_allclose(ds.inputs["audio"].numpy(), fake["audio"], rtol=1e-6)
    np.testing.assert_allclose(ds.inputs["accel"].numpy(), fake["accel"], rtol=1e-5, atol=1e-6)
    assert ds.standardize == ("audio", "accel")
    assert ds.default_encoders == {"audio": {"name": "mlp"}, "accel": {"name": "mlp"}}


def test_generic_standardisation_uses_train_rows(fake: dict[str, object]) -> None:
    ds = htad_module.htad()
    train = stratified_split(ds.labels, seed=0)["train"]
    ds.standardize_(train)
    for m in ("audio", "accel"):
        x = ds.inputs[m][train]
        assert torch.allclose(x.mean(0), torch.zeros(x.shape[1]), atol=1e-4)
        assert torch.allclose(x.std(0), torch.ones(x.shape[1]), atol=1e-4)


def test_info_terms_citation_and_split_caveat(fake: dict[str, object]) -> None:
    info = htad_module.htad().info
    assert "Fake terms: research and educational purposes only." in info
    assert "Garcia-Ceja" in info and "MMM 2021" in info and "no subject IDs" in info
    (fake["dir"] / "HTAD Readme.txt").unlink()  # type: ignore[operator]
    assert "research and educational use only" in htad_module.htad().info


def test_noise_knobs_touch_only_their_modality(fake: dict[str, object]) -> None:
    clean = htad_module.htad()
    noisy = htad_module.htad(audio_noise=0.5)
    assert torch.equal(noisy.inputs["accel"], clean.inputs["accel"])
    ratio = (noisy.inputs["audio"] - clean.inputs["audio"]).std(0) / clean.inputs["audio"].std(0)
    assert torch.allclose(ratio, torch.full_like(ratio, 0.5), atol=0.06)  # in units of each column's std
    shaky = htad_module.htad(accel_noise=1.0)
    assert torch.equal(shaky.inputs["audio"], clean.inputs["audio"])
    assert not torch.equal(shaky.inputs["accel"], clean.inputs["accel"])
    assert torch.equal(htad_module.htad(accel_noise=1.0).inputs["accel"], shaky.inputs["accel"])
    assert not torch.equal(
        htad_module.htad(accel_noise=1.0, noise_seed=1).inputs["accel"], shaky.inputs["accel"]
    )
    with pytest.raises(ConfigError, match="accel_noise"):
        htad_module.htad(accel_noise=-0.1)


def test_missing_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    fake_spec = lambda n, *a: None if n == "multiviewstacking" else real(n, *a)  # noqa: E731
    monkeypatch.setattr(packages.importlib.util, "find_spec", fake_spec)
    with pytest.raises(MissingDataError, match=r"pip install --no-deps multiviewstacking==0\.7\.5"):
        htad_module.htad()


@pytest.mark.realdata
@realdata
def test_real_data() -> None:
    ds = htad_module.htad()
    assert len(ds) == 1386 and ds.input_shape("audio") == (36,) and ds.input_shape("accel") == (16,)
    counts = dict(zip(ds.class_names or [], ds.labels.bincount().tolist(), strict=True))
    assert counts == {
        "brush_teeth": 180,
        "eat_chips": 282,
        "mop_floor": 181,
        "sweep": 178,
        "type_on_keyboard": 179,
        "wash_hands": 180,
        "watch_tv": 206,
    }
    assert all(torch.isfinite(x).all() for x in ds.inputs.values())
    assert "research and educational purposes" in ds.info and "Garcia-Ceja" in ds.info
