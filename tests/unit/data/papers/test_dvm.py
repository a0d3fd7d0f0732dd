"""DVM-Car on the data layer: `mmbalance prepare dvm` joins the native tables as MMCL does (once, atomically),
the dataset reads the prepared file into GAAL's task (car model from the ad image and 17 fields), one-line
errors naming file and line, each recipe for one epoch."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

import mmbalance.data.papers.dvm_prepare as dvm_prepare
from mmbalance.cli import main
from mmbalance.data import build_dataset
from mmbalance.data.papers.dvm import write_fixture
from mmbalance.errors import ConfigError, DataError
from mmbalance.prepare import prepare

SMALL = [
    "dataset__image_size=16",
    "model__feature_dim=8",
    "model__encoders__image__name=cnn",
    "model__encoders__image__channels=[4]",
    "model__encoders__image__out_dim=8",
    "model__encoders__tabular__hidden=[8]",
    "data__batch_size=40",
    "data__num_workers=0",
    "train__device=cpu",
    "--epochs",
    "1",
    "--quiet",
]


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fixture(tmp_path_factory.mktemp("dvm") / "DVM")


@pytest.fixture(scope="module")
def prepared(raw: Path) -> Path:
    prepare("dvm", raw, log=lambda _: None)
    return raw


def rows(root: Path) -> list[dict[str, str]]:
    with (root / dvm_prepare.OUTPUT).open(newline="") as f:
        return list(csv.DictReader(f))


def test_prepare_joins_filters_and_splits_as_mmcl(prepared: Path) -> None:
    r = rows(prepared)
    assert list(r[0]) == dvm_prepare.HEADER
    # 103 adverts of 2_1 less an empty colour, a mileage "n/a" and a year with no price; 8_1 has too few
    assert [a["Genmodel_ID"] for a in r] == ["2_1"] * 100 + ["7_2"] * 100
    assert all(a["image"].endswith("$$image_0.jpg") for a in r)  # the first image of each advert
    first = r[0]
    assert (
        first["image"]
        == "resized_DVM/Abarth/124 Spider/2015/Red/Abarth$$124 Spider$$2015$$Red$$2_1$$0$$image_0.jpg"
    )
    assert (first["Engine_size"], first["Entry_price"], first["Reg_year"]) == ("1", "15000", "2015")
    wheelbase = [float(a["Wheelbase"]) for a in r[:100]]  # 2600 each (the zero filled from another advert)
    assert all(abs(w - 2600) <= 50 for w in wheelbase) and len(set(wheelbase)) > 10  # integer jitter
    for model in ("2_1", "7_2"):
        split = [a["split"] for a in r if a["Genmodel_ID"] == model]
        assert [split.count(k) for k in ("train", "val", "test")] == [40, 10, 50]


def test_prepare_skips_when_done_is_atomic_and_force_redoes(prepared: Path, monkeypatch) -> None:
    out = prepared / dvm_prepare.OUTPUT
    before, logged = out.read_bytes(), []
    out.write_text("edited")
    prepare("dvm", prepared, log=logged.append)
    assert out.read_text() == "edited" and "already prepared" in logged[0]

    def broken(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(dvm_prepare.os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        prepare("dvm", prepared, force=True, log=lambda _: None)
    assert out.read_text() == "edited" and not list(prepared.glob("*.tmp"))  # old file whole, no leftover
    monkeypatch.undo()
    prepare("dvm", prepared, force=True, log=lambda _: None)
    assert out.read_bytes() == before  # the same seed gives the same file


def test_prepare_command(prepared: Path, tmp_path: Path) -> None:
    root = write_fixture(tmp_path / "DVM")
    assert main(["prepare", "dvm", "--root", str(root), "--quiet"]) == 0
    assert rows(root) == rows(prepared)


def test_shapes_dtypes_and_alignment(prepared: Path) -> None:
    d = build_dataset("dvm", root=str(prepared), image_size=16)
    s = d.split()
    d.fit(s["train"], {k: s[k] for k in ("val", "test")})
    assert d.class_names == ["2_1", "7_2"] and d.ids[0] == "2_1$$0"
    # 13 numeric fields (value + missing indicator) and Color (3), Bodytype (2), Gearbox (2), Fuel_type (1),
    # each one-hot with a slot for an unseen value
    assert d.input_shape("tabular") == (26 + 4 + 3 + 3 + 2,) and d.input_shape("image") == (3, 16, 16)
    body = 26 + 4  # the Bodytype slots follow the numeric fields and Color's
    for i in range(0, 200, 7):
        x = d[i]
        image = x.inputs["image"]
        assert image.dtype == torch.float32 and float(image.min()) >= 0.0 and float(image.max()) <= 1.0
        assert (float(image[0].mean() - image[2].mean()) > 0) == (x.label == 0)  # 2_1 red, 7_2 blue
        assert x.inputs["tabular"][body + x.label] == 1.0  # Convertible (2_1) / Hatchback (7_2)


def _edit(path: Path, line: int, old: str, new: str) -> None:
    lines = path.read_text().splitlines()
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("table", "line", "old", "new", "message"),
    [
        (
            "Ad_table.csv",
            5,
            ",1.0L,",
            ",big,",
            r"Ad_table.csv line 5, column 'Engin_size': 'bi' is not a number",
        ),
        ("Ad_table.csv", 5, ",2020,", ",2020,,", r"Ad_table.csv line 5 has 17 cells; expected 16"),
        ("Ad_table.csv", 1, "Price", "Cost", r"Ad_table.csv has no column\(s\) \['Price'\]"),
        ("Price_table.csv", 3, ",2016,", ",twenty,", r"Price_table.csv line 3, column 'Year': 'twenty'"),
        ("Price_table.csv", 8, ",15500", ",cheap", r"Price_table.csv line 8, column 'Entry_price': 'cheap'"),
        ("Image_table.csv", 2, "2_1$$0$$0", "2_1", r"Image_table.csv line 2: image '2_1'"),
        ("Ad_table (extra).csv", 6, ",1500,", ",tall,", r"Ad_table \(extra\).csv line 6, column 'Height'"),
    ],
)
def test_malformed_tables_are_named(
    tmp_path: Path, table: str, line: int, old: str, new: str, message: str
) -> None:
    root = write_fixture(tmp_path / "DVM")
    _edit(root / "tables_V2.0" / table, line, old, new)
    with pytest.raises(DataError, match=message):
        prepare("dvm", root, log=lambda _: None)
    assert not (root / dvm_prepare.OUTPUT).exists()


def test_missing_files_are_named(tmp_path: Path) -> None:
    root = write_fixture(tmp_path / "DVM")
    with pytest.raises(
        DataError, match=r"dvm_prepared.csv does not exist; run `mmbalance prepare dvm --root"
    ):
        build_dataset("dvm", root=str(root))
    (root / "tables_V2.0" / "Price_table.csv").unlink()
    with pytest.raises(DataError, match=r"DVM table .*Price_table.csv does not exist"):
        prepare("dvm", root, log=lambda _: None)
    with pytest.raises(ConfigError, match="dataset dvm needs root"):
        build_dataset("dvm")


def test_a_missing_image_names_the_prepared_line(prepared: Path, tmp_path: Path) -> None:
    root = write_fixture(tmp_path / "DVM")
    prepare("dvm", root, log=lambda _: None)
    image = root / rows(root)[3]["image"]
    image.unlink()
    with pytest.raises(
        DataError, match=r"dvm_prepared.csv line 5, column 'image': file .*2_1\$\$3\$\$image_0.jpg"
    ):
        build_dataset("dvm", root=str(root))


@pytest.mark.parametrize("method", ["gaal", "joint", "mla", "igm"])
def test_recipe_trains_one_epoch(prepared: Path, tmp_path: Path, method: str) -> None:
    recipe = Path(__file__).parents[4] / "recipes" / "dvm" / f"{method}.yaml"
    out = tmp_path / "run"
    args = ["train", "--recipe", str(recipe), f"dataset__root={prepared}", "--out", str(out), *SMALL]
    assert main(args) == 0
    assert (out / "history.csv").read_text().count("\n") == 2  # header + one epoch
