"""Mixed precision: ``train.precision`` and the float32 islands that gradient math keeps under autocast.

``precision="bf16"`` runs every training step and every evaluation under
``torch.autocast(device_type, dtype=torch.bfloat16)``: matrix products and convolutions of the forward
passes (the trainer's and those strategies run themselves) compute in bfloat16, while parameters,
gradients and optimizer state stay float32. bfloat16 has float32's exponent range, so gradients neither
underflow nor overflow and no loss scaling is needed. float16 is not offered: it would need a gradient
scaler threaded through every backward pass a strategy runs itself (alternating half-steps, reference
gradients, SAM's second pass), with unscaling before any gradient surgery.

Gradient surgery and projector maths (:mod:`mmbalance.grad`) are wrapped in :func:`float32_math`: autocast
is off inside them, so their products run in float32 (or float64) whatever the caller's context.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, TypeVar

import torch

from mmbalance.errors import ConfigError

PRECISIONS = ("fp32", "bf16")
_AUTOCAST_DEVICES = ("cpu", "cuda", "mps", "xpu")
F = TypeVar("F", bound=Callable[..., Any])


def check_precision(value: object) -> None:
    """Raise a one-line :class:`ConfigError` unless ``value`` is one of :data:`PRECISIONS`.

    >>> check_precision("fp16")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mmbalance.errors.ConfigError: train.precision='fp16' is invalid; expected fp32 or bf16 (fp16 is not ...
    """
    if value not in PRECISIONS:
        raise ConfigError(
            f"train.precision={value!r} is invalid; expected fp32 or bf16 (fp16 is not offered: it needs "
            "loss scaling)"
        )


def autocast(device: torch.device | str, precision: str) -> torch.autocast:
    """The autocast context of ``precision`` on ``device``'s type (``fp32``: a disabled one)."""
    check_precision(precision)
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16")


@contextmanager
def autocast_off() -> Iterator[None]:
    """Turn autocast off on every device type where it is on, for the body of the ``with``."""
    with ExitStack() as stack:
        for device_type in _AUTOCAST_DEVICES:
            if torch.is_autocast_enabled(device_type):
                stack.enter_context(torch.autocast(device_type, enabled=False))
        yield


def float32_math(fn: F) -> F:
    """Decorator: run ``fn`` with autocast off (see :func:`autocast_off`), so its products keep their
    inputs' precision (float32 for gradients) inside an autocast region."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with autocast_off():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
