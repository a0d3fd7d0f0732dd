"""mmbalance: train multimodal classifiers whose modalities learn in balance.

The public API: registries and builders for datasets, encoders, heads and strategies; the
``Strategy`` extension point; the trainer; and the value types ``Batch``, ``ModelOutput`` and
``StepResult``; and ``Predictor``, the table-in, predictions-out API (imported on first use).
"""

from typing import Any

from mmbalance.data import build_dataset, list_datasets
from mmbalance.models import MultimodalModel, build_model, list_encoders, list_heads
from mmbalance.strategies import Strategy, build_strategy, list_strategies
from mmbalance.types import Batch, ModelOutput, StepResult

__version__ = "0.1.0"

__all__ = [
    "Batch",
    "ModelOutput",
    "MultimodalModel",
    "Predictor",
    "StepResult",
    "Strategy",
    "__version__",
    "build_dataset",
    "build_model",
    "build_strategy",
    "list_datasets",
    "list_encoders",
    "list_heads",
    "list_strategies",
]


def __getattr__(name: str) -> Any:
    if name == "Predictor":  # pulls in the training stack: only when asked for
        from mmbalance.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'mmbalance' has no attribute {name!r}")
