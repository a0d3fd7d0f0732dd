"""Kinetics-Sounds on the data layer: shapes, alignment of the two streams, split, errors naming the
index line, and one epoch of each recipe."""

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
from mmbalance.data.papers import kinetics_sounds as ks
from mmbalance.data.sources.files import IMAGENET_MEAN, IMAGENET_STD
from mmbalance.errors import ConfigError, DataError

RECIPES = Path(__file__).parents[4] / "recipes" / "kinetics_sounds"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ks.write_fixture(tmp_path_factory.mktemp("ks"), n=4, n_test=1, n_frames=5)


def colour_class(frames: torch.Tensor) -> int:
    """The palette entry nearest to the mean colour of ImageNet-normalised frames ``[T, 3, H, W]``."""
    rgb = frames.mean(dim=(0, 2, 3)) * torch.tensor(IMAGENET_STD) + torch.tensor(IMAGENET_MEAN)
    return int(np.argmin([np.abs(rgb.numpy() * 255 - np.array(p)).sum() for p in ks.PALETTE]))


def tone_class(spectrogram: torch.Tensor) -> int:
    """The class whose tone (400 Hz times class + 1) is the loudest bin of a 35,400 Hz spectrogram."""
    peak = int(spectrogram[0].mean(dim=1).argmax()) * 35400 / 512
    return round(peak / 400.0) - 1


def build(root: Path, **kwargs: object) -> ManifestDataset:
    return DATASETS.get("kinetics_sounds")(root=str(root), **kwargs)


def test_samples_have_the_papers_shapes_and_dtypes(root: Path) -> None:
    ds = build(root, frame_size=32, val_fraction=0.25)
    ds.fit(ds.split()["train"])
    sample = ds[0]
    assert sample.inputs["audio"].shape == (1, 257, 1003) and ds.input_shape("audio") == (1, 257, 1003)
    assert sample.inputs["visual"].shape == (3, 3, 32, 32) and ds.input_shape("visual") == (3, 3, 32, 32)
    assert all(x.dtype == torch.float32 for x in sample.inputs.values())
    assert ds.class_names == sorted(ks.CLASSES) and ds.modalities == ["audio", "visual"]


def test_audio_and_frames_of_every_row_encode_its_label(root: Path) -> None:
    ds = build(root, frame_size=16, val_fraction=0.25)
    ds.fit(ds.split()["train"])
    train_view = ds.train_view(seed=3)
    for row in range(len(ds)):
        for sample in (ds[row], train_view[row]):  # evaluation and augmented training reads
            label = ks.CLASSES.index(ds.class_names[sample.label])
            assert tone_class(sample.inputs["audio"]) == label
            assert colour_class(sample.inputs["visual"]) == label


def test_split_is_test_csv_and_a_seeded_stratified_draw_of_train_csv(root: Path) -> None:
    ds = build(root, val_fraction=0.25)
    parts = ds.split()
    assert [len(parts[k]) for k in ("train", "val", "test")] == [12, 4, 4]  # 1 of 4 per class to val
    test_csv = (root / "annotations" / "test.csv").read_text()
    assert all(ds.ids[i] in test_csv for i in parts["test"].tolist())
    assert sorted(ds.table.columns["label"][i] for i in parts["val"].tolist()) == sorted(ks.CLASSES)
    assert torch.equal(build(root, val_fraction=0.25).split()["val"], parts["val"])


def _rewrite(root: Path, part: str, old: str, new: str) -> None:
    path = root / "annotations" / f"{part}.csv"
    path.write_text(path.read_text().replace(old, new, 1))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: _rewrite(r, "train", "label", "class"), r"train.csv: header .* lacks \['label'\]"),
        (
            lambda r: _rewrite(r, "train", "yt00001_000010", ""),
            r"train.csv line 3: .*expected a label and a youtube_id",
        ),
        (
            lambda r: (r / "test_wav" / "yt00004_000010.wav").unlink(),
            r"test.csv line 2 \(clip 'yt00004_000010'\): audio",
        ),
        (
            lambda r: shutil.rmtree(r / "train_img"),
            r"train.csv line 2 \(clip 'yt00000_000010'\): frame folder",
        ),
    ],
    ids=["header", "empty-id", "wav", "frames"],
)
def test_a_bad_index_line_or_file_is_one_line_naming_file_and_line(
    root: Path, tmp_path: Path, edit: Callable[[Path], object], message: str
) -> None:
    r = Path(shutil.copytree(root, tmp_path / "ks"))
    edit(r)
    with pytest.raises(DataError, match=message) as err:
        build(r, val_fraction=0.25)
    assert "\n" not in str(err.value)


def test_drop_missing_leaves_out_clips_without_files(root: Path, tmp_path: Path) -> None:
    r = Path(shutil.copytree(root, tmp_path / "ks"))
    shutil.rmtree(r / "test_img" / "Image-01-FPS" / "yt00004_000010")
    ds = build(r, val_fraction=0.25, drop_missing=True)
    assert len(ds) == 19 and "yt00004_000010" not in ds.ids


def test_root_is_required() -> None:
    with pytest.raises(ConfigError, match="dataset kinetics_sounds needs root"):
        DATASETS.get("kinetics_sounds")()


@pytest.mark.parametrize("method", ["igm", "gaal", "mla", "joint"])
def test_each_recipe_trains_one_epoch_on_the_fixture(tmp_path: Path, method: str) -> None:
    small = ks.write_fixture(tmp_path / "data", n=3, n_test=1, n_frames=3)
    out = tmp_path / "run"
    argv = ["train", "--recipe", str(RECIPES / f"{method}.yaml"), f"dataset__root={small}", "--epochs", "1"]
    argv += ["--out", str(out), "--quiet", "dataset__frame_size=16", "dataset__val_fraction=0.34"]
    argv += ["data__num_workers=0", "data__batch_size=4"]
    argv += ["model__encoders__audio={name: cnn, channels: [8], out_dim: 512}"]  # a fast audio encoder
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (
        metrics["method"] == method and metrics["dataset"] == "kinetics_sounds" and metrics["epochs_run"] == 1
    )


def test_a_valid_csv_with_its_folders_is_the_validation_split(root: Path, tmp_path: Path) -> None:
    r = Path(shutil.copytree(root, tmp_path / "ks"))
    shutil.copytree(r / "test_wav", r / "valid_wav")
    shutil.copytree(r / "test_img", r / "valid_img")
    test_csv = (r / "annotations" / "test.csv").read_text().replace("yt", "v")
    (r / "annotations" / "valid.csv").write_text(test_csv)
    for folder in [*(r / "valid_wav").iterdir(), *(r / "valid_img" / "Image-01-FPS").iterdir()]:
        folder.rename(folder.with_name(folder.name.replace("yt", "v")))
    ds = build(r, val_fraction=0.5)
    parts = ds.split()
    assert [len(parts[k]) for k in ("train", "val", "test")] == [16, 4, 4]
    assert all(ds.ids[i].startswith("v") for i in parts["val"].tolist())
    assert ds.table.columns["audio"][parts["val"][0]].startswith("valid_wav/")
