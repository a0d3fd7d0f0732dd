"""mmbalance: train multimodal classifiers whose modalities learn in balance.

The public API: registries and builders for datasets, encoders, heads and strategies; the
``Strategy`` extension point; the trainer; and the value types ``Batch``, ``ModelOutput`` and
``StepResult``.
"""

from mmbalance.data import build_dataset, list_datasets
from mmbalance.models import MultimodalModel, build_model, list_encoders, list_heads
from mmbalance.strategies import Strategy, build_strategy, list_strategies
from mmbalance.types import Batch, ModelOutput, StepResult

__version__ = "0.1.0"

__all__ = [
    "Batch",
    "ModelOutput",
    "MultimodalModel",
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
