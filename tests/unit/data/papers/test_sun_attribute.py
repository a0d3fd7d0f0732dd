"""SUN Attribute on the data layer: the MATLAB database read into GAAL's task (open area from the scene and
the 101 other attributes), binarised votes, the seeded stratified split, one-line errors naming file and
entry, each recipe for one epoch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.io import loadmat, savemat

from mmbalance.cli import main
from mmbalance.data import build_dataset
from mmbalance.data.papers.sun_attribute import write_fixture
from mmbalance.errors import ConfigError, DataError

SMALL = [
    "dataset__image_size=16",
    "model__feature_dim=8",
    "model__encoders__image__name=cnn",
    "model__encoders__image__channels=[4]",
    "model__encoders__image__out_dim=8",
    "model__encoders__tabular__hidden=[8]",
    "data__batch_size=8",
    "data__num_workers=0",
    "train__device=cpu",
    "--epochs",
    "1",
    "--quiet",
]
DB = "SUNAttributeDB"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_fixture(tmp_path / "sun", n=30)


def fitted(root: Path, **kwargs: object):
    d = build_dataset("sun_attribute", root=str(root), **kwargs)
    s = d.split()
    d.fit(s["train"], {k: s[k] for k in ("val", "test")})
    return d, s


def test_shapes_dtypes_and_classes(root: Path) -> None:
    d, _ = fitted(root)
    x = d[0]
    assert x.inputs["image"].shape == (3, 225, 225) and x.inputs["image"].dtype == torch.float32
    assert x.inputs["tabular"].shape == (3 * 101,) and x.inputs["tabular"].dtype == torch.float32
    assert d.class_names == ["0", "1"] and "open area" not in d.sources["tabular"].columns
    assert d.ids[1] == "a/abbey/sun_0001.jpg"


def test_votes_are_binarised_at_the_threshold(root: Path) -> None:
    votes = (0.0, 1 / 3, 2 / 3, 1.0)  # the fixture's open-area vote of row i is votes[i % 4]
    assert build_dataset("sun_attribute", root=str(root)).labels.tolist() == [
        int(i % 4 >= 2) for i in range(30)
    ]
    strict = build_dataset("sun_attribute", root=str(root), threshold=1.0).labels.tolist()
    assert strict == [int(votes[i % 4] == 1.0) for i in range(30)]
    low = build_dataset("sun_attribute", root=str(root), threshold=1 / 3).labels.tolist()
    assert low == [int(i % 4 >= 1) for i in range(30)]
    with pytest.raises(ConfigError, match="threshold=0; expected a vote fraction in"):
        build_dataset("sun_attribute", root=str(root), threshold=0)


def test_modalities_stay_aligned_with_the_label(root: Path) -> None:
    d, _ = fitted(root, image_size=8)
    cols = d.sources["tabular"].columns
    horizon, enclosed = cols.index("far-away horizon"), cols.index("enclosed area")
    for i in range(len(d)):
        s = d[i]
        green = float(s.inputs["image"][1].mean() - s.inputs["image"][0].mean())
        assert (green > 1.0) == (s.label == 1)  # ImageNet-normalised: grey gives about 0.13
        assert s.inputs["tabular"][3 * horizon + s.label] == 1.0
        # enclosed = 1 - open votes: 1 when open is 0 votes or 1/3 (>= 2/3 enclosed), else 0
        assert s.inputs["tabular"][3 * enclosed + (1 - s.label)] == 1.0


def test_split_is_a_seeded_stratified_draw(root: Path) -> None:
    a = build_dataset("sun_attribute", root=str(root)).split()
    b = build_dataset("sun_attribute", root=str(root)).split()
    c = build_dataset("sun_attribute", root=str(root), split_seed=3).split()
    assert all(torch.equal(a[k], b[k]) for k in a) and not all(torch.equal(a[k], c[k]) for k in a)
    rows = torch.cat(list(a.values())).sort().values
    assert torch.equal(rows, torch.arange(30))  # a partition of the rows
    labels = build_dataset("sun_attribute", root=str(root)).labels  # 16 rows of class 0, 14 of class 1
    counts = {k: [int((labels[a[k]] == c).sum()) for c in (0, 1)] for k in a}
    assert counts == {"train": [11, 10], "val": [2, 1], "test": [3, 3]}  # round(70 %), round(10 %), the rest


def _rewrite(root: Path, file: str, name: str, value: np.ndarray) -> None:
    savemat(str(root / DB / file), {name: value})


def test_malformed_database_is_named(root: Path) -> None:
    labels = loadmat(str(root / DB / "attributeLabels_continuous.mat"))["labels_cv"]
    bad = labels.copy()
    bad[4, 1] = 1.5
    _rewrite(root, "attributeLabels_continuous.mat", "labels_cv", bad)
    with pytest.raises(
        DataError, match=r"continuous.mat row 5 \(b/beach/sun_0004.jpg\), column 'open area': 1.5"
    ):
        build_dataset("sun_attribute", root=str(root))
    _rewrite(root, "attributeLabels_continuous.mat", "labels_cv", labels[:, :50])
    with pytest.raises(DataError, match=r"labels_cv is 30 x 50; expected 30 x 102"):
        build_dataset("sun_attribute", root=str(root))
    _rewrite(root, "attributeLabels_continuous.mat", "votes", labels)
    with pytest.raises(
        DataError, match=r"continuous.mat has no variable 'labels_cv'; expected it beside \['votes'\]"
    ):
        build_dataset("sun_attribute", root=str(root))
    (root / DB / "attributeLabels_continuous.mat").unlink()
    with pytest.raises(
        DataError, match=r"attributeLabels_continuous.mat not found: expected .*SUNAttributeDB"
    ):
        build_dataset("sun_attribute", root=str(root))


def test_bad_image_entries_are_named(root: Path) -> None:
    images = loadmat(str(root / DB / "images.mat"))["images"]
    images[7, 0] = np.array([images[2, 0][0]])
    _rewrite(root, "images.mat", "images", images)
    with pytest.raises(DataError, match=r"images.mat entry 8: 'f/field/sun_0002.jpg' repeats entry 3"):
        build_dataset("sun_attribute", root=str(root))
    images[7, 0] = np.array([""])
    _rewrite(root, "images.mat", "images", images)
    with pytest.raises(DataError, match=r"images.mat entry 8: .*expected a non-empty string"):
        build_dataset("sun_attribute", root=str(root))
    write_fixture(root, n=30)
    (root / "images" / "a/abbey/sun_0005.jpg").unlink()
    with pytest.raises(
        DataError, match=r"images.mat entry 6, column 'image_file': file .*sun_0005.jpg does not"
    ):
        build_dataset("sun_attribute", root=str(root))
    with pytest.raises(ConfigError, match="dataset sun_attribute needs root"):
        build_dataset("sun_attribute")


@pytest.mark.parametrize("method", ["gaal", "joint", "mla", "igm"])
def test_recipe_trains_one_epoch(root: Path, tmp_path: Path, method: str) -> None:
    recipe = Path(__file__).parents[4] / "recipes" / "sun_attribute" / f"{method}.yaml"
    out = tmp_path / "run"
    args = ["train", "--recipe", str(recipe), f"dataset__root={root}", "--out", str(out), *SMALL]
    assert main(args) == 0
    assert (out / "history.csv").read_text().count("\n") == 2  # header + one epoch
