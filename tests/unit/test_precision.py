"""``train.precision=bf16``: forwards under bfloat16 autocast, float32 gradient maths, finite runs close to
float32, and a one-line error for anything else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor

from mmbalance import config
from mmbalance.errors import ConfigError
from mmbalance.experiment import build, loaders, make_trainer
from mmbalance.grad import (
    InputCovariance,
    OrthogonalProjector,
    cosine,
    flat_projector,
    owm_update,
    project_right_,
    project_to_cone,
)
from mmbalance.strategies.joint import Joint
from mmbalance.trainer import evaluate

TINY = [
    "dataset__name=synthetic",
    "dataset__n_samples=240",
    "data__batch_size=16",
    "model__feature_dim=16",
    "model__encoders__a__name=mlp",
    "model__encoders__a__hidden=[16]",
    "model__encoders__b__name=mlp",
    "model__encoders__b__hidden=[16]",
    "optim__lr=0.01",
    "train__epochs=4",
    "train__device=cpu",
]
METHODS = {
    "joint": [],
    "mla": [],
    "gaal": [],
    "igm": ["strategy__stage_epochs=1", "strategy__head_hidden=[16]"],
}


@pytest.mark.parametrize("value", ["fp16", "float32", "bfloat16", None])
def test_an_unknown_precision_is_one_line(value: object) -> None:
    with pytest.raises(ConfigError, match=r"^train.precision=.* is invalid; expected fp32 or bf16") as err:
        config.resolve({"train": {"precision": value}})
    assert "\n" not in str(err.value)


def fit(method: str, precision: str) -> tuple[list[dict[str, float]], dict[str, Any]]:
    cfg = config.resolve({}, [*TINY, f"strategy__name={method}", *METHODS[method]])
    cfg["train"]["precision"] = precision
    s = build(cfg)
    ld = loaders(s)
    state = make_trainer(s).fit(ld["train"], ld["val"])
    assert all(p.dtype == torch.float32 for p in s.model.parameters())
    return state.history, evaluate(s.model, s.strategy, ld["test"], s.device, precision)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_a_bf16_run_is_finite_and_close_to_fp32(method: str) -> None:
    fp32_history, fp32 = fit(method, "fp32")
    bf16_history, bf16 = fit(method, "bf16")
    assert all(torch.isfinite(torch.tensor(list(row.values()))).all() for row in bf16_history)
    assert fp32["acc"] > 0.6  # the tiny problem is learnt (chance is 0.25) ...
    assert abs(bf16["acc"] - fp32["acc"]) <= 0.1  # ... and as well in bfloat16
    assert fp32_history[-1]["train_loss"] != bf16_history[-1]["train_loss"]  # bf16 really ran


class DtypeRecorder(Joint):
    """Joint training that records the dtype of the logits it trains on and predicts from."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, set[torch.dtype]] = {"train": set(), "predict": set()}

    def loss(self, out: Any, batch: Any) -> Tensor:
        self.seen["train"].add(out.logits.dtype)
        return super().loss(out, batch)

    def predict(self, out: Any) -> Tensor:
        self.seen["predict"].add(out.logits.dtype)
        return super().predict(out)


@pytest.mark.parametrize(("precision", "dtype"), [("bf16", torch.bfloat16), ("fp32", torch.float32)])
def test_the_trainer_runs_steps_and_evaluation_under_the_precision(
    precision: str, dtype: torch.dtype
) -> None:
    s = build(config.resolve({}, [*TINY, f"train__precision={precision}"]))
    s.strategy = recorder = DtypeRecorder()
    ld = loaders(s)
    trainer = make_trainer(s, 1)
    trainer.fit(ld["train"], ld["val"])
    assert recorder.seen == {"train": {dtype}, "predict": {dtype}}
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in s.model.parameters())


def gradient_maths(device: str) -> dict[str, Callable[[], Tensor]]:
    """Surgery and projector functions of fixed random float32 inputs (each call computes afresh)."""
    g = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g).to(device)

    grad, refs, P, r = rand(300), rand(3, 300), rand(20, 20), rand(20)
    P = P @ P.T
    lin = torch.nn.Linear(20, 4).to(device)
    x = rand(64, 20)

    def covariance() -> Tensor:
        with InputCovariance([lin], mode="second_moment") as stats:
            lin(x)
        return stats.covariances[lin]

    def projected_right() -> Tensor:
        weight_grad = grad[:80].reshape(4, 20).clone()
        project_right_(weight_grad, P)
        return weight_grad

    projector = OrthogonalProjector(20, device=device)
    projector.P_ = P.clone()
    return {
        "project_to_cone, one reference": lambda: project_to_cone(-refs[0] + 0.1 * grad, refs[0]),
        "project_to_cone, three references": lambda: project_to_cone(-refs.sum(0), refs),
        "owm_update": lambda: owm_update(P, r, alpha=0.1),
        "OrthogonalProjector.project": lambda: projector.project(grad[:80].reshape(4, 20)),
        "project_right_": projected_right,
        "flat_projector": lambda: flat_projector(P, temperature=0.5),
        "InputCovariance": covariance,
        "cosine of bfloat16 vectors": lambda: cosine(grad.bfloat16(), refs[0].bfloat16()),
    }


@pytest.mark.parametrize("name", list(gradient_maths("cpu")))
def test_gradient_maths_is_float32_under_autocast(name: str, device: str) -> None:
    """Under bfloat16 autocast each function returns float32, bit-identical to its result outside."""
    compute = gradient_maths(device)[name]
    plain = compute()
    with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
        cast = compute()
    assert cast.dtype == plain.dtype == torch.float32
    assert torch.equal(cast, plain)
