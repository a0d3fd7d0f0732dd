"""Datasets: the registry, the in-memory dataset type, splits and the batch loader."""

from mmbalance.data import avdigits as _avdigits  # noqa: F401  (registers)
from mmbalance.data import htad as _htad  # noqa: F401  (registers)
from mmbalance.data import manifest as _manifest  # noqa: F401  (registers)
from mmbalance.data import mfeat as _mfeat  # noqa: F401  (registers)
from mmbalance.data import papers as _papers  # noqa: F401  (registers)
from mmbalance.data import synthetic as _synthetic  # noqa: F401  (registers)
from mmbalance.data.base import MultimodalDataset, stratified_split
from mmbalance.data.loader import BatchLoader, SeededBatchSampler, collate
from mmbalance.data.registry import DATASETS


def list_datasets() -> list[str]:
    return DATASETS.names()


def build_dataset(name: str, **kwargs: object) -> MultimodalDataset:
    return DATASETS.build(name, **kwargs)


__all__ = [
    "DATASETS",
    "BatchLoader",
    "MultimodalDataset",
    "SeededBatchSampler",
    "build_dataset",
    "collate",
    "list_datasets",
    "stratified_split",
]
