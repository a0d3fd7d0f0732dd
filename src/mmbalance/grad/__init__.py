"""Gradient math as pure tensor functions: flat views, GEM-style surgery, Pareto integration, projectors,
SAM helpers and gradient scaling.

Nothing here synchronises with the host or picks a device; every result stays on its input's device.
The surgery, projector, Pareto and cosine functions run with autocast off
(:func:`mmbalance.precision.float32_math`): under ``train.precision=bf16`` they still compute in float32.
"""

from __future__ import annotations

from mmbalance.grad.flat import cosine, flatten, gradients_of, unflatten, write_grads_
from mmbalance.grad.pareto import min_norm_weights, pareto_combine, pareto_weights, rescale_to_sum
from mmbalance.grad.projection import (
    FlatSpectrum,
    InputCovariance,
    OrthogonalProjector,
    flat_projector,
    flat_spectrum,
    owm_update,
    project_right_,
)
from mmbalance.grad.sam import frozen_bn_stats, perturbed, sam_perturbation
from mmbalance.grad.scale import clip_if_any_exceeds_, scale_grad
from mmbalance.grad.surgery import MAX_REFS, conflicts, project_to_cone

__all__ = [
    "MAX_REFS",
    "FlatSpectrum",
    "InputCovariance",
    "OrthogonalProjector",
    "clip_if_any_exceeds_",
    "conflicts",
    "cosine",
    "flat_projector",
    "flat_spectrum",
    "flatten",
    "frozen_bn_stats",
    "gradients_of",
    "min_norm_weights",
    "owm_update",
    "pareto_combine",
    "pareto_weights",
    "perturbed",
    "project_right_",
    "project_to_cone",
    "rescale_to_sum",
    "sam_perturbation",
    "scale_grad",
    "unflatten",
    "write_grads_",
]
