"""CelebA on the data layer: the native layout read into GAAL's task (Attractive from the face and the 39
other attributes), the official partition, one-line errors naming file and line, each recipe for one
epoch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mmbalance.cli import main
from mmbalance.data import build_dataset
from mmbalance.data.papers.celeba import ATTRIBUTES, write_fixture
from mmbalance.errors import ConfigError, DataError

SMALL = [
    "dataset__image_size=16",
    "model__feature_dim=8",
    "model__encoders__image__name=cnn",
    "model__encoders__image__channels=[4]",
    "model__encoders__image__out_dim=8",
    "model__encoders__tabular__hidden=[8]",
    "data__batch_size=6",
    "data__num_workers=0",
    "train__device=cpu",
    "--epochs",
    "1",
    "--quiet",
]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_fixture(tmp_path / "celeba", n=24)


def fitted(root: Path, **kwargs: object):
    d = build_dataset("celeba", root=str(root), **kwargs)
    s = d.split()
    d.fit(s["train"], {k: s[k] for k in ("val", "test")})
    return d, s


def test_shapes_dtypes_and_classes(root: Path) -> None:
    d, _ = fitted(root)
    x = d[0]
    assert x.inputs["image"].shape == (3, 225, 225) and x.inputs["image"].dtype == torch.float32
    # 39 binary fields, each one-hot over {0, 1} plus the (always empty) slot for an unseen value
    assert x.inputs["tabular"].shape == (3 * 39,) and x.inputs["tabular"].dtype == torch.float32
    assert d.class_names == ["0", "1"] and d.modalities == ["image", "tabular"]
    assert d.sources["tabular"].columns == [a for a in ATTRIBUTES if a != "Attractive"]


def test_modalities_stay_aligned_with_the_label(root: Path) -> None:
    d, _ = fitted(root, image_size=8)
    smiling = d.sources["tabular"].columns.index("Smiling")
    for i in range(len(d)):
        s = d[i]
        red_minus_blue = float(s.inputs["image"][0].mean() - s.inputs["image"][2].mean())
        assert (red_minus_blue > 0) == (s.label == 1)  # red faces are the Attractive ones
        assert s.inputs["tabular"][3 * smiling + s.label] == 1.0  # Smiling == Attractive in the fixture
        assert d.ids[i] == f"{i + 1:06d}.jpg"


def test_split_is_the_official_partition(root: Path) -> None:
    s = build_dataset("celeba", root=str(root)).split()
    train = [i for i in range(24) if i % 4 < 2]
    want = {"train": train, "val": list(range(2, 24, 4)), "test": list(range(3, 24, 4))}
    assert {k: v.tolist() for k, v in s.items()} == want


def test_minus_one_is_zero_and_another_label_can_be_chosen(root: Path) -> None:
    d, _ = fitted(root, label="Smiling")
    assert "Attractive" in d.sources["tabular"].columns and d.labels.tolist() == [
        int((i // 4) % 2 == 0) for i in range(24)
    ]
    with pytest.raises(ConfigError, match="label='Cute' is not one of the dataset's attributes"):
        build_dataset("celeba", root=str(root), label="Cute")


def test_anno_eval_img_subfolders_are_accepted(root: Path) -> None:
    for sub, name in (("Anno", "list_attr_celeba.txt"), ("Eval", "list_eval_partition.txt")):
        (root / sub).mkdir()
        (root / name).rename(root / sub / name)
    (root / "Img").mkdir()
    (root / "img_align_celeba").rename(root / "Img" / "img_align_celeba")
    assert len(build_dataset("celeba", root=str(root))) == 24


def _edit(path: Path, line: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("file", "line", "text", "message"),
    [
        ("list_attr_celeba.txt", 5, "000003.jpg " + "1 " * 39, r"celeba.txt line 5: .*40 values -1 or 1"),
        ("list_attr_celeba.txt", 6, "000004.jpg " + "0 " * 40, r"celeba.txt line 6: .*40 values -1 or 1"),
        ("list_attr_celeba.txt", 7, "000001.jpg " + "1 " * 40, r"line 7: image '000001.jpg' is listed twice"),
        ("list_attr_celeba.txt", 1, "25", r"celeba.txt line 1 says 25 images but the file lists 24"),
        ("list_attr_celeba.txt", 1, "many", r"list_attr_celeba.txt line 1: 'many'; expected the number"),
        ("list_eval_partition.txt", 4, "000004.jpg 3", r"list_eval_partition.txt line 4: .*0, 1 or 2"),
        ("list_eval_partition.txt", 4, "", r"list_attr_celeba.txt line 6: image '000004.jpg' has no line in"),
    ],
)
def test_malformed_lines_are_named(root: Path, file: str, line: int, text: str, message: str) -> None:
    _edit(root / file, line, text)
    with pytest.raises(DataError, match=message):
        build_dataset("celeba", root=str(root))


def test_missing_files_are_named(root: Path) -> None:
    (root / "img_align_celeba" / "000005.jpg").unlink()
    with pytest.raises(DataError, match=r"celeba.txt line 7, column 'image_file': file .*000005.jpg"):
        build_dataset("celeba", root=str(root))
    (root / "list_eval_partition.txt").unlink()
    with pytest.raises(DataError, match=r"CelebA partition not found: expected .*list_eval_partition.txt or"):
        build_dataset("celeba", root=str(root))
    with pytest.raises(ConfigError, match="dataset celeba needs root"):
        build_dataset("celeba")


@pytest.mark.parametrize("method", ["gaal", "joint", "mla", "igm"])
def test_recipe_trains_one_epoch(root: Path, tmp_path: Path, method: str) -> None:
    recipe = Path(__file__).parents[4] / "recipes" / "celeba" / f"{method}.yaml"
    out = tmp_path / "run"
    args = ["train", "--recipe", str(recipe), f"dataset__root={root}", "--out", str(out), *SMALL]
    assert main(args) == 0
    assert (out / "history.csv").read_text().count("\n") == 2  # header + one epoch
