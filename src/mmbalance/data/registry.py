"""The dataset registry (kept in its own module so dataset files can import it without cycles)."""

from __future__ import annotations

from mmbalance.data.base import MultimodalDataset
from mmbalance.registry import Registry

DATASETS: Registry[MultimodalDataset] = Registry("dataset", entry_points="mmbalance.datasets")
