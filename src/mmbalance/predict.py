"""Prediction with a finished run: the saved preprocessing and the best model, on new manifest rows.

Used by ``mmbalance predict`` and :class:`mmbalance.Predictor`. Each row is read once; a row that cannot
be read (a missing or corrupt file, a non-number in a numeric column) is not dropped: it is counted,
reported, and written with an empty prediction and the reason.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mmbalance.data import collate
from mmbalance.data.table import read_table
from mmbalance.errors import ConfigError, DataError
from mmbalance.experiment import Setup, load_run
from mmbalance.types import Batch


@dataclass
class Predictions:
    """Per row of a manifest: class probabilities (``NaN`` rows where unreadable), each modality's own
    predicted class index, and the reason a row could not be read (``""`` when it could)."""

    classes: list[str]
    probs: Tensor  # [N, C]
    modality_preds: dict[str, Tensor]  # m -> [N] class index, -1 where unreadable
    errors: list[str]
    ids: list[Any]

    @property
    def labels(self) -> list[str]:
        top = self.probs.argmax(1).tolist()
        return ["" if e else self.classes[i] for i, e in zip(top, self.errors, strict=True)]


def manifest_rows(s: Setup, data: Any, label_required: bool = False) -> Any:
    """The run's dataset replayed over new rows (a path, DataFrame or mapping); only manifest runs can."""
    if not hasattr(s.dataset, "rows_for"):
        raise ConfigError(
            f"the run was trained on the built-in dataset {s.config['dataset']['name']!r}; prediction on new "
            "rows needs a run trained on a manifest (--data)"
        )
    return s.dataset.rows_for(read_table(data), label_required=label_required, strict=False)


def readable_batches(dataset: Any, batch_size: int) -> Iterator[tuple[Batch | None, dict[int, str]]]:
    """Batches of the rows that read, each with the reasons of the rows of its span that did not: every row
    is read once, and an unreadable one does not stop the others."""
    for start in range(0, len(dataset), batch_size):
        samples, errors = [], {}
        for i in range(start, min(start + batch_size, len(dataset))):
            try:
                samples.append(dataset[i])
            except DataError as exc:
                errors[i] = str(exc)
        yield (collate(samples) if samples else None), errors


@torch.no_grad()
def predict_dataset(s: Setup, dataset: Any) -> Predictions:
    """Fused probabilities (the strategy's own test-time fusion) and per-modality predictions."""
    n, c = len(dataset), s.dataset.num_classes
    probs = torch.full((n, c), float("nan"))
    uni = {m: torch.full((n,), -1, dtype=torch.long) for m in s.model.modalities}
    errors = [""] * n
    s.model.eval()
    for batch, bad in readable_batches(dataset, s.config["data"]["eval_batch_size"]):
        for i, reason in bad.items():
            errors[i] = reason
        if batch is None:
            continue
        batch = batch.to(s.device)
        out = s.model(batch.inputs) if batch.present is None else s.model(batch.inputs, batch.present)
        rows = batch.index.cpu()
        probs[rows] = torch.softmax(s.strategy.predict(out).float(), dim=1).cpu()
        for m, z in out.unimodal_logits.items():
            pred = z.argmax(1).cpu()
            has = batch.has(m)  # a modality a row lacks predicts nothing for it (-1: written empty)
            uni[m][rows] = pred if has is None else torch.where(has.cpu(), pred, -1)
    return Predictions(list(s.dataset.class_names or []), probs, uni, errors, list(dataset.ids))


def write_predictions(p: Predictions, out: str | Path) -> None:
    """CSV: ``id``, ``prediction``, ``p_<class>`` per class, ``<modality>_prediction`` (empty where the row
    lacks that modality) and ``error``."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "id",
                "prediction",
                *[f"p_{c}" for c in p.classes],
                *[f"{m}_prediction" for m in p.modality_preds],
                "error",
            ]
        )
        for i, label in enumerate(p.labels):
            bad = bool(p.errors[i])
            probs = ["" if bad else f"{v:.6g}" for v in p.probs[i].tolist()]
            mods = ["" if bad or int(v[i]) < 0 else p.classes[int(v[i])] for v in p.modality_preds.values()]
            w.writerow([p.ids[i], label, *probs, *mods, p.errors[i]])
    tmp.replace(out)  # a failure never leaves half a file in place of an earlier one


def predict_file(run_dir: str | Path, data: Any, out: str | Path, device: str | None = None) -> str:
    """``mmbalance predict``: write the predictions CSV; return a one-line summary."""
    s = load_run(run_dir, device)
    p = predict_dataset(s, manifest_rows(s, data))
    write_predictions(p, out)
    bad = [e for e in p.errors if e]
    line = f"{len(p.errors) - len(bad)} row(s) predicted, {len(bad)} unreadable; written to {out}"
    if bad:
        line += f"\nfirst unreadable row: {bad[0]}"
    return line
