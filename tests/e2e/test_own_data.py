"""Your own data end to end: a generated manifest with image and audio files, numeric and categorical
columns and text, trained, predicted, evaluated with missing modalities; and every wrong input stopping
with one line that names the place, losing nothing already written."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import torch
import yaml

from mmbalance.cli import main
from mmbalance.data import BatchLoader
from mmbalance.data.generate import write_manifest
from mmbalance.data.manifest import ManifestDataset
from mmbalance.data.table import read_table

MODALITIES = {
    "image": {"kind": "image", "column": "photo", "size": 16},
    "sound": {"kind": "audio", "column": "sound", "duration": 0.25, "n_fft": 64, "hop": 32},
    "tab": {"kind": "columns", "columns": ["age", "bp", "sex"]},
    "text": {"kind": "text", "column": "notes", "max_length": 8},
}
FAST = ["data__batch_size=16", "model__feature_dim=16", "train__device=cpu", "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("own")
    manifest = write_manifest(root / "data", 90, sample_rate=8000)
    cfg = {
        "dataset": {"name": "manifest", "path": str(manifest), "modalities": MODALITIES, "id_column": "id"},
        "model": {"encoders": {"image": {"channels": [8]}, "sound": {"channels": [8]}}},
    }
    (root / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    run = root / "run"
    assert (
        main(
            [
                "train",
                "--config",
                str(root / "cfg.yaml"),
                "--method",
                "mla",
                "--epochs",
                "2",
                "--out",
                str(run),
                *FAST,
            ]
        )
        == 0
    )
    return run, manifest


def test_a_manifest_trains_into_a_run_directory_with_its_preprocessing(trained: tuple[Path, Path]) -> None:
    run, _ = trained
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["test"]["modalities"]) == {"image", "sound", "tab", "text"}
    prep = json.loads((run / "preprocessing.json").read_text())
    assert prep["classes"] == ["c0", "c1", "c2"]
    assert (
        set(prep["sources"]["tab"]["mean"]) == {"age", "bp"} and prep["sources"]["tab"]["categories"]["sex"]
    )
    assert len(prep["sources"]["text"]["tokens"]) > 3


def test_predict_writes_names_probabilities_and_modality_predictions(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, manifest = trained
    rows = list(csv.DictReader(manifest.open()))
    new = tmp_path / "new.csv"  # held-out style rows without the label column, paths relative to a new folder
    with new.open("w", newline="") as f:
        w = csv.DictWriter(f, [k for k in rows[0] if k != "label"])
        w.writeheader()
        for r in rows[:6]:
            r = {k: v for k, v in r.items() if k != "label"}
            r["photo"], r["sound"] = str(manifest.parent / r["photo"]), str(manifest.parent / r["sound"])
            w.writerow(r)
    (manifest.parent / "images" / "bad.png").write_bytes(b"not an image")
    text = new.read_text().splitlines()
    text[2] = ",".join(
        str(manifest.parent / "images/bad.png") if c.endswith(".png") else c for c in text[2].split(",")
    )
    new.write_text("\n".join(text) + "\n")
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run), "--data", str(new), "--out", str(out)]) == 0
    assert "5 row(s) predicted, 1 unreadable" in capsys.readouterr().out
    got = list(csv.DictReader(out.open()))
    assert [r["id"] for r in got] == [r["id"] for r in rows[:6]]  # every row, in order, none dropped
    assert got[1]["prediction"] == "" and "bad.png" in got[1]["error"]
    for r in got[:1] + got[2:]:
        probs = [float(r[f"p_{c}"]) for c in ("c0", "c1", "c2")]
        assert abs(sum(probs) - 1) < 1e-4 and r["prediction"] == f"c{probs.index(max(probs))}"
        assert all(r[f"{m}_prediction"] in ("c0", "c1", "c2") for m in MODALITIES) and r["error"] == ""


def test_evaluate_with_each_modality_missing(
    trained: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = trained
    assert main(["evaluate", str(run)]) == 0
    full = json.loads(capsys.readouterr().out)["test"]
    for m in MODALITIES:
        assert main(["evaluate", str(run), "--missing", f"{m}=1.0"]) == 0
        res = json.loads(capsys.readouterr().out)["test"]
        assert m not in res["modalities"]  # an absent modality is not scored
        others = [o for o in MODALITIES if o != m]
        assert all(res["modalities"][o] == full["modalities"][o] for o in others)  # the others read as before
    assert main(["evaluate", str(run), "--missing", "tab=0.5"]) == 0
    assert "tab" in json.loads(capsys.readouterr().out)["test"]["modalities"]


def test_workers_and_resume_see_the_same_batches(trained: tuple[Path, Path]) -> None:
    _, manifest = trained
    ds = ManifestDataset(read_table(manifest), {"image": MODALITIES["image"], "tab": MODALITIES["tab"]})
    ds.fit(torch.arange(60))
    view = ds.train_view(seed=1)

    def epochs(workers: int) -> list[list[torch.Tensor]]:
        loader = BatchLoader(view, torch.arange(60), 16, shuffle=True, seed=1, num_workers=workers)
        out = []
        for e in (0, 1):
            loader.set_epoch(e)
            out.append([b.inputs["image"] for b in loader])
        return out

    zero, two = epochs(0), epochs(2)
    assert all(
        torch.equal(a, b) for e0, e2 in zip(zero, two, strict=True) for a, b in zip(e0, e2, strict=True)
    )
    assert not torch.equal(zero[0][0], zero[1][0])  # another epoch: another order and augmentation


@pytest.mark.parametrize(
    ("edit", "extra", "needle"),
    [
        (lambda t: t.replace("age,", "agee,", 1), [], "has no column 'age'"),
        (
            lambda t: t.replace("images/3.png", "images/missing.png"),
            [],
            "line 5, column 'photo': file .* does not exist",
        ),
        (lambda t: t, ["--modalities", "tab=columns:age,x=imag:photo"], "does not parse"),
        (lambda t: "id,label,photo\n", ["--modalities", "image=image:photo"], "has no rows"),
    ],
)
def test_wrong_input_is_one_line_exit_2_and_loses_nothing(
    trained: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    edit,
    extra: list,
    needle: str,
) -> None:
    run, manifest = trained
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    bad = manifest.parent / f"bad_{abs(hash(needle))}.csv"
    bad.write_text(edit(manifest.read_text()))
    mods = extra or ["--modalities", "tab=columns:age,bp,sex,image=image:photo"]
    code = main(["train", "--data", str(bad), *mods, "--epochs", "1", "--out", str(run), *FAST])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert re.search(needle, err), err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # the finished run is untouched


def test_a_corrupt_file_at_training_time_stops_with_its_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path, 30, kinds=("audio", "numeric"), sample_rate=8000)
    (tmp_path / "audio" / "7.wav").write_bytes(b"RIFF junk")
    code = main(
        [
            "train",
            "--data",
            str(manifest),
            "--modalities",
            "sound=audio:sound,tab=columns:age,bp",
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "r"),
            "dataset__modalities__sound__duration=0.1",
            *FAST,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "line 9, column 'sound': cannot read" in err and "7.wav" in err


def test_a_label_outside_the_training_classes_at_evaluation_names_its_row(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    from mmbalance import Predictor
    from mmbalance.errors import DataError

    run, manifest = trained
    rows = list(csv.DictReader(manifest.open()))
    for r in rows:
        r["photo"], r["sound"] = str(manifest.parent / r["photo"]), str(manifest.parent / r["sound"])
    rows[3]["label"] = "c9"
    bad = tmp_path / "eval.csv"
    with bad.open("w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows[:8])
    p = Predictor.load(run)
    with pytest.raises(
        DataError, match=r"eval.csv line 5, column 'label': label 'c9' is not one of the training"
    ):
        p.evaluate(bad)
    good = tmp_path / "good.csv"
    good.write_text(bad.read_text().replace(",c9,", ",c0,"))
    result = p.evaluate(good, missing={"tab": 1.0})
    assert 0.0 <= result["acc"] <= 1.0 and "tab" not in result["modalities"]
