"""``Predictor``: train, predict and evaluate on your own tables from Python, on the same run directory
as the command line (``fit`` is ``mmbalance train --data``; ``predict`` is ``mmbalance predict``).

Example (docs/data.md has one that runs as written)::

    from mmbalance import Predictor
    p = Predictor(label="diagnosis", method="gaal",
                  modalities={"image": "image:photo", "tabular": "columns:age,sex,bp"})
    p.fit(train_df, epochs=30)
    p.predict(new_df); p.predict_proba(new_df); p.evaluate(test_df, missing={"tabular": 1.0})
    p.save("model_dir"); Predictor.load("model_dir")
"""

from __future__ import annotations

import csv
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmbalance import config as config_mod
from mmbalance.data.missing import check_missing
from mmbalance.data.spec import parse_modalities
from mmbalance.data.table import Table, read_table
from mmbalance.errors import ConfigError
from mmbalance.experiment import Setup, load_run, train_run


def _spec(modalities: Mapping[str, Any] | str) -> Any:
    """``{"image": "image:photo"}`` (the ``--modalities`` item per modality) or the full mapping form."""
    if isinstance(modalities, Mapping) and all(isinstance(v, str) for v in modalities.values()):
        return parse_modalities(",".join(f"{m}={v}" for m, v in modalities.items()))
    return modalities


class Predictor:
    """A multimodal classifier over a table (CSV/Parquet path, DataFrame or ``{column: values}``).

    ``path`` is the run directory (default: a new temporary one); ``overrides`` are config overrides as on
    the command line (``{"optim__lr": 1e-3}``).
    """

    def __init__(
        self,
        label: str,
        modalities: Mapping[str, Any] | str,
        method: str = "joint",
        path: str | Path | None = None,
        split_column: str | None = None,
        id_column: str | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.label, self.modalities, self.method = label, _spec(modalities), method
        self.split_column, self.id_column = split_column, id_column
        self.overrides = dict(overrides or {})
        self.path = Path(path) if path is not None else Path(tempfile.mkdtemp(prefix="mmbalance-"))
        self._setup: Setup | None = None

    # -- training -----------------------------------------------------------------------------------
    def fit(self, data: Any, epochs: int = 30, seed: int = 0, progress: bool = False) -> Predictor:
        """Train on ``data`` (a manifest path, or a table saved into the run directory as ``train.csv``
        so the run can be rebuilt); re-fitting into a finished directory with the same config reuses it."""
        manifest, root = self._manifest(data)
        dataset = {
            "name": "manifest",
            "path": str(manifest),
            "modalities": self.modalities,
            "label": self.label,
            "split_column": self.split_column,
            "id_column": self.id_column,
            "root": root,
        }
        cfg = {
            "dataset": dataset,
            "strategy": {"name": self.method},
            "train": {"epochs": epochs, "seed": seed},
        }
        overrides = [f"{k}={v}" for k, v in self.overrides.items()]
        self.metrics = train_run(config_mod.resolve(cfg, overrides), self.path, progress=progress)
        self._setup = None
        return self

    def _manifest(self, data: Any) -> tuple[Path, str | None]:
        if isinstance(data, (str, Path)):
            return Path(data).expanduser().resolve(), None
        table = read_table(data)
        self.path.mkdir(parents=True, exist_ok=True)
        out = (self.path / "train.csv").resolve()
        tmp = out.with_name("train.csv.tmp")
        _write_table(table, tmp)
        started = (self.path / "metrics.json").exists() or (self.path / "last.pt").exists()
        if started and out.exists() and out.read_bytes() != tmp.read_bytes():
            tmp.unlink()
            raise ConfigError(
                f"{self.path} holds a predictor trained on other data; fit into a new Predictor(path=...)"
            )
        tmp.replace(out)
        return out, str(Path.cwd())  # relative paths in a DataFrame are relative to the working directory

    # -- using a trained model ----------------------------------------------------------------------
    @property
    def setup(self) -> Setup:
        if self._setup is None:
            self._setup = load_run(self.path)
        return self._setup

    @property
    def classes(self) -> list[str]:
        return list(self.setup.dataset.class_names or [])

    def _rows(self, data: Any, label_required: bool) -> Any:
        from mmbalance.predict import manifest_rows

        return manifest_rows(self.setup, data, label_required=label_required)

    def predict_proba(self, data: Any) -> np.ndarray:
        """``[N, C]`` class probabilities in :attr:`classes` order (rows that cannot be read: NaN)."""
        from mmbalance.predict import predict_dataset

        return predict_dataset(self.setup, self._rows(data, False)).probs.numpy()

    def predict(self, data: Any) -> list[str]:
        """The predicted class name per row (``""`` for a row that cannot be read)."""
        from mmbalance.predict import predict_dataset

        return predict_dataset(self.setup, self._rows(data, False)).labels

    def evaluate(self, data: Any, missing: Mapping[str, float] | None = None) -> dict[str, Any]:
        """Metrics on labelled ``data`` (fused and per modality), with ``missing`` modalities as
        ``mmbalance evaluate --missing``."""
        import torch

        from mmbalance.data import BatchLoader
        from mmbalance.trainer import evaluate

        s, spec = self.setup, dict(missing or {})
        check_missing(spec, getattr(s.model, "input_modalities", s.model.modalities))
        rows = self._rows(data, True)
        rows = rows.with_missing(spec, s.config["train"]["seed"]) if spec else rows
        loader = BatchLoader(rows, torch.arange(len(rows)), s.config["data"]["eval_batch_size"])
        return evaluate(s.model, s.strategy, loader, s.device, s.config["train"]["precision"])

    # -- persistence --------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Copy the run directory to ``path`` (which must not exist); returns it."""
        path = Path(path)
        if path.exists():
            raise ConfigError(f"{path} exists; expected a new directory to save the predictor in")
        shutil.copytree(self.path, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Predictor:
        """A predictor over a finished run directory (from :meth:`save`, ``fit`` or ``mmbalance train``)."""
        s = load_run(path)
        ds = s.config["dataset"]
        if ds["name"] != "manifest":
            raise ConfigError(
                f"{path} was trained on the built-in dataset {ds['name']!r}; expected a manifest run"
            )
        p = cls(
            ds["label"],
            ds["modalities"],
            s.config["strategy"]["name"],
            path,
            ds["split_column"],
            ds["id_column"],
        )
        p._setup = s
        return p


def _write_table(table: Table, out: Path) -> None:
    with out.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(list(table.columns))
        w.writerows(
            zip(*[["" if v is None else v for v in col] for col in table.columns.values()], strict=True)
        )


__all__: Sequence[str] = ["Predictor"]
