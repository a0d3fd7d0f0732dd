"""CREMA-D on the data layer: shapes, alignment of the two streams, split, errors naming the index line,
and one epoch of each recipe."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from mmbalance.cli import main
from mmbalance.data import DATASETS
from mmbalance.data.manifest import ManifestDataset
from mmbalance.data.papers import cremad as cd
from mmbalance.data.sources.files import IMAGENET_MEAN, IMAGENET_STD
from mmbalance.errors import ConfigError, DataError

RECIPES = Path(__file__).parents[4] / "recipes" / "cremad"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cd.write_fixture(tmp_path_factory.mktemp("cremad"))


def build(root: Path, **kwargs: object) -> ManifestDataset:
    return DATASETS.get("cremad")(root=str(root), **kwargs)


def copy(root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(root, tmp_path / "cremad"))


def colour_class(frames: torch.Tensor, palette: tuple[tuple[int, int, int], ...]) -> int:
    """The palette entry nearest to the mean colour of ImageNet-normalised frames ``[T, 3, H, W]``."""
    rgb = frames.mean(dim=(0, 2, 3)) * torch.tensor(IMAGENET_STD) + torch.tensor(IMAGENET_MEAN)
    return int(np.argmin([np.abs(rgb.numpy() * 255 - np.array(p)).sum() for p in palette]))


def tone_class(spectrogram: torch.Tensor, rate: int, base: float) -> int:
    """The class whose tone frequency (``base * (class + 1)``) is the spectrogram's loudest bin."""
    n_fft = 2 * (spectrogram.shape[1] - 1)
    peak = int(spectrogram[0].mean(dim=1).argmax()) * rate / n_fft
    return round(peak / base) - 1


def test_samples_have_the_papers_shapes_and_dtypes(root: Path) -> None:
    ds = build(root, frame_size=32)
    ds.fit(ds.split()["train"])
    sample = ds[0]
    assert sample.inputs["audio"].shape == (1, 257, 188) and ds.input_shape("audio") == (1, 257, 188)
    assert sample.inputs["visual"].shape == (1, 3, 32, 32) and ds.input_shape("visual") == (1, 3, 32, 32)
    assert all(x.dtype == torch.float32 for x in sample.inputs.values())
    assert ds.class_names == sorted(cd.EMOTIONS) and ds.modalities == ["audio", "visual"]
    assert build(root, frames=2, frame_size=16).input_shape("visual") == (2, 3, 16, 16)


def test_audio_and_frames_of_every_row_encode_its_label(root: Path) -> None:
    ds = build(root, frame_size=16)
    ds.fit(ds.split()["train"])
    for row in range(len(ds)):
        sample = ds[row]
        emotion = cd.EMOTIONS.index(ds.class_names[sample.label])
        assert tone_class(sample.inputs["audio"], 22050, 300.0) == emotion
        assert colour_class(sample.inputs["visual"], cd.PALETTE) == emotion
        assert ds.ids[row].split("_")[2] == cd.EMOTIONS[emotion]


def test_split_is_test_csv_and_a_seeded_stratified_tenth_of_train_csv(root: Path) -> None:
    ds = build(root, val_fraction=0.2)
    parts = ds.split()
    test_ids = {line.split(",")[0] for line in (root / "annotations" / "test.csv").read_text().split()}
    assert {ds.ids[i] for i in parts["test"].tolist()} == test_ids
    assert [len(parts[k]) for k in ("train", "val", "test")] == [
        36 - 6,
        6,
        12,
    ]  # round(0.2 * 6) = 1 per class
    assert sorted(ds.ids[i].split("_")[2] for i in parts["val"].tolist()) == sorted(cd.EMOTIONS)
    assert torch.equal(build(root, val_fraction=0.2).split()["val"], parts["val"])
    assert not torch.equal(build(root, val_fraction=0.2, split_seed=1).split()["val"], parts["val"])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda r: _line(r, "train", 3, "1003_DFA_NEU_XX,CALM"),
            r"train.csv line 3: emotion 'CALM'; expected one",
        ),
        (
            lambda r: _line(r, "train", 2, "1002_DFA_NEU_XX"),
            r"train.csv line 2: '1002_DFA_NEU_XX'; expected <clip>",
        ),
        (
            lambda r: _line(r, "test", 1, "1007_DFA_NEU_XX,SAD"),
            r"test.csv line 1: emotion SAD but clip '1007",
        ),
        (
            lambda r: (r / "AudioWAV" / "1004_DFA_NEU_XX.wav").unlink(),
            r"train.csv line 4 \(clip '1004_DFA_NEU_XX'\): audio file",
        ),
        (
            lambda r: shutil.rmtree(r / "Image-01-FPS" / "1008_DFA_NEU_XX"),
            r"test.csv line 2 \(clip '1008_DFA_NEU_XX'\): frame folder",
        ),
        (
            lambda r: [p.unlink() for p in (r / "Image-01-FPS" / "1001_DFA_NEU_XX").iterdir()],
            r"train.csv line 1 .*holds no frame images",
        ),
        (lambda r: (r / "annotations" / "test.csv").unlink(), r"index file .*test.csv does not exist"),
        (
            lambda r: _line(r, "test", 1, "1001_DFA_NEU_XX,NEU"),
            r"test.csv line 1 \(clip\): id '1001_DFA_NEU_XX' repeats .*train.csv line 1",
        ),
    ],
    ids=["emotion", "cells", "name", "wav", "frames", "empty-frames", "no-index", "duplicate"],
)
def test_a_bad_index_line_or_file_is_one_line_naming_file_and_line(
    root: Path, tmp_path: Path, edit: Callable[[Path], object], message: str
) -> None:
    r = copy(root, tmp_path)
    edit(r)
    with pytest.raises(DataError, match=message) as err:
        build(r)
    assert "\n" not in str(err.value)


def _line(root: Path, part: str, number: int, text: str) -> None:
    path = root / "annotations" / f"{part}.csv"
    lines = path.read_text().splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")


def test_drop_missing_leaves_out_clips_without_files(root: Path, tmp_path: Path) -> None:
    r = copy(root, tmp_path)
    (r / "AudioWAV" / "1004_DFA_NEU_XX.wav").unlink()
    ds = build(r, drop_missing=True)
    assert len(ds) == 47 and "1004_DFA_NEU_XX" not in ds.ids


def test_options_are_checked(root: Path) -> None:
    with pytest.raises(ConfigError, match="dataset cremad needs root"):
        DATASETS.get("cremad")()
    with pytest.raises(ConfigError, match=r"val_fraction=1\.5; expected a number strictly between 0 and 1"):
        build(root, val_fraction=1.5)


@pytest.mark.parametrize("method", ["igm", "gaal", "mla", "joint"])
def test_each_recipe_trains_one_epoch_on_the_fixture(tmp_path: Path, method: str) -> None:
    small = cd.write_fixture(tmp_path / "data", n=3, n_test=1)
    out = tmp_path / "run"
    argv = ["train", "--recipe", str(RECIPES / f"{method}.yaml"), f"dataset__root={small}", "--epochs", "1"]
    argv += ["--out", str(out), "--quiet", "dataset__frame_size=16", "dataset__val_fraction=0.34"]
    argv += ["data__num_workers=0", "data__batch_size=6"]
    argv += ["model__encoders__audio={name: cnn, channels: [8], out_dim: 512}"]  # a fast audio encoder
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == method and metrics["dataset"] == "cremad" and metrics["epochs_run"] == 1


def test_a_valid_csv_is_the_validation_split_and_nothing_is_carved(root: Path, tmp_path: Path) -> None:
    r = copy(root, tmp_path)
    train = (r / "annotations" / "train.csv").read_text().splitlines()
    (r / "annotations" / "valid.csv").write_text("\n".join(train[::6]) + "\n")  # the first clip of each class
    (r / "annotations" / "train.csv").write_text("\n".join(l for i, l in enumerate(train) if i % 6) + "\n")
    ds = build(r, val_fraction=0.5)
    parts = ds.split()
    assert [len(parts[k]) for k in ("train", "val", "test")] == [30, 6, 12]
    assert sorted(ds.ids[i] for i in parts["val"].tolist()) == sorted(l.split(",")[0] for l in train[::6])
    (r / "annotations" / "valid.csv").write_text(train[0] + "\nbroken\n")
    with pytest.raises(DataError, match=r"valid.csv line 2: 'broken'; expected <clip>,<emotion>"):
        build(r)


def test_a_corrupt_wav_is_reported_with_its_index_line_when_read(root: Path, tmp_path: Path) -> None:
    r = copy(root, tmp_path)
    (r / "AudioWAV" / "1002_DFA_NEU_XX.wav").write_bytes(b"RIFF but not audio")
    ds = build(r)
    ds.fit(ds.split()["train"])
    row = ds.ids.index("1002_DFA_NEU_XX")
    with pytest.raises(
        DataError, match=r"train.csv line 2 \(audio\): cannot read .*1002_DFA_NEU_XX.wav as audio"
    ):
        ds[row]
