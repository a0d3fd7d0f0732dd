"""Pre-training as a stage of its own: ``mmbalance pretrain --method mmcl ... --out RUN`` writes a run
directory whose encoders ``mmbalance train ... model__init_from=RUN`` starts from.

A pre-training method (:class:`Pretrainer`, registered in :data:`PRETRAINERS`) names the modalities it
trains, builds its extra modules (projectors) and computes an unsupervised loss from a batch; the stage
(:mod:`mmbalance.pretrain.stage`) owns the loop and the run directory.
"""

from __future__ import annotations

from mmbalance.pretrain import mmcl as _mmcl  # noqa: F401  (registers)
from mmbalance.pretrain import tip as _tip  # noqa: F401  (registers)
from mmbalance.pretrain.base import PRETRAINED, PRETRAINERS, Pretrainer
from mmbalance.pretrain.init import init_from_run
from mmbalance.pretrain.stage import pretrain_run

__all__ = ["PRETRAINED", "PRETRAINERS", "Pretrainer", "init_from_run", "pretrain_run"]
