"""The manifest layer: the --modalities parser, tables, sources and the fitted preprocessing."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmbalance.data.generate import write_manifest
from mmbalance.data.manifest import ManifestDataset, class_order
from mmbalance.data.sources.columns import ColumnsSource
from mmbalance.data.spec import format_modalities, parse_modalities
from mmbalance.data.table import read_table
from mmbalance.errors import ConfigError, DataError

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
columns = st.from_regex(r"[A-Za-z][A-Za-z0-9 _.-]{0,8}", fullmatch=True).map(str.strip).filter(bool)


@st.composite
def specs(draw: st.DrawFn) -> dict:
    out = {}
    for name in draw(st.lists(names, min_size=1, max_size=4, unique=True)):
        kind = draw(st.sampled_from(["image", "audio", "text", "features", "columns"]))
        if kind == "columns":
            out[name] = {"kind": kind, "columns": draw(st.lists(columns, min_size=1, max_size=4))}
        else:
            out[name] = {"kind": kind, "column": draw(columns)}
    return out


@given(specs())
def test_modalities_parse_back_what_format_writes(spec: dict) -> None:
    assert parse_modalities(format_modalities(spec)) == spec


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        ("image", "follows no columns"),
        ("image=img:photo", "does not parse"),
        ("image=image:", "does not parse"),
        ("a=image:x,a=text:y", "twice"),
        ("1x=image:x", "not a modality name"),
        ("a=image:x,b", "follows no columns"),
    ],
)
def test_bad_modalities_are_one_line_errors(text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as err:
        parse_modalities(text)
    assert "\n" not in str(err.value)


def test_class_order_is_numeric_for_numbers() -> None:
    assert class_order(["10", "2", "1.5"]) == ["1.5", "2", "10"] and class_order(["b", "a"]) == ["a", "b"]


def table(cols: dict) -> object:
    return read_table(cols)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)), min_size=2, max_size=30),
    st.lists(st.sampled_from(["x", "y", "z", None]), min_size=2, max_size=30),
)
def test_columns_standardise_impute_and_one_hot_with_training_statistics(nums: list, cats: list) -> None:
    n = min(len(nums), len(cats))
    nums, cats = nums[:n], cats[:n]
    spec = {"kind": "columns", "columns": ["a", "c"], "categorical": ["c"], "numeric": ["a"]}
    src = ColumnsSource("t", table({"a": nums, "c": cats}), spec)
    src.fit(range(n))
    seen = [v for v in nums if v is not None]
    train_cats = sorted({c for c in cats if c is not None})
    assert src.shape == (2 + len(train_cats) + 1,)
    rows = torch.stack([src.read(i)[0] for i in range(n)])
    values, indicator, hot = rows[:, 0], rows[:, 1], rows[:, 2:]
    assert torch.equal(indicator, torch.tensor([float(v is None) for v in nums]))
    assert torch.all(values[indicator == 1] == 0)  # imputed with the training mean, 0 once standardised
    if len(seen) > 1 and np.std(seen) > 1e-3:
        assert abs(float(values[indicator == 0].mean())) < 1e-3 * max(1.0, float(np.abs(seen).max()))
    assert torch.all(hot.sum(1) == 1)  # exactly one slot: a category, or the unknown/missing slot
    assert torch.equal(hot[:, -1], torch.tensor([float(c is None) for c in cats]))
    present = [src.read(i)[1] for i in range(n)]
    assert present == [a is not None or c is not None for a, c in zip(nums, cats, strict=True)]


def test_columns_preprocessing_replays_from_state() -> None:
    t = table({"a": ["1", "2", "3", ""], "c": ["u", "v", "u", "w"]})
    src = ColumnsSource("t", t, {"kind": "columns", "columns": ["a", "c"]})
    src.fit([0, 1, 2])  # "w" is not a training category
    again = ColumnsSource("t", t, {"kind": "columns", "columns": ["a", "c"]})
    again.load_state(src.state())
    for i in range(4):
        assert torch.equal(src.read(i)[0], again.read(i)[0])
    assert src.read(3)[0].tolist() == [0.0, 1.0, 0.0, 0.0, 1.0]  # missing a, unseen category c


@pytest.mark.parametrize(("value", "needle"), [("abc", "'abc' is not a finite number"), ("inf", "'inf'")])
def test_a_bad_value_in_a_numeric_column_names_file_line_and_column(
    tmp_path: Path, value: str, needle: str
) -> None:
    path = tmp_path / "m.csv"
    path.write_text("label,age\na,1\nb,2\na,3\nb," + value + "\n")
    with pytest.raises(DataError, match=rf"m.csv line 5, column 'age': {needle}"):
        ManifestDataset(read_table(path), "t=columns:age")


def test_a_mostly_text_column_is_categorical(tmp_path: Path) -> None:
    t = table({"label": ["a", "b", "a"], "c": ["x", "y", "3"]})
    ds = ManifestDataset(t, "t=columns:c")
    ds.fit(torch.arange(3))
    assert ds.input_shape("t") == (4,)  # three categories and the unknown slot


@pytest.mark.parametrize(
    ("csv", "args", "needle"),
    [
        ("label,x\n", {}, "no rows"),
        ("label,x\na,1\n", {"label": "y"}, "has no label column 'y'"),
        ("label,x\na,1\n,2\n", {}, "line 3, column 'label': empty label"),
        ("label,x,id\na,1,k\nb,2,k\n", {"id_column": "id"}, "line 3, column 'id': id 'k' repeats"),
        ("label,x\na,1\nb\n", {}, "line 3 has 1 cells; expected 2"),
    ],
)
def test_manifest_errors_name_the_place(tmp_path: Path, csv: str, args: dict, needle: str) -> None:
    (tmp_path / "m.csv").write_text(csv)
    with pytest.raises(DataError, match=needle) as err:
        ManifestDataset(read_table(tmp_path / "m.csv"), "t=columns:x", **args)
    assert "\n" not in str(err.value)


def test_missing_file_and_class_only_in_test_are_found_before_training(tmp_path: Path) -> None:
    write_manifest(tmp_path, 12, kinds=("image",))
    path = tmp_path / "manifest.csv"
    text = path.read_text().replace("images/4.png", "images/none.png")
    path.write_text(text)
    with pytest.raises(DataError, match=r"line 6, column 'photo': file .*none.png does not exist"):
        ManifestDataset(read_table(path), "image=image:photo")
    (tmp_path / "s.csv").write_text("label,x,split\na,1,train\nb,2,val\nc,3,test\na,4,train\n")
    ds = ManifestDataset(read_table(tmp_path / "s.csv"), "t=columns:x", split_column="split")
    parts = ds.split()
    with pytest.raises(DataError, match=r"class 'b' is in the val split but in no training row"):
        ds.fit(parts["train"], {k: parts[k] for k in ("val", "test")})


def test_image_audio_text_features_read_with_fixed_shapes(tmp_path: Path) -> None:
    write_manifest(tmp_path, 9, image_size=20, sample_rate=8000)
    spec = {
        "image": {"kind": "image", "column": "photo", "size": [12, 10], "channels": 1},
        "sound": {"kind": "audio", "column": "sound", "duration": 0.5, "sample_rate": 16000},
        "wave": {"kind": "audio", "column": "sound", "representation": "waveform", "duration": 0.5},
        "text": {"kind": "text", "column": "notes", "max_length": 5},
        "emb": {"kind": "features", "column": "emb"},
    }
    ds = ManifestDataset(read_table(tmp_path / "manifest.csv"), spec)
    ds.fit(torch.arange(9))
    s = ds[0]
    assert tuple(s.inputs["image"].shape) == ds.input_shape("image") == (1, 12, 10)
    assert tuple(s.inputs["sound"].shape) == ds.input_shape("sound") == (1, 257, 8000 // 160 + 1)
    assert tuple(s.inputs["wave"].shape) == (1, 8000)
    # 0.25 s of audio at 8 kHz resampled to 16 kHz: 4000 samples, then zero padding to 0.5 s
    assert (
        float(s.inputs["wave"][0, 3990:4000].abs().sum()) > 0
        and float(s.inputs["wave"][0, 4010:].abs().sum()) == 0
    )
    assert s.inputs["text"].dtype == torch.long and tuple(s.inputs["text"].shape) == (5,)
    assert tuple(s.inputs["emb"].shape) == (8,) and all(s.present.values())


def test_resampling_keeps_a_tone_at_its_frequency() -> None:
    from mmbalance.data.sources.files import resample

    t = np.arange(8000) / 8000
    x = resample(np.sin(2 * np.pi * 440 * t).astype(np.float32), 8000, 22050)
    assert len(x) == 22050
    peak = np.argmax(np.abs(np.fft.rfft(x))) * 22050 / len(x)
    assert math.isclose(peak, 440, abs_tol=2)


def test_augmentation_is_a_pure_function_of_seed_epoch_and_row(tmp_path: Path) -> None:
    write_manifest(tmp_path, 6, kinds=("image",), image_size=32)
    ds = ManifestDataset(read_table(tmp_path / "manifest.csv"), "image=image:photo")
    ds.fit(torch.arange(6))
    view = ds.train_view(seed=3)
    a, b, c = view[(2, 0)].inputs["image"], view[(2, 0)].inputs["image"], view[(2, 1)].inputs["image"]
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(ds[2].inputs["image"], ds[2].inputs["image"])  # evaluation: no augmentation


def test_missing_columns_are_imputed_and_whole_modalities_absent(tmp_path: Path) -> None:
    write_manifest(tmp_path, 10, kinds=("numeric", "categorical", "image"))
    ds = ManifestDataset(read_table(tmp_path / "manifest.csv"), "tab=columns:age,bp,sex,image=image:photo")
    ds.fit(torch.arange(10))
    some = ds.with_missing({"tab": 2 / 3}, seed=0)[4].inputs["tab"]
    assert (
        int(some[[1, 3]].sum()) + int(some[-1]) == 2
    )  # two of three columns missing: indicators/unknown slot
    gone = ds.with_missing({"image": 1.0}, seed=0)[4]
    assert gone.present["image"] is False and float(gone.inputs["image"].abs().sum()) == 0
    with pytest.raises(ConfigError, match="only a columns modality"):
        ds.with_missing({"image": 0.5}, seed=0)


def _clip(folder: Path, n: int) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    for k in range(n):
        img = np.zeros((8, 8, 3), dtype=np.uint8)
        img[:, :4] = 20 * k  # frame k: its left half has brightness 20k, so frames are told apart
        Image.fromarray(img).save(folder / f"{k:03d}.png")


def test_frames_take_segment_middles_and_augment_a_clip_alike(tmp_path: Path) -> None:
    _clip(tmp_path / "clips" / "a", 9)
    (tmp_path / "m.csv").write_text("label,clip\nx,clips/a\ny,\n")
    spec = {"v": {"kind": "frames", "column": "clip", "frames": 3, "size": 8, "normalize": "none"}}
    ds = ManifestDataset(read_table(tmp_path / "m.csv"), spec)
    ds.fit(torch.arange(2))
    x = ds[0].inputs["v"]
    assert tuple(x.shape) == ds.input_shape("v") == (3, 3, 8, 8)
    bright = (x[:, 0, 0, 0] * 255 / 20).round().tolist()
    assert bright == [1.0, 4.0, 7.0]  # middles of the segments [0,3), [3,6), [6,9)
    assert ds[1].present["v"] is False and float(ds[1].inputs["v"].abs().sum()) == 0
    view = ds.train_view(seed=0)
    for epoch in range(6):
        clip = view[(0, epoch)].inputs["v"]
        left = clip[:, 0, :, 0].mean(1) > clip[:, 0, :, -1].mean(1)  # per frame: is the bright half left?
        assert bool(left.all()) or not bool(left.any())  # one flip for the whole clip
        idx = (clip[:, 0, :, :].amax(dim=(1, 2)) * 255 / 20).round().tolist()
        assert all(3 * s <= k < 3 * s + 3 for s, k in enumerate(idx))  # one random frame per segment
