"""Sarcasm on IGM's layout (a generated fixture): shapes, alignment, split, errors, recipes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mmbalance.cli import main
from mmbalance.data import build_dataset
from mmbalance.data.papers._jsonlines import json_records
from mmbalance.data.papers.sarcasm import COLOURS, WORDS, write_fixture
from mmbalance.errors import ConfigError, DataError

RECIPES = Path(__file__).resolve().parents[4] / "recipes" / "sarcasm"
SMALL = [
    *("--epochs", "1", "--quiet", "--device", "cpu", "dataset__image_size=16", "data__num_workers=0"),
    *("model__encoders__image__name=cnn", "model__feature_dim=8", "data__batch_size=4"),
]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_fixture(tmp_path / "sarcasm", n=12)


def test_rows_have_the_documented_shapes_labels_and_split(root: Path) -> None:
    ds = build_dataset("sarcasm", root=str(root), image_size=20, max_length=10)
    split = ds.split()
    assert [len(split[k]) for k in ("train", "val", "test")] == [12, 6, 6]
    assert ds.modalities == ["text", "image"]
    ds.fit(split["train"], {"val": split["val"], "test": split["test"]})
    assert ds.class_names == ["0", "1"]
    sample = ds[int(split["test"][0])]
    assert sample.inputs["text"].dtype == torch.long and sample.inputs["text"].shape == (10,)
    assert sample.inputs["image"].dtype == torch.float32 and sample.inputs["image"].shape == (3, 20, 20)
    assert ds.ids[int(split["test"][0])] == "test_data:0"  # the file and the record's index in it


def test_text_is_cleaned_as_igm_does_and_modalities_stay_aligned(root: Path) -> None:
    ds = build_dataset("sarcasm", root=str(root), image_size=8)
    ds.fit(ds.split()["train"])
    texts = ds.table.columns["text"]
    assert texts[1] == "oh great yet another monday <user> tag1"  # lower case, '!' and '#' dropped
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    for i in range(len(ds)):
        label = ds.class_names[int(ds.labels[i])]
        assert texts[i].startswith(WORDS[label])
        colour = (ds[i].inputs["image"] * std[:, None, None] + mean[:, None, None]).mean((1, 2)) * 255
        assert torch.allclose(colour, torch.tensor(COLOURS[label], dtype=torch.float32), atol=12)


def test_without_a_valid_file_val_is_a_seeded_stratified_part_of_train(tmp_path: Path) -> None:
    root = write_fixture(tmp_path / "s", n=20, valid=False)
    a = build_dataset("sarcasm", root=str(root), val_fraction=0.2).split()
    b = build_dataset("sarcasm", root=str(root), val_fraction=0.2).split()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [len(a[k]) for k in ("train", "val", "test")] == [16, 4, 10]
    ds = build_dataset("sarcasm", root=str(root), val_fraction=0.2)
    assert sorted(ds.labels[a["val"]].tolist()) == [0, 0, 1, 1]
    assert all(ds.ids[i].startswith("train_data:") for i in a["val"].tolist())


def test_mmsd2_files_with_image_ids_are_read_too(tmp_path: Path) -> None:
    root = write_fixture(tmp_path / "s", n=6)
    for old, new in (("train_data", "train"), ("valid_data", "valid"), ("test_data", "test")):
        path = root / "annotations" / f"{old}.json"
        records = json.loads(path.read_text())
        for r in records:
            r["image_id"] = Path(r.pop("image")).stem
        (root / "annotations" / f"{new}.json").write_text(json.dumps(records))
        path.unlink()
    assert len(build_dataset("sarcasm", root=str(root))) == 12


def test_json_records_give_the_line_each_record_starts_on(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text('[{"a": 1}, {"a": 2},\n\n  {"a":\n 3}\n]\n')
    assert json_records(path) == [(1, {"a": 1}), (1, {"a": 2}), (3, {"a": 3})]
    path.write_text('[{"a": 1}\n {"a": 2}]')
    with pytest.raises(DataError, match=r"a.json line 2: expected ',' or '\]' after a record"):
        json_records(path)
    path.write_text('{"a": 1}')
    with pytest.raises(DataError, match=r"a.json line 1: expected a JSON list of records"):
        json_records(path)


def _replace(root: Path, line: int, text: str) -> None:
    path = root / "annotations" / "train_data.json"
    lines = path.read_text().splitlines()
    lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("line", "text", "needle"),
    [
        (3, '  {"image": "a.jpg", "label": 1},', r"train_data.json line 3: the record lacks \['text'\]"),
        (4, '  {"text": "x", "label": 0},', r"train_data.json line 4: the record lacks \['image'\]"),
        (2, '  {"image": "", "text": "x", "label": 0},', r"train_data.json line 2, field 'image' is empty"),
        (5, '  {"image": "a.jpg", "text": "x", "label": 3},', r"train_data.json line 5, field 'label': 3;"),
        (6, '  {"image": "gone.jpg", "text": "x", "label": 1},', r"line 6, field 'image': image .*gone.jpg"),
        (2, "  [1, 2, 3],", r"train_data.json line 2: \[1, 2, 3\]; expected a record"),
        (3, '  {"image": "a.jpg" "text": "x"},', r"train_data.json line 3: not valid JSON"),
    ],
)
def test_a_malformed_record_is_a_one_line_error_naming_file_and_line(
    root: Path, line: int, text: str, needle: str
) -> None:
    _replace(root, line, text)
    with pytest.raises(DataError, match=needle) as err:
        build_dataset("sarcasm", root=str(root))
    assert "\n" not in str(err.value)


def test_a_missing_split_and_a_missing_root_are_one_line_errors(root: Path) -> None:
    (root / "annotations" / "test_data.json").unlink()
    with pytest.raises(DataError, match=r"has neither test_data.json nor test.json"):
        build_dataset("sarcasm", root=str(root))
    with pytest.raises(ConfigError, match="dataset sarcasm needs root"):
        build_dataset("sarcasm")


@pytest.mark.parametrize("method", ["igm", "gaal", "mla", "joint"])
def test_one_epoch_of_each_recipe_runs(root: Path, tmp_path: Path, method: str) -> None:
    out = tmp_path / method
    recipe = RECIPES / f"{method}.yaml"
    assert main(["train", "--recipe", str(recipe), f"dataset__root={root}", "--out", str(out), *SMALL]) == 0
    assert (out / "metrics.json").is_file()
