"""MSLR: modality-specific learning rates for additive late fusion (Yao & Mihalcea, Findings of ACL 2022)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.optim import Optimizer

from mmbalance.errors import ConfigError, check_range
from mmbalance.models import MultimodalModel
from mmbalance.strategies.base import Strategy
from mmbalance.strategies.registry import STRATEGIES
from mmbalance.types import Batch, ModelOutput

MIN_RATIO = 1e-6  # a zero accuracy pauses a modality without losing its place in the LR schedule


def dynamic_ratio(history: Sequence[float], accuracy: float) -> float:
    """``acc(t) / mean(history)``, the dynamic strategy's factor (1 when the mean is 0), floored at 1e-6.

    >>> dynamic_ratio([0.5, 0.6, 0.7], 0.9)
    1.5
    """
    mean = sum(history) / len(history)
    return max(accuracy / mean, MIN_RATIO) if mean > 0 else 1.0


def scale_group_lrs_(optimizer: Optimizer, scales: Mapping[str, float]) -> None:
    """Set the learning rate of the param group named ``m`` to its unscaled value times ``scales[m]``.

    The applied scale is kept in the group (``"lr_scale"``, saved with the optimizer state), so the group's
    current (scheduled) rate is rescaled by ``new / applied``: a scheduler's decay is kept, re-applying is
    a no-op, and a freshly created optimizer (no ``"lr_scale"`` yet: 1) gets the full scale.
    """
    groups = {g.get("name"): g for g in optimizer.param_groups}
    missing = [m for m in scales if m not in groups]
    if missing:
        raise ConfigError(
            f"mslr needs one optimizer param group named per modality; groups {sorted(map(str, groups))} "
            f"lack {missing} (build the optimizer over mmbalance.models.parameter_groups)"
        )
    for m, scale in scales.items():
        group = groups[m]
        group["lr"] *= scale / group.get("lr_scale", 1.0)
        group["lr_scale"] = scale


@STRATEGIES.register("mslr")
class MSLR(Strategy):
    """Late-fusion joint training with one learning rate per modality, adjusted from validation accuracy.

    MSLR (Yao & Mihalcea, "Modality-specific Learning Rates for Effective Multimodal Additive
    Late-fusion", Findings of ACL 2022, doi 10.18653/v1/2022.findings-acl.143). The loss is the
    cross-entropy of the summed unimodal logits (``sum`` head). Modality ``m``'s optimizer param group
    (encoder and its head branch) trains at ``lr_m = lr·c_m`` with ``c_m = lr_scales[m]·r_m``; shared
    parameters keep ``lr``. Scales are true learning rates set on the named param groups, re-applied to a
    re-created optimizer and composed with the LR scheduler's decay. ``dynamic=True``: after each of the
    first ``window`` epochs ``r_m = 1`` and the validation accuracy ``acc_m`` of modality ``m``'s own
    logits is stored; afterwards ``r_m = acc_m(t) / mean(acc_m over the previous window epochs)`` (not
    accumulated) and the window slides. ``dynamic=False`` keeps ``c_m = lr_scales[m]`` (the paper's first
    strategy: each modality at its best unimodal rate). Inference: the fused logits. Logs
    ``mslr_scale_<m>``.

    Differences from the AGM repository's implementation (the de-facto reference): it multiplies the
    gradients by ``c_m``, which differs from a learning rate under weight decay and is a no-op under Adam;
    it reads the accuracies on the test set; its ``c⁰`` (audio 0.9, visual 1.1) are set here with
    ``lr_scales``; the modulation-window arguments it shares with other methods are not used.
    """

    name = "mslr"
    min_modalities = 2
    supported_heads: ClassVar[tuple[str, ...]] = ("sum", "concat")

    def __init__(
        self,
        lr_scales: Mapping[str, float] | None = None,
        dynamic: bool = True,
        window: int = 5,
        head: str = "sum",
    ) -> None:
        self.lr_scales = lr_scales
        self.dynamic = dynamic
        self.window = window
        self.head = head

    def validate(self, modalities: Sequence[str]) -> None:
        super().validate(modalities)
        if len(modalities) < 2:
            raise ConfigError(f"mslr needs >= 2 modalities; got {list(modalities)}")
        given = self.lr_scales
        if given is not None and (not isinstance(given, Mapping) or set(given) - set(modalities)):
            raise ConfigError(
                f"lr_scales={given!r} is invalid; expected a mapping from modalities {list(modalities)} "
                f"to positive factors, e.g. {{{modalities[0]}: 0.9}}"
            )
        for m, c in (given or {}).items():
            check_range(f"lr scale of {m}", c, 1e-12)
        if not isinstance(self.dynamic, bool):
            raise ConfigError(f"dynamic={self.dynamic!r} is invalid; expected true or false")
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise ConfigError(f"window={self.window!r} is invalid; expected an integer >= 1")

    def setup(
        self, model: MultimodalModel, optimizer: Optimizer, make_optimizer: Callable[[], Optimizer]
    ) -> None:
        super().setup(model, optimizer, make_optimizer)
        self.ratio_ = dict.fromkeys(model.modalities, 1.0)
        self.history_: dict[str, list[float]] = {m: [] for m in model.modalities}
        self._apply()

    def scales(self) -> dict[str, float]:
        """``c_m = lr_scales[m]·r_m`` for every modality."""
        given = self.lr_scales or {}
        return {m: float(given.get(m, 1.0)) * r for m, r in self.ratio_.items()}

    def _apply(self) -> None:
        scale_group_lrs_(self.optimizer, self.scales())
        device = next(self.model.parameters()).device
        self._logs = {f"mslr_scale_{m}": torch.tensor(c, device=device) for m, c in self.scales().items()}

    def on_epoch_start(self, epoch: int, train_loader: Any) -> None:
        self._apply()  # a re-created optimizer gets the scales again; otherwise a no-op

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        if not self.dynamic:
            return
        ratio, histories = dict(self.ratio_), {}  # new containers: saved states are never mutated
        for m, history in self.history_.items():
            key = f"val_{m}_acc"
            if key not in metrics:
                raise ConfigError(f"mslr needs {key} in the epoch's metrics; got {sorted(metrics)}")
            acc = float(metrics[key])
            if len(history) == self.window:
                ratio[m] = dynamic_ratio(history, acc)
            histories[m] = [*history, acc][-self.window :]
        self.ratio_, self.history_ = ratio, histories
        self._apply()

    def modify_gradients(self, out: ModelOutput, batch: Batch, epoch: int) -> dict[str, Tensor]:
        return dict(self._logs)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self._apply()
