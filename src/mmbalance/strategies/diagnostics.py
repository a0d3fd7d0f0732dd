"""The gradient-conflict diagnostic every strategy can log (the papers' Figure 1).

On the head parameters ``H``, with features detached (so only the cheap head graph is differentiated):

* ``grad_cosine`` — the mean over modality pairs of ``cos(∇_H CE_m, ∇_H CE_m')``, where ``CE_m`` is the
  loss of modality ``m``'s own logits. Negative values mean the modalities pull the shared head in
  conflicting directions. With a ``shared`` head this is the conflict MLA and GAAL act on; with a
  ``concat`` head the modalities' weight slices are disjoint, so only the bias overlaps.
* ``grad_cosine_fused_<m>`` — ``cos(∇_H CE_m, ∇_H CE_fused)``: how well modality ``m``'s own gradient
  agrees with the multimodal gradient (GAAL, Fig. 1a).

Nothing is logged for heads without shared parameters (``sum``): there, modalities share no head weight.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations

import torch
import torch.nn.functional as F
from torch import Tensor

from mmbalance import distributed
from mmbalance.grad import cosine, flatten, gradients_of
from mmbalance.models import MultimodalModel


@torch.enable_grad()
def head_gradient_cosines(
    model: MultimodalModel, features: Mapping[str, Tensor], label: Tensor
) -> dict[str, Tensor]:
    """The diagnostic above for one batch's features; an empty dict when it is undefined."""
    shared = model.shared_parameters()
    if len(features) < 2 or not shared:
        return {}
    params = model.head_parameters()
    feats = {m: f.detach() for m, f in features.items()}

    def grad(loss: Tensor) -> Tensor:  # the global batch's gradient under torchrun
        return flatten(distributed.mean_list_(gradients_of(loss, params)), params)

    grads = {m: grad(F.cross_entropy(model.head.unimodal(m, f), label)) for m, f in feats.items()}
    fused = grad(F.cross_entropy(model.head(feats), label))
    pairs = [cosine(grads[a], grads[b]) for a, b in combinations(grads, 2)]
    logs = {"grad_cosine": torch.stack(pairs).mean()}
    logs.update({f"grad_cosine_fused_{m}": cosine(g, fused) for m, g in grads.items()})
    return {k: v.detach() for k, v in logs.items()}


class Diagnosed:
    """Mixin: ``self.diagnose(model, features, label)`` computes the diagnostic on every
    ``diagnostics_every``-th call (and nothing on the others)."""

    diagnostics_every: int = 4
    diag_calls_: int = 0  # learned state: a resumed run diagnoses the same steps

    def diagnose(
        self, model: MultimodalModel, features: Mapping[str, Tensor], label: Tensor
    ) -> dict[str, Tensor]:
        self.diag_calls_ += 1
        if (self.diag_calls_ - 1) % self.diagnostics_every:
            return {}
        return head_gradient_cosines(model, features, label)
