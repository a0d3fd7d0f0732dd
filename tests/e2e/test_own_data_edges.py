"""Edge cases of your own data: changed manifests, values read at prediction, workers, category spellings."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from mmbalance.cli import main
from mmbalance.data.generate import write_manifest
from mmbalance.data.manifest import ManifestDataset
from mmbalance.data.table import read_table
from mmbalance.errors import ConfigError

FAST = ["data__batch_size=16", "model__feature_dim=8", "train__device=cpu", "--quiet"]
MODS = "tab=columns:age,bp,sex,text=text:notes"


def train(manifest: Path, out: Path, *extra: str) -> int:
    args = ["train", "--data", str(manifest), "--modalities", MODS, "--epochs", "2", "--out", str(out)]
    return main([*args, "--id-column", "id", *FAST, *extra])


def test_a_manifest_changed_after_training_is_refused_not_misread(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path / "d", 60, kinds=("numeric", "categorical", "text"))
    assert train(manifest, tmp_path / "r") == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()}
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join(lines[:-5]) + "\n")  # five rows fewer: split.json would point elsewhere
    capsys.readouterr()
    assert train(manifest, tmp_path / "r") == 2
    assert "trained on other data" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "r")]) == 2
    assert "has changed since the run was trained" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()} == before


def test_predict_reports_a_non_number_and_ignores_an_unknown_label(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "d", 60, kinds=("numeric", "categorical", "text"))
    assert train(manifest, tmp_path / "r") == 0
    rows = list(csv.DictReader(manifest.open()))[:4]
    rows[1]["age"], rows[2]["label"] = "abc", "c9"
    new = tmp_path / "new.csv"
    with new.open("w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    out = tmp_path / "p.csv"
    assert main(["predict", str(tmp_path / "r"), "--data", str(new), "--out", str(out)]) == 0
    got = list(csv.DictReader(out.open()))
    assert got[1]["prediction"] == "" and "'abc' is not a finite number" in got[1]["error"]
    assert got[2]["prediction"] in ("c0", "c1", "c2") and got[2]["error"] == ""


def test_the_number_of_workers_does_not_change_training(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "d", 60, kinds=("numeric", "categorical", "text"))
    for w in (0, 1):
        assert train(manifest, tmp_path / f"w{w}", f"data__num_workers={w}") == 0
    h0, h1 = ((tmp_path / f"w{w}" / "history.csv").read_text().splitlines() for w in (0, 1))
    loss = [[line.split(",")[1] for line in h[1:]] for h in (h0, h1)]
    assert loss[0] == loss[1]


def test_a_corrupt_file_read_in_a_worker_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path / "d", 40, kinds=("image", "numeric"))
    (tmp_path / "d" / "images" / "3.png").write_bytes(b"not a png")
    args = [
        "train",
        "--data",
        str(manifest),
        "--modalities",
        "image=image:photo,tab=columns:age,bp",
        "--epochs",
    ]
    code = main([*args, "1", "--out", str(tmp_path / "r"), "data__num_workers=1", *FAST])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "column 'photo': cannot read" in err


def test_category_and_label_spellings_of_one_value_are_one_value() -> None:
    t = read_table({"label": [1.0, 2.0, 1.0, 2.0], "site": [1.0, 2.0, None, 1.0]})
    spec = {"t": {"kind": "columns", "columns": ["site"], "categorical": ["site"]}}
    ds = ManifestDataset(t, spec, label="label")
    ds.fit(torch.arange(4))
    new = ds.rows_for(read_table({"label": ["1", "2"], "site": ["1", " 2 "]}), label_required=True)
    assert new.labels.tolist() == [0, 1] and ds.class_names == ["1", "2"]
    assert new[0].inputs["t"].tolist() == [1.0, 0.0, 0.0] and new[1].inputs["t"].tolist() == [0.0, 1.0, 0.0]


def test_an_empty_split_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_manifest(tmp_path / "d", 6, kinds=("numeric",))
    args = ["train", "--data", str(manifest), "--modalities", "tab=columns:age,bp", "--epochs", "1"]
    assert main([*args, "--out", str(tmp_path / "r"), *FAST]) == 2
    assert "split is empty" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_the_feature_cache_key_ignores_the_trainable_projection() -> None:
    from mmbalance.models import build_encoder
    from mmbalance.models.feature_cache import backbone_key

    torch.manual_seed(0)
    a = build_encoder("resnet18", (3, 16, 16), 8, freeze=True)
    b = build_encoder("resnet18", (3, 16, 16), 8, freeze=True)
    b.load_state_dict({k: v for k, v in a.state_dict().items() if not k.startswith("proj")}, strict=False)
    key = next(k for k in a.state_dict() if k.startswith("proj"))
    assert not torch.equal(a.state_dict()[key], b.state_dict()[key])
    assert backbone_key(a, (3, 16, 16)) == backbone_key(b, (3, 16, 16))
    assert backbone_key(a, (3, 16, 16)) != backbone_key(a, (3, 16, 16), "bf16")


def test_refitting_a_predictor_on_other_data_keeps_the_first(tmp_path: Path) -> None:
    from mmbalance import Predictor

    manifest = write_manifest(tmp_path / "d", 60, kinds=("numeric", "categorical", "text"))
    rows = list(csv.DictReader(manifest.open()))
    cols = {k: [r[k] for r in rows] for k in rows[0]}
    p = Predictor(label="label", modalities={"tab": "columns:age,bp,sex"}, path=tmp_path / "m")
    p.fit(cols, epochs=1)
    first = (tmp_path / "m" / "train.csv").read_bytes()
    with pytest.raises(ConfigError, match="trained on other data"):
        Predictor(label="label", modalities={"tab": "columns:age,bp,sex"}, path=tmp_path / "m").fit(
            {k: v[:50] for k, v in cols.items()}, epochs=1
        )
    assert (tmp_path / "m" / "train.csv").read_bytes() == first
    assert json.loads((tmp_path / "m" / "metrics.json").read_text())["epochs_run"] == 1


def test_paths_and_column_names_are_taken_literally(tmp_path: Path) -> None:
    folder = tmp_path / "run #3: a"  # a '#' and ': ' would be YAML syntax
    manifest = write_manifest(folder, 30, kinds=("numeric",))
    args = ["train", "--data", str(manifest), "--modalities", "tab=columns:bp", "--label", "label"]
    assert main([*args, "--id-column", "id", "--epochs", "1", "--out", str(tmp_path / "r"), *FAST]) == 0
    import yaml

    cfg = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert cfg["dataset"]["path"] == str(manifest.resolve()) and cfg["dataset"]["id_column"] == "id"
