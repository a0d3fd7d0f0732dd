"""Twitter2015 on TomBERT's layout (a generated fixture): shapes, alignment, split, errors, recipes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mmbalance.cli import main
from mmbalance.data import build_dataset
from mmbalance.data.papers.twitter2015 import COLOURS, WORDS, write_fixture
from mmbalance.errors import ConfigError, DataError

RECIPES = Path(__file__).resolve().parents[4] / "recipes" / "twitter2015"
SMALL = [
    "--epochs",
    "1",
    "--quiet",
    "--device",
    "cpu",
    "dataset__image_size=16",
    "model__encoders__image__name=cnn",
    "model__feature_dim=8",
    "data__batch_size=4",
    "data__num_workers=0",
]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_fixture(tmp_path / "twitter2015", n=12)


def test_rows_have_the_documented_shapes_labels_and_split(root: Path) -> None:
    ds = build_dataset("twitter2015", root=str(root), image_size=20, max_length=12)
    split = ds.split()
    assert [len(split[k]) for k in ("train", "val", "test")] == [12, 6, 6]
    assert ds.modalities == ["text", "image"]  # IGM's stage order: text first
    ds.fit(split["train"], {"val": split["val"], "test": split["test"]})
    assert ds.class_names == ["0", "1", "2"]
    sample = ds[int(split["val"][0])]
    assert sample.inputs["text"].dtype == torch.long and sample.inputs["text"].shape == (12,)
    assert sample.inputs["image"].dtype == torch.float32 and sample.inputs["image"].shape == (3, 20, 20)
    assert ds.ids[int(split["val"][0])] == "dev:2"  # the file and line the row came from


def test_text_is_cleaned_as_igm_does_and_modalities_stay_aligned(root: Path) -> None:
    ds = build_dataset("twitter2015", root=str(root), image_size=8)
    ds.fit(ds.split()["train"])
    texts = ds.table.columns["text"]
    mean, std = (
        torch.tensor([0.485, 0.456, 0.406])[:, None, None],
        torch.tensor([0.229, 0.224, 0.225])[:, None, None],
    )
    assert texts[0] == "rt t is awful sad terrible tonight train"  # $T$ -> t, @user0 and ':' dropped
    for i in range(len(ds)):
        label = ds.class_names[int(ds.labels[i])]
        assert WORDS[label] in texts[i]
        colour = (ds[i].inputs["image"] * std + mean).mean((1, 2))
        assert torch.allclose(colour * 255, torch.tensor(COLOURS[label], dtype=torch.float32), atol=12)


def test_without_dev_tsv_val_is_a_seeded_stratified_part_of_train(tmp_path: Path) -> None:
    root = write_fixture(tmp_path / "t", n=30, dev=False)
    a = build_dataset("twitter2015", root=str(root), val_fraction=0.2).split()
    b = build_dataset("twitter2015", root=str(root), val_fraction=0.2).split()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [len(a[k]) for k in ("train", "val", "test")] == [24, 6, 15]
    ds = build_dataset("twitter2015", root=str(root), val_fraction=0.2)
    assert sorted(ds.labels[a["val"]].tolist()) == [0, 0, 1, 1, 2, 2]
    assert all(ds.ids[i].startswith("train:") for i in a["val"].tolist())


def _rewrite(path: Path, line: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("line", "text", "needle"),
    [
        (3, "1\t1\t1001.jpg\tonly four cells", r"train.tsv line 3 has 4 tab-separated cells; expected 5"),
        (4, "2\t2\t\tsome text\tTarget", r"train.tsv line 4, field 'ImageID' is empty"),
        (2, "0\t7\t1000.jpg\ttext\tTarget", r"train.tsv line 2, field 'Label': '7'; expected 0, 1 or 2"),
        (5, "3\t0\tnowhere.jpg\ttext\tTarget", r"train.tsv line 5, field 'ImageID': image .*nowhere.jpg"),
        (1, "index\tLabel\tString", r"train.tsv line 1: header .* lacks \['ImageID'\]"),
    ],
)
def test_a_malformed_line_is_a_one_line_error_naming_file_and_line(
    root: Path, line: int, text: str, needle: str
) -> None:
    _rewrite(root / "train.tsv", line, text)
    with pytest.raises(DataError, match=needle) as err:
        build_dataset("twitter2015", root=str(root))
    assert "\n" not in str(err.value)


def test_a_corrupt_image_names_its_tsv_line_and_the_cli_stops_with_one_line(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (root / "twitter2015_images" / "1003.jpg").write_bytes(b"not a jpeg")
    ds = build_dataset("twitter2015", root=str(root), image_size=8)
    ds.fit(ds.split()["train"])
    with pytest.raises(DataError, match=r"train.tsv line 5, field 'ImageID': cannot read .*1003.jpg"):
        ds[3]
    (root / "test.tsv").unlink()
    args = ["train", "--recipe", str(RECIPES / "joint.yaml"), f"dataset__root={root}", "--out", str(tmp_path)]
    assert main([*args, *SMALL]) == 2
    err = capsys.readouterr().err.strip()
    assert "test.tsv does not exist" in err and "\n" not in err


def test_root_and_a_positive_max_words_are_required(root: Path) -> None:
    with pytest.raises(ConfigError, match="dataset twitter2015 needs root"):
        build_dataset("twitter2015")
    with pytest.raises(ConfigError, match="max_words=0; expected a positive integer"):
        build_dataset("twitter2015", root=str(root), max_words=0)


@pytest.mark.parametrize("method", ["igm", "gaal", "mla", "joint"])
def test_one_epoch_of_each_recipe_runs(root: Path, tmp_path: Path, method: str) -> None:
    out = tmp_path / method
    recipe = RECIPES / f"{method}.yaml"
    assert main(["train", "--recipe", str(recipe), f"dataset__root={root}", "--out", str(out), *SMALL]) == 0
    assert (out / "metrics.json").is_file()


def test_the_igm_recipe_runs_with_a_local_bert(root: Path, tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    bert = tmp_path / "bert"
    bert.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *" ".join(WORDS.values()).split(), "rt", "t", "is"]
    (bert / "vocab.txt").write_text("\n".join(vocab) + "\n")
    transformers.BertTokenizerFast(str(bert / "vocab.txt")).save_pretrained(bert)
    config = transformers.BertConfig(
        vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8
    )
    transformers.BertModel(config).save_pretrained(bert)
    out = tmp_path / "run"
    args = ["train", "--recipe", str(RECIPES / "igm.yaml"), f"dataset__root={root}", f"dataset__bert={bert}"]
    assert main([*args, "--out", str(out), *SMALL, "dataset__max_length=16"]) == 0
    saved = (out / "config.yaml").read_text()
    assert "hf_text" in saved and str(bert) in saved


def test_compare_shares_a_recipe_across_methods(root: Path, tmp_path: Path) -> None:
    """``compare --recipe``: the recipe's training settings for every method; its strategy options for its
    own method (and variants) only."""
    import yaml

    out = tmp_path / "cmp"
    small = [a for a in SMALL if a not in ("--epochs", "1")]
    args = [
        "compare",
        "--recipe",
        str(RECIPES / "igm.yaml"),
        "--methods",
        "igm[rho=0.01],ogm_ge",
        "--seeds",
        "1",
    ]
    assert main([*args, "--epochs", "1", "--out", str(out), f"dataset__root={root}", *small]) == 0
    recipe = yaml.safe_load((RECIPES / "igm.yaml").read_text())
    runs = out / "runs" / "twitter2015"
    for method, folder in (("igm", "igm+rho=0.01"), ("ogm_ge", "ogm_ge")):
        cfg = yaml.safe_load((runs / folder / "seed0" / "config.yaml").read_text())
        assert cfg["strategy"]["name"] == method and cfg["dataset"]["name"] == "twitter2015"
        assert all(cfg["optim"][k] == v for k, v in recipe["optim"].items())
        assert cfg["train"]["seed"] == 0 and cfg["data"]["batch_size"] == 4  # --seeds and overrides win
    igm = yaml.safe_load((runs / "igm+rho=0.01" / "seed0" / "config.yaml").read_text())["strategy"]
    own = {k: v for k, v in recipe["strategy"].items() if k not in ("name", "rho")}
    assert all(igm[k] == v for k, v in own.items()) and igm["rho"] == 0.01  # the variant wins


def test_sweep_starts_from_a_recipe(root: Path, tmp_path: Path) -> None:
    import yaml

    out = tmp_path / "sw"
    small = [a for a in SMALL if a not in ("--epochs", "1", "--device", "cpu")]
    args = [
        "sweep",
        "--recipe",
        str(RECIPES / "igm.yaml"),
        "--param",
        "strategy__rho=0.01,0.02",
        "--seeds",
        "1",
    ]
    assert main([*args, "--epochs", "1", "--out", str(out), f"dataset__root={root}", *small]) == 0
    recipe = yaml.safe_load((RECIPES / "igm.yaml").read_text())["strategy"]
    for rho in ("0.01", "0.02"):
        cfg = yaml.safe_load(
            next((out / "runs").glob(f"twitter2015/igm/*{rho}/seed0/config.yaml")).read_text()
        )
        assert cfg["strategy"]["rho"] == float(rho) and cfg["strategy"]["name"] == "igm"
        assert cfg["strategy"]["sam_mode"] == recipe["sam_mode"]
