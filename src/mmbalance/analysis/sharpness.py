"""Two sharpness numbers of a trained model's fused loss on a fixed set of training batches.

* ``hessian_max_eig``: the largest eigenvalue of the Hessian of the loss with respect to every trainable
  parameter, by power iteration on Hessian-vector products (double backward), at most ``iterations``
  products, stopping when the estimate changes by less than ``tol`` relative.
* ``rho_sharpness``: the largest loss increase found within the L2 ball ``‖ε‖₂ <= rho`` around the
  trained parameters (all trainable ones) by ``steps`` projected gradient-ascent steps
  (:func:`mmbalance.grad.curvature.worst_increase_in_ball`): the sharpness SAM minimises (Foret et al.,
  ICLR 2021). ``rho`` is **absolute**, as SAM's ``rho`` (and this library's ``grad.sam``), whose usual
  0.05 is the default, so a run is read against the radius SAM-style methods train with. A radius
  relative to the weights' norm would be invariant to rescaling a ReLU/BatchNorm layer, but 5% of
  ``‖θ‖₂`` is a radius of 1.2 for a 5-epoch joint model on mfeat, where five ascent steps took the loss
  from 0.04 to 118 nats: a saturated number that says little about the minimum. The scale-free view is
  the filter-normalised landscape, and ``weight_norm`` is recorded beside the number so runs whose
  weights differ in scale can be read with that in mind. It is a lower bound of the true worst increase
  (a few ascent steps find a local maximum at best).

The model is evaluated in eval mode (BatchNorm uses its running statistics) and its parameters hold their
original values again afterwards.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from mmbalance.analysis.landscape import fused_objective, trainable
from mmbalance.errors import ConfigError, check_range
from mmbalance.grad.curvature import top_hessian_eigenvalue, worst_increase_in_ball
from mmbalance.models import MultimodalModel
from mmbalance.strategies import Strategy
from mmbalance.types import Batch


@dataclass(frozen=True)
class SharpnessSettings:
    """What determines the sharpness numbers of a checkpoint (saved beside them: reuse needs equal ones).

    ``samples`` training rows drawn with ``seed`` (which also seeds the power iteration's start and the
    ascent); ``rho`` is the ball's absolute radius.
    """

    samples: int = 1000
    seed: int = 0
    rho: float = 0.05
    iterations: int = 100
    tol: float = 1e-3
    steps: int = 5

    def __post_init__(self) -> None:
        for name in ("samples", "iterations", "steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}={value!r} is invalid; expected a positive integer")
        check_range("rho", self.rho, 0.0)
        check_range("tol", self.tol, 0.0)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def generator(seed: int, purpose: int) -> torch.Generator:
    """A CPU generator for one use of ``seed`` (0: the subset, 1: the directions, 2: the power iteration,
    3: the ascent), so each draw is the same whichever others a command makes."""
    return torch.Generator().manual_seed(seed * 1_000_003 + purpose)


def measure_sharpness(
    model: MultimodalModel, strategy: Strategy, batches: list[Batch], settings: SharpnessSettings
) -> dict[str, Any]:
    """``hessian_max_eig`` and ``rho_sharpness`` of the fused loss on ``batches`` (see the module), with
    what they came from: the loss at the centre and at the worst point, the power iteration's count and
    convergence, the norm of the worst step and of the weights."""
    model.eval()
    params = trainable(model)
    if not params:
        raise ConfigError("the model has no trainable parameters; nothing to measure")
    objective = fused_objective(model, strategy, batches)
    eig = top_hessian_eigenvalue(
        objective, params, settings.iterations, settings.tol, generator(settings.seed, 2)
    )
    norm = math.sqrt(sum(float(p.detach().double().square().sum()) for p in params))
    ball = worst_increase_in_ball(
        objective, params, settings.rho, settings.steps, generator(settings.seed, 3)
    )
    return {
        "hessian_max_eig": eig.value,
        "rho_sharpness": ball.increase,
        "loss": ball.loss,
        "worst_loss": ball.worst_loss,
        "hessian_iterations": eig.iterations,
        "hessian_converged": eig.converged,
        "weight_norm": norm,
        "rho_step_norm": ball.step_norm,
        "samples": sum(b.size for b in batches),
        "settings": settings.as_dict(),
    }
