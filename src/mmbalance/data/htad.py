"""HTAD: home-task activities recorded by a wrist accelerometer and a microphone (extracted features)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from mmbalance.data.base import MultimodalDataset
from mmbalance.data.packages import package_data_dir
from mmbalance.data.registry import DATASETS
from mmbalance.errors import check_range

PACKAGE, VERSION, SUBDIR = "multiviewstacking", "0.7.5", "data"
VIEWS = {"audio": "v1_", "accel": "v2_"}  # modality -> column prefix in the CSV header
CITATION = (
    "Garcia-Ceja et al., 'HTAD: A Home-Tasks Activities Dataset with Wrist-accelerometer and Audio "
    "Features', MMM 2021"
)
DEFAULT_TERMS = "research and educational use only; competitions and commercial use need prior permission"


def _data_dir() -> Path:
    return package_data_dir(PACKAGE, VERSION, SUBDIR)


def load_table() -> tuple[list[str], dict[str, np.ndarray]]:
    """The class name of each row and each modality's feature matrix (columns picked by header prefix)."""
    with open(_data_dir() / "htad.csv", encoding="latin-1", newline="") as f:
        header, *rows = list(csv.reader(f))
    rows = [r for r in rows if r]
    label_col = header.index("class")
    names = [r[label_col] for r in rows]
    views = {}
    for m, prefix in VIEWS.items():
        cols = [i for i, h in enumerate(header) if h.startswith(prefix)]
        table = np.array([[float(r[i]) for i in cols] for r in rows], dtype=np.float64)
        views[m] = table.reshape(-1, len(cols))
    return names, views


def terms_of_use() -> str:
    """The 'Terms of use' paragraph of the readme bundled with the package (read at run time, not shipped)."""
    path = _data_dir() / "HTAD Readme.txt"
    if not path.is_file():
        return DEFAULT_TERMS
    text = path.read_text(encoding="latin-1")
    start = text.find("Terms of use")
    if start < 0:
        return DEFAULT_TERMS
    body = text[start + len("Terms of use") :].split("Contact")[0]
    return " ".join(body.split()) or DEFAULT_TERMS


@DATASETS.register("htad")
def htad(audio_noise: float = 0.0, accel_noise: float = 0.0, noise_seed: int = 0) -> MultimodalDataset:
    """HTAD home tasks: 1386 windows, 7 classes (class names sorted alphabetically give the indices).

    ``audio`` has the 36 ``v1_*`` MFCC statistics, ``accel`` the 16 ``v2_*`` wrist-accelerometer features;
    both were recorded simultaneously and are standardised with training-split statistics. The imbalance
    knobs add Gaussian noise of ``audio_noise`` / ``accel_noise`` times each column's std (over all rows)
    before standardisation; ``noise_seed`` fixes it, with a separate stream per modality. Read from the
    ``multiviewstacking==0.7.5`` wheel.
    """
    noise = {"audio": audio_noise, "accel": accel_noise}
    for m, level in noise.items():
        check_range(f"{m}_noise", level, 0.0)
    names, views = load_table()
    class_names = sorted(set(names))
    index = {c: i for i, c in enumerate(class_names)}
    inputs = {}
    for k, (m, x) in enumerate(views.items()):
        if noise[m] > 0:
            eps = np.random.default_rng([noise_seed, k]).standard_normal(x.shape)
            x = x + noise[m] * x.std(0, keepdims=True) * eps
        inputs[m] = torch.tensor(x, dtype=torch.float32)
    return MultimodalDataset(
        name="htad",
        inputs=inputs,
        labels=torch.tensor([index[c] for c in names], dtype=torch.long),
        num_classes=len(class_names),
        default_encoders={m: {"name": "mlp"} for m in VIEWS},
        standardize=tuple(VIEWS),
        class_names=class_names,
        info=(
            f"HTAD (cite {CITATION}), from the multiviewstacking==0.7.5 wheel: audio and wrist-accelerometer "
            f"features recorded together. Terms (bundled readme): {terms_of_use()} "
            "The CSV has no subject IDs or time index, so random splits put adjacent windows of one "
            "session in train and test (optimistic). "
            f"Noise: audio_noise={audio_noise:g}, accel_noise={accel_noise:g}."
        ),
    )
